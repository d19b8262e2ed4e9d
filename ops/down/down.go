// Package down removes what `zkaas up` made for an ensemble, in reverse
// dependency order: the snapshot policy, the groups (their instances
// terminate), the templates, the profile and role, and the security
// groups. The ENIs and volumes are the ensemble's identity and data: they
// stay, and so does the nodes' security group they use, unless DeleteData
// is given with the ensemble's name typed back. Only resources carrying
// zkaas:managed-by=zkaas are ever deleted.
package down

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/plan"
)

// Options say how far down goes.
type Options struct {
	DeleteData bool
	// Confirm must equal the ensemble's name when DeleteData is set.
	Confirm string
}

// Kept is a resource down left in place, and why.
type Kept struct {
	Existing plan.Existing
	Why      string
}

// Result is what down did.
type Result struct {
	Deleted []plan.Existing
	Kept    []Kept
}

// Run removes the ensemble's resources.
func Run(ctx context.Context, c plan.Cloud, d deploy.Desired, opt Options, log *slog.Logger) (Result, error) {
	var res Result
	if opt.DeleteData && opt.Confirm != d.Ensemble {
		return res, fmt.Errorf("-delete-data deletes every node's ENI and volume (the ensemble's data): confirm with -confirm %s", d.Ensemble)
	}
	existing, err := c.List(ctx, &d)
	if err != nil {
		return res, fmt.Errorf("list the ensemble's resources: %w", err)
	}
	order := slices.Clone(deploy.Order)
	slices.Reverse(order)
	for _, k := range order {
		for _, ex := range existing {
			if ex.Kind != k {
				continue
			}
			switch {
			case !ex.Managed:
				res.Kept = append(res.Kept, Kept{ex, "not made by zkaas"})
				continue
			case k.Data() && !opt.DeleteData:
				res.Kept = append(res.Kept, Kept{ex, "the ensemble's data (-delete-data removes it)"})
				continue
			case k == deploy.KindSecurityGroup && ex.Name == deploy.NodesGroup && !opt.DeleteData:
				res.Kept = append(res.Kept, Kept{ex, "the kept ENIs use it"})
				continue
			}
			start := time.Now()
			if err := c.Delete(ctx, ex); err != nil {
				return res, fmt.Errorf("delete %s %s (%s): %w", ex.Kind, ex.Name, ex.ID, err)
			}
			log.Info("deleted", "step", string(ex.Kind)+" "+ex.Name, "id", ex.ID, "duration", time.Since(start))
			res.Deleted = append(res.Deleted, ex)
		}
	}
	return res, nil
}

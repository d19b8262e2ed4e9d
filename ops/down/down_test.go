package down_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/down"
	"github.com/zkaas/zkaas/ops/plan"
	"github.com/zkaas/zkaas/ops/plan/plantest"
)

func setup(t *testing.T) (*plantest.Cloud, deploy.Desired) {
	t.Helper()
	raw, err := os.ReadFile("../plan/testdata/ensemble.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := ensemble.Parse("e", raw)
	if err != nil {
		t.Fatal(err)
	}
	d, err := deploy.For(cfg, raw)
	if err != nil {
		t.Fatal(err)
	}
	c := plantest.New(
		plan.Subnet{ID: "subnet-0aaaaaaaaaaaaaaaa", VPC: "vpc-1", AZ: "us-east-1a", CIDR: netip.MustParsePrefix("10.0.1.0/24")},
		plan.Subnet{ID: "subnet-b", VPC: "vpc-1", AZ: "us-east-1b", CIDR: netip.MustParsePrefix("10.0.2.0/24")},
		plan.Subnet{ID: "subnet-c", VPC: "vpc-1", AZ: "us-east-1c", CIDR: netip.MustParsePrefix("10.0.3.0/24")})
	p, err := plan.Make(context.Background(), c, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(context.Background(), c, p, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	// Foreign: another ensemble's group, and an ENI of ours the operator
	// tagged by hand (no managed-by).
	c.Put(plan.Existing{Kind: deploy.KindGroup, Name: "other", ID: "other", Tags: map[string]string{"zkaas:ensemble": "other", deploy.TagManagedBy: "zkaas"}, Managed: true})
	c.Put(plan.Existing{Kind: deploy.KindENI, Name: "node-9", ID: "eni-hand", Tags: map[string]string{"zkaas:ensemble": "prod-zk", "zkaas:node": "9"}})
	return c, d
}

func TestDownKeepsData(t *testing.T) {
	c, d := setup(t)
	res, err := down.Run(context.Background(), c, d, down.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	left := map[deploy.Kind]int{}
	for _, e := range c.All() {
		left[e.Kind]++
	}
	// 3 ENIs + the hand-made one, 3 volumes, the nodes' group, the other ensemble's group.
	if left[deploy.KindENI] != 4 || left[deploy.KindVolume] != 3 || left[deploy.KindSecurityGroup] != 1 || left[deploy.KindGroup] != 1 ||
		left[deploy.KindTemplate]+left[deploy.KindRole]+left[deploy.KindProfile]+left[deploy.KindSnapshotPolicy] != 0 {
		t.Errorf("left %v", left)
	}
	if len(res.Deleted) != 8 {
		t.Errorf("deleted %d, want 8", len(res.Deleted))
	}
	// Reverse order: the policy and groups before the template, the
	// template before the profile, the profile before the role.
	var order []deploy.Kind
	for _, e := range res.Deleted {
		if len(order) == 0 || order[len(order)-1] != e.Kind {
			order = append(order, e.Kind)
		}
	}
	want := []deploy.Kind{deploy.KindSnapshotPolicy, deploy.KindGroup, deploy.KindTemplate, deploy.KindProfile, deploy.KindRole, deploy.KindSecurityGroup}
	if strings.Join(kinds(order), ",") != strings.Join(kinds(want), ",") {
		t.Errorf("order %v", order)
	}
	// Down again: nothing more to delete.
	res, err = down.Run(context.Background(), c, d, down.Options{}, slog.New(slog.DiscardHandler))
	if err != nil || len(res.Deleted) != 0 {
		t.Errorf("second down: %v %v", res.Deleted, err)
	}
}

func kinds(ks []deploy.Kind) []string {
	var s []string
	for _, k := range ks {
		s = append(s, string(k))
	}
	return s
}

func TestDownDeleteData(t *testing.T) {
	c, d := setup(t)
	before := c.Mutations
	_, err := down.Run(context.Background(), c, d, down.Options{DeleteData: true, Confirm: "prod"}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "-confirm prod-zk") {
		t.Errorf("wrong confirmation: %v", err)
	}
	if c.Mutations != before || len(c.Calls) != before+1 { // +1: setup's List only
		t.Errorf("calls before confirmation: %v", c.Calls[before:])
	}
	if _, err := down.Run(context.Background(), c, d, down.Options{DeleteData: true, Confirm: "prod-zk"}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range c.All() {
		left = append(left, e.ID)
	}
	if strings.Join(left, ",") != "eni-hand,other" {
		t.Errorf("left %v: want only the hand-made ENI and the other ensemble's group", left)
	}
}

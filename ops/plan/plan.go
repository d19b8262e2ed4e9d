// Package plan compares the desired ensemble (package deploy) with what
// exists in AWS, found by its tags and unique names, and applies the
// difference in dependency order. It speaks only the domain Cloud below;
// package ops/aws implements it over the SDK.
//
// Apply is resumable by construction: every create is tagged at creation
// (TagSpecifications, so nothing exists untagged even for a moment) and
// carries an idempotency token, and the next plan finds what the last one
// made. A second up after a complete one plans nothing.
package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zkaas/zkaas/ops/deploy"
)

// Subnet is what the plan needs to know of a subnet.
type Subnet struct {
	ID   string
	VPC  string
	AZ   string
	CIDR netip.Prefix
}

// Existing is a resource found in AWS. Spec is of the same type as the
// desired one, with ids where the desired spec names resources.
type Existing struct {
	Kind deploy.Kind
	Name string
	ID   string
	Spec any
	Tags map[string]string
	// Managed: it carries zkaas:managed-by=zkaas (zkaas made it). An ENI
	// or volume the operator tagged by hand is used, never deleted.
	Managed bool
}

// Refs are the ids a spec's names resolve to.
type Refs struct {
	VPC     string
	Subnets map[string]string // AZ -> subnet id
	IDs     map[string]string // "kind/name" -> id
}

func key(k deploy.Kind, name string) string { return string(k) + "/" + name }

// ID returns the id of the ensemble's resource of kind k named name.
func (r Refs) ID(k deploy.Kind, name string) string { return r.IDs[key(k, name)] }

// Cloud is what plan and apply need from AWS, as domain methods.
type Cloud interface {
	// Subnet describes a subnet by id; SubnetFor finds the subnet of az
	// whose CIDR holds ip.
	Subnet(ctx context.Context, id string) (Subnet, error)
	SubnetFor(ctx context.Context, az string, ip netip.Addr) (Subnet, error)
	// List returns every resource of the ensemble: ENIs and volumes by its
	// identity tags, the rest by zkaas:resource and the ensemble tag, or
	// their unique names (IAM, templates, groups).
	List(ctx context.Context, d *deploy.Desired) ([]Existing, error)
	// Create makes r (its spec resolved to ids) tagged with tags and
	// returns its id.
	Create(ctx context.Context, r deploy.Resource, tags map[string]string) (string, error)
	// Update makes ex match r.
	Update(ctx context.Context, r deploy.Resource, ex Existing) error
	// Delete removes ex.
	Delete(ctx context.Context, ex Existing) error
}

// AddressChecker is an optional part of Cloud: who already uses an IP in
// a subnet (an ENI id, "" when free). With it, a node whose IP another
// interface holds is a conflict in the plan, not a failure midway up.
type AddressChecker interface {
	AddressUser(ctx context.Context, subnet string, ip netip.Addr) (string, error)
}

// Action is what a step does.
type Action string

const (
	Create   Action = "create"
	Update   Action = "update"
	OK       Action = "ok"
	Conflict Action = "conflict" // exists and differs in a way up will not change
)

// Step is one resource's part of the plan.
type Step struct {
	Resource deploy.Resource
	Action   Action
	Existing *Existing
	Why      []string // the differences, for update and conflict
}

// ID is the existing resource's id, or "".
func (s Step) ID() string {
	if s.Existing == nil {
		return ""
	}
	return s.Existing.ID
}

// Plan is every step, in dependency order.
type Plan struct {
	Desired deploy.Desired
	Refs    Refs
	Steps   []Step
	// Extra are the ensemble's resources the config no longer describes
	// (a node removed, the group layout changed). Up leaves them: an old
	// group still holding nodes must be drained by hand or by down.
	Extra []Existing
}

// Changes counts the steps that create or update.
func (p *Plan) Changes() int {
	n := 0
	for _, s := range p.Steps {
		if s.Action == Create || s.Action == Update {
			n++
		}
	}
	return n
}

// Conflicts returns the conflicting steps.
func (p *Plan) Conflicts() []Step {
	var out []Step
	for _, s := range p.Steps {
		if s.Action == Conflict {
			out = append(out, s)
		}
	}
	return out
}

// Make resolves the subnets, lists what exists and compares. It makes only
// Describe/List calls.
func Make(ctx context.Context, c Cloud, d deploy.Desired) (*Plan, error) {
	p := &Plan{Desired: d, Refs: Refs{Subnets: map[string]string{}, IDs: map[string]string{}}}
	if err := p.resolveSubnets(ctx, c); err != nil {
		return nil, err
	}
	existing, err := c.List(ctx, &d)
	if err != nil {
		return nil, fmt.Errorf("list the ensemble's resources: %w", err)
	}
	byKey := map[string]*Existing{}
	for i := range existing {
		e := &existing[i]
		k := key(e.Kind, e.Name)
		if prev, dup := byKey[k]; dup {
			return nil, fmt.Errorf("two %s resources named %s exist (%s, %s): remove the one not in use", e.Kind, e.Name, prev.ID, e.ID)
		}
		byKey[k] = e
		p.Refs.IDs[k] = e.ID
	}
	for _, r := range d.Resources {
		st := Step{Resource: r, Existing: byKey[key(r.Kind, r.Name)]}
		if st.Existing == nil {
			st.Action = Create
			if why, err := p.addressTaken(ctx, c, r); err != nil {
				return nil, err
			} else if why != "" {
				st.Action, st.Why = Conflict, []string{why}
			}
		} else {
			rr := p.resolve(r)
			st.Action, st.Why = compare(rr, *st.Existing)
		}
		p.Steps = append(p.Steps, st)
	}
	for _, e := range existing {
		if _, wanted := d.Find(e.Kind, e.Name); !wanted {
			p.Extra = append(p.Extra, e)
		}
	}
	slices.SortFunc(p.Extra, func(a, b Existing) int {
		if d := slices.Index(deploy.Order, a.Kind) - slices.Index(deploy.Order, b.Kind); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return p, nil
}

// resolveSubnets finds every node's subnet (named, or by AZ and IP), checks
// the IP is usable in it, and that they share one VPC.
func (p *Plan) resolveSubnets(ctx context.Context, c Cloud) error {
	var errs []error
	for _, r := range p.Desired.Resources {
		e, ok := r.Spec.(deploy.ENISpec)
		if !ok {
			continue
		}
		var sn Subnet
		var err error
		if e.Subnet != "" {
			sn, err = c.Subnet(ctx, e.Subnet)
		} else {
			sn, err = c.SubnetFor(ctx, e.AZ, e.IP)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", e.Node, err))
			continue
		}
		if msg := CheckIP(sn, e.AZ, e.IP); msg != "" {
			errs = append(errs, fmt.Errorf("node %d: %s", e.Node, msg))
			continue
		}
		if prev, ok := p.Refs.Subnets[e.AZ]; ok && prev != sn.ID {
			errs = append(errs, fmt.Errorf("node %d: %s is in subnet %s but another node of %s is in %s: name deploy.subnets for %s", e.Node, e.IP, sn.ID, e.AZ, prev, e.AZ))
			continue
		}
		p.Refs.Subnets[e.AZ] = sn.ID
		switch {
		case p.Refs.VPC == "":
			p.Refs.VPC = sn.VPC
		case p.Refs.VPC != sn.VPC:
			errs = append(errs, fmt.Errorf("node %d: subnet %s is in %s, the others in %s: an ensemble lives in one VPC", e.Node, sn.ID, sn.VPC, p.Refs.VPC))
		}
	}
	return errors.Join(errs...)
}

// addressTaken says why a new ENI's IP cannot be had, or "".
func (p *Plan) addressTaken(ctx context.Context, c Cloud, r deploy.Resource) (string, error) {
	ac, ok := c.(AddressChecker)
	e, isENI := r.Spec.(deploy.ENISpec)
	if !ok || !isENI {
		return "", nil
	}
	sub := e.Subnet
	if sub == "" {
		sub = p.Refs.Subnets[e.AZ]
	}
	user, err := ac.AddressUser(ctx, sub, e.IP)
	if err != nil {
		return "", fmt.Errorf("node %d: who uses %s: %w", e.Node, e.IP, err)
	}
	if user == "" {
		return "", nil
	}
	return fmt.Sprintf("%s is already the address of %s, which is not tagged %s=%s, %s=%d: tag it for the node, free the address, or change nodes[].ip",
		e.IP, user, p.Desired.EnsembleTag, p.Desired.Ensemble, p.Desired.NodeTag, e.Node), nil
}

// CheckIP says why ip cannot be a fixed ENI address in sn, or "". AWS
// reserves the first four and the last address of every subnet:
// https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html
func CheckIP(sn Subnet, az string, ip netip.Addr) string {
	if sn.AZ != az {
		return fmt.Sprintf("subnet %s is in %s, not %s", sn.ID, sn.AZ, az)
	}
	if !sn.CIDR.Contains(ip) {
		return fmt.Sprintf("%s is not inside subnet %s (%s)", ip, sn.ID, sn.CIDR)
	}
	first := sn.CIDR.Masked().Addr()
	last := first
	for range 1<<(32-sn.CIDR.Bits()) - 1 {
		last = last.Next()
	}
	reserved := []netip.Addr{first, first.Next(), first.Next().Next(), first.Next().Next().Next(), last}
	if slices.Contains(reserved, ip) {
		return fmt.Sprintf("%s is reserved by AWS in subnet %s (%s): the first four and the last address", ip, sn.ID, sn.CIDR)
	}
	return ""
}

// resolve replaces the names in r's spec by ids known so far and fills
// looked-up subnets.
func (p *Plan) resolve(r deploy.Resource) deploy.Resource {
	switch s := r.Spec.(type) {
	case deploy.ENISpec:
		if s.Subnet == "" {
			s.Subnet = p.Refs.Subnets[s.AZ]
		}
		s.SecurityGroup = p.Refs.ID(deploy.KindSecurityGroup, s.SecurityGroup)
		r.Spec = s
	case deploy.TemplateSpec:
		s.SecurityGroup = p.Refs.ID(deploy.KindSecurityGroup, s.SecurityGroup)
		r.Spec = s
	case deploy.GroupSpec:
		if s.Subnet == "" {
			s.Subnet = p.Refs.Subnets[s.AZ]
		}
		r.Spec = s
	case deploy.SecurityGroupSpec:
		s.Ingress = slices.Clone(s.Ingress)
		r.Spec = s
	}
	return r
}

// vpcKey carries the VPC the security groups go into to Cloud.Create: it
// is found by the plan (the nodes' subnets'), not part of any spec.
type vpcKey struct{}

// WithVPC returns ctx carrying the VPC id for security group creation.
func WithVPC(ctx context.Context, vpc string) context.Context {
	return context.WithValue(ctx, vpcKey{}, vpc)
}

// VPCFrom returns the VPC id WithVPC stored.
func VPCFrom(ctx context.Context) string { s, _ := ctx.Value(vpcKey{}).(string); return s }

// Apply carries out the plan's creates and updates in order. On error it
// stops: what was made is tagged and the next Make finds it.
func Apply(ctx context.Context, c Cloud, p *Plan, log *slog.Logger) (changed int, err error) {
	ctx = WithVPC(ctx, p.Refs.VPC)
	if cs := p.Conflicts(); len(cs) > 0 {
		var msgs []string
		for _, s := range cs {
			msgs = append(msgs, fmt.Sprintf("%s (%s): %s", s.Resource, s.ID(), strings.Join(s.Why, "; ")))
		}
		return 0, fmt.Errorf("%d resource(s) differ in ways up does not change, fix or remove them first:\n  %s", len(cs), strings.Join(msgs, "\n  "))
	}
	for i := range p.Steps {
		st := &p.Steps[i]
		if st.Action == OK {
			continue
		}
		if err := ctx.Err(); err != nil {
			return changed, err
		}
		r := p.resolve(st.Resource)
		start := time.Now()
		switch st.Action {
		case Create:
			tags := maps.Clone(p.Desired.Tags)
			tags[deploy.TagResource] = r.Name
			if n, ok := nodeOf(r); ok {
				tags[p.Desired.NodeTag] = fmt.Sprint(n)
			}
			id, err := c.Create(ctx, r, tags)
			if err != nil {
				return changed, fmt.Errorf("create %s: %w", r, err)
			}
			p.Refs.IDs[key(r.Kind, r.Name)] = id
			st.Existing = &Existing{Kind: r.Kind, Name: r.Name, ID: id, Spec: r.Spec, Tags: tags, Managed: true}
			log.Info("created", "step", r.String(), "id", id, "duration", time.Since(start))
		case Update:
			if err := c.Update(ctx, r, *st.Existing); err != nil {
				return changed, fmt.Errorf("update %s %s: %w", r, st.Existing.ID, err)
			}
			log.Info("updated", "step", r.String(), "id", st.Existing.ID, "why", strings.Join(st.Why, "; "), "duration", time.Since(start))
		}
		changed++
	}
	return changed, nil
}

func nodeOf(r deploy.Resource) (int, bool) {
	switch s := r.Spec.(type) {
	case deploy.ENISpec:
		return s.Node, true
	case deploy.VolumeSpec:
		return s.Node, true
	}
	return 0, false
}

// Print writes the plan as a table: action, kind, name, id, and why.
func Print(w io.Writer, p *Plan) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tKIND\tNAME\tID\tDETAIL")
	for _, s := range p.Steps {
		id := s.ID()
		if id == "" {
			id = "-"
		}
		detail := strings.Join(s.Why, "; ")
		if s.Action == Create {
			detail = Describe(p.resolve(s.Resource))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Action, s.Resource.Kind, s.Resource.Name, id, detail)
	}
	for _, e := range p.Extra {
		fmt.Fprintf(tw, "extra\t%s\t%s\t%s\tnot in the config: up leaves it; delete it once nothing needs it (zkaas down removes everything)\n", e.Kind, e.Name, e.ID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d to change, %d conflicting, %d unchanged\n", p.Changes(), len(p.Conflicts()), len(p.Steps)-p.Changes()-len(p.Conflicts()))
	return err
}

// Describe is a one-line summary of what a resource will be.
func Describe(r deploy.Resource) string {
	orDash := func(s string) string {
		if s == "" {
			return "(new)"
		}
		return s
	}
	switch s := r.Spec.(type) {
	case deploy.SecurityGroupSpec:
		var rules []string
		for _, x := range s.Ingress {
			rules = append(rules, x.String())
		}
		if len(rules) == 0 {
			return s.GroupName + ", no ingress"
		}
		return s.GroupName + ": " + strings.Join(rules, ", ")
	case deploy.ENISpec:
		return fmt.Sprintf("%s in %s (%s), group %s", s.IP, orDash(s.Subnet), s.AZ, orDash(s.SecurityGroup))
	case deploy.VolumeSpec:
		d := fmt.Sprintf("%s %d GiB in %s", s.Type, s.SizeGiB, s.AZ)
		if s.IOPS > 0 {
			d += fmt.Sprintf(", %d IOPS", s.IOPS)
		}
		if s.Throughput > 0 {
			d += fmt.Sprintf(", %d MiB/s", s.Throughput)
		}
		if s.Encrypted {
			d += ", encrypted"
			if s.KMSKeyID != "" {
				d += " with " + s.KMSKeyID
			}
		}
		return d
	case deploy.RoleSpec:
		return "assumed by EC2, inline policy " + s.PolicyName
	case deploy.ProfileSpec:
		return "role " + s.Role
	case deploy.TemplateSpec:
		d := fmt.Sprintf("%s %s, profile %s, IMDSv2 required, hop limit %d, user data %d bytes", s.ImageID, s.InstanceType, s.Profile, s.HopLimit, len(s.UserData))
		if s.Node > 0 {
			d += fmt.Sprintf(", node %d pinned", s.Node)
		}
		return d
	case deploy.GroupSpec:
		return fmt.Sprintf("%d in %s (%s), template %s, grace %s, hook %s (heartbeat %s), suspended %s",
			s.Size, orDash(s.Subnet), s.AZ, s.Template, s.Grace, s.Hook.Name, s.Hook.Heartbeat, strings.Join(s.Suspended, ","))
	case deploy.SnapshotPolicySpec:
		return fmt.Sprintf("daily, keep %d, volumes tagged %s, role %s", s.Retain, deploy.TagList(s.TargetTags), s.ExecutionRole)
	}
	return ""
}

package plan_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/internal/golden"
	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/plan"
	"github.com/zkaas/zkaas/ops/plan/plantest"
)

var subnets = []plan.Subnet{
	{ID: "subnet-0aaaaaaaaaaaaaaaa", VPC: "vpc-1", AZ: "us-east-1a", CIDR: netip.MustParsePrefix("10.0.1.0/24")},
	{ID: "subnet-0bbbbbbbbbbbbbbbb", VPC: "vpc-1", AZ: "us-east-1b", CIDR: netip.MustParsePrefix("10.0.2.0/24")},
	{ID: "subnet-0cccccccccccccccc", VPC: "vpc-1", AZ: "us-east-1c", CIDR: netip.MustParsePrefix("10.0.3.0/24")},
}

func desired(t *testing.T, edit func(string) string) deploy.Desired {
	t.Helper()
	raw, err := os.ReadFile("testdata/ensemble.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		raw = []byte(edit(string(raw)))
	}
	cfg, _, err := ensemble.Parse("ensemble.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	d, err := deploy.For(cfg, raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func up(t *testing.T, ctx context.Context, c plan.Cloud, d deploy.Desired) (int, error) {
	t.Helper()
	p, err := plan.Make(ctx, c, d)
	if err != nil {
		return 0, err
	}
	return plan.Apply(ctx, c, p, slog.New(slog.DiscardHandler))
}

func print(t *testing.T, c plan.Cloud, d deploy.Desired) string {
	t.Helper()
	p, err := plan.Make(context.Background(), c, d)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := plan.Print(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPlanFromNothing(t *testing.T) {
	c := plantest.New(subnets...)
	golden.CheckNamed(t, "plan-empty", print(t, c, desired(t, nil)))
	if len(c.Calls) != 1 || c.Mutations != 0 {
		t.Errorf("plan made calls %v", c.Calls)
	}
}

func TestUpTwiceChangesNothing(t *testing.T) {
	c := plantest.New(subnets...)
	d := desired(t, nil)
	n, err := up(t, context.Background(), c, d)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(d.Resources) {
		t.Errorf("first up changed %d, want %d", n, len(d.Resources))
	}
	before := c.Mutations
	if n, err := up(t, context.Background(), c, d); err != nil || n != 0 {
		t.Errorf("second up changed %d, %v", n, err)
	}
	if c.Mutations != before {
		t.Errorf("second up mutated: %v", c.Calls)
	}
	golden.CheckNamed(t, "plan-converged", print(t, c, d))
	// Every resource is tagged with the ensemble and as zkaas's; ENIs and
	// volumes with their node.
	for _, e := range c.All() {
		if e.Tags["zkaas:ensemble"] != "prod-zk" || e.Tags[deploy.TagManagedBy] != deploy.ManagedBy || e.Tags[deploy.TagResource] != e.Name {
			t.Errorf("%s %s tags %v", e.Kind, e.ID, e.Tags)
		}
		if e.Kind.Data() && e.Tags["zkaas:node"] != strings.TrimPrefix(e.Name, "node-") {
			t.Errorf("%s %s node tag %v", e.Kind, e.ID, e.Tags)
		}
	}
}

// An up that fails or is cancelled midway resumes: the next up creates
// only what is missing, never a duplicate.
func TestUpResumes(t *testing.T) {
	for _, stop := range []int{1, 4, 7, 11} {
		for _, how := range []string{"fault", "cancel"} {
			t.Run(how, func(t *testing.T) {
				c := plantest.New(subnets...)
				d := desired(t, nil)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if how == "fault" {
					c.FailAfter = stop
				} else {
					c.Cancel, c.CancelAt = cancel, stop
				}
				_, err := up(t, ctx, c, d)
				if how == "fault" && !errors.Is(err, plantest.ErrInjected) || how == "cancel" && !errors.Is(err, context.Canceled) {
					t.Fatalf("interrupted up: %v", err)
				}
				if got := len(c.All()); got != stop {
					t.Fatalf("%d resources after stopping at %d", got, stop)
				}
				c.FailAfter, c.Cancel = 0, nil
				n, err := up(t, context.Background(), c, d)
				if err != nil {
					t.Fatal(err)
				}
				if n != len(d.Resources)-stop {
					t.Errorf("resumed up changed %d, want %d", n, len(d.Resources)-stop)
				}
				for _, k := range deploy.Order {
					want := 0
					for _, r := range d.Resources {
						if r.Kind == k {
							want++
						}
					}
					if got := c.Count(k); got != want {
						t.Errorf("%d %s, want %d", got, k, want)
					}
				}
			})
		}
	}
}

func TestPlanUpdatesAndConflicts(t *testing.T) {
	c := plantest.New(subnets...)
	if _, err := up(t, context.Background(), c, desired(t, nil)); err != nil {
		t.Fatal(err)
	}
	// A new image and a larger volume are updates; a client CIDR added is
	// a rule to authorize.
	d := desired(t, func(s string) string {
		s = strings.Replace(s, "ami-0123456789abcdef0", "ami-0fedcba9876543210", 1)
		s = strings.Replace(s, "size_gib: 50", "size_gib: 60", 1)
		return strings.Replace(s, "cidrs: [10.0.0.0/16]", "cidrs: [10.0.0.0/16, 192.168.0.0/24]", 1)
	})
	golden.CheckNamed(t, "plan-update", print(t, c, d))
	if _, err := up(t, context.Background(), c, d); err != nil {
		t.Fatal(err)
	}
	if out := print(t, c, d); !strings.Contains(out, "0 to change") {
		t.Errorf("after the update:\n%s", out)
	}
	// Moving a node's IP cannot be done to an existing ENI: a conflict,
	// refused before any change.
	moved := desired(t, func(s string) string { return strings.Replace(s, "10.0.2.10", "10.0.2.20", 1) })
	before := c.Mutations
	_, err := up(t, context.Background(), c, moved)
	if err == nil || !strings.Contains(err.Error(), "network-interface node-2") || !strings.Contains(err.Error(), "ip 10.0.2.10, want 10.0.2.20") {
		t.Errorf("moved IP: %v", err)
	}
	if c.Mutations != before {
		t.Errorf("a conflicting plan mutated: %v", c.Calls[before:])
	}
}

func TestPlanSubnetProblems(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		want string
	}{
		{"no subnet holds the IP", func(s string) string { return strings.Replace(s, "10.0.3.10", "10.0.9.10", 1) },
			"node 3: no subnet of us-east-1c holds 10.0.9.10"},
		{"named subnet elsewhere", func(s string) string { return strings.Replace(s, "10.0.1.10", "10.0.2.11", 1) },
			"node 1: 10.0.2.11 is not inside subnet subnet-0aaaaaaaaaaaaaaaa (10.0.1.0/24)"},
		{"reserved address", func(s string) string { return strings.Replace(s, "10.0.2.10", "10.0.2.1", 1) },
			"node 2: 10.0.2.1 is reserved by AWS"},
		{"unknown subnet", func(s string) string {
			return strings.Replace(s, "subnet-0aaaaaaaaaaaaaaaa", "subnet-0ddddddddddddddddd", 1)
		},
			""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, _ := os.ReadFile("testdata/ensemble.yaml")
			cfg, _, err := ensemble.Parse("e", []byte(tt.edit(string(raw))))
			if err != nil {
				if tt.want == "" {
					return // refused by the schema already
				}
				t.Fatal(err)
			}
			d, err := deploy.For(cfg, raw)
			if err != nil {
				t.Fatal(err)
			}
			c := plantest.New(subnets...)
			_, err = plan.Make(context.Background(), c, d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
			if len(c.Calls) != 0 {
				t.Errorf("calls before the subnets were known: %v", c.Calls)
			}
		})
	}
}

func TestPlanOtherVPC(t *testing.T) {
	other := append([]plan.Subnet(nil), subnets...)
	other[2].VPC = "vpc-2"
	_, err := plan.Make(context.Background(), plantest.New(other...), desired(t, nil))
	if err == nil || !strings.Contains(err.Error(), "an ensemble lives in one VPC") {
		t.Errorf("got %v", err)
	}
}

// A node's IP held by an interface zkaas did not tag for the node is a
// conflict at plan time: up refuses before making anything.
func TestPlanAddressTaken(t *testing.T) {
	c := plantest.New(subnets...)
	c.UsedIPs = map[netip.Addr]string{netip.MustParseAddr("10.0.2.10"): "eni-foreign"}
	d := desired(t, nil)
	p, err := plan.Make(context.Background(), c, d)
	if err != nil {
		t.Fatal(err)
	}
	if cs := p.Conflicts(); len(cs) != 1 || cs[0].Resource.Name != "node-2" || !strings.Contains(cs[0].Why[0], "10.0.2.10 is already the address of eni-foreign") {
		t.Errorf("conflicts %+v", cs)
	}
	if _, err := plan.Apply(context.Background(), c, p, slog.New(slog.DiscardHandler)); err == nil || c.Mutations != 0 {
		t.Errorf("apply with a taken address: %v, %d mutations", err, c.Mutations)
	}
}

// Switching the group layout leaves the old groups as extra, never
// deleted by up.
func TestPlanExtra(t *testing.T) {
	c := plantest.New(subnets...)
	if _, err := up(t, context.Background(), c, desired(t, nil)); err != nil {
		t.Fatal(err)
	}
	d := desired(t, func(s string) string { return s + "  groups: per_node\n" })
	p, err := plan.Make(context.Background(), c, d)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range p.Extra {
		extra = append(extra, string(e.Kind)+" "+e.Name)
	}
	want := "launch-template zkaas-prod-zk,auto-scaling-group zkaas-prod-zk-us-east-1a,auto-scaling-group zkaas-prod-zk-us-east-1b,auto-scaling-group zkaas-prod-zk-us-east-1c"
	if strings.Join(extra, ",") != want {
		t.Errorf("extra %v", extra)
	}
	before := len(c.All())
	if _, err := plan.Apply(context.Background(), c, p, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if len(c.All()) != before+6 {
		t.Errorf("%d resources after, %d before: want the 3 templates and 3 groups added, nothing deleted", len(c.All()), before)
	}
	golden.CheckNamed(t, "plan-extra", print(t, c, d))
}

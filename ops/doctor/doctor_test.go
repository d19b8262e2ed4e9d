package doctor

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/inventory"
	"github.com/zkaas/zkaas/ops/zk"
)

// healthy is a 3-node ensemble with nothing wrong.
func healthy(t *testing.T) Input {
	t.Helper()
	cfg, _, err := ensemble.Load("../plan/testdata/ensemble.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Config: cfg, Stats: map[netip.AddrPort]zk.Stat{}, Errs: map[netip.AddrPort]error{}}
	inv := inventory.Snapshot{
		Instances: map[string]inventory.Instance{}, Subnets: map[string]netip.Prefix{},
		SecurityGroups: map[string]inventory.SecurityGroup{"sg-nodes": {ID: "sg-nodes", Ingress: []inventory.Rule{
			{From: 2181, To: 2181, CIDR: "10.0.0.0/16"}, {From: 2888, To: 2888, GroupID: "sg-nodes"}, {From: 3888, To: 3888, GroupID: "sg-nodes"}}}},
		Templates: []inventory.Template{{ID: "lt-1", Name: "zkaas-prod-zk", InstanceType: "m6i.large", HTTPTokens: "required", HopLimit: 1}},
		MaxENIs:   map[string]int{"m6i.large": 3},
		DryRun:    map[string]string{"CreateNetworkInterface": "", "CreateVolume": ""},
	}
	for _, n := range cfg.Nodes {
		id := map[int]string{1: "a", 2: "b", 3: "c"}[n.ID]
		inst := "i-" + id
		inv.ENIs = append(inv.ENIs, inventory.ENI{ID: "eni-" + id, Node: n.ID, AZ: n.AZ, IP: n.IP, Subnet: "subnet-" + id, Groups: []string{"sg-nodes"}, Instance: inst})
		inv.Volumes = append(inv.Volumes, inventory.Volume{ID: "vol-" + id, Node: n.ID, AZ: n.AZ, Instance: inst})
		inv.Instances[inst] = inventory.Instance{ID: inst, State: "running", Tags: map[string]string{"zkaas:ensemble": "prod-zk"}}
		inv.Subnets["subnet-"+id] = netip.PrefixFrom(n.IP, 24).Masked()
		inv.Groups = append(inv.Groups, inventory.Group{Name: "zkaas-prod-zk-" + n.AZ, Spec: deploy.GroupSpec{Grace: 25 * time.Minute, Suspended: []string{"AZRebalance"}}})
		mode := "follower"
		if n.ID == 2 {
			mode = "leader"
		}
		in.Stats[netip.AddrPortFrom(n.IP, 2181)] = zk.Stat{Mode: mode, Zxid: 0x100000010}
	}
	in.Inv = inv
	return in
}

// TestFreshEnsemble: right after the election, before any write, srvr
// shows the leader at 1:0 and the followers at 0:0 (ZooKeeper 3.8 on the
// local cloud): they are caught up.
func TestFreshEnsemble(t *testing.T) {
	in := healthy(t)
	for a, st := range in.Stats {
		st.Zxid = 0
		if st.Mode == "leader" {
			st.Zxid = 0x100000000
		}
		in.Stats[a] = st
	}
	for _, f := range Run(in) {
		if !f.OK {
			t.Errorf("%+v", f)
		}
	}
}

func TestHealthy(t *testing.T) {
	fs := Run(healthy(t))
	for _, f := range fs {
		if !f.OK {
			t.Errorf("%+v", f)
		}
	}
	seen := map[string]bool{}
	for _, f := range fs {
		seen[f.Check] = true
	}
	for _, c := range Checks {
		if !seen[c.Name] {
			t.Errorf("check %s reported nothing on a healthy ensemble", c.Name)
		}
	}
}

func TestBroken(t *testing.T) {
	tests := []struct {
		check string
		brk   func(in *Input)
		want  string // in Detail
	}{
		{"slots", func(in *Input) {
			in.Inv.ENIs = append(in.Inv.ENIs, inventory.ENI{ID: "eni-x", Node: 1, AZ: "us-east-1a", IP: netip.MustParseAddr("10.0.1.11"), Groups: []string{"sg-nodes"}})
		}, "2 ENIs tagged"},
		{"slots", func(in *Input) { in.Inv.Volumes = in.Inv.Volumes[1:] }, "0 volumes tagged"},
		{"slots", func(in *Input) { in.Inv.Volumes[2].AZ = "us-east-1a" }, "volume vol-c in us-east-1a"},
		{"slots", func(in *Input) { in.Inv.ENIs[0].IP = netip.MustParseAddr("10.0.1.99") }, "ENI eni-a has 10.0.1.99"},
		{"subnet", func(in *Input) { in.Inv.Subnets["subnet-a"] = netip.MustParsePrefix("10.0.9.0/24") }, "outside subnet subnet-a"},
		{"foreign-holder", func(in *Input) { in.Inv.Instances["i-b"] = inventory.Instance{ID: "i-b", Tags: map[string]string{}} }, "ENI eni-b is attached to i-b"},
		{"instance-type", func(in *Input) { in.Inv.MaxENIs["m6i.large"] = 1 }, "holds 1 network interface"},
		{"grace", func(in *Input) { in.Inv.Groups[0].Spec.Grace = 5 * time.Minute }, "grace 5m0s < claim.deadline"},
		{"az-rebalance", func(in *Input) { in.Inv.Groups[1].Spec.Suspended = nil }, "AZRebalance is not suspended"},
		{"imdsv2", func(in *Input) { in.Inv.Templates[0].HTTPTokens = "optional" }, "IMDSv2 is optional"},
		{"imdsv2", func(in *Input) { in.Inv.Templates[0].HopLimit = 2 }, "hop limit 2"},
		{"quorum-ports", func(in *Input) {
			in.Inv.SecurityGroups["sg-nodes"] = inventory.SecurityGroup{ID: "sg-nodes", Ingress: []inventory.Rule{{From: 2888, To: 2888, GroupID: "sg-nodes"}}}
		}, "do not admit tcp/3888 from node"},
		{"permissions", func(in *Input) { in.Inv.DryRun["CreateVolume"] = "UnauthorizedOperation" }, "UnauthorizedOperation"},
		{"zookeeper", func(in *Input) { in.Stats = nil }, "not asked"},
		{"zookeeper", func(in *Input) {
			for a, s := range in.Stats {
				s.Mode = "follower"
				in.Stats[a] = s
			}
		}, "no leader"},
		{"zookeeper", func(in *Input) {
			// The leader (node 2) 0x2000 transactions into its epoch,
			// node 3 still in the one before.
			in.Stats[netip.MustParseAddrPort("10.0.2.10:2181")] = zk.Stat{Mode: "leader", Zxid: 0x100002000}
			in.Stats[netip.MustParseAddrPort("10.0.3.10:2181")] = zk.Stat{Mode: "follower", Zxid: 0x0000000ff}
		}, "behind"},
		{"zookeeper", func(in *Input) {
			in.Stats[netip.MustParseAddrPort("10.0.2.10:2181")] = zk.Stat{Mode: "leader", Zxid: 0x100001000}
		}, "behind"},
		{"zookeeper", func(in *Input) {
			a := netip.MustParseAddrPort("10.0.1.10:2181")
			delete(in.Stats, a)
			in.Errs[a] = errTest("connection refused")
		}, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.check+"/"+tt.want, func(t *testing.T) {
			in := healthy(t)
			tt.brk(&in)
			var failed []Finding
			for _, f := range Run(in) {
				if !f.OK {
					failed = append(failed, f)
				}
			}
			if len(failed) == 0 {
				t.Fatal("no check failed")
			}
			for _, f := range failed {
				if f.Check != tt.check {
					t.Errorf("another check failed: %+v", f)
				}
				if f.Fix == "" {
					t.Errorf("no fix: %+v", f)
				}
			}
			if !strings.Contains(failed[0].Detail, tt.want) {
				t.Errorf("detail %q, want %q", failed[0].Detail, tt.want)
			}
		})
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

// Package doctor is `zkaas doctor`: every check of an ensemble's AWS side
// and of its ZooKeeper servers, each with the fix when it fails. Pure: it
// reads an inventory snapshot and the servers' srvr answers.
package doctor

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/inventory"
	"github.com/zkaas/zkaas/ops/zk"
)

// Finding is one check's result on one subject.
type Finding struct {
	Check   string `json:"check"`
	Subject string `json:"subject,omitempty"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

// Input is what the checks read.
type Input struct {
	Config ensemble.Config
	Inv    inventory.Snapshot
	// Stats and Errs are the nodes' srvr answers by client address; nil
	// Stats means ZooKeeper was not asked (not reachable from here).
	Stats map[netip.AddrPort]zk.Stat
	Errs  map[netip.AddrPort]error
}

// Check is one named check.
type Check struct {
	Name string
	Run  func(in Input) []Finding
}

// Checks are every check, in the order printed.
var Checks = []Check{
	{"slots", slots},
	{"subnet", subnet},
	{"foreign-holder", foreignHolder},
	{"instance-type", instanceType},
	{"grace", grace},
	{"az-rebalance", azRebalance},
	{"imdsv2", imdsv2},
	{"quorum-ports", quorumPorts},
	{"metrics-ports", metricsPorts}, // metrics.go
	{"permissions", permissions},
	{"zookeeper", zookeeper},
}

// Run runs every check.
func Run(in Input) []Finding {
	var out []Finding
	for _, c := range Checks {
		for _, f := range c.Run(in) {
			f.Check = c.Name
			out = append(out, f)
		}
	}
	return out
}

// Failed counts the failed findings.
func Failed(fs []Finding) int {
	n := 0
	for _, f := range fs {
		if !f.OK {
			n++
		}
	}
	return n
}

func ok(subject, detail string) Finding { return Finding{Subject: subject, OK: true, Detail: detail} }
func bad(subject, detail, fix string) Finding {
	return Finding{Subject: subject, Detail: detail, Fix: fix}
}

func node(n int) string { return fmt.Sprintf("node %d", n) }

// slots: each node has exactly one ENI and one volume, both in its AZ.
func slots(in Input) []Finding {
	var out []Finding
	for _, n := range in.Config.Nodes {
		var enis []inventory.ENI
		var vols []inventory.Volume
		for _, e := range in.Inv.ENIs {
			if e.Node == n.ID {
				enis = append(enis, e)
			}
		}
		for _, v := range in.Inv.Volumes {
			if v.Node == n.ID {
				vols = append(vols, v)
			}
		}
		switch {
		case len(enis) != 1:
			out = append(out, bad(node(n.ID), fmt.Sprintf("%d ENIs tagged for it", len(enis)),
				"run `zkaas up` to create a missing one; delete or untag the extra ones (keep the one with the node's IP)"))
		case len(vols) != 1:
			out = append(out, bad(node(n.ID), fmt.Sprintf("%d volumes tagged for it", len(vols)),
				"run `zkaas up` to create a missing one; untag extra volumes only after checking which one holds the node's data (zkaas:initialized)"))
		case enis[0].AZ != n.AZ || vols[0].AZ != n.AZ:
			out = append(out, bad(node(n.ID), fmt.Sprintf("ENI %s in %s, volume %s in %s, config says %s", enis[0].ID, enis[0].AZ, vols[0].ID, vols[0].AZ, n.AZ),
				"a node's ENI and volume must be in its AZ: snapshot the volume and restore it in "+n.AZ+", tagged for the node"))
		case enis[0].IP != n.IP:
			out = append(out, bad(node(n.ID), fmt.Sprintf("ENI %s has %s, config says %s", enis[0].ID, enis[0].IP, n.IP),
				"fix nodes[].ip in the config, or untag that ENI and run `zkaas up`"))
		default:
			out = append(out, ok(node(n.ID), fmt.Sprintf("ENI %s, volume %s in %s", enis[0].ID, vols[0].ID, n.AZ)))
		}
	}
	return out
}

// subnet: each ENI's IP is inside its subnet's CIDR and not AWS-reserved.
func subnet(in Input) []Finding {
	var out []Finding
	for _, e := range in.Inv.ENIs {
		cidr, known := in.Inv.Subnets[e.Subnet]
		if !known {
			continue
		}
		if !cidr.Contains(e.IP) {
			out = append(out, bad(node(e.Node), fmt.Sprintf("%s is outside subnet %s (%s)", e.IP, e.Subnet, cidr), "recreate the ENI in the subnet that holds its IP"))
			continue
		}
		out = append(out, ok(node(e.Node), fmt.Sprintf("%s in %s (%s)", e.IP, e.Subnet, cidr)))
	}
	return out
}

// foreignHolder: no slot resource is attached to an instance outside the
// ensemble (one without the ensemble tag its groups propagate).
func foreignHolder(in Input) []Finding {
	var out []Finding
	tag := in.Config.Claim.Tags.Ensemble
	check := func(n int, what, id, holder string) {
		if holder == "" {
			return
		}
		i, known := in.Inv.Instances[holder]
		if known && i.Tags[tag] != in.Config.Ensemble {
			out = append(out, bad(node(n), fmt.Sprintf("%s %s is attached to %s, which is not an instance of ensemble %s", what, id, holder, in.Config.Ensemble),
				fmt.Sprintf("detach it (aws ec2 detach-%s) so the node's next instance can claim it", map[string]string{"ENI": "network-interface", "volume": "volume"}[what])))
		}
	}
	for _, e := range in.Inv.ENIs {
		check(e.Node, "ENI", e.ID, e.Instance)
	}
	for _, v := range in.Inv.Volumes {
		check(v.Node, "volume", v.ID, v.Instance)
	}
	if len(out) == 0 {
		out = append(out, ok("", "every attached ENI and volume is held by an ensemble instance"))
	}
	return out
}

// instanceType: the type holds the primary interface and the node's ENI.
func instanceType(in Input) []Finding {
	var out []Finding
	types := map[string]bool{}
	if in.Config.Deploy.InstanceType != "" {
		types[in.Config.Deploy.InstanceType] = true
	}
	for _, t := range in.Inv.Templates {
		types[t.InstanceType] = true
	}
	for _, t := range slices.Sorted(mapsKeys(types)) {
		max, known := in.Inv.MaxENIs[t]
		switch {
		case !known:
			out = append(out, bad(t, "unknown network interface limit", "check the type exists in the region (aws ec2 describe-instance-types)"))
		case max < 2:
			out = append(out, bad(t, fmt.Sprintf("holds %d network interface", max), "choose a type with at least 2 network interfaces (deploy.instance_type) and run `zkaas up`"))
		default:
			out = append(out, ok(t, fmt.Sprintf("holds %d network interfaces", max)))
		}
	}
	return out
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// grace: the health check grace period outlasts a boot's own bounds.
func grace(in Input) []Finding {
	var out []Finding
	min := in.Config.Claim.Deadline.D() + in.Config.Health.ReadyTimeout.D()
	for _, g := range in.Inv.Groups {
		if g.Spec.Grace < min {
			out = append(out, bad(g.Name, fmt.Sprintf("grace %s < claim.deadline + health.ready_timeout = %s", g.Spec.Grace, min),
				fmt.Sprintf("run `zkaas up` (sets %s), or aws autoscaling update-auto-scaling-group --health-check-grace-period", min+deploy.Margin)))
		} else {
			out = append(out, ok(g.Name, "grace "+g.Spec.Grace.String()))
		}
	}
	return out
}

// azRebalance: suspended on every group.
func azRebalance(in Input) []Finding {
	var out []Finding
	for _, g := range in.Inv.Groups {
		if !slices.Contains(g.Spec.Suspended, "AZRebalance") {
			out = append(out, bad(g.Name, "AZRebalance is not suspended: the group may terminate a node to even out AZs",
				"aws autoscaling suspend-processes --auto-scaling-group-name "+g.Name+" --scaling-processes AZRebalance (or `zkaas up`)"))
		} else {
			out = append(out, ok(g.Name, "AZRebalance suspended"))
		}
	}
	return out
}

// imdsv2: every template requires IMDSv2 tokens with hop limit 1.
func imdsv2(in Input) []Finding {
	var out []Finding
	for _, t := range in.Inv.Templates {
		switch {
		case t.HTTPTokens != "required":
			out = append(out, bad(t.Name, "IMDSv2 is optional: IMDSv1 hands the role's credentials to any SSRF", "run `zkaas up` (a new template version with HttpTokens=required)"))
		case t.HopLimit != 1:
			out = append(out, bad(t.Name, fmt.Sprintf("hop limit %d: containers on the instance reach the role's credentials", t.HopLimit), "run `zkaas up` (hop limit 1)"))
		default:
			out = append(out, ok(t.Name, "IMDSv2 required, hop limit 1"))
		}
	}
	return out
}

// quorumPorts: every node's ENI admits the quorum and election ports from
// every other node's ENI.
func quorumPorts(in Input) []Finding {
	var out []Finding
	z := in.Config.ZooKeeper
	for _, dst := range in.Inv.ENIs {
		var missing []string
		for _, src := range in.Inv.ENIs {
			if src.ID == dst.ID {
				continue
			}
			for _, port := range []int{z.QuorumPort, z.ElectionPort} {
				if !admits(in, dst, port, src.IP, src.Groups) {
					missing = append(missing, fmt.Sprintf("tcp/%d from node %d", port, src.Node))
				}
			}
		}
		if len(missing) > 0 {
			out = append(out, bad(node(dst.Node), "its ENI's security groups do not admit "+strings.Join(missing, ", "),
				"run `zkaas up` (the nodes' group admits the quorum and election ports from itself), and keep every node's ENI in that group"))
		} else {
			out = append(out, ok(node(dst.Node), "quorum and election ports open from every peer"))
		}
	}
	return out
}

// admits reports whether one of eni's security groups admits port from
// the address ip or from a member of one of groups.
func admits(in Input, eni inventory.ENI, port int, ip netip.Addr, groups []string) bool {
	for _, g := range eni.Groups {
		if in.Inv.SecurityGroups[g].Admits(port, ip, groups) {
			return true
		}
	}
	return false
}

// permissions: what EC2's DryRun said about the operator's own calls.
func permissions(in Input) []Finding {
	var out []Finding
	for _, a := range slices.Sorted(mapsKeys(boolKeys(in.Inv.DryRun))) {
		if msg := in.Inv.DryRun[a]; msg != "" {
			out = append(out, bad(a, msg, "grant ec2:"+a+" to the identity running zkaas (its policy or permissions boundary)"))
		} else {
			out = append(out, ok(a, "allowed (DryRun)"))
		}
	}
	return out
}

func boolKeys(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// zookeeper: one leader, every other node a follower at the leader's zxid
// epoch and not far behind.
func zookeeper(in Input) []Finding {
	if in.Stats == nil {
		return []Finding{bad("", "not asked: the nodes' client ports are not reachable from here", "run zkaas doctor from inside the VPC (or with -zookeeper off to skip)")}
	}
	var out []Finding
	var leaders []int
	var leader zk.Stat
	byNode := map[int]zk.Stat{}
	for _, n := range in.Config.Nodes {
		a := in.Config.ZooKeeper.ProbeAddr(n.IP)
		st, answered := in.Stats[a]
		if !answered {
			msg := "no answer"
			if err := in.Errs[a]; err != nil {
				msg = err.Error()
			}
			out = append(out, bad(node(n.ID), msg, "see `zkaas status`; the node's journal: journalctl -u zkaas-firstboot -u zookeeper"))
			continue
		}
		byNode[n.ID] = st
		if st.Mode == "leader" {
			leaders = append(leaders, n.ID)
			leader = st
		}
	}
	switch len(leaders) {
	case 1:
		out = append(out, ok(node(leaders[0]), fmt.Sprintf("leader at zxid 0x%x", leader.Zxid)))
	case 0:
		return append(out, bad("", "no leader", "a majority of nodes must serve: start or replace the missing ones (zkaas status)"))
	default:
		return append(out, bad("", fmt.Sprintf("%d leaders: %v", len(leaders), leaders), "a split ensemble: check every node's zoo.cfg lists the same servers"))
	}
	for _, n := range in.Config.Nodes {
		st, answered := byNode[n.ID]
		if !answered || n.ID == leaders[0] {
			continue
		}
		switch {
		case st.Mode != "follower":
			out = append(out, bad(node(n.ID), "mode "+st.Mode, "wait for it to sync, or see its journal"))
		case zk.Lag(leader, st) > 1000:
			out = append(out, bad(node(n.ID), fmt.Sprintf("zxid 0x%x, leader 0x%x: behind", st.Zxid, leader.Zxid), "wait and re-run; a follower that stays behind needs its disk and network looked at"))
		default:
			out = append(out, ok(node(n.ID), fmt.Sprintf("follower at 0x%x", st.Zxid)))
		}
	}
	return out
}

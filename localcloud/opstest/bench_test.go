package opstest

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	gozk "github.com/go-zookeeper/zk"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/opsrig"
	"github.com/zkaas/zkaas/ops/roll"
)

// benchSpec is the benchmark's five nodes over the three AZs (1a: 2,
// 1b: 2, 1c: 1), so up makes a group of two in two of them.
var benchSpec = opsrig.Ensemble{
	Name: "opsbench",
	Nodes: []opsrig.Node{
		{ID: 1, AZ: "us-east-1a", IP: netip.MustParseAddr("10.0.1.20")},
		{ID: 2, AZ: "us-east-1a", IP: netip.MustParseAddr("10.0.1.21")},
		{ID: 3, AZ: "us-east-1b", IP: netip.MustParseAddr("10.0.2.20")},
		{ID: 4, AZ: "us-east-1b", IP: netip.MustParseAddr("10.0.2.21")},
		{ID: 5, AZ: "us-east-1c", IP: netip.MustParseAddr("10.0.3.20")},
	},
	ClaimDeadline: 20 * time.Second,
	Snapshots:     true,
}

// BenchmarkFiveNodeRoll (machines, real ZooKeeper, the built zkaas
// binary): a 5-node ensemble made by `zkaas up` from nothing, then rolled
// by `zkaas roll -image` to a second registered image while a client
// writes and a monitor samples every node's srvr every 200 ms. Reported:
//
//   - up_s and up_api_calls: `zkaas up` from nothing on the local cloud
//     (EC2's scaled-down latency model, opsrig.Latency), wall time and the
//     EC2, Auto Scaling, IAM and DLM calls the operator made (counted by
//     its access key at the endpoints, the SDK's retries included);
//   - status_ms: `zkaas status` on the five serving nodes (the median of
//     five runs: its AWS reads and every node's srvr and mntr);
//   - replace_floor_s: the replace floor, measured in the same run just
//     before the roll: one follower's instance terminated in its group
//     without decrementing (as roll does), with nothing gating it, until
//     a new instance holds the node's ENI and the whole ensemble is
//     healthy by roll's own test (roll.Health: every node serves, one
//     leader, followers caught up), polled every 200 ms. That is a roll
//     step without roll: the group's reaction, the machine's boot,
//     firstboot's claim and ZooKeeper's sync;
//   - roll_s and roll/5floor: the whole `zkaas roll` against five floors
//     (goal ≤ 1.3). What is over is roll's own gating — its health checks
//     before each step, its 5 s poll of the replacement — and the leader
//     step's election, which a follower's floor does not have;
//   - lost_writes: acknowledged writes not found after the roll (goal 0);
//     acked_writes for scale;
//   - no_quorum: moments (runs of samples) with fewer than three of the
//     five nodes answering at all (goal 0: roll takes one at a time);
//     max_down, the most nodes down at once;
//   - elections: how far the leader's epoch moved during the roll (goal 1:
//     only the leader-last step elects); no_leader_s, the time without a
//     leader in all (the election's window: writes wait, nothing lost).
func BenchmarkFiveNodeRoll(b *testing.B) {
	var figs []rollFigures
	for range b.N {
		figs = append(figs, measureRoll(b))
	}
	med := func(f func(rollFigures) float64) float64 {
		vs := make([]float64, len(figs))
		for i, x := range figs {
			vs[i] = f(x)
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	worst := func(f func(rollFigures) float64) float64 {
		var v float64
		for _, x := range figs {
			v = max(v, f(x))
		}
		return v
	}
	b.ReportMetric(med(func(f rollFigures) float64 { return f.up.Seconds() }), "up_s")
	b.ReportMetric(med(func(f rollFigures) float64 { return float64(f.upCalls) }), "up_api_calls")
	b.ReportMetric(med(func(f rollFigures) float64 { return float64(f.status.Milliseconds()) }), "status_ms")
	b.ReportMetric(med(func(f rollFigures) float64 { return f.floor.Seconds() }), "replace_floor_s")
	b.ReportMetric(med(func(f rollFigures) float64 { return f.roll.Seconds() }), "roll_s")
	b.ReportMetric(med(func(f rollFigures) float64 { return f.roll.Seconds() / (5 * f.floor.Seconds()) }), "roll/5floor")
	b.ReportMetric(worst(func(f rollFigures) float64 { return float64(f.writer.Acked) }), "acked_writes")
	b.ReportMetric(worst(func(f rollFigures) float64 { return float64(len(f.writer.Lost)) }), "lost_writes")
	b.ReportMetric(worst(func(f rollFigures) float64 { return float64(len(f.writer.Failed)) }), "failed_writes")
	b.ReportMetric(worst(func(f rollFigures) float64 { return float64(f.monitor.NoQuorum) }), "no_quorum")
	b.ReportMetric(worst(func(f rollFigures) float64 { return float64(f.monitor.MaxDown) }), "max_down")
	b.ReportMetric(worst(func(f rollFigures) float64 { return float64(f.monitor.Elections) }), "elections")
	b.ReportMetric(med(func(f rollFigures) float64 { return f.monitor.NoLeader.Seconds() }), "no_leader_s")
	b.ReportMetric(0, "ns/op")
}

// replacedLine is roll's log line for a step done, with its duration.
var replacedLine = regexp.MustCompile(`step="node \d+" duration=\S+`)

// rollFigures are one run's.
type rollFigures struct {
	up      time.Duration
	upCalls int
	status  time.Duration
	floor   time.Duration
	roll    time.Duration
	writer  opsrig.WriterReport
	monitor opsrig.MonitorReport
}

func measureRoll(b *testing.B) rollFigures {
	b.Helper()
	// Closed at the end of each run, not the benchmark's: one run's
	// machines at a time on the host.
	cloud, err := opsrig.NewCloud(b.Context(), opsrig.CloudOptions{RootFS: sharedImage(b).RootFS, Log: cloudLog()})
	if err != nil {
		b.Fatal(err)
	}
	journals := &runCleanup{TB: b}
	defer func() {
		journals.run()
		if err := cloud.Close(); err != nil {
			b.Errorf("close cloud: %v", err)
		}
	}()
	cloud.PrintJournalsOnFailure(journals)
	op := newOperator(b, cloud)
	ctx := b.Context()
	var f rollFigures
	spec := benchSpec
	ips := spec.IPs()
	if err := opsrig.CreateDLMRole(ctx, cloud); err != nil {
		b.Fatal(err)
	}
	cfg := op.config(b, "ensemble.yaml", spec.Config(defaultImage))

	r := op.must(b, "up", "-config", cfg)
	f.up = r.Took
	f.upCalls = operatorCalls(cloud)
	if _, err := opsrig.WaitServing(ctx, cloud, ips, 4*time.Minute); err != nil {
		b.Fatal(err)
	}
	rows := waitInService(b, op, cfg, spec)

	var took []time.Duration
	for range 5 {
		took = append(took, op.must(b, "status", "-config", cfg).Took)
	}
	slices.Sort(took)
	f.status = took[len(took)/2]

	seed, err := opsrig.Connect(cloud, opsrig.Servers(ips))
	if err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		p := fmt.Sprintf("/seed-%03d", i)
		if _, err := seed.Create(p, []byte(p), 0, gozk.WorldACL(gozk.PermAll)); err != nil {
			b.Fatal(err)
		}
	}
	seed.Close()

	f.floor = replaceFloor(b, cloud, spec, rows)
	waitInService(b, op, cfg, spec)

	img, err := cloud.Sim().RegisterImage(ec2sim.Image{Name: "zkaas-opsbench-next", Description: "the next bake"})
	if err != nil {
		b.Fatal(err)
	}
	cfg2 := op.config(b, "ensemble-next.yaml", spec.Config(img.ID))
	w, err := opsrig.StartWriter(cloud, opsrig.Servers(ips), "/roll", 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	m := opsrig.StartMonitor(cloud, ips)
	r = op.must(b, "roll", "-config", cfg2, "-image", img.ID)
	f.roll = r.Took
	f.monitor = m.Finish()
	if f.writer, err = w.Finish(); err != nil {
		b.Fatal(err)
	}
	steps := opsrig.RollSteps(r.Stderr)
	if len(steps) != 5 || !steps[4].Leader || slices.ContainsFunc(steps[:4], func(s opsrig.RollStep) bool { return s.Leader }) {
		b.Errorf("roll's steps %+v: want four followers, then the leader\n%s", steps, r)
	}
	b.Logf("up %s (%d calls), status %s, floor %s, roll %s; roll's steps: %s", f.up.Round(time.Millisecond), f.upCalls, f.status.Round(time.Millisecond),
		f.floor.Round(time.Millisecond), f.roll.Round(time.Millisecond), strings.Join(replacedLine.FindAllString(r.Stderr, -1), "; "))
	b.Logf("writer: %s", f.writer)
	b.Logf("monitor: %s", f.monitor)
	for _, d := range f.monitor.DownAt {
		b.Logf("more than one node down at once: %s", d)
	}
	op.must(b, "down", "-config", cfg2, "-delete-data", "-confirm", spec.Name)
	return f
}

// waitInService waits until every node's holder is InService (the launch
// hook completes once ZooKeeper serves: InService follows serving by a
// moment) and returns status's rows.
func waitInService(b *testing.B, op *operator, cfg string, spec opsrig.Ensemble) map[int]opsrig.StatusRow {
	b.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		rows, err := opsrig.ParseStatus(op.must(b, "status", "-config", cfg, "-o", "json"), spec.Name)
		if err != nil {
			b.Fatal(err)
		}
		if opsrig.AllInService(rows, spec.IDs()) {
			return rows
		}
		if time.Now().After(deadline) {
			b.Fatalf("not every node in service: %+v", rows)
		}
	}
}

// replaceFloor terminates one follower's instance in its group without
// decrementing, as roll's step does, and times it until a new instance
// holds the node's ENI and roll.Health passes — with no gate before and
// a 200 ms poll.
func replaceFloor(b *testing.B, cloud *localcloud.Cloud, spec opsrig.Ensemble, rows map[int]opsrig.StatusRow) time.Duration {
	b.Helper()
	ctx := b.Context()
	var node int
	for _, id := range spec.IDs() {
		if rows[id].Mode == "follower" {
			node = id
			break
		}
	}
	if node == 0 {
		b.Fatalf("no follower: %+v", rows)
	}
	old := rows[node].Holder
	a := newAWS(cloud)
	start := time.Now()
	if _, err := a.asg.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId: sdk.String(old), ShouldDecrementDesiredCapacity: sdk.Bool(false)}); err != nil {
		b.Fatal(err)
	}
	for deadline := start.Add(4 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("node %d not replaced within 4m", node)
		}
		out, err := a.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{rows[node].ENI}})
		if err != nil || len(out.NetworkInterfaces) != 1 {
			continue
		}
		att := out.NetworkInterfaces[0].Attachment
		if att == nil || att.Status != ec2types.AttachmentStatusAttached || sdk.ToString(att.InstanceId) == old {
			continue
		}
		stats, errs := opsrig.Probe(ctx, cloud, spec.IPs())
		if _, err := roll.Health(spec.IDs(), stats, errs, 1000); err == nil {
			took := time.Since(start)
			b.Logf("replace floor: node %d (%s → %s) in %s", node, old, sdk.ToString(att.InstanceId), took.Round(time.Millisecond))
			return took
		}
	}
}

// operatorCalls is how many calls the operator made so far, to every
// service, counted by its access key as the local cloud's endpoints see
// them (the SDK's retries included).
func operatorCalls(cloud *localcloud.Cloud) int {
	n := 0
	for _, calls := range []map[string]int{cloud.EC2Calls(opsrig.OperatorKey), cloud.ServiceCalls("autoscaling", opsrig.OperatorKey),
		cloud.ServiceCalls("iam", opsrig.OperatorKey), cloud.ServiceCalls("dlm", opsrig.OperatorKey)} {
		for _, c := range calls {
			n += c
		}
	}
	return n
}

// runCleanup holds the cleanups registered with it until run: a cloud's
// journals must be printed before it closes, at the end of a run.
type runCleanup struct {
	testing.TB
	fns []func()
}

func (r *runCleanup) Cleanup(f func()) { r.fns = append(r.fns, f) }

func (r *runCleanup) run() {
	for i := len(r.fns) - 1; i >= 0; i-- {
		r.fns[i]()
	}
}

package zkensemble

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/go-zookeeper/zk"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// binary is the zkaas-firstboot host mode runs, built once for the package.
var binary string

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // every test skips with its reason
		}
		dir, err := os.MkdirTemp("", "zkaas-ensemble-test-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		if binary, err = BuildFirstboot(context.Background(), "../..", dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() {
			if image.pinned != "" {
				os.RemoveAll(image.pinned)
			}
		}()
		return m.Run()
	}()
	if os.Geteuid() == 0 {
		// This run's only: other runs (another package's tests, the demo)
		// may be using the host at the same time.
		mine := fmt.Sprintf("%s%d-", localcloud.Prefix, os.Getpid())
		if entries, _ := os.ReadDir("/run/netns"); len(entries) > 0 {
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), mine) {
					fmt.Fprintln(os.Stderr, "leaked network namespace", e.Name())
					code = 1
				}
			}
		}
	}
	os.Exit(code)
}

// bootMode is how a test's instances run: the product as shipped, or the
// harness playing the boot.
type bootMode int

const (
	// onMachines: the baked image under systemd (localcloud.BootSystemd).
	onMachines bootMode = iota
	// inHostMode: the host's binaries, started by the harness; for the
	// fast low-level checks.
	inHostMode
)

// requireHostZooKeeper skips unless host mode can run a real ensemble.
func requireHostZooKeeper(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, veth, loop devices, mounts")
	}
	for _, jar := range Classpath {
		if _, err := os.Stat(jar); err != nil {
			t.Skipf("%s missing: go tool mage deps installs zookeeper and libslf4j-java", jar)
		}
	}
}

// latency is an EC2-like model scaled down so the scenarios stay quick.
var latency = ec2sim.Latency{
	RoundTrip: 5 * time.Millisecond, RoundTripJitter: 5 * time.Millisecond,
	ENIAttach: 300 * time.Millisecond, VolumeAttach: 600 * time.Millisecond,
	ENIDetach: 200 * time.Millisecond, VolumeDetach: 300 * time.Millisecond,
}

func nodes(layout ...string) []ensemble.Node {
	var out []ensemble.Node
	perAZ := map[string]int{}
	for i, az := range layout {
		perAZ[az]++
		third := map[string]int{"us-east-1a": 1, "us-east-1b": 2, "us-east-1c": 3}[az]
		out = append(out, ensemble.Node{ID: i + 1, AZ: az, IP: netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", third, 10+perAZ[az]))})
	}
	return out
}

// newCloud starts a local cloud whose instances run as mode says, closed
// when the test ends; machines' journals are printed if the test fails.
func newCloud(t *testing.T, mode bootMode, sim ec2sim.Options, stateDir string) *localcloud.Cloud {
	t.Helper()
	opts := localcloud.Options{StateDir: stateDir, Logger: quietLog, ShutdownTimeout: 30 * time.Second}
	switch mode {
	case onMachines:
		opts.RootFS, opts.Boot = sharedImage(t), localcloud.BootSystemd
	case inHostMode:
		requireHostZooKeeper(t)
		opts.PrivateDirs = PrivateDirs
	}
	sim.Latency, sim.Logger = latency, quietLog
	opts.EC2 = sim
	cloud, err := localcloud.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cloud.Close(); err != nil {
			t.Errorf("close cloud: %v", err)
		}
	})
	// After Close's cleanup, so it runs before it.
	cloud.PrintJournalsOnFailure(t)
	return cloud
}

// newEnsemble is an ensemble of ns with the default deadlines on a new
// cloud.
func newEnsemble(t *testing.T, mode bootMode, sim ec2sim.Options, ns []ensemble.Node) *Ensemble {
	return newEnsembleWith(t, mode, sim, ns, Options{})
}

// newEnsembleWith takes the deadline, the bootstrap window and the health
// timeouts (ReadyTimeout, RefusedHold) from eo.
func newEnsembleWith(t *testing.T, mode bootMode, sim ec2sim.Options, ns []ensemble.Node, eo Options) *Ensemble {
	t.Helper()
	cloud := newCloud(t, mode, sim, "")
	e, err := New(cloud, Options{Name: "it", Nodes: ns, Binary: binary, Deadline: eo.Deadline,
		BootstrapWindow: eo.BootstrapWindow, ReadyTimeout: eo.ReadyTimeout, RefusedHold: eo.RefusedHold, LogDir: t.TempDir(), Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, e)
		}
	})
	return e
}

// dumpLogs prints the tail of host-mode ZooKeeper logs (machines' are in
// their journals).
func dumpLogs(t *testing.T, e *Ensemble) {
	logs, _ := filepath.Glob(filepath.Join(e.opts.LogDir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		lines := strings.Split(string(b), "\n")
		t.Logf("=== %s (last lines)\n%s", l, strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
}

func writeZnodes(t *testing.T, e *Ensemble, ip string, n int) {
	t.Helper()
	if err := e.WriteZnodes(ip, n); err != nil {
		t.Fatal(err)
	}
}

func checkZnodes(t testing.TB, e *Ensemble, ip string, n int) {
	t.Helper()
	if err := e.CheckZnodes(ip, n); err != nil {
		t.Fatal(err)
	}
}

// TestRunTwice (host mode): zkaas-firstboot run on a fresh instance claims,
// configures the ENI, formats and mounts the blank volume and renders
// ZooKeeper's files; run again, it changes nothing.
func TestRunTwice(t *testing.T) {
	e := newEnsemble(t, inHostMode, ec2sim.Options{}, nodes("us-east-1a", "us-east-1b", "us-east-1c"))
	ctx := t.Context()
	inst, err := e.Cloud.Launch(ctx, "us-east-1b")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.InstallConfig(inst); err != nil {
		t.Fatal(err)
	}
	first, err := e.Firstboot(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if first.Claim.Node != 2 || first.Claim.IP.String() != "10.0.2.11" || first.Claim.Volume != e.Slot(2).Volume.ID {
		t.Fatalf("claimed %+v", first.Claim)
	}
	if !first.Disk.Formatted || len(first.Network.Changes) == 0 || !first.ZooKeeper.Initialize {
		t.Errorf("first run: formatted=%v network changes=%v initialize=%v (%s)", first.Disk.Formatted, first.Network.Changes, first.ZooKeeper.Initialize, first.ZooKeeper.Reason)
	}
	myid, err := os.ReadFile(inst.Path("/var/lib/zookeeper/data/myid"))
	if err != nil || strings.TrimSpace(string(myid)) != "2" {
		t.Errorf("myid on the volume = %q, %v", myid, err)
	}
	zoo, err := os.ReadFile(inst.Path("/etc/zkaas/zookeeper/zoo.cfg"))
	if err != nil || !strings.Contains(string(zoo), "clientPortAddress=10.0.2.11") {
		t.Errorf("zoo.cfg: %v\n%s", err, zoo)
	}
	if v, _ := e.Cloud.Sim().Volume(first.Claim.Volume); v.Tags["zkaas:initialized"] == "" {
		t.Errorf("volume not tagged initialized: %v", v.Tags)
	}
	second, err := e.Firstboot(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if second.Changes != 0 || !second.Claim.Reused || second.Disk.Formatted {
		t.Errorf("second run changed things: %d changes, network %v, disk %v, zookeeper %v", second.Changes, second.Network.Changes, second.Disk.Changes, second.ZooKeeper.Changed)
	}
}

// TestLifecycle is the promise, scenario by scenario on one ensemble of
// machines that its Auto Scaling groups (one per AZ) launch: three nodes
// boot at once and form a quorum; an instance reboot (systemd's own
// shutdown and boot) runs firstboot again with nothing to change and
// ZooKeeper comes back with its data by a diff; a node whose machine is
// killed with -9 is replaced by its group with an instance that comes back
// as itself with its data and syncs by diff; a replacement whose volume
// was lost starts empty and syncs from the leader; and without a quorum a
// replacement on a blank volume is refused — firstboot fails, ZooKeeper is
// never started, and the instance tells its group after the refusal hold.
// No instance is launched by the harness: every replacement is the
// group's.
func TestLifecycle(t *testing.T) {
	// A short deadline bounds the refused boot at the end, and a short
	// bootstrap window makes the ensemble "old" by then; a short refusal
	// hold lets the refused instance tell its group within the test.
	const (
		window      = 12 * time.Second
		refusedHold = 5 * time.Second
	)
	e := newEnsembleWith(t, onMachines, ec2sim.Options{}, nodes("us-east-1a", "us-east-1b", "us-east-1c"),
		Options{Deadline: window, BootstrapWindow: window, RefusedHold: refusedHold})
	created := time.Now()
	ctx := t.Context()

	// 1. Three groups, one per AZ, launch their instances at once. No
	// launch hook: the refusal at the end keeps its instance in service
	// (ReplaceUnhealthy suspended) to look at it, which an ABANDON of a
	// pending launch would not.
	g := newGroups(t, e, GroupOptions{})
	if _, err := g.WaitNodes(ctx, 3*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	checkOncePerSlot(t, e, groupNodes(t, g), 3)
	modes, err := e.WaitServing(ctx, 60*time.Second, 1, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quorum: %s", describe(modes))
	writeZnodes(t, e, "10.0.1.11", 1000)
	for _, ip := range []string{"10.0.1.11", "10.0.2.11", "10.0.3.11"} {
		checkZnodes(t, e, ip, 1000)
	}
	group := g.GroupOf(2)

	// 4. Reboot a follower's instance; what the ensemble takes meanwhile
	// reaches it by a diff when it is back.
	t.Run("reboot", func(t *testing.T) {
		n := e.Node(3)
		if modes[3] == "leader" {
			n = e.Node(2)
		}
		start := time.Now()
		if err := e.Cloud.Reboot(ctx, n.Instance); err != nil {
			t.Fatal(err)
		}
		writeMore(t, e, "10.0.1.11", "/while-rebooting", 50)
		// The second run keeps the claim, the network and ZooKeeper's
		// files as they are. Its one change is the volume's mount:
		// systemd's shutdown unmounted it (as on EC2), so firstboot
		// mounts it again, and counts that. (A rerun within one boot,
		// TestRunTwice, changes nothing at all.)
		rep := waitFirstbootReport(t, n.Instance)
		remount := len(rep.Disk.Changes) == 1 && strings.HasPrefix(rep.Disk.Changes[0], "mounted ") && strings.Contains(rep.Disk.Changes[0], " at /var/lib/zookeeper ")
		if rep.Changes != 1 || !remount || len(rep.Network.Changes) > 0 || len(rep.ZooKeeper.Changed) > 0 ||
			!rep.Claim.Reused || rep.Disk.Formatted || rep.Claim.Node != n.ID {
			t.Errorf("firstboot after the reboot: node %d, %d changes (network %v, disk %v, zookeeper %v), reused %v, formatted %v; want the remount alone",
				rep.Claim.Node, rep.Changes, rep.Network.Changes, rep.Disk.Changes, rep.ZooKeeper.Changed, rep.Claim.Reused, rep.Disk.Formatted)
		}
		summary, err := e.FirstbootSummary(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("node %d (%s, %s): 1 change(s) in ", n.ID, n.IP, n.Report.Claim.Volume); !strings.HasPrefix(summary, want) {
			t.Errorf("firstboot's summary after the reboot %q, want it to start %q", summary, want)
		}
		if _, err := e.WaitServing(ctx, 60*time.Second, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		checkZnodes(t, e, n.IP, 1000)
		checkMore(t, e, n.IP, "/while-rebooting", 50)
		modes := e.Modes(ctx)
		t.Logf("node %d rebooted (boot %d) and serves as %s after %s, synced by %s; %s",
			n.ID, n.Instance.Boots(), modes[n.ID], time.Since(start).Round(time.Millisecond), n.Sync(), summary)
		if s := n.Sync(); s != "DIFF" && modes[n.ID] != "leader" {
			t.Errorf("rebooted node synced by %q, want DIFF (its own data, only what it missed)", s)
		}
		checkSystem(t, n.Instance)
		// A reboot is no failure: the group kept the instance.
		if in, ok := e.Cloud.AutoScaling().Instance(n.Instance.ID); !ok || in.LifecycleState != "InService" || in.HealthStatus != "Healthy" {
			t.Errorf("rebooted %s in its group: %+v, want InService and Healthy", n.Instance.ID, in)
		}
	})

	// 2. kill -9 node 2's machine; the group's replacement becomes node 2
	// again.
	old := e.Node(2)
	if err := e.Terminate(ctx, old); err != nil {
		t.Fatal(err)
	}
	repl, err := g.WaitNode(ctx, 3*time.Minute, 2, old.Instance.ID)
	if err != nil {
		t.Fatal(err)
	}
	if repl.ID != 2 || repl.IP != old.IP || repl.Report.Claim.Volume != old.Report.Claim.Volume || repl.Instance.ID == old.Instance.ID || repl.Instance.AZ != old.Instance.AZ {
		t.Fatalf("replacement %s: node %d %s %s in %s, want node 2 %s %s in %s", repl.Instance.ID, repl.ID, repl.IP, repl.Report.Claim.Volume, repl.Instance.AZ, old.IP, old.Report.Claim.Volume, old.Instance.AZ)
	}
	if repl.Report.Disk.Formatted || repl.Report.ZooKeeper.Initialize {
		t.Errorf("replacement formatted=%v initialize=%v", repl.Report.Disk.Formatted, repl.Report.ZooKeeper.Initialize)
	}
	if modes, err = e.WaitServing(ctx, 60*time.Second, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	checkZnodes(t, e, repl.IP, 1000)
	t.Logf("replacement %s (group %s): %s, synced by %s", repl.Instance.ID, group, modes[2], repl.Sync())
	if s := repl.Sync(); s != "DIFF" && modes[2] != "leader" {
		t.Errorf("replacement synced by %q, want DIFF (its own data, no snapshot transfer)", s)
	}

	// 5. The volume is lost: a fresh, never-initialized volume tagged for
	// node 2 replaces it. The group's new instance formats it, sees the
	// quorum, does not trust its empty tree, and syncs from the leader.
	// The group's launches wait while the volume is swapped, so that its
	// replacement boots where the original test's did: after the swap.
	suspendProcesses(t, g, group, "Launch")
	if err := e.Terminate(ctx, repl); err != nil {
		t.Fatal(err)
	}
	lost := repl.Report.Claim.Volume
	retag(t, e, lost)
	fresh, err := e.Cloud.CreateVolume("us-east-1b", 2, map[string]string{"zkaas:ensemble": "it", "zkaas:node": "2"})
	if err != nil {
		t.Fatal(err)
	}
	resumeProcesses(t, g, group, "Launch")
	again, err := g.WaitNode(ctx, 3*time.Minute, 2, old.Instance.ID, repl.Instance.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Report.Claim.Volume != fresh.ID || !again.Report.Disk.Formatted || again.Report.ZooKeeper.Initialize {
		t.Errorf("fresh volume: claimed %s formatted=%v initialize=%v (%s)", again.Report.Claim.Volume, again.Report.Disk.Formatted, again.Report.ZooKeeper.Initialize, again.Report.ZooKeeper.Reason)
	}
	if _, err := e.WaitServing(ctx, 60*time.Second, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	checkZnodes(t, e, again.IP, 1000)
	t.Logf("fresh-volume replacement %s synced by %s", again.Instance.ID, again.Sync())
	if s := again.Sync(); s != "SNAP" {
		t.Errorf("fresh volume synced by %q, want SNAP from the leader", s)
	}
	for _, id := range []int{1, 2, 3} {
		checkSystem(t, e.Node(id).Instance)
	}

	// 3 (the refusal): the ensemble has data (past its bootstrap window) but
	// no quorum serves, and node 2's volume is lost again. The group's
	// replacement must not start ZooKeeper with an empty tree that could
	// vote: firstboot fails at its deadline, zookeeper.service, which
	// requires it, never starts, and after the refusal hold the instance
	// tells its group it is Unhealthy. ReplaceUnhealthy is suspended once
	// the replacement is launched, so the group keeps it to look at (and
	// does not churn: every replacement would be refused the same way).
	time.Sleep(time.Until(created.Add(window)))
	for _, id := range []int{1, 3} {
		if err := e.StopZooKeeper(ctx, e.Node(id)); err != nil {
			t.Fatal(err)
		}
	}
	suspendProcesses(t, g, group, "Launch")
	if err := e.Terminate(ctx, again); err != nil {
		t.Fatal(err)
	}
	retag(t, e, fresh.ID)
	if _, err := e.Cloud.CreateVolume("us-east-1b", 2, map[string]string{"zkaas:ensemble": "it", "zkaas:node": "2"}); err != nil {
		t.Fatal(err)
	}
	resumeProcesses(t, g, group, "Launch")
	earlier := []string{old.Instance.ID, repl.Instance.ID, again.Instance.ID}
	b := nextBoot(t, g, group, time.Minute, earlier...)
	suspendProcesses(t, g, group, "ReplaceUnhealthy")
	select {
	case <-b.Done:
	case <-time.After(e.opts.Deadline + firstbootSlack + time.Minute):
		t.Fatalf("%s: firstboot not finished", b.InstanceID)
	}
	fe := asFirstbootError(t, b.Node, b.Err)
	if !strings.Contains(fe.Line, "refusing to trust an empty data tree") {
		t.Fatalf("boot without quorum on a fresh volume: %v", b.Err)
	}
	t.Logf("refused: %v", b.Err)
	checkNeverStarted(t, fe.Instance, zookeeperUnit)
	// The system settles once zkaas-unhealthy has held and reported:
	// firstboot is its one failed unit.
	checkSystem(t, fe.Instance, firstbootUnit)
	eventuallyT(t, "the refused instance Unhealthy in its group", 30*time.Second, func() bool {
		in, ok := e.Cloud.AutoScaling().Instance(fe.Instance.ID)
		return ok && in.HealthStatus == "Unhealthy"
	})
	// Stopped, not failed: a stop is no failure (SuccessExitStatus=143).
	for _, id := range []int{1, 3} {
		checkSystem(t, e.Node(id).Instance)
	}
	// No churn: the group launched nothing after the refused instance.
	for _, later := range g.Boots() {
		if later.Group == group && !slices.Contains(append(earlier, b.InstanceID), later.InstanceID) {
			t.Errorf("group %s launched %s after the refused %s, with ReplaceUnhealthy suspended", group, later.InstanceID, b.InstanceID)
		}
	}
	// Done with it: the group's capacity to 0 terminates it (the groups'
	// deletion at the end would, too).
	if _, err := g.API().UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(group), MinSize: aws.Int32(0), DesiredCapacity: aws.Int32(0),
	}); err != nil {
		t.Error(err)
	}
}

// groupNodes is the node every instance the groups launched so far
// became; a boot that failed or has not finished fails the test.
func groupNodes(t *testing.T, g *Groups) []*Node {
	t.Helper()
	var out []*Node
	for _, b := range g.Boots() {
		select {
		case <-b.Done:
		default:
			t.Fatalf("%s in %s: still booting", b.InstanceID, b.Group)
		}
		if b.Node == nil {
			t.Fatalf("%s in %s: %v", b.InstanceID, b.Group, b.Err)
		}
		out = append(out, b.Node)
	}
	return out
}

// nextBoot waits, within bound, for the group to launch an instance other
// than the ones in not, and returns it (its boot maybe not finished).
func nextBoot(t *testing.T, g *Groups, group string, bound time.Duration, not ...string) *GroupBoot {
	t.Helper()
	for deadline := time.Now().Add(bound); ; time.Sleep(watchEvery) {
		for _, b := range g.Boots() {
			if b.Group == group && !slices.Contains(not, b.InstanceID) {
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s launched nothing new in %s (boots: %s)", group, bound, g.describe())
		}
	}
}

// suspendProcesses and resumeProcesses suspend and resume the group's
// processes, as SuspendProcesses and ResumeProcesses do.
func suspendProcesses(t *testing.T, g *Groups, group string, procs ...string) {
	t.Helper()
	if _, err := g.API().SuspendProcesses(t.Context(), &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String(group), ScalingProcesses: procs}); err != nil {
		t.Fatal(err)
	}
}

func resumeProcesses(t *testing.T, g *Groups, group string, procs ...string) {
	t.Helper()
	if _, err := g.API().ResumeProcesses(t.Context(), &autoscaling.ResumeProcessesInput{AutoScalingGroupName: aws.String(group), ScalingProcesses: procs}); err != nil {
		t.Fatal(err)
	}
}

// retag takes a volume out of the ensemble, as an operator would for a
// volume that is lost.
func retag(t *testing.T, e *Ensemble, vol string) {
	t.Helper()
	if err := e.Cloud.Sim().CreateTags([]string{vol}, map[string]string{"zkaas:ensemble": "retired"}); err != nil {
		t.Fatal(err)
	}
}

// writeMore creates parent and n children under it through the node at ip.
func writeMore(t *testing.T, e *Ensemble, ip, parent string, n int) {
	t.Helper()
	c, err := e.Client(ip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Create(parent, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s via %s: %v", parent, ip, err)
	}
	for i := range n {
		if _, err := c.Create(fmt.Sprintf("%s/%d", parent, i), nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatalf("create %s/%d via %s: %v", parent, i, ip, err)
		}
	}
}

// checkMore reads back what writeMore wrote, through the node at ip.
func checkMore(t *testing.T, e *Ensemble, ip, parent string, n int) {
	t.Helper()
	c, err := e.Client(ip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Sync(parent); err != nil {
		t.Fatalf("sync %s via %s: %v", parent, ip, err)
	}
	if kids, _, err := c.Children(parent); err != nil || len(kids) != n {
		t.Errorf("via %s: %s has %d children (%v), want %d", ip, parent, len(kids), err, n)
	}
}

// TestFiveNodeStorms: five slots over three AZs, their groups' five
// machines at once — every slot claimed once and a quorum; then all five
// killed (-9) and replaced at once by the groups while the simulator
// throttles, loses races and sticks attaches: again every slot once,
// nothing formatted, the data intact, and no unit failed anywhere.
func TestFiveNodeStorms(t *testing.T) {
	e := newEnsemble(t, onMachines, ec2sim.Options{}, nodes("us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b", "us-east-1c"))
	ctx := t.Context()
	ids := []int{1, 2, 3, 4, 5}
	g := newGroups(t, e, GroupOptions{})
	if _, err := g.WaitNodes(ctx, 3*time.Minute, ids...); err != nil {
		t.Fatal(err)
	}
	first := groupNodes(t, g)
	checkOncePerSlot(t, e, first, 5)
	if _, err := e.WaitServing(ctx, 90*time.Second, ids...); err != nil {
		t.Fatal(err)
	}
	writeZnodes(t, e, first[0].IP, 200)
	var killed []string
	for _, n := range first {
		if err := e.Terminate(ctx, n); err != nil {
			t.Fatal(err)
		}
		killed = append(killed, n.Instance.ID)
	}
	e.Cloud.Sim().SetFaults(ec2sim.Faults{ThrottleRate: 0.15, InUseRaceRate: 0.2, StuckAttachRate: 0.1})
	start := time.Now()
	if _, err := g.WaitNodes(ctx, 5*time.Minute, ids...); err != nil {
		t.Fatal(err)
	}
	e.Cloud.Sim().SetFaults(ec2sim.Faults{})
	// A stuck attach costs its claim.stuck_attach (a third of the
	// deadline) before firstboot detaches and retries.
	t.Logf("storm of the groups' replacements: every node held again after %s", time.Since(start).Round(time.Millisecond))
	var second []*Node
	for _, n := range groupNodes(t, g) {
		if !slices.Contains(killed, n.Instance.ID) {
			second = append(second, n)
		}
	}
	checkOncePerSlot(t, e, second, 5)
	for _, n := range second {
		if n.Report.Disk.Formatted {
			t.Errorf("node %d: a volume holding data was formatted", n.ID)
		}
	}
	if _, err := e.WaitServing(ctx, 90*time.Second, ids...); err != nil {
		t.Fatal(err)
	}
	checkZnodes(t, e, second[len(second)-1].IP, 200)
	if st := e.Cloud.Sim().Stats(); st.Errors["RequestLimitExceeded"]+st.Errors["InvalidNetworkInterface.InUse"]+st.Errors["VolumeInUse"] == 0 {
		t.Errorf("no faults were injected: %v", st.Errors)
	}
	for _, n := range second {
		checkSystem(t, n.Instance)
	}
}

// checkOncePerSlot: every node claimed by one instance, each with its own
// slot's ENI and volume.
func checkOncePerSlot(t *testing.T, e *Ensemble, booted []*Node, want int) {
	t.Helper()
	seen := map[int]string{}
	for _, n := range booted {
		if prev, dup := seen[n.ID]; dup {
			t.Fatalf("node %d claimed by %s and %s", n.ID, prev, n.Instance.ID)
		}
		seen[n.ID] = n.Instance.ID
		slot := e.Slot(n.ID)
		if n.Report.Claim.ENI != slot.ENI.ID || n.Report.Claim.Volume != slot.Volume.ID || n.IP != slot.ENI.PrivateIP {
			t.Fatalf("node %d: claimed %s %s %s, its slot is %s %s %s", n.ID, n.Report.Claim.ENI, n.Report.Claim.Volume, n.IP,
				slot.ENI.ID, slot.Volume.ID, slot.ENI.PrivateIP)
		}
	}
	if len(seen) != want {
		t.Fatalf("%d slots claimed, want %d", len(seen), want)
	}
}

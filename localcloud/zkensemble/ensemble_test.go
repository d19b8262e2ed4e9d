package zkensemble

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

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
		return m.Run()
	}()
	if os.Geteuid() == 0 {
		if entries, _ := os.ReadDir("/run/netns"); len(entries) > 0 {
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), localcloud.Prefix) {
					fmt.Fprintln(os.Stderr, "leaked network namespace", e.Name())
					code = 1
				}
			}
		}
	}
	os.Exit(code)
}

// requireZooKeeper skips unless the test can run a real ensemble.
func requireZooKeeper(t *testing.T) {
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

func newEnsemble(t *testing.T, opts ec2sim.Options, ns []ensemble.Node) *Ensemble {
	return newEnsembleWith(t, opts, ns, Options{})
}

// newEnsembleWith takes the deadline and bootstrap window from eo.
func newEnsembleWith(t *testing.T, opts ec2sim.Options, ns []ensemble.Node, eo Options) *Ensemble {
	t.Helper()
	requireZooKeeper(t)
	opts.Latency = latency
	log := quietLog
	opts.Logger = log
	cloud, err := localcloud.New(context.Background(), localcloud.Options{EC2: opts, PrivateDirs: PrivateDirs, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cloud.Close(); err != nil {
			t.Errorf("close cloud: %v", err)
		}
	})
	e, err := New(cloud, Options{Name: "it", Nodes: ns, Binary: binary, Deadline: eo.Deadline,
		BootstrapWindow: eo.BootstrapWindow, LogDir: t.TempDir(), Log: log})
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

func checkZnodes(t *testing.T, e *Ensemble, ip string, n int) {
	t.Helper()
	if err := e.CheckZnodes(ip, n); err != nil {
		t.Fatal(err)
	}
}

// TestRunTwice: zkaas-firstboot run on a fresh instance claims, configures
// the ENI, formats and mounts the blank volume and renders ZooKeeper's
// files; run again, it changes nothing.
func TestRunTwice(t *testing.T) {
	e := newEnsemble(t, ec2sim.Options{}, nodes("us-east-1a", "us-east-1b", "us-east-1c"))
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

// TestLifecycle is the promise, scenario by scenario on one ensemble: three
// nodes boot at once and form a quorum; a reboot changes nothing; a node
// killed with -9 comes back as itself on a new instance with its data and
// syncs by diff; a replacement whose volume was lost starts empty and syncs
// from the leader.
func TestLifecycle(t *testing.T) {
	// A short deadline bounds the refused boot at the end, and a short
	// bootstrap window makes the ensemble "old" by then.
	const window = 12 * time.Second
	e := newEnsembleWith(t, ec2sim.Options{}, nodes("us-east-1a", "us-east-1b", "us-east-1c"), Options{Deadline: window, BootstrapWindow: window})
	created := time.Now()
	ctx := t.Context()

	// 1. Three instances, one per AZ, at once.
	booted, err := e.BootAll(ctx, []string{"us-east-1a", "us-east-1b", "us-east-1c"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, n := range booted {
		if seen[n.ID] {
			t.Fatalf("node %d claimed twice", n.ID)
		}
		seen[n.ID] = true
	}
	modes, err := e.WaitServing(ctx, 60*time.Second, 1, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quorum: %s", describe(modes))
	writeZnodes(t, e, "10.0.1.11", 1000)
	for _, ip := range []string{"10.0.1.11", "10.0.2.11", "10.0.3.11"} {
		checkZnodes(t, e, ip, 1000)
	}

	// 4. Reboot: firstboot again on a running node changes nothing and
	// ZooKeeper keeps serving.
	n3 := e.Node(3)
	rep, err := e.Firstboot(ctx, n3.Instance)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changes != 0 {
		t.Errorf("rerun on a running node: %d changes: %v %v %v", rep.Changes, rep.Network.Changes, rep.Disk.Changes, rep.ZooKeeper.Changed)
	}
	select {
	case <-n3.ZK.Done():
		t.Fatal("ZooKeeper exited after the rerun")
	default:
	}

	// 2. kill -9 node 2's instance; its replacement becomes node 2 again.
	old := e.Node(2)
	if err := e.Terminate(ctx, old); err != nil {
		t.Fatal(err)
	}
	repl, err := e.Boot(ctx, "us-east-1b")
	if err != nil {
		t.Fatal(err)
	}
	if repl.ID != 2 || repl.IP != old.IP || repl.Report.Claim.Volume != old.Report.Claim.Volume || repl.Instance.ID == old.Instance.ID {
		t.Fatalf("replacement %s: node %d %s %s, want node 2 %s %s", repl.Instance.ID, repl.ID, repl.IP, repl.Report.Claim.Volume, old.IP, old.Report.Claim.Volume)
	}
	if repl.Report.Disk.Formatted || repl.Report.ZooKeeper.Initialize {
		t.Errorf("replacement formatted=%v initialize=%v", repl.Report.Disk.Formatted, repl.Report.ZooKeeper.Initialize)
	}
	if modes, err = e.WaitServing(ctx, 60*time.Second, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if modes[2] != "follower" && modes[2] != "leader" {
		t.Errorf("replacement mode %q", modes[2])
	}
	checkZnodes(t, e, repl.IP, 1000)
	t.Logf("replacement: %s, synced by %s", modes[2], repl.Sync())
	if s := repl.Sync(); s != "DIFF" && modes[2] != "leader" {
		t.Errorf("replacement synced by %q, want DIFF (its own data, no snapshot transfer)", s)
	}

	// 5. The volume is lost: a fresh, never-initialized volume tagged for
	// node 2 replaces it. The new instance formats it, sees the quorum,
	// does not trust its empty tree, and syncs from the leader.
	if err := e.Terminate(ctx, repl); err != nil {
		t.Fatal(err)
	}
	lost := repl.Report.Claim.Volume
	retag(t, e, lost)
	fresh, err := e.Cloud.CreateVolume("us-east-1b", 2, map[string]string{"zkaas:ensemble": "it", "zkaas:node": "2"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.Boot(ctx, "us-east-1b")
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
	t.Logf("fresh-volume replacement synced by %s", again.Sync())
	if s := again.Sync(); s != "SNAP" {
		t.Errorf("fresh volume synced by %q, want SNAP from the leader", s)
	}

	// 3 (the refusal): the ensemble has data (past its bootstrap window) but
	// no quorum serves, and node 2's volume is lost again. Its replacement
	// must not start ZooKeeper with an empty tree that could vote: firstboot
	// fails at its deadline.
	time.Sleep(time.Until(created.Add(window)))
	for _, id := range []int{1, 3} {
		if err := e.Node(id).ZK.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Terminate(ctx, again); err != nil {
		t.Fatal(err)
	}
	retag(t, e, fresh.ID)
	if _, err := e.Cloud.CreateVolume("us-east-1b", 2, map[string]string{"zkaas:ensemble": "it", "zkaas:node": "2"}); err != nil {
		t.Fatal(err)
	}
	refused, err := e.Boot(ctx, "us-east-1b")
	if err == nil || !strings.Contains(err.Error(), "refusing to trust an empty data tree") {
		t.Fatalf("boot without quorum on a fresh volume: node %v, err %v", refused, err)
	}
	t.Logf("refused: %v", err)
}

// retag takes a volume out of the ensemble, as an operator would for a
// volume that is lost.
func retag(t *testing.T, e *Ensemble, vol string) {
	t.Helper()
	if err := e.Cloud.Sim().CreateTags([]string{vol}, map[string]string{"zkaas:ensemble": "retired"}); err != nil {
		t.Fatal(err)
	}
}

// TestFiveNodeStorms: five slots over three AZs, five instances at once —
// every slot claimed once and a quorum; then all five killed and replaced
// at once while the simulator throttles, loses races and sticks attaches:
// again every slot once, nothing formatted, the data intact.
func TestFiveNodeStorms(t *testing.T) {
	e := newEnsemble(t, ec2sim.Options{}, nodes("us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b", "us-east-1c"))
	ctx := t.Context()
	azs := []string{"us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b", "us-east-1c"}
	first, err := e.BootAll(ctx, azs)
	if err != nil {
		t.Fatal(err)
	}
	checkOncePerSlot(t, e, first, 5)
	if _, err := e.WaitServing(ctx, 60*time.Second, 1, 2, 3, 4, 5); err != nil {
		t.Fatal(err)
	}
	writeZnodes(t, e, first[0].IP, 200)
	for _, n := range first {
		if err := e.Terminate(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	e.Cloud.Sim().SetFaults(ec2sim.Faults{ThrottleRate: 0.15, InUseRaceRate: 0.2, StuckAttachRate: 0.1})
	second, err := e.BootAll(ctx, azs)
	if err != nil {
		t.Fatal(err)
	}
	e.Cloud.Sim().SetFaults(ec2sim.Faults{})
	checkOncePerSlot(t, e, second, 5)
	for _, n := range second {
		if n.Report.Disk.Formatted {
			t.Errorf("node %d: a volume holding data was formatted", n.ID)
		}
	}
	if _, err := e.WaitServing(ctx, 90*time.Second, 1, 2, 3, 4, 5); err != nil {
		t.Fatal(err)
	}
	checkZnodes(t, e, second[4].IP, 200)
	if st := e.Cloud.Sim().Stats(); st.Errors["RequestLimitExceeded"]+st.Errors["InvalidNetworkInterface.InUse"]+st.Errors["VolumeInUse"] == 0 {
		t.Errorf("no faults were injected: %v", st.Errors)
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

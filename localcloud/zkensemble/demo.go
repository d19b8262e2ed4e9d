package zkensemble

// The demo: the product as shipped healing itself on the local cloud.
// magefiles/demo.go bakes (or reuses) the image and calls Demo.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/systemd"
	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// DemoNodes is the demo's three-node ensemble, one node per AZ.
var DemoNodes = []ensemble.Node{
	{ID: 1, AZ: "us-east-1a", IP: netip.MustParseAddr("10.0.1.11")},
	{ID: 2, AZ: "us-east-1b", IP: netip.MustParseAddr("10.0.2.11")},
	{ID: 3, AZ: "us-east-1c", IP: netip.MustParseAddr("10.0.3.11")},
}

// DemoOptions configures Demo.
type DemoOptions struct {
	// RootFS is the extracted image (localcloud.ExtractImage).
	RootFS string
	// Step prints one step of the demo; Out gets the final table.
	Step func(format string, args ...any)
	Out  io.Writer
}

// demoLatency is EC2-like: ENI attach 1 s, volume attach 2 s.
var demoLatency = ec2sim.Latency{
	RoundTrip: 20 * time.Millisecond, RoundTripJitter: 10 * time.Millisecond,
	ENIAttach: time.Second, VolumeAttach: 2 * time.Second,
	ENIDetach: 500 * time.Millisecond, VolumeDetach: time.Second,
}

// Demo runs the ensemble on the local cloud with one Auto Scaling group per
// AZ launching every instance from the image (systemd as PID 1, the
// config as user data), writes data, kills node 2's machine with -9 and
// shows its group healing it: the group's scaling activities, the launch
// hook's result, and the replacement serving as node 2 with its IP, myid
// and volume (DIFF sync). Needs root; removes everything it made.
func Demo(ctx context.Context, o DemoOptions) (err error) {
	step := o.Step
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	step("starting the local cloud: VPC with 3 AZs, EC2 simulator (ENI attach 1 s, volume attach 2 s), Auto Scaling (its group controller every 1 s); instances boot the image with systemd as PID 1 (systemd-nspawn)")
	cloud, err := localcloud.New(ctx, localcloud.Options{
		EC2:    ec2sim.Options{Latency: demoLatency},
		RootFS: o.RootFS, Boot: localcloud.BootSystemd, GroupInterval: time.Second,
		Logger: quiet,
	})
	if err != nil {
		return err
	}
	defer func() {
		step("cleaning up: groups, machines, namespaces, veths, loop devices")
		err = errors.Join(err, cloud.Close())
	}()
	// No Binary: the image's /usr/local/bin/zkaas-firstboot is what its
	// unit runs.
	ens, err := New(cloud, Options{Name: "demo", Nodes: DemoNodes, Log: quiet})
	if err != nil {
		return err
	}
	defer ens.Close()
	for _, n := range DemoNodes {
		s := ens.Slot(n.ID)
		step("slot of node %d in %s: %s (%s) + %s, tagged zkaas:node=%d", n.ID, n.AZ, s.ENI.ID, n.IP, s.Volume.ID, n.ID)
	}

	hook := hasUnit(o.RootFS, "zkaas-ready.service")
	g, err := ens.CreateGroups(ctx, GroupOptions{Hook: hook})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, g.Close()) }()
	hookNote := "launch hook " + HookName + " (firstboot's zkaas-ready completes it with CONTINUE once ZooKeeper serves)"
	if !hook {
		hookNote = "no launch hook: this image has no zkaas-ready.service, so the group puts an instance in service once EC2 runs it"
	}
	step("Auto Scaling groups %s: launch template %s (user data: the ensemble config), one instance each, AZRebalance suspended, %s",
		strings.Join(g.Names, ", "), g.Template.ID, hookNote)
	nodes, err := g.WaitNodes(ctx, 3*time.Minute, 1, 2, 3)
	if err != nil {
		return err
	}
	for _, id := range []int{1, 2, 3} {
		n := nodes[id]
		step("  group %s launched %s: it became node %d at %s (volume %s %s, firstboot %s)", g.GroupOf(id), n.Instance.ID, n.ID, n.IP,
			n.Report.Claim.Volume, map[bool]string{true: "formatted", false: "reused"}[n.Report.Disk.Formatted], n.Report.Duration.Round(time.Millisecond))
	}
	modes, err := ens.WaitServing(ctx, 90*time.Second, 1, 2, 3)
	if err != nil {
		return err
	}
	step("quorum: node 1 %s, node 2 %s, node 3 %s", modes[1], modes[2], modes[3])
	if v, err := nodes[1].Instance.Command(ctx, "systemctl", "--version").Output(); err == nil {
		step("PID 1 on every instance is the image's %s; what it says about each:", firstLine(string(v)))
	}
	for _, id := range []int{1, 2, 3} {
		if err := showMachine(ctx, step, ens, nodes[id]); err != nil {
			return err
		}
	}

	const znodes = 1000
	step("writing %d znodes through node 1", znodes)
	if err := ens.WriteZnodes(DemoNodes[0].IP.String(), znodes); err != nil {
		return err
	}

	// In service first: from then on the group's health check watches
	// the instances (before, a launch hook may still hold them).
	if err := g.WaitInService(ctx, 2*time.Minute, 1, 2, 3); err != nil {
		return err
	}
	old := ens.Node(2)
	group := g.GroupOf(2)
	step("kill -9 of node 2's whole machine %s (systemd and all: no shutdown, nothing unmounted); nothing else is done by hand — group %s must notice and heal it", old.Instance.ID, group)
	if err := ens.Terminate(ctx, old); err != nil {
		return err
	}
	killed := time.Now()
	repl, err := g.WaitNode(ctx, 3*time.Minute, 2, old.Instance.ID)
	if err != nil {
		return err
	}
	step("  group %s launched %s; it became node %d at %s with volume %s (formatted: %v) %s after the kill", group, repl.Instance.ID, repl.ID, repl.IP,
		repl.Report.Claim.Volume, repl.Report.Disk.Formatted, time.Since(killed).Round(100*time.Millisecond))
	if modes, err = ens.WaitServing(ctx, 90*time.Second, 1, 2, 3); err != nil {
		return err
	}
	serving := time.Since(killed)
	if err := ens.CheckZnodes(repl.IP, znodes); err != nil {
		return fmt.Errorf("the replacement does not serve the data: %w", err)
	}
	sync := waitSync(repl, 15*time.Second)
	step("replacement serves as %s %s after the kill (synced from the leader by %s), all %d znodes readable through it",
		modes[2], serving.Round(100*time.Millisecond), sync, znodes)
	if err := showMachine(ctx, step, ens, repl); err != nil {
		return err
	}
	launch, err := showActivities(ctx, step, g, group, old.Instance.ID, repl.Instance.ID)
	if err != nil {
		return err
	}
	switch {
	case !hook:
		step("launch hook: none on this image's groups (see above)")
	case launch != nil && launch.StatusCode == astypes.ScalingActivityStatusCodeSuccessful:
		step("launch hook %s of %s: CONTINUE (the launch completed: firstboot's zkaas-ready saw ZooKeeper serve)", HookName, repl.Instance.ID)
	case launch != nil:
		step("launch hook %s of %s: %s — %s", HookName, repl.Instance.ID, launch.StatusCode, aws.ToString(launch.StatusMessage))
	}

	// Read through the machine's root: the volume is mounted in the
	// machine's own mount namespace.
	myid, err := repl.ReadFile("/var/lib/zookeeper/data/myid")
	if err != nil {
		return fmt.Errorf("myid on the replacement: %w", err)
	}
	step("myid on the replacement's volume: %s", bytes.TrimSpace(myid))
	same := repl.ID == old.ID && repl.IP == old.IP && repl.Report.Claim.Volume == old.Report.Claim.Volume &&
		string(bytes.TrimSpace(myid)) == "2"
	fmt.Fprintf(o.Out, "\n%-5s %-20s %-22s %-10s %-22s %-9s %s\n", "node", "instance", "group", "ip", "volume", "role", "healed")
	for _, id := range []int{1, 2, 3} {
		n := ens.Node(id)
		fmt.Fprintf(o.Out, "%-5d %-20s %-22s %-10s %-22s %-9s %s\n", id, n.Instance.ID, g.GroupOf(id), n.IP, n.Report.Claim.Volume, modes[id],
			map[bool]string{true: "serving " + serving.Round(100*time.Millisecond).String() + " after kill -9, by its group", false: "-"}[id == 2])
	}
	fmt.Fprintf(o.Out, "\nnode 2 before: %s %s %s; after: %s %s %s\n", old.Instance.ID, old.IP, old.Report.Claim.Volume,
		repl.Instance.ID, repl.IP, repl.Report.Claim.Volume)
	if !same {
		return errors.New("the replacement did not come back as the same node with its data")
	}
	if sync != "DIFF" && modes[2] != "leader" {
		return fmt.Errorf("the replacement synced by %q, want DIFF: its own data, only the missed transactions", sync)
	}
	step("healed by the group: same IP, same myid, same volume, DIFF sync, all %d znodes: demo done", znodes)
	return nil
}

// showActivities prints the group's scaling activities about the killed
// instance and its replacement, oldest first, once both have finished,
// and returns the replacement's launch activity.
func showActivities(ctx context.Context, step func(string, ...any), g *Groups, group, old, repl string) (*astypes.Activity, error) {
	var acts []astypes.Activity
	deadline := time.Now().Add(time.Minute)
	for {
		var err error
		if acts, err = g.Activities(ctx, group); err != nil {
			return nil, err
		}
		// Done once the replacement's launch has finished: its hook
		// completed (or timed out) and it is in service.
		done := false
		for _, a := range acts {
			d := aws.ToString(a.Description)
			if strings.HasPrefix(d, "Launching") && strings.HasSuffix(d, repl) && aws.ToInt32(a.Progress) == 100 {
				done = true
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	step("scaling activities of %s (DescribeScalingActivities), oldest first:", group)
	var launch *astypes.Activity
	for i := len(acts) - 1; i >= 0; i-- {
		a := acts[i]
		d := aws.ToString(a.Description)
		if !strings.HasSuffix(d, old) && !strings.HasSuffix(d, repl) {
			continue
		}
		if strings.HasPrefix(d, "Launching") && strings.HasSuffix(d, repl) {
			launch = &acts[i]
		}
		took := ""
		if a.StartTime != nil && a.EndTime != nil {
			took = ", " + a.EndTime.Sub(*a.StartTime).Round(100*time.Millisecond).String()
		}
		step("  %s — %s%s", d, a.StatusCode, took)
		step("    cause: %s", aws.ToString(a.Cause))
		if m := aws.ToString(a.StatusMessage); m != "" {
			step("    status: %s", m)
		}
	}
	return launch, nil
}

// waitSync waits, bound at most, for the node's log to tell how it synced.
func waitSync(n *Node, bound time.Duration) string {
	for deadline := time.Now().Add(bound); ; time.Sleep(200 * time.Millisecond) {
		if s := n.Sync(); s != "" || time.Now().After(deadline) {
			return s
		}
	}
}

// hasUnit reports whether the image installs the unit.
func hasUnit(rootfs, unit string) bool {
	for _, dir := range []string{"etc/systemd/system", "lib/systemd/system", "usr/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(rootfs, dir, unit)); err == nil {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// showMachine prints what systemd on the node's machine says: the system
// state, the two units' states and firstboot's summary line from the
// journal.
func showMachine(ctx context.Context, step func(string, ...any), ens *Ensemble, n *Node) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	units, err := ens.Units(ctx, n)
	if err != nil {
		return err
	}
	summary, err := ens.FirstbootSummary(ctx, n)
	if err != nil {
		return err
	}
	system, err := n.Instance.SystemState(ctx)
	if err != nil {
		return err
	}
	if system != "running" {
		// Honest about a degraded machine: which units failed.
		if failed, err := n.Instance.FailedUnits(ctx); err == nil {
			system += " (failed: " + strings.Join(failed, ", ") + ")"
		}
	}
	step("  node %d on %s: system %s; %s %s, %s %s", n.ID, n.Instance.ID, system,
		systemd.Firstboot, units[systemd.Firstboot], systemd.ZooKeeper, units[systemd.ZooKeeper])
	step("    journal: %s", summary)
	return nil
}

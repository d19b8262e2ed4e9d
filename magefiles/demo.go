//go:build mage

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/zkensemble"
)

// demoNodes is the demo's three-node ensemble, one node per AZ.
var demoNodes = []ensemble.Node{
	{ID: 1, AZ: "us-east-1a", IP: netip.MustParseAddr("10.0.1.11")},
	{ID: 2, AZ: "us-east-1b", IP: netip.MustParseAddr("10.0.2.11")},
	{ID: 3, AZ: "us-east-1c", IP: netip.MustParseAddr("10.0.3.11")},
}

// Demo runs the promise end to end on this machine: a local cloud (an EC2
// simulator with EC2's latencies, instances as network namespaces, ENIs as
// hot-plugged veths, EBS volumes as loop devices), three instances that
// become a ZooKeeper ensemble with zkaas-firstboot, data written, node 2
// killed with -9, and its replacement coming back as node 2 with its data.
// Needs root on Linux; cleans up after itself, also on Ctrl-C.
func Demo() error {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return errors.New("demo needs root on Linux (network namespaces, loop devices, mounts): run it with sudo")
	}
	mg.SerialDeps(Deps)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	dir, err := os.MkdirTemp("", "zkaas-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	step("building zkaas-firstboot")
	bin, err := zkensemble.BuildFirstboot(ctx, ".", dir)
	if err != nil {
		return err
	}

	step("starting the local cloud: VPC with 3 AZs, EC2 simulator (ENI attach 1 s, volume attach 2 s)")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cloud, err := localcloud.New(ctx, localcloud.Options{
		EC2: ec2sim.Options{Latency: ec2sim.Latency{
			RoundTrip: 20 * time.Millisecond, RoundTripJitter: 10 * time.Millisecond,
			ENIAttach: time.Second, VolumeAttach: 2 * time.Second,
			ENIDetach: 500 * time.Millisecond, VolumeDetach: time.Second,
		}},
		PrivateDirs: zkensemble.PrivateDirs,
		Logger:      quiet,
	})
	if err != nil {
		return err
	}
	defer func() {
		step("cleaning up: instances, namespaces, veths, loop devices")
		cloud.Close()
	}()
	ens, err := zkensemble.New(cloud, zkensemble.Options{Name: "demo", Nodes: demoNodes, Binary: bin, LogDir: dir, Log: quiet})
	if err != nil {
		return err
	}
	for _, n := range demoNodes {
		s := ens.Slot(n.ID)
		step("slot of node %d in %s: %s (%s) + %s, tagged zkaas:node=%d", n.ID, n.AZ, s.ENI.ID, n.IP, s.Volume.ID, n.ID)
	}

	step("launching 3 instances at once; each runs zkaas-firstboot run, then ZooKeeper")
	booted, err := ens.BootAll(ctx, []string{"us-east-1a", "us-east-1b", "us-east-1c"})
	if err != nil {
		return err
	}
	for _, n := range booted {
		step("  %s became node %d at %s (volume %s %s, firstboot %s)", n.Instance.ID, n.ID, n.IP,
			n.Report.Claim.Volume, map[bool]string{true: "formatted", false: "reused"}[n.Report.Disk.Formatted], n.Report.Duration.Round(time.Millisecond))
	}
	modes, err := ens.WaitServing(ctx, 60*time.Second, 1, 2, 3)
	if err != nil {
		return err
	}
	step("quorum: node 1 %s, node 2 %s, node 3 %s", modes[1], modes[2], modes[3])

	const znodes = 1000
	step("writing %d znodes through node 1", znodes)
	if err := ens.WriteZnodes("10.0.1.11", znodes); err != nil {
		return err
	}

	old := ens.Node(2)
	step("kill -9 node 2's instance %s (no clean shutdown)", old.Instance.ID)
	if err := ens.Terminate(ctx, old); err != nil {
		return err
	}
	killed := time.Now()
	step("the ASG launches a replacement in us-east-1b")
	repl, err := ens.Boot(ctx, "us-east-1b")
	if err != nil {
		return err
	}
	step("  %s became node %d at %s with volume %s (formatted: %v)", repl.Instance.ID, repl.ID, repl.IP, repl.Report.Claim.Volume, repl.Report.Disk.Formatted)
	if modes, err = ens.WaitServing(ctx, 60*time.Second, 1, 2, 3); err != nil {
		return err
	}
	rejoin := time.Since(repl.Launched)
	if err := ens.CheckZnodes(repl.IP, znodes); err != nil {
		return fmt.Errorf("the replacement does not serve the data: %w", err)
	}
	step("replacement serves as %s after %s (synced from the leader by %s), all %d znodes readable through it",
		modes[2], rejoin.Round(100*time.Millisecond), repl.Sync(), znodes)

	myid, err := os.ReadFile(repl.Instance.Path("/var/lib/zookeeper/data/myid"))
	if err != nil {
		return err
	}
	step("myid on the replacement's volume: %s", bytes.TrimSpace(myid))
	same := repl.ID == old.ID && repl.IP == old.IP && repl.Report.Claim.Volume == old.Report.Claim.Volume &&
		string(bytes.TrimSpace(myid)) == "2"
	fmt.Printf("\n%-5s %-20s %-10s %-22s %-9s %s\n", "node", "instance", "ip", "volume", "role", "time to serve")
	for _, id := range []int{1, 2, 3} {
		n := ens.Node(id)
		fmt.Printf("%-5d %-20s %-10s %-22s %-9s %s\n", id, n.Instance.ID, n.IP, n.Report.Claim.Volume, modes[id],
			map[bool]string{true: "rejoined " + rejoin.Round(100*time.Millisecond).String() + " after launch", false: "-"}[id == 2])
	}
	fmt.Printf("\nnode 2 before: %s %s %s; after: %s %s %s; killed %s ago\n", old.Instance.ID, old.IP, old.Report.Claim.Volume,
		repl.Instance.ID, repl.IP, repl.Report.Claim.Volume, time.Since(killed).Round(100*time.Millisecond))
	if !same {
		return errors.New("the replacement did not come back as the same node with its data")
	}
	step("same IP, same myid, same volume, all %d znodes: demo done", znodes)
	return nil
}

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
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/systemd"
	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/localbake"
	"github.com/zkaas/zkaas/localcloud/zkensemble"
)

// demoNodes is the demo's three-node ensemble, one node per AZ.
var demoNodes = []ensemble.Node{
	{ID: 1, AZ: "us-east-1a", IP: netip.MustParseAddr("10.0.1.11")},
	{ID: 2, AZ: "us-east-1b", IP: netip.MustParseAddr("10.0.2.11")},
	{ID: 3, AZ: "us-east-1c", IP: netip.MustParseAddr("10.0.3.11")},
}

// demoBakeBound bounds the bake. With a cold ~/.cache/zkaas it builds
// Packer from source (1.5 min on 2 cores), debootstraps the build host
// (45 s), builds the amazon plugin (2.5 min: Packer wants every plugin the
// template directory requires) and runs the packer build and export
// (30 s): 6.5 min in all, measured on a busy 2-core machine. A bake still
// going after 20 minutes is stuck, not slow.
const demoBakeBound = 20 * time.Minute

// Demo runs the product as shipped, end to end on this machine: the local
// image baked with the real Packer plugin (reused while its inputs are
// unchanged), a local cloud (an EC2 simulator with EC2's latencies,
// instances as network namespaces, ENIs as hot-plugged veths, EBS volumes
// as loop devices), three instances booting that image with systemd as
// PID 1 — whose zkaas-firstboot.service makes each one a node and whose
// zookeeper.service then starts ZooKeeper — data written, node 2's machine
// killed with -9, and its replacement coming back as node 2 with its data.
// Needs root on Linux; cleans up after itself, also on Ctrl-C.
func Demo() error {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return errors.New("demo needs root on Linux (network namespaces, loop devices, mounts, systemd-nspawn): run it with sudo")
	}
	mg.SerialDeps(Deps)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	rootfs, err := demoImage(ctx, step)
	if err != nil {
		return err
	}

	step("starting the local cloud: VPC with 3 AZs, EC2 simulator (ENI attach 1 s, volume attach 2 s); instances boot the image with systemd as PID 1 (systemd-nspawn)")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cloud, err := localcloud.New(ctx, localcloud.Options{
		EC2: ec2sim.Options{Latency: ec2sim.Latency{
			RoundTrip: 20 * time.Millisecond, RoundTripJitter: 10 * time.Millisecond,
			ENIAttach: time.Second, VolumeAttach: 2 * time.Second,
			ENIDetach: 500 * time.Millisecond, VolumeDetach: time.Second,
		}},
		RootFS: rootfs, Boot: localcloud.BootSystemd,
		Logger: quiet,
	})
	if err != nil {
		return err
	}
	defer func() {
		step("cleaning up: machines, namespaces, veths, loop devices")
		cloud.Close()
	}()
	// No Binary: the image's /usr/local/bin/zkaas-firstboot is what its
	// unit runs.
	ens, err := zkensemble.New(cloud, zkensemble.Options{Name: "demo", Nodes: demoNodes, Log: quiet})
	if err != nil {
		return err
	}
	defer ens.Close()
	for _, n := range demoNodes {
		s := ens.Slot(n.ID)
		step("slot of node %d in %s: %s (%s) + %s, tagged zkaas:node=%d", n.ID, n.AZ, s.ENI.ID, n.IP, s.Volume.ID, n.ID)
	}

	step("launching 3 instances at once, the ensemble config in place as user data would put it; on each, systemd runs %s, then %s",
		systemd.Firstboot, systemd.ZooKeeper)
	booted, err := ens.BootAll(ctx, []string{"us-east-1a", "us-east-1b", "us-east-1c"})
	if err != nil {
		return err
	}
	slices.SortFunc(booted, func(a, b *zkensemble.Node) int { return a.ID - b.ID })
	for _, n := range booted {
		step("  %s became node %d at %s (volume %s %s, firstboot %s)", n.Instance.ID, n.ID, n.IP,
			n.Report.Claim.Volume, map[bool]string{true: "formatted", false: "reused"}[n.Report.Disk.Formatted], n.Report.Duration.Round(time.Millisecond))
	}
	modes, err := ens.WaitServing(ctx, 90*time.Second, 1, 2, 3)
	if err != nil {
		return err
	}
	step("quorum: node 1 %s, node 2 %s, node 3 %s", modes[1], modes[2], modes[3])
	if v, err := booted[0].Instance.Command(ctx, "systemctl", "--version").Output(); err == nil {
		step("PID 1 on every instance is the image's %s; what it says about each:", firstLine(string(v)))
	}
	for _, n := range booted {
		if err := showMachine(ctx, step, ens, n); err != nil {
			return err
		}
	}

	const znodes = 1000
	step("writing %d znodes through node 1", znodes)
	if err := ens.WriteZnodes("10.0.1.11", znodes); err != nil {
		return err
	}

	old := ens.Node(2)
	step("kill -9 of node 2's whole machine %s (systemd and all: no shutdown, nothing unmounted)", old.Instance.ID)
	// Terminate is a crash (Cloud.Crash): every process of the machine's
	// cgroup gets SIGKILL.
	if err := ens.Terminate(ctx, old); err != nil {
		return err
	}
	killed := time.Now()
	step("the harness launches a replacement in us-east-1b (standing in for the Auto Scaling group)")
	repl, err := ens.Boot(ctx, "us-east-1b")
	if err != nil {
		return err
	}
	step("  %s became node %d at %s with volume %s (formatted: %v)", repl.Instance.ID, repl.ID, repl.IP, repl.Report.Claim.Volume, repl.Report.Disk.Formatted)
	if modes, err = ens.WaitServing(ctx, 90*time.Second, 1, 2, 3); err != nil {
		return err
	}
	rejoin := time.Since(repl.Launched)
	if err := ens.CheckZnodes(repl.IP, znodes); err != nil {
		return fmt.Errorf("the replacement does not serve the data: %w", err)
	}
	step("replacement serves as %s after %s (synced from the leader by %s), all %d znodes readable through it",
		modes[2], rejoin.Round(100*time.Millisecond), repl.Sync(), znodes)
	if err := showMachine(ctx, step, ens, repl); err != nil {
		return err
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
	if repl.Sync() != "DIFF" && modes[2] != "leader" {
		return fmt.Errorf("the replacement synced by %q, want DIFF: its own data, only the missed transactions", repl.Sync())
	}
	step("same IP, same myid, same volume, DIFF sync, all %d znodes: demo done", znodes)
	return nil
}

// demoImage bakes the local image the way bake:local does — the real
// packer build with the zkaas plugin built from this repository — unless
// the one in the image directory was made from the same inputs, and
// returns its extracted root. The config baked in is the tests' (the demo
// installs its own per instance, as user data would), so that the demo and
// the tests share one image. Packer's output goes to a file, the bake's
// steps to the terminal.
func demoImage(ctx context.Context, step func(string, ...any)) (string, error) {
	repo, cache, err := repoAndCache()
	if err != nil {
		return "", err
	}
	dir, err := localbake.ImageDir()
	if err != nil {
		return "", err
	}
	plugins, err := os.MkdirTemp("", "zkaas-demo-plugins-")
	if err != nil {
		return "", err
	}
	// A plugin directory of its own: the demo installs nothing into
	// ~/.config/packer/plugins.
	defer os.RemoveAll(plugins)
	step("image: the local bake (a real packer build with the zkaas plugin from this repository; minutes with a cold %s), unless %s holds one made from the same inputs", cache, dir)
	ctx, cancel := context.WithTimeout(ctx, demoBakeBound)
	defer cancel()
	begin := time.Now()
	var out bytes.Buffer
	img, baked, err := localbake.EnsureImage(ctx, localbake.Options{
		Repo: repo, CacheDir: cache, OutDir: dir, PluginPath: plugins,
		EnsembleConfig: filepath.Join(repo, "ensemble/testdata/ensemble.yaml"),
		Output:         &out, Log: slog.New(&stepHandler{step: step}),
	})
	took := time.Since(begin)
	logFile := filepath.Join(cache, "demo-bake.log")
	if out.Len() > 0 {
		if werr := os.WriteFile(logFile, out.Bytes(), 0o644); werr != nil {
			logFile = "(not written: " + werr.Error() + ")"
		}
	}
	if err != nil {
		return "", fmt.Errorf("bake the image (packer's output: %s): %w\n%s", logFile, err, lastLines(out.String(), 20))
	}
	if baked {
		step("image baked in %s: sha256 %.12s, %d MiB, %d managed paths (packer's output: %s)",
			took.Round(100*time.Millisecond), img.SHA256, img.Size>>20, len(img.Manifest.Entries), logFile)
	} else {
		step("image reused: its inputs (roles, template, plugin and firstboot source, config) are unchanged since it was baked at %s (sha256 %.12s); checked in %s",
			img.Created.UTC().Format("2006-01-02 15:04 UTC"), img.SHA256, brief(took))
	}
	begin = time.Now()
	rootfs, err := localcloud.ExtractImage(ctx, dir)
	if err != nil {
		return "", err
	}
	step("image root file system: %s (extracted once per image; ready in %s)", rootfs, brief(time.Since(begin)))
	return rootfs, nil
}

// showMachine prints what systemd on the node's machine says: the system
// state, the two units' states and firstboot's summary line from the
// journal.
func showMachine(ctx context.Context, step func(string, ...any), ens *zkensemble.Ensemble, n *zkensemble.Node) error {
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

// stepHandler prints the bake's log records at Info and above as demo
// steps: progress through the slow parts of a cold cache (Packer built from
// source, debootstrap, the packer build).
type stepHandler struct {
	step  func(string, ...any)
	attrs []slog.Attr
}

func (h *stepHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *stepHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.step("  bake: %s", b.String())
	return nil
}

func (h *stepHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &stepHandler{step: h.step, attrs: append(slices.Clip(h.attrs), attrs...)}
}

// WithGroup flattens groups: the bake's records use none.
func (h *stepHandler) WithGroup(string) slog.Handler { return h }

// brief is d for a reader: to the millisecond, "<1ms" below.
func brief(d time.Duration) string {
	if d < time.Millisecond {
		return "<1ms"
	}
	return d.Round(time.Millisecond).String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

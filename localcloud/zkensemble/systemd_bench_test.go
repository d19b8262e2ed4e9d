package zkensemble

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/firstboot/systemd"
	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/localbake"
)

// BenchmarkSystemdBoot: what booting the image under systemd costs next to
// host mode, in the same run. Each mode gets a cloud of its own and a
// serving 3-node ensemble; then node 2, node 3 and node 1 in turn are
// crashed (kill -9 of the instance) and replaced, each once the ensemble
// serves again (whichever of them leads, its loss adds an election, in
// both modes). Reported, each from the replacement's Launch call (the
// moment Boot is called): when zkaas-firstboot started — in host mode when
// the harness starts the binary, under systemd the unit's
// ExecMainStartTimestampMonotonic, so PID 1's boot up to the unit is in
// it — and when the replacement serves again (the whole ensemble answers
// srvr as leader/follower), with systemd/host ratios. Medians over the
// replacements: one replacement now and then waits seconds longer in
// ZooKeeper (seen in host mode: 8 s instead of 4 s), and one such outlier
// would otherwise make the ratio.
func BenchmarkSystemdBoot(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	for _, jar := range Classpath {
		if _, err := os.Stat(jar); err != nil {
			b.Skipf("%s missing (host mode runs the host's ZooKeeper)", jar)
		}
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		b.Skip("needs systemd-nspawn (Debian systemd-container)")
	}
	rootfs := benchImage(b)
	var host, sys []replacementTimes
	for range b.N {
		// One cloud at a time: the other mode's JVMs would share the
		// two cores with the one being measured.
		host = append(host, measureReplacements(b, localcloud.Options{PrivateDirs: PrivateDirs}, stampingFirstboot(b))...)
		sys = append(sys, measureReplacements(b, localcloud.Options{RootFS: rootfs, Boot: localcloud.BootSystemd}, nil)...)
	}
	for _, t := range host {
		b.Logf("host:    node %d: firstboot started %s, serving %s", t.node, t.firstboot, t.serving)
	}
	for _, t := range sys {
		b.Logf("systemd: node %d: firstboot started %s (PID 1 at %s), serving %s", t.node, t.firstboot, t.pid1, t.serving)
	}
	firstboot := func(t replacementTimes) time.Duration { return t.firstboot }
	serving := func(t replacementTimes) time.Duration { return t.serving }
	hf, sf := median(host, firstboot), median(sys, firstboot)
	hs, ss := median(host, serving), median(sys, serving)
	b.ReportMetric(sf.Seconds()*1e3, "systemd_firstboot_started_ms")
	b.ReportMetric(hf.Seconds()*1e3, "host_firstboot_started_ms")
	b.ReportMetric(float64(sf)/float64(hf), "systemd/host_firstboot")
	b.ReportMetric(ss.Seconds(), "systemd_replacement_serving_s")
	b.ReportMetric(hs.Seconds(), "host_replacement_serving_s")
	b.ReportMetric(float64(ss)/float64(hs), "systemd/host_serving")
	b.ReportMetric(0, "ns/op")
}

// median of one figure over the replacements.
func median[T any](ts []T, figure func(T) time.Duration) time.Duration {
	ds := make([]time.Duration, len(ts))
	for i, t := range ts {
		ds[i] = figure(t)
	}
	slices.Sort(ds)
	if len(ds)%2 == 1 {
		return ds[len(ds)/2]
	}
	return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
}

// replacementTimes are one replacement's figures, from its Launch call.
type replacementTimes struct {
	node      int
	firstboot time.Duration // zkaas-firstboot started
	serving   time.Duration // the replacement serves
	pid1      time.Duration // systemd started as PID 1 (systemd mode only)
}

// firstbootStamp is host mode's record of when the harness started
// zkaas-firstboot: stampingFirstboot's wrapper, and the file it writes.
type firstbootStamp struct{ wrapper, file string }

// stampingFirstboot wraps the test's zkaas-firstboot in a script that
// writes the wall clock (ns) to a file, then execs it: host mode has no
// unit whose start time could be asked, and Boot starts the binary itself.
// The script's own start (sh and date, a few ms) is counted as firstboot's.
// The file is on the host's /tmp, which host-mode instances share.
func stampingFirstboot(b *testing.B) *firstbootStamp {
	dir := b.TempDir()
	s := &firstbootStamp{wrapper: filepath.Join(dir, "zkaas-firstboot"), file: filepath.Join(dir, "started")}
	script := fmt.Sprintf("#!/bin/sh\ndate +%%s%%N > %s\nexec %s \"$@\"\n", s.file, binary)
	if err := os.WriteFile(s.wrapper, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	return s
}

// measureReplacements runs one mode: with stamp, host mode running the
// stamping wrapper; without, the cloud's options say systemd.
func measureReplacements(b *testing.B, opts localcloud.Options, stamp *firstbootStamp) []replacementTimes {
	b.Helper()
	ctx := b.Context()
	opts.EC2 = ec2sim.Options{Latency: benchLatency}
	opts.Logger = quietLog
	cloud, err := localcloud.New(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	// Closed when this mode is done, not at the benchmark's end (see
	// BenchmarkSystemdBoot); printing the journals needs the cloud, so a
	// failure prints them first.
	defer cloud.Close()
	eo := Options{Name: "bench", Nodes: nodes("us-east-1a", "us-east-1b", "us-east-1c"), LogDir: b.TempDir(), Log: quietLog}
	if stamp != nil {
		eo.Binary = stamp.wrapper
	}
	e, err := New(cloud, eo)
	if err != nil {
		b.Fatal(err)
	}
	var insts []*localcloud.Instance
	fail := func(format string, args ...any) {
		b.Helper()
		if opts.Boot == localcloud.BootSystemd {
			for _, inst := range insts {
				jctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				out, err := inst.Journal(jctx, "-o", "short-monotonic")
				cancel()
				b.Logf("journal of %s (%s):\n%s(err: %v)", inst.ID, inst.PrivateIP, out, err)
			}
		}
		b.Fatalf(format, args...)
	}
	booted, err := e.BootAll(ctx, []string{"us-east-1a", "us-east-1b", "us-east-1c"})
	for _, n := range booted {
		if n != nil {
			insts = append(insts, n.Instance)
		}
	}
	if err != nil {
		fail("%v boot: %v", opts.Boot, err)
	}
	if _, err := e.WaitServing(ctx, 90*time.Second, 1, 2, 3); err != nil {
		fail("%v boot: %v", opts.Boot, err)
	}
	var times []replacementTimes
	for _, id := range []int{2, 3, 1} {
		old := e.Node(id)
		// Terminate is a crash in both modes (Cloud.Crash).
		if err := e.Terminate(ctx, old); err != nil {
			fail("crash node %d: %v", id, err)
		}
		if stamp != nil {
			// Only the replacement's firstboot may leave a stamp.
			if err := os.Remove(stamp.file); err != nil {
				b.Fatal(err)
			}
		}
		launchMono := monotonic(b)
		launched := time.Now()
		repl, err := e.Boot(ctx, old.Instance.AZ)
		if err != nil {
			fail("%v replacement of node %d: %v", opts.Boot, id, err)
		}
		insts = append(insts, repl.Instance)
		t := replacementTimes{node: id}
		if stamp != nil {
			raw, err := os.ReadFile(stamp.file)
			if err != nil {
				b.Fatalf("host mode: no stamp from the replacement's firstboot: %v", err)
			}
			ns, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
			if err != nil {
				b.Fatalf("host mode: stamp %q: %v", raw, err)
			}
			t.firstboot = time.Unix(0, ns).Sub(launched)
		} else {
			// Monotonic timestamps in µs. nspawn gives the machine no
			// time namespace, so its CLOCK_MONOTONIC is the host's:
			// comparable with launchMono (checked: between it and now).
			started := machineMonotonic(b, repl.Instance, "show", "--property=ExecMainStartTimestampMonotonic", "--value", systemd.Firstboot)
			pid1 := machineMonotonic(b, repl.Instance, "show", "--property=UserspaceTimestampMonotonic", "--value")
			if now := monotonic(b); started <= launchMono || pid1 <= launchMono || started < pid1 || started > now {
				fail("systemd mode: launch at %s, PID 1 at %s, firstboot started at %s, now %s (monotonic): not in order", launchMono, pid1, started, now)
			}
			t.firstboot, t.pid1 = started-launchMono, pid1-launchMono
		}
		if _, err := e.WaitServing(ctx, 90*time.Second, 1, 2, 3); err != nil {
			fail("%v replacement of node %d: %v", opts.Boot, id, err)
		}
		t.serving = time.Since(launched)
		if repl.ID != id || repl.IP != old.IP {
			fail("%v replacement became node %d at %s, want node %d at %s", opts.Boot, repl.ID, repl.IP, id, old.IP)
		}
		times = append(times, t)
	}
	return times
}

// monotonic is the host's CLOCK_MONOTONIC.
func monotonic(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// machineMonotonic runs systemctl with args on the machine and reads its
// answer, a monotonic timestamp in µs.
func machineMonotonic(b *testing.B, inst *localcloud.Instance, args ...string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
	defer cancel()
	out, err := inst.Command(ctx, "systemctl", args...).Output()
	if err != nil {
		b.Fatalf("systemctl %s on %s: %v", strings.Join(args, " "), inst.ID, err)
	}
	us, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || us == 0 {
		b.Fatalf("systemctl %s on %s: %q: not a timestamp", strings.Join(args, " "), inst.ID, out)
	}
	return time.Duration(us) * time.Microsecond
}

// benchImage is image_test.go's bakedImage for a benchmark: the same
// options and image directory, so that one image (baked only when its
// inputs change) serves the tests, the demo and this benchmark.
func benchImage(b *testing.B) string {
	b.Helper()
	dir, err := localbake.ImageDir()
	if err != nil {
		b.Fatal(err)
	}
	cache, err := localbake.CacheDir()
	if err != nil {
		b.Fatal(err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.Context(), 15*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if _, _, err := localbake.EnsureImage(ctx, localbake.Options{
		Repo: repo, CacheDir: cache, OutDir: dir, PluginPath: b.TempDir(),
		EnsembleConfig: filepath.Join(repo, "ensemble/testdata/ensemble.yaml"),
		Output:         &out, Log: quietLog,
	}); err != nil {
		b.Fatalf("bake the image: %v\n%s", err, out.String())
	}
	rootfs, err := localcloud.ExtractImage(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	return rootfs
}

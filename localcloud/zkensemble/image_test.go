package zkensemble

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/localbake"
)

// bakedImage returns the root directory of the local bake's image
// (localbake.ImageDir), baking it first when there is none — the one thing
// that can make this test slow (minutes with a cold ~/.cache/zkaas, half a
// minute warm) — and extracting it (seconds, once per image).
func bakedImage(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the bake's build host and the local cloud")
	}
	dir, err := localbake.ImageDir()
	if err != nil {
		t.Fatal(err)
	}
	cache, err := localbake.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	var out bytes.Buffer
	img, baked, err := localbake.EnsureImage(ctx, localbake.Options{
		Repo: repo, CacheDir: cache, OutDir: dir, PluginPath: t.TempDir(),
		EnsembleConfig: filepath.Join(repo, "ensemble/testdata/ensemble.yaml"),
		Output:         &out, Log: quietLog,
	})
	if err != nil {
		t.Fatalf("bake the image: %v\n%s", err, out.String())
	}
	rootfs, err := localcloud.ExtractImage(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s (sha256 %.12s, made %s, baked now: %v) at %s in %s", dir, img.SHA256, img.Created.Format(time.RFC3339), baked, rootfs, time.Since(start).Round(time.Millisecond))
	return rootfs
}

// sameFile reports whether two paths are one file (device and inode).
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}

// inImage returns the host path of p on the instance, every link resolved
// inside the instance's root (the image's /usr/bin/java is a chain of
// absolute links).
func inImage(t *testing.T, inst *localcloud.Instance, p string) string {
	t.Helper()
	f, err := inst.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return fmt.Sprintf("/proc/self/fd/%d", f.Fd())
}

// uidOf is a process's real uid.
func uidOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "Uid:" {
			return f[1]
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return ""
}

// checkBakedZooKeeper proves the node's ZooKeeper is the image's, started
// as the image's zookeeper.service and drop-in say: inside the instance's
// root, the image's java (/usr/bin/java through /etc/alternatives), the
// drop-in's classpath with the image's zookeeper.jar open, the rendered
// heap, as the image's zookeeper user.
func checkBakedZooKeeper(t *testing.T, n *Node) {
	t.Helper()
	inst, pid := n.Instance, n.ZK.PID
	proc := fmt.Sprintf("/proc/%d", pid)
	if !sameFile(t, proc+"/root", inst.Path("/")) {
		t.Errorf("node %d: ZooKeeper (pid %d) does not run in the instance's root", n.ID, pid)
	}
	if !sameFile(t, proc+"/exe", inImage(t, inst, "/usr/bin/java")) {
		t.Errorf("node %d: ZooKeeper's program is not the image's /usr/bin/java", n.ID)
	}
	raw, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
	want := []string{"/usr/bin/java", "-Xms256m", "-Xmx256m", "-XX:+ExitOnOutOfMemoryError",
		"-cp", "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar",
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", "/etc/zkaas/zookeeper/zoo.cfg"}
	if !slices.Equal(argv, want) {
		t.Errorf("node %d: ZooKeeper's command line\n got %q\nwant %q (the image's unit, its distro drop-in, java.env)", n.ID, argv, want)
	}
	jar := mustStat(t, inImage(t, inst, "/usr/share/java/zookeeper.jar"))
	fds, _ := filepath.Glob(proc + "/fd/*")
	if !slices.ContainsFunc(fds, func(fd string) bool { fi, err := os.Stat(fd); return err == nil && os.SameFile(fi, jar) }) {
		t.Errorf("node %d: ZooKeeper has not opened the image's zookeeper.jar", n.ID)
	}
	zk, err := lookupUser(inst.FS(), "zookeeper")
	if err != nil {
		t.Fatal(err)
	}
	if got := uidOf(t, pid); got != zk.uid {
		t.Errorf("node %d: ZooKeeper runs as uid %s, want the image's zookeeper (%s)", n.ID, got, zk.uid)
	}
}

// TestBootFromImage: the local cloud boots instances from the image the
// bake produced, and they become a ZooKeeper ensemble with the image's
// parts — the baked zkaas-firstboot (with the config installed per
// instance, as user data would, over the baked one) and ZooKeeper started
// from the baked unit — then a node killed with -9 comes back as itself.
// Afterwards nothing of the instances is left.
func TestBootFromImage(t *testing.T) {
	rootfs := bakedImage(t)
	ctx := t.Context()
	state := t.TempDir()
	var pids []int
	// Registered before the cloud's Close, so it runs after it.
	t.Cleanup(func() { checkNothingLeft(t, state, pids) })
	cloud, err := localcloud.New(context.Background(), localcloud.Options{
		EC2: ec2sim.Options{Latency: latency, Logger: quietLog}, RootFS: rootfs, StateDir: state, Logger: quietLog,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cloud.Close(); err != nil {
			t.Errorf("close cloud: %v", err)
		}
	})
	e, err := New(cloud, Options{Name: "img", Nodes: nodes("us-east-1a", "us-east-1b", "us-east-1c"), LogDir: t.TempDir(), Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, e)
		}
	})

	start := time.Now()
	booted, err := e.BootAll(ctx, []string{"us-east-1a", "us-east-1b", "us-east-1c"})
	if err != nil {
		t.Fatal(err)
	}
	modes, err := e.WaitServing(ctx, 60*time.Second, 1, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quorum from the image in %s: %s", time.Since(start).Round(time.Millisecond), describe(modes))
	checkOncePerSlot(t, e, booted, 3)

	baked, err := os.ReadFile(filepath.Join(rootfs, ensemble.DefaultPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range booted {
		pids = append(pids, n.ZK.PID)
		checkBakedZooKeeper(t, n)
		// The config is the one installed on the instance, not the
		// baked one, and the image's lower layer is untouched.
		if got, err := os.ReadFile(n.Instance.Path(ensemble.DefaultPath)); err != nil || !bytes.Equal(got, e.Config()) || bytes.Equal(got, baked) {
			t.Errorf("node %d: %s is not the installed config: %v\n%s", n.ID, ensemble.DefaultPath, err, got)
		}
		// firstboot resolved the zookeeper user in the image's
		// /etc/passwd: myid on the volume is the image's user's.
		zk, err := lookupUser(n.Instance.FS(), "zookeeper")
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(n.Instance.Path("/var/lib/zookeeper/data/myid")); err != nil || fmt.Sprint(fi.Sys().(*syscall.Stat_t).Uid) != zk.uid {
			t.Errorf("node %d: myid %v, want it owned by the image's zookeeper (uid %s)", n.ID, err, zk.uid)
		}
	}
	if after, err := os.ReadFile(filepath.Join(rootfs, ensemble.DefaultPath)); err != nil || !bytes.Equal(after, baked) {
		t.Errorf("the image's %s changed under the instances: %v", ensemble.DefaultPath, err)
	}

	// The baked zkaas-firstboot is what runs: caught while it waits for
	// its config on stdin.
	checkBakedFirstboot(t, e.Node(3).Instance, e.Config())

	writeZnodes(t, e, "10.0.1.11", 100)

	// kill -9 node 2's instance; its replacement, from the same image,
	// becomes node 2 again with its data.
	old := e.Node(2)
	if err := e.Terminate(ctx, old); err != nil {
		t.Fatal(err)
	}
	repl, err := e.Boot(ctx, "us-east-1b")
	if err != nil {
		t.Fatal(err)
	}
	pids = append(pids, repl.ZK.PID)
	if repl.ID != 2 || repl.IP != old.IP || repl.Report.Claim.Volume != old.Report.Claim.Volume || repl.Report.Disk.Formatted {
		t.Fatalf("replacement %s: node %d %s %s formatted=%v, want node 2 %s %s unformatted", repl.Instance.ID, repl.ID, repl.IP,
			repl.Report.Claim.Volume, repl.Report.Disk.Formatted, old.IP, old.Report.Claim.Volume)
	}
	if modes, err = e.WaitServing(ctx, 60*time.Second, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	checkBakedZooKeeper(t, repl)
	checkZnodes(t, e, repl.IP, 100)
	t.Logf("replacement %s: %s, synced by %s", repl.Instance.ID, modes[2], repl.Sync())
	if s := repl.Sync(); s != "DIFF" && modes[2] != "leader" {
		t.Errorf("replacement synced by %q, want DIFF (its own data, no snapshot transfer)", s)
	}
}

// checkBakedFirstboot runs zkaas-firstboot (the default Binary) on the
// instance with its config on stdin and, while it waits for it, checks
// that the running program is the image's /usr/local/bin/zkaas-firstboot
// inside the instance's root.
func checkBakedFirstboot(t *testing.T, inst *localcloud.Instance, cfg []byte) {
	t.Helper()
	cmd := inst.Command(t.Context(), FirstbootPath, "validate", "-config", "/dev/stdin")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	p, err := inst.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	baked := inImage(t, inst, FirstbootPath)
	exe := fmt.Sprintf("/proc/%d/exe", p.PID)
	// nsenter, then chroot, then zkaas-firstboot: exec replaces each.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if fi, err := os.Stat(exe); err == nil && os.SameFile(fi, mustStat(t, baked)) {
			break
		}
		if time.Now().After(deadline) {
			target, _ := os.Readlink(exe)
			t.Fatalf("pid %d runs %s, not the image's %s", p.PID, target, FirstbootPath)
		}
	}
	if !sameFile(t, fmt.Sprintf("/proc/%d/root", p.PID), inst.Path("/")) {
		t.Errorf("zkaas-firstboot (pid %d) does not run in the instance's root", p.PID)
	}
	stdin.Write(cfg)
	stdin.Close()
	if err := p.Wait(); err != nil || !strings.Contains(stdout.String(), "ok (3 nodes)") {
		t.Errorf("baked zkaas-firstboot validate: %v: %s%s", err, stdout.String(), stderr.String())
	}
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// checkNothingLeft: once the cloud is closed, the instances' processes are
// gone, no mount namespace anywhere still holds an instance's root overlay
// (that would be a leaked namespace and mounts), no loop device is left on
// the volumes' files, and this process's run directories are removed.
func checkNothingLeft(t *testing.T, state string, pids []int) {
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still runs", pid)
		}
	}
	upper := fmt.Sprintf("upperdir=%s/%d-", localcloud.RunRoot, os.Getpid())
	infos, _ := filepath.Glob("/proc/[0-9]*/mountinfo")
	for _, info := range infos {
		b, err := os.ReadFile(info)
		if err == nil && bytes.Contains(b, []byte(upper)) {
			t.Errorf("%s still has an instance's root mounted", info)
		}
	}
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), state+"/") {
			t.Errorf("loop device left: %s -> %s", f, strings.TrimSpace(string(b)))
		}
	}
	if runs, _ := filepath.Glob(fmt.Sprintf("%s/%d-*", localcloud.RunRoot, os.Getpid())); len(runs) > 0 {
		t.Errorf("run directories left: %v", runs)
	}
}

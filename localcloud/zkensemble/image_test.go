package zkensemble

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/systemd"
	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/localbake"
)

// image is the package's one image: baked (or found unchanged) and
// extracted once, for every test that boots machines.
var image struct {
	once   sync.Once
	rootfs string
	pinned string // pinImage's directory, removed by TestMain
	skip   string
	err    error
}

// sharedImage returns the root directory of the local bake's image
// (localbake.ImageDir), baking it first when there is none or its inputs
// changed — the one thing that can make these tests slow (minutes with a
// cold ~/.cache/zkaas, seconds warm) — and extracting it (seconds, once per
// image). The options are the demo's and localcloud's tests', so that one
// image serves them all.
func sharedImage(t *testing.T) string {
	t.Helper()
	image.once.Do(func() { image.rootfs, image.skip, image.err = bakeImage() })
	if image.skip != "" {
		t.Skip(image.skip)
	}
	if image.err != nil {
		t.Fatal(image.err)
	}
	return image.rootfs
}

func bakeImage() (rootfs, skip string, err error) {
	if os.Geteuid() != 0 {
		return "", "needs root: the bake's build host and the local cloud", nil
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		return "", "needs systemd-nspawn (Debian systemd-container; go tool mage deps installs it)", nil
	}
	dir, err := localbake.ImageDir()
	if err != nil {
		return "", "", err
	}
	cache, err := localbake.CacheDir()
	if err != nil {
		return "", "", err
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		return "", "", err
	}
	plugins, err := os.MkdirTemp("", "zkaas-ensemble-plugins-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(plugins)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	var out bytes.Buffer
	img, baked, err := localbake.EnsureImage(ctx, localbake.Options{
		Repo: repo, CacheDir: cache, OutDir: dir, PluginPath: plugins,
		EnsembleConfig: filepath.Join(repo, "ensemble/testdata/ensemble.yaml"),
		Output:         &out, Log: quietLog,
	})
	if err != nil {
		return "", "", fmt.Errorf("bake the image: %w\n%s", err, out.String())
	}
	if rootfs, err = localcloud.ExtractImage(ctx, dir); err != nil {
		return "", "", err
	}
	if rootfs, err = pinImage(ctx, rootfs); err != nil {
		return "", "", err
	}
	fmt.Fprintf(os.Stderr, "zkensemble: image %s (sha256 %.12s, made %s, baked now: %v) at %s in %s\n", dir, img.SHA256,
		img.Created.Format(time.RFC3339), baked, rootfs, time.Since(start).Round(time.Millisecond))
	return rootfs, "", nil
}

// pinImage hard-links the extracted image into a directory of this test
// process's (removed by TestMain): another run on the machine that bakes
// a newer image replaces the shared extraction, and a cloud's RootFS must
// not change while it runs — its groups launch machines from it for the
// whole test. Links, not copies: seconds, no space.
func pinImage(ctx context.Context, rootfs string) (string, error) {
	dir, err := os.MkdirTemp("", "zkaas-ensemble-image-")
	if err != nil {
		return "", err
	}
	image.pinned = dir
	pinned := filepath.Join(dir, "rootfs")
	if out, err := exec.CommandContext(ctx, "cp", "-al", rootfs, pinned).CombinedOutput(); err != nil {
		return "", fmt.Errorf("pin the image %s: %w: %s", rootfs, err, out)
	}
	return pinned, nil
}

// sameFile reports whether two paths are one file (device and inode).
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	return os.SameFile(mustStat(t, a), mustStat(t, b))
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
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

// ids is a process's real uid and gid.
func ids(t *testing.T, pid int) (uid, gid string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) > 1 && f[0] == "Uid:":
			uid = f[1]
		case len(f) > 1 && f[0] == "Gid:":
			gid = f[1]
		}
	}
	if uid == "" || gid == "" {
		t.Fatalf("no Uid/Gid in /proc/%d/status", pid)
	}
	return uid, gid
}

// on runs a command on the machine and returns its trimmed output.
func on(t *testing.T, inst *localcloud.Instance, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := inst.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("on %s: %s %q: %v: %s", inst.ID, name, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// zooKeeperPID is the node's ZooKeeper, found through zookeeper.service's
// MainPID, waiting for it to have one.
func zooKeeperPID(t *testing.T, e *Ensemble, n *Node) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		pid, err := e.ZooKeeperPID(ctx, n)
		if err == nil {
			return pid
		}
		select {
		case <-ctx.Done():
			t.Fatal(err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkBakedZooKeeper proves the node's ZooKeeper is the one the image's
// zookeeper.service started: its MainPID runs inside the machine's root the
// image's java (/usr/bin/java through /etc/alternatives), with the distro
// drop-in's classpath and the image's zookeeper.jar open, the rendered
// heap, as the image's zookeeper user.
func checkBakedZooKeeper(t *testing.T, e *Ensemble, n *Node) int {
	t.Helper()
	inst, pid := n.Instance, zooKeeperPID(t, e, n)
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
		// GC logging is on by default, bounded, on the data volume.
		"-Xlog:gc*:file=/var/lib/zookeeper/logs/gc.log:time,uptime,level,tags:filecount=5,filesize=20m",
		// The jar, a logger, and the Netty jars Debian's manifest leaves
		// out (roles/zookeeper/files/distro.conf says why).
		"-cp", "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/netty-transport-native-unix-common.jar",
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", "/etc/zkaas/zookeeper/zoo.cfg"}
	if !slices.Equal(argv, want) {
		t.Errorf("node %d: ZooKeeper's command line\n got %q\nwant %q (the image's unit, its distro drop-in, java.env)", n.ID, argv, want)
	}
	jar := mustStat(t, inImage(t, inst, "/usr/share/java/zookeeper.jar"))
	fds, _ := filepath.Glob(proc + "/fd/*")
	if !slices.ContainsFunc(fds, func(fd string) bool { fi, err := os.Stat(fd); return err == nil && os.SameFile(fi, jar) }) {
		t.Errorf("node %d: ZooKeeper has not opened the image's zookeeper.jar", n.ID)
	}
	if uid, _ := ids(t, pid); uid != on(t, inst, "id", "-u", "zookeeper") {
		t.Errorf("node %d: ZooKeeper runs as uid %s, not as the image's zookeeper", n.ID, uid)
	}
	return pid
}

// restartSecDropIn shortens the wait between zookeeper.service's automatic
// restarts for the crash-loop check, which would otherwise wait the unit's
// RestartSec (10 s) StartLimitBurst times; Restart= and the start limit
// stay the unit's own (checked against a node without it).
const restartSecDropIn = "[Service]\nRestartSec=1s\n"

// TestBootFromImage: the local cloud boots machines from the image the bake
// produced, and systemd on them makes a ZooKeeper ensemble of the image's
// parts — the baked zkaas-firstboot with the config installed per instance
// over the baked one, ZooKeeper started by the baked unit under its
// sandbox. Under that sandbox ZooKeeper can write its data and log
// directories and nothing else; `systemctl restart` restarts it cleanly;
// killed -9 it is restarted, and past the unit's StartLimitBurst it stays
// failed. Afterwards nothing of the
// machines is left.
func TestBootFromImage(t *testing.T) {
	state := t.TempDir()
	var pids []int
	// Registered before the cloud's Close, so it runs after it.
	t.Cleanup(func() { checkNothingLeft(t, state, pids) })
	cloud := newCloud(t, onMachines, ec2sim.Options{}, state)
	rootfs := cloud.RootFS()
	e, err := New(cloud, Options{Name: "img", Nodes: nodes("us-east-1a", "us-east-1b", "us-east-1c"), LogDir: t.TempDir(), Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	// Node 3's machine gets the crash loop's drop-in; the three boot at
	// once.
	dropIn := filepath.Join(systemd.UnitDir, zookeeperUnit+".d", "90-test-restart.conf")
	start := time.Now()
	booted := make([]*Node, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		var files map[string][]byte
		if i == 2 {
			files = map[string][]byte{dropIn: []byte(restartSecDropIn)}
		}
		wg.Go(func() { booted[i], errs[i] = e.bootMachine(ctx, az, files) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
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
		pids = append(pids, checkBakedZooKeeper(t, e, n))
		// The config is the one installed on the instance, not the
		// baked one, and the image's lower layer is untouched.
		if got, err := os.ReadFile(n.Instance.Path(ensemble.DefaultPath)); err != nil || !bytes.Equal(got, e.Config()) || bytes.Equal(got, baked) {
			t.Errorf("node %d: %s is not the installed config: %v\n%s", n.ID, ensemble.DefaultPath, err, got)
		}
		// firstboot resolved the zookeeper user in the image's
		// /etc/passwd: myid on the volume is the image's user's.
		if owner, zk := on(t, n.Instance, "stat", "-c", "%u", "/var/lib/zookeeper/data/myid"), on(t, n.Instance, "id", "-u", "zookeeper"); owner != zk {
			t.Errorf("node %d: myid owned by uid %s, want the image's zookeeper (uid %s)", n.ID, owner, zk)
		}
		if myid, err := n.ReadFile("/var/lib/zookeeper/data/myid"); err != nil || strings.TrimSpace(string(myid)) != strconv.Itoa(n.ID) {
			t.Errorf("node %d: myid %q, %v", n.ID, myid, err)
		}
		summary, err := e.FirstbootSummary(ctx, n)
		if want := fmt.Sprintf("node %d (%s, %s): ", n.ID, n.IP, n.Report.Claim.Volume); err != nil || !strings.HasPrefix(summary, want) || !strings.Contains(summary, " change(s) in ") {
			t.Errorf("node %d: firstboot summary %q, %v; want %q…", n.ID, summary, err, want)
		}
		units, err := e.Units(ctx, n)
		if err != nil || units[firstbootUnit] != "active" || units[zookeeperUnit] != "active" {
			t.Errorf("node %d: units %v, %v", n.ID, units, err)
		}
		// Outside an Auto Scaling group the ready unit waits for nothing
		// and tells no one, and succeeds.
		if s, err := n.Instance.WaitUnit(ctx, "zkaas-ready.service", "active", "failed"); err != nil || s != "active" {
			t.Errorf("node %d: zkaas-ready.service %s, %v", n.ID, s, err)
		} else if j, err := n.Instance.Journal(ctx, "-u", "zkaas-ready.service", "-o", "cat"); err != nil || !bytes.Contains(j, []byte("not in an auto scaling group: nothing to tell")) {
			t.Errorf("node %d: zkaas-ready's journal lacks 'nothing to tell' (%v):\n%s", n.ID, err, j)
		}
		checkSystem(t, n.Instance)
	}
	if after, err := os.ReadFile(filepath.Join(rootfs, ensemble.DefaultPath)); err != nil || !bytes.Equal(after, baked) {
		t.Errorf("the image's %s changed under the instances: %v", ensemble.DefaultPath, err)
	}
	writeZnodes(t, e, "10.0.1.11", 100)

	t.Run("sandbox", func(t *testing.T) { checkSandbox(t, e, e.Node(1)) })
	t.Run("restart", func(t *testing.T) {
		// systemctl restart: a clean stop (the JVM's exit 143 on SIGTERM
		// is a success), a new process, back in the quorum.
		n := e.Node(2)
		before := zooKeeperPID(t, e, n)
		if err := e.RestartZooKeeper(ctx, n); err != nil {
			t.Fatal(err)
		}
		if after := zooKeeperPID(t, e, n); after == before {
			t.Errorf("ZooKeeper of node 2 still pid %d after the restart", after)
		}
		if _, err := e.WaitServing(ctx, 60*time.Second, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		checkZnodes(t, e, n.IP, 100)
		checkSystem(t, n.Instance)
	})
	t.Run("crash loop", func(t *testing.T) { checkCrashLoop(t, e, e.Node(3), e.Node(1)) })

	// Nodes 1 and 2 still serve the data; only node 3's ZooKeeper failed.
	checkZnodes(t, e, "10.0.2.11", 100)
	checkSystem(t, e.Node(1).Instance)
	checkSystem(t, e.Node(2).Instance)
}

// checkSandbox: ZooKeeper's own mount namespace, as zookeeper.service's
// sandbox made it (ProtectSystem=strict, ReadWritePaths= the volume), lets
// its user write the data and data log directories on the volume and
// nobody — root included — write the rest of the system. Writes are tried
// from inside that namespace (nsenter into the MainPID's), as ZooKeeper's
// user and as root; the machine's own namespace, where /etc is writable,
// is the control.
func checkSandbox(t *testing.T, e *Ensemble, n *Node) {
	inst := n.Instance
	p := props(t, inst, zookeeperUnit, "MainPID", "ProtectSystem", "ReadWritePaths", "User")
	if p["ProtectSystem"] != "strict" || p["ReadWritePaths"] != "/var/lib/zookeeper" || p["User"] != "zookeeper" {
		t.Errorf("zookeeper.service's effective settings %v: want ProtectSystem=strict, ReadWritePaths=/var/lib/zookeeper, User=zookeeper", p)
	}
	mainPID := p["MainPID"]
	uid, gid := ids(t, zooKeeperPID(t, e, n))
	const probe = "zkaas-sandbox-probe"
	tests := []struct {
		name    string
		target  string // a PID on the machine whose mount namespace to write in
		root    bool   // as root rather than ZooKeeper's user
		dir     string
		wantErr string // "" for a write that must succeed
	}{
		{"data dir", mainPID, false, "/var/lib/zookeeper/data", ""},
		{"data log dir", mainPID, false, "/var/lib/zookeeper/datalog", ""},
		{"/etc as zookeeper", mainPID, false, "/etc", "Read-only file system"},
		{"/etc as root", mainPID, true, "/etc", "Read-only file system"},
		{"/usr/local as root", mainPID, true, "/usr/local", "Read-only file system"},
		{"/var/lib off the volume as root", mainPID, true, "/var/lib", "Read-only file system"},
		{"/etc outside the sandbox (control)", "1", true, "/etc", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--target=" + tt.target, "--mount"}
			if !tt.root {
				args = append(args, "--setuid="+uid, "--setgid="+gid)
			}
			f := tt.dir + "/" + probe
			args = append(args, "--", "sh", "-c", `touch "$1" && rm "$1"`, "sh", f)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			out, err := inst.Command(ctx, "nsenter", args...).CombinedOutput()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("write %s: %v: %s", f, err, out)
			case tt.wantErr != "" && err == nil:
				t.Errorf("write %s succeeded, want %q", f, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(string(out), tt.wantErr):
				t.Errorf("write %s: %v: %s; want %q", f, err, out, tt.wantErr)
			}
		})
	}
}

// checkCrashLoop kills node n's ZooKeeper (-9 of zookeeper.service's
// MainPID) again and again: Restart=on-failure starts it anew each time,
// until the start that would exceed StartLimitBurst within
// StartLimitIntervalSec; then systemd refuses it and the unit stays
// failed. control is a node without the test's drop-in: the restart
// policy is the unit's own.
func checkCrashLoop(t *testing.T, e *Ensemble, n, control *Node) {
	inst := n.Instance
	policy := []string{"Restart", "StartLimitBurst", "StartLimitIntervalUSec", "RestartUSec"}
	got, shipped := props(t, inst, zookeeperUnit, policy...), props(t, control.Instance, zookeeperUnit, policy...)
	for _, k := range policy[:3] {
		if got[k] != shipped[k] {
			t.Errorf("%s=%s on node %d, %s on node %d: the drop-in changed more than RestartSec", k, got[k], n.ID, shipped[k], control.ID)
		}
	}
	if got["Restart"] != "on-failure" || got["RestartUSec"] != "1s" {
		t.Fatalf("zookeeper.service Restart=%s RestartUSec=%s, want on-failure and the drop-in's 1s", got["Restart"], got["RestartUSec"])
	}
	burst, err := strconv.Atoi(got["StartLimitBurst"])
	if err != nil || burst < 1 {
		t.Fatalf("StartLimitBurst %q", got["StartLimitBurst"])
	}
	t.Logf("zookeeper.service: Restart=%s, StartLimitBurst=%d in %s; shipped RestartSec %s (here %s)",
		got["Restart"], burst, got["StartLimitIntervalUSec"], shipped["RestartUSec"], got["RestartUSec"])

	// The boot's start was the first of the burst: burst kills, each
	// followed by a start, the last of which systemd refuses.
	start := time.Now()
	prev := 0
	for kill := 1; kill <= burst; kill++ {
		pid := zooKeeperPID(t, e, n)
		// Until systemd has reaped the last one, MainPID may still name it.
		for deadline := time.Now().Add(30 * time.Second); pid == prev; pid = zooKeeperPID(t, e, n) {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: ZooKeeper of node %d still pid %d", kill, n.ID, pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 ZooKeeper (pid %d) of node %d: %v", pid, n.ID, err)
		}
		prev = pid
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if s, err := inst.WaitUnit(ctx, zookeeperUnit, "failed"); err != nil {
		t.Fatalf("after %d kills: %s %v", burst, s, err)
	}
	t.Logf("%d kills in %s: zookeeper.service failed", burst, time.Since(start).Round(time.Millisecond))
	// It stays failed: no restart comes after a few RestartSec.
	time.Sleep(3 * time.Second)
	p := props(t, inst, zookeeperUnit, "ActiveState", "Result", "MainPID", "NRestarts")
	if p["ActiveState"] != "failed" || p["MainPID"] != "0" {
		t.Errorf("zookeeper.service past its start limit: %v; want failed, no process", p)
	}
	// systemd 252 keeps the Result of the failure that asked for the
	// restart ("signal"); that the start limit refused it, PID 1 says.
	j, err := inst.Journal(ctx, "--boot=0", "--unit="+zookeeperUnit, "--output=cat")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), "Start request repeated too quickly") {
		t.Errorf("no start-limit refusal in %s's journal (Result=%s)", zookeeperUnit, p["Result"])
	}
	if r, _ := strconv.Atoi(p["NRestarts"]); r < burst-1 {
		t.Errorf("NRestarts %s, want at least %d", p["NRestarts"], burst-1)
	}
	checkSystem(t, inst, zookeeperUnit)
}

// checkNothingLeft: once the cloud is closed, the ZooKeepers are gone, no
// mount namespace anywhere still holds an instance's root overlay (that
// would be a leaked namespace and mounts), no loop device is left on the
// volumes' files, and this process's run directories are removed.
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

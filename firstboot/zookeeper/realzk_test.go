package zookeeper

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
)

// The Debian zookeeper package (3.8) ships no systemd unit and no java.env
// handling for systemd: the server is QuorumPeerMain in zookeeper.jar, whose
// manifest Class-Path names its dependencies but no SLF4J binding, so
// slf4j-simple (libslf4j-java) is added to get the log on stderr.
var debianClasspath = []string{"/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"}

// TestRealZooKeeperEmptyTree starts the real ZooKeeper from a rendered
// 1-node ensemble (standaloneEnabled=false, so it runs the quorum code a
// replacement node runs) inside a fresh network namespace, as the zookeeper
// user when it exists.
func TestRealZooKeeperEmptyTree(t *testing.T) {
	requireRoot(t)
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("java not installed (apt-get install zookeeper)")
	}
	for _, jar := range debianClasspath {
		if _, err := os.Stat(jar); err != nil {
			t.Skipf("%s missing: apt-get install zookeeper libslf4j-java", jar)
		}
	}
	ns := newTestNS(t)
	self := netip.MustParseAddr("127.0.0.1")

	cfg := ensemble.Default()
	cfg.Ensemble = "zk-real"
	cfg.Nodes = []ensemble.Node{{ID: 1, AZ: "us-east-1a", IP: self}}
	cfg.ZooKeeper.TickTime = 200
	cfg.ZooKeeper.Heap = "128m"
	// Ports are free: nothing else runs in the namespace.
	cfg.ZooKeeper.ClientPort, cfg.ZooKeeper.QuorumPort, cfg.ZooKeeper.ElectionPort = 42181, 42888, 43888
	// zookeeper.extra must reach the server (conf shows what it applied),
	// and the GC log must not stop the JVM from starting.
	cfg.ZooKeeper.Extra = ensemble.Extra{"maxClientCnxns": "17", "minSessionTimeout": "800", "maxSessionTimeout": "9000", "jute.maxbuffer": "2097152"}
	cfg.ZooKeeper.FourLetterWords = []string{"srvr", "conf"}

	zk := Owner{os.Getuid(), os.Getgid()}
	if o, err := LookupOwner("zookeeper"); err == nil {
		zk = o
	}
	// The zookeeper user must be able to reach its dirs under the test's
	// private 0700 temp dirs.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mount, 0o755); err != nil {
		t.Fatal(err)
	}
	layout := DefaultLayout(mount)
	layout.ConfDir = filepath.Join(dir, "conf")
	files, err := Render(cfg, 1, self, layout, Material{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(files, zk); err != nil {
		t.Fatal(err)
	}
	jvmFlags := strings.Fields(envFile(t, files.JavaEnv)["SERVER_JVMFLAGS"])
	if len(jvmFlags) == 0 {
		t.Fatalf("java.env sets no SERVER_JVMFLAGS:\n%s", files.JavaEnv)
	}
	client := netip.AddrPortFrom(self, uint16(cfg.ZooKeeper.ClientPort))
	mode := func() (string, error) {
		return Prober{PerPeerTimeout: time.Second, Dial: ns.dial}.srvr(t.Context(), client)
	}

	// start runs ZooKeeper the way zookeeper.service does — java, the
	// java.env flags, QuorumPeerMain, zoo.cfg — and returns its log and a
	// stop function; Cleanup stops it by PID if the test does not.
	start := func(name string) (logPath string, stop func()) {
		logPath = filepath.Join(dir, name+".log")
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		defer logFile.Close()
		args := append(append([]string{}, jvmFlags...),
			"-XX:-UsePerfData", // no hsperfdata files left in the host's /tmp
			"-cp", strings.Join(debianClasspath, ":"),
			"org.apache.zookeeper.server.quorum.QuorumPeerMain", layout.ZooCfgPath())
		cmd := exec.Command(java, args...)
		cmd.Dir = layout.ConfDir
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(zk.UID), Gid: uint32(zk.GID)}}
		// Started on a thread inside the namespace, the JVM lives there.
		if err := ns.Do(cmd.Start); err != nil {
			t.Fatalf("start ZooKeeper: %v", err)
		}
		var once sync.Once
		stop = func() {
			once.Do(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			})
		}
		t.Cleanup(stop)
		return logPath, stop
	}
	waitFor := func(what string, timeout time.Duration, cond func() bool, logPath string) {
		t.Helper()
		for deadline := time.Now().Add(timeout); !cond(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(logPath)
				t.Fatalf("no %s after %s; ZooKeeper log:\n%s", what, timeout, tail(log, 40))
			}
		}
	}

	// (a) Empty tree, no marker: ZooKeeper loads it untrusted and the only
	// voter stays LOOKING — it never serves an empty tree as the truth.
	logPath, stop := start("empty")
	logHas := func(s string) func() bool {
		return func() bool { b, _ := os.ReadFile(logPath); return bytes.Contains(b, []byte(s)) }
	}
	waitFor("untrusted empty tree", 30*time.Second, logHas("Unexpected empty data tree, setting zxid to -1"), logPath)
	waitFor("election time-out", 30*time.Second, logHas("Notification time out"), logPath)
	for range 10 { // 2 s = 10 ticks
		if m, err := mode(); err != nil || m != ModeNotServing {
			t.Fatalf("srvr without the marker = %q, %v; want %q", m, err, ModeNotServing)
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	if has, err := HasData(layout); err != nil || has {
		t.Fatalf("after the untrusted start HasData = %v, %v; want false (no snapshot of an empty tree)", has, err)
	}

	// (b) With the marker where FileTxnSnapLog looks (dataLogDir), the empty
	// tree is trusted once: the node leads, and the marker is consumed. Run
	// 1 left currentEpoch=-1, which alone would make ZooKeeper exit ("The
	// current epoch ... is older than the last zxid, 0"): SetInitializeMarker
	// must clear it.
	if _, err := SetInitializeMarker(layout, true, zk); err != nil {
		t.Fatal(err)
	}
	logPath, stop = start("initialized")
	waitFor("leader", 30*time.Second, func() bool { m, _ := mode(); return m == ModeLeader }, logPath)
	if !logHas("Initialize file found")() {
		t.Error("ZooKeeper did not log that it found the initialize file")
	}
	conf := fourLetterWord(t, ns, client, "conf")
	for _, want := range []string{"maxClientCnxns=17", "minSessionTimeout=800", "maxSessionTimeout=9000"} {
		if !strings.Contains(conf, want) {
			t.Errorf("conf does not show %s (zookeeper.extra did not reach the server):\n%s", want, conf)
		}
	}
	if st, err := os.Stat(filepath.Join(layout.LogDir, "gc.log")); err != nil || st.Size() == 0 {
		t.Errorf("GC log under %s: %v (want a non-empty gc.log)", layout.LogDir, err)
	}
	stop()
	if _, err := os.Stat(layout.InitializePath()); !os.IsNotExist(err) {
		t.Errorf("initialize marker still present after ZooKeeper started (stat: %v)", err)
	}
	if has, err := HasData(layout); err != nil || !has {
		t.Errorf("after the trusted start HasData = %v, %v; want true (snapshot.0)", has, err)
	}
}

// fourLetterWord sends a four-letter word and returns the whole answer.
func fourLetterWord(t *testing.T, ns testNS, addr netip.AddrPort, word string) string {
	t.Helper()
	c, err := ns.dial(t.Context(), "tcp", addr.String())
	if err != nil {
		t.Fatalf("%s: %v", word, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(word)); err != nil {
		t.Fatalf("%s: %v", word, err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%s: %v", word, err)
	}
	return string(b)
}

// envFile parses KEY="value" lines the way systemd's EnvironmentFile= does
// for the subset java.env uses.
func envFile(t *testing.T, data []byte) map[string]string {
	t.Helper()
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("java.env line %q is not KEY=value", line)
		}
		env[k] = strings.Trim(v, `"`)
	}
	return env
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

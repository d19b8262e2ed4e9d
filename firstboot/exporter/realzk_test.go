package exporter

import (
	"context"
	"net"
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
	"github.com/zkaas/zkaas/firstboot/zookeeper"
	"github.com/zkaas/zkaas/localcloud/netnstest"
)

// debianClasspath: Debian's zookeeper package (3.8) is QuorumPeerMain in
// zookeeper.jar (its manifest names the dependencies) plus an SLF4J binding.
var debianClasspath = []string{"/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"}

// TestRealZooKeeper scrapes a real ZooKeeper (Debian's 3.8, a one-node
// ensemble rendered by zkaas with the initialize marker, so it leads) in a
// namespace of its own: zk_up 1, the leader's mode and figures; then, with
// the server stopped, zk_up 0 and the zkaas figures still there.
func TestRealZooKeeper(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("java not installed (apt-get install zookeeper)")
	}
	for _, jar := range debianClasspath {
		if _, err := os.Stat(jar); err != nil {
			t.Skipf("%s missing: apt-get install zookeeper libslf4j-java", jar)
		}
	}
	ns := newNS(t)
	self := netip.MustParseAddr("127.0.0.1")
	cfg := ensemble.Default()
	cfg.Ensemble = "zk-metrics"
	cfg.Nodes = []ensemble.Node{{ID: 1, AZ: "us-east-1a", IP: self}}
	cfg.ZooKeeper.TickTime = 200
	cfg.ZooKeeper.Heap = "128m"
	cfg.ZooKeeper.GCLog = false
	cfg.ZooKeeper.ClientPort, cfg.ZooKeeper.QuorumPort, cfg.ZooKeeper.ElectionPort = 42181, 42888, 43888

	zk := zookeeper.Owner{UID: os.Getuid(), GID: os.Getgid()}
	if o, err := zookeeper.LookupOwner("zookeeper"); err == nil {
		zk = o
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	layout := zookeeper.DefaultLayout(filepath.Join(dir, "mnt"))
	layout.ConfDir = filepath.Join(dir, "conf")
	if err := os.Mkdir(filepath.Join(dir, "mnt"), 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := zookeeper.Render(cfg, 1, self, layout, zookeeper.Material{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zookeeper.Write(files, zk); err != nil {
		t.Fatal(err)
	}
	if _, err := zookeeper.SetInitializeMarker(layout, true, zk); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "zk.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(java, "-Xmx128m", "-XX:-UsePerfData", "-cp", strings.Join(debianClasspath, ":"),
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", layout.ZooCfgPath())
	cmd.Dir = layout.ConfDir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(zk.UID), Gid: uint32(zk.GID)}}
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatalf("start ZooKeeper: %v", err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(stop)

	state := t.TempDir()
	writeState(t, state, ReportFile, "report.json")
	c := &Collector{Ensemble: cfg.Ensemble, ZooKeeper: netip.AddrPortFrom(self, uint16(cfg.ZooKeeper.ClientPort)), StateDir: state, Timeout: time.Second, Dial: ns.dial}
	var got map[string]float64
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got = scrape(t, c)
		if got[`zk_server_state{state="leader"}`] == 1 {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("no leader after 60s: %v\nZooKeeper log:\n%s", got, tailLines(string(b), 30))
		}
	}
	// What a scrape costs on a live server (mntr and the state files).
	const scrapes = 20
	t0 := time.Now()
	for range scrapes {
		scrape(t, c)
	}
	t.Logf("a scrape of a live 3.8 leader: %s (mean of %d)", (time.Since(t0) / scrapes).Round(10*time.Microsecond), scrapes)
	if os.Getenv("ZKAAS_PRINT_MNTR") != "" {
		// The fixtures in testdata/ are answers of this server.
		ans, _ := c.rawMntr(t)
		t.Logf("mntr:\n%s", ans)
	}
	for _, name := range []string{"zk_up", "zk_znode_count", "zk_num_alive_connections", "zk_open_file_descriptor_count", "zk_max_file_descriptor_count", "zk_approximate_data_size", "zk_outstanding_requests", "zk_watch_count", "zk_avg_latency", "zk_quorum_size", "zkaas_node_id"} {
		if _, ok := got[name]; !ok {
			t.Errorf("real 3.8 server: no %s in %v", name, got)
		}
	}
	if got["zk_up"] != 1 || got["zk_znode_count"] < 4 || got[`zk_server_state{state="follower"}`] != 0 {
		t.Errorf("zk_up %v, zk_znode_count %v (want ≥ 4: /, /zookeeper, its config and quota), follower %v", got["zk_up"], got["zk_znode_count"], got[`zk_server_state{state="follower"}`])
	}
	stop()
	start := time.Now()
	down := scrape(t, c)
	if down["zk_up"] != 0 || down["zkaas_node_id"] != 2 {
		t.Errorf("after ZooKeeper stopped: zk_up %v, zkaas_node_id %v; want 0 and 2", down["zk_up"], down["zkaas_node_id"])
	}
	if _, ok := down[`zk_server_state{state="leader"}`]; ok {
		t.Error("zk_server_state still reported with ZooKeeper down")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a scrape with ZooKeeper down took %s", d)
	}
}

// rawMntr is the server's whole mntr answer.
func (c *Collector) rawMntr(t *testing.T) (string, error) {
	conn, err := c.Dial(t.Context(), "tcp", c.ZooKeeper.String())
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	conn.Write([]byte("mntr"))
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String(), nil
		}
	}
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// testNS is a fresh network namespace with loopback up.
type testNS struct{ *netnstest.NS }

func newNS(t *testing.T) testNS {
	t.Helper()
	ns := netnstest.New(t)
	lo, err := ns.Netlink().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Netlink().LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return testNS{ns}
}

func (ns testNS) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

func (ns testNS) listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

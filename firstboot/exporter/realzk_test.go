package exporter

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zkaas/zkaas/firstboot/zookeeper"
	"github.com/zkaas/zkaas/internal/realzk"
)

// TestRealZooKeeper scrapes a real ZooKeeper (Debian's 3.8, a one-node
// ensemble rendered by zkaas with the initialize marker, so it leads) in a
// namespace of its own: zk_up 1, the leader's mode and figures; then, with
// the server stopped, zk_up 0 and the zkaas figures still there.
func TestRealZooKeeper(t *testing.T) {
	java := realzk.Java(t, realzk.Classpath)
	ns := realzk.NewNS(t)
	self := netip.MustParseAddr("127.0.0.1")
	cfg := realzk.Config("zk-metrics", self)

	zk := zookeeper.Owner{UID: os.Getuid(), GID: os.Getgid()}
	if o, err := zookeeper.LookupOwner("zookeeper"); err == nil {
		zk = o
	}
	dir := realzk.Dir(t)
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
	zkp, err := realzk.Start(t, ns, realzk.Server{Java: java, Classpath: realzk.Classpath, JVMFlags: []string{"-Xmx128m"},
		ZooCfg: layout.ZooCfgPath(), Dir: layout.ConfDir, UID: zk.UID, GID: zk.GID, Log: filepath.Join(dir, "zk.log")})
	if err != nil {
		t.Fatalf("start ZooKeeper: %v", err)
	}

	state := t.TempDir()
	writeState(t, state, ReportFile, "report.json")
	c := &Collector{Ensemble: cfg.Ensemble, ZooKeeper: netip.AddrPortFrom(self, uint16(cfg.ZooKeeper.ClientPort)), StateDir: state, Timeout: time.Second, Dial: ns.Dial}
	var got map[string]float64
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got = scrape(t, c)
		if got[`zk_server_state{state="leader"}`] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader after 60s: %v\nZooKeeper log:\n%s", got, realzk.Tail(zkp.Output(), 30))
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
		ans, err := c.mntrAnswer(t.Context())
		t.Logf("mntr (%v):\n%s", err, ans)
	}
	for _, name := range []string{"zk_up", "zk_znode_count", "zk_num_alive_connections", "zk_open_file_descriptor_count", "zk_max_file_descriptor_count", "zk_approximate_data_size", "zk_outstanding_requests", "zk_watch_count", "zk_avg_latency", "zk_quorum_size", "zkaas_node_id"} {
		if _, ok := got[name]; !ok {
			t.Errorf("real 3.8 server: no %s in %v", name, got)
		}
	}
	if got["zk_up"] != 1 || got["zk_znode_count"] < 4 || got[`zk_server_state{state="follower"}`] != 0 {
		t.Errorf("zk_up %v, zk_znode_count %v (want ≥ 4: /, /zookeeper, its config and quota), follower %v", got["zk_up"], got["zk_znode_count"], got[`zk_server_state{state="follower"}`])
	}
	zkp.Stop()
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

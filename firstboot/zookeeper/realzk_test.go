package zookeeper

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/internal/realzk"
)

// TestRealZooKeeperEmptyTree starts the real ZooKeeper from a rendered
// 1-node ensemble (standaloneEnabled=false, so it runs the quorum code a
// replacement node runs) inside a fresh network namespace, as the zookeeper
// user when it exists.
func TestRealZooKeeperEmptyTree(t *testing.T) {
	requireRoot(t)
	java := realzk.Java(t, realzk.Classpath)
	ns := realzk.NewNS(t)
	self := netip.MustParseAddr("127.0.0.1")

	cfg := realzk.Config("zk-real", self)
	// The GC log must not stop the JVM from starting (checked below).
	cfg.ZooKeeper.GCLog = true
	// zookeeper.extra must reach the server (conf shows what it applied).
	cfg.ZooKeeper.Extra = ensemble.Extra{"maxClientCnxns": "17", "minSessionTimeout": "800", "maxSessionTimeout": "9000", "jute.maxbuffer": "2097152"}
	cfg.ZooKeeper.FourLetterWords = []string{"srvr", "conf"}

	zk := realOwner()
	dir := realzk.Dir(t)
	layout := realLayout(t, dir)
	files := writeNode(t, cfg, 1, layout, Material{}, zk, false)
	jvmFlags := realzk.JVMFlags(t, files.JavaEnv)
	client := netip.AddrPortFrom(self, uint16(cfg.ZooKeeper.ClientPort))
	mode := func() (string, error) {
		return Prober{PerPeerTimeout: time.Second, Dial: ns.Dial}.srvr(t.Context(), client)
	}
	start := func(name string) *realzk.Process {
		zkp, err := realzk.Start(t, ns, realzk.Server{Java: java, Classpath: realzk.Classpath, JVMFlags: jvmFlags,
			ZooCfg: layout.ZooCfgPath(), Dir: layout.ConfDir, UID: zk.UID, GID: zk.GID, Log: filepath.Join(dir, name+".log")})
		if err != nil {
			t.Fatalf("start ZooKeeper: %v", err)
		}
		return zkp
	}

	// (a) Empty tree, no marker: ZooKeeper loads it untrusted and the only
	// voter stays LOOKING — it never serves an empty tree as the truth.
	zkp := start("empty")
	zkp.WaitFor(t, "untrusted empty tree", 30*time.Second, zkp.Has("Unexpected empty data tree, setting zxid to -1"), 40)
	zkp.WaitFor(t, "election time-out", 30*time.Second, zkp.Has("Notification time out"), 40)
	for range 10 { // 2 s = 10 ticks
		if m, err := mode(); err != nil || m != ModeNotServing {
			t.Fatalf("srvr without the marker = %q, %v; want %q", m, err, ModeNotServing)
		}
		time.Sleep(200 * time.Millisecond)
	}
	zkp.Stop()
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
	zkp = start("initialized")
	zkp.WaitFor(t, "leader", 30*time.Second, func() bool { m, _ := mode(); return m == ModeLeader }, 40)
	if !zkp.Has("Initialize file found")() {
		t.Error("ZooKeeper did not log that it found the initialize file")
	}
	conf := ns.Word(t, client, "conf")
	for _, want := range []string{"maxClientCnxns=17", "minSessionTimeout=800", "maxSessionTimeout=9000"} {
		if !strings.Contains(conf, want) {
			t.Errorf("conf does not show %s (zookeeper.extra did not reach the server):\n%s", want, conf)
		}
	}
	if st, err := os.Stat(filepath.Join(layout.LogDir, "gc.log")); err != nil || st.Size() == 0 {
		t.Errorf("GC log under %s: %v (want a non-empty gc.log)", layout.LogDir, err)
	}
	zkp.Stop()
	if _, err := os.Stat(layout.InitializePath()); !os.IsNotExist(err) {
		t.Errorf("initialize marker still present after ZooKeeper started (stat: %v)", err)
	}
	if has, err := HasData(layout); err != nil || !has {
		t.Errorf("after the trusted start HasData = %v, %v; want true (snapshot.0)", has, err)
	}
}

// realOwner is whom the real servers run as: the zookeeper user when it
// exists, else the test's own.
func realOwner() Owner {
	if o, err := LookupOwner("zookeeper"); err == nil {
		return o
	}
	return Owner{os.Getuid(), os.Getgid()}
}

// realLayout is a node's layout under root: its volume mounted at
// root/mnt (created here), its conf and secret dirs beside it.
func realLayout(t *testing.T, root string) Layout {
	t.Helper()
	mount := filepath.Join(root, "mnt")
	if err := os.MkdirAll(mount, 0o755); err != nil {
		t.Fatal(err)
	}
	l := DefaultLayout(mount)
	l.ConfDir, l.SecretDir = filepath.Join(root, "conf"), filepath.Join(root, "run/zkaas/zookeeper")
	return l
}

// writeNode renders node id of cfg into l with mat and writes it as zk;
// with initialize the node trusts its empty tree once, as the nodes of a
// new ensemble do.
func writeNode(t *testing.T, cfg ensemble.Config, id int, l Layout, mat Material, zk Owner, initialize bool) Files {
	t.Helper()
	node, ok := cfg.NodeByID(id)
	if !ok {
		t.Fatalf("no node %d in the config", id)
	}
	files, err := Render(cfg, id, node.IP, l, mat)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(files, zk); err != nil {
		t.Fatal(err)
	}
	if initialize {
		if _, err := SetInitializeMarker(l, true, zk); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

package zookeeper

import (
	"archive/zip"
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/internal/golden"
)

// TestRenderMetricsProvider: metrics.zookeeper renders the provider bound to
// the node's ENI address (never the provider's default 0.0.0.0), and nothing
// when it is off.
func TestRenderMetricsProvider(t *testing.T) {
	cfg := testEnsemble(3)
	cfg.Metrics.ZooKeeper.Enabled = true
	cfg.Metrics.ZooKeeper.Port = 7001
	f, err := Render(cfg, 2, cfg.Nodes[1].IP, DefaultLayout("/var/lib/zookeeper"), Material{})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "metrics-provider.golden"), f.ZooCfg)
	if !bytes.Contains(f.ZooCfg, []byte("\nmetricsProvider.httpHost=10.0.2.10\n")) {
		t.Errorf("provider not bound to the ENI address:\n%s", f.ZooCfg)
	}

	cfg.Metrics.ZooKeeper.Enabled = false
	cfg.Metrics.Exporter.Enabled = true // the exporter is a unit of its own: nothing in zoo.cfg
	off, err := Render(cfg, 2, cfg.Nodes[1].IP, DefaultLayout("/var/lib/zookeeper"), Material{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(off.ZooCfg, []byte("metricsProvider")) {
		t.Errorf("provider rendered while metrics.zookeeper is off:\n%s", off.ZooCfg)
	}
}

// TestNoPrometheusProvider: the image check behind the bake's and the boot's
// refusal of metrics.zookeeper.
func TestNoPrometheusProvider(t *testing.T) {
	writeJar := func(t *testing.T, path string, entries ...string) {
		t.Helper()
		var b bytes.Buffer
		z := zip.NewWriter(&b)
		for _, e := range entries {
			if _, err := z.Create(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := z.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		unit   bool
		distro bool
		jars   map[string][]string // lib/<name> → entries
		want   string              // "" = can load it
	}{
		{"off an image", false, false, nil, ""},
		{"tarball with the provider", true, false, map[string][]string{
			"zookeeper-3.9.3.jar":                    {"org/apache/zookeeper/server/quorum/QuorumPeerMain.class"},
			"zookeeper-prometheus-metrics-3.9.3.jar": {providerClassFile},
		}, ""},
		{"tarball without it", true, false, map[string][]string{
			"zookeeper-3.9.3.jar": {"org/apache/zookeeper/server/quorum/QuorumPeerMain.class"},
		}, "holds org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"},
		{"a jar named right but empty", true, false, map[string][]string{"zookeeper-prometheus-metrics-3.9.3.jar": {"META-INF/MANIFEST.MF"}}, "no jar in"},
		{"no lib at all", true, false, nil, "no jar in"},
		{"distro package", true, true, map[string][]string{"zookeeper-prometheus-metrics-3.9.3.jar": {providerClassFile}}, "runs the distribution's package"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in := Install{
				LibDir:       filepath.Join(dir, "opt/zookeeper/lib"),
				Unit:         filepath.Join(dir, "zookeeper.service"),
				DistroDropIn: filepath.Join(dir, "zookeeper.service.d/20-zkaas-distro.conf"),
			}
			if tt.unit {
				os.WriteFile(in.Unit, []byte("[Service]\n"), 0o644)
			}
			if tt.distro {
				os.MkdirAll(filepath.Dir(in.DistroDropIn), 0o755)
				os.WriteFile(in.DistroDropIn, []byte("[Service]\n"), 0o644)
			}
			if len(tt.jars) > 0 {
				os.MkdirAll(in.LibDir, 0o755)
			}
			for name, entries := range tt.jars {
				writeJar(t, filepath.Join(in.LibDir, name), entries...)
			}
			got := in.NoPrometheusProvider()
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("NoPrometheusProvider() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRealZooKeeperWithoutProvider checks the fact the refusal rests on:
// Debian's 3.8 server, told to use the Prometheus provider it does not
// ship, exits instead of serving — so a config enabling metrics.zookeeper
// on such an image must be refused before ZooKeeper starts.
func TestRealZooKeeperWithoutProvider(t *testing.T) {
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
	cfg.Ensemble = "zk-provider"
	cfg.Nodes = []ensemble.Node{{ID: 1, AZ: "us-east-1a", IP: self}}
	cfg.ZooKeeper.TickTime, cfg.ZooKeeper.Heap, cfg.ZooKeeper.GCLog = 200, "128m", false
	cfg.ZooKeeper.ClientPort, cfg.ZooKeeper.QuorumPort, cfg.ZooKeeper.ElectionPort = 42181, 42888, 43888
	cfg.Metrics.ZooKeeper.Enabled = true
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	zk := Owner{os.Getuid(), os.Getgid()}
	if o, err := LookupOwner("zookeeper"); err == nil {
		zk = o
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
	if _, err := SetInitializeMarker(layout, true, zk); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(java, "-Xmx128m", "-XX:-UsePerfData", "-cp", strings.Join(debianClasspath, ":"),
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", layout.ZooCfgPath())
	cmd.Dir = layout.ConfDir
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(zk.UID), Gid: uint32(zk.GID)}}
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("ZooKeeper exited 0 without its metrics provider:\n%s", tail(out.Bytes(), 20))
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("ZooKeeper still running after 60 s without its metrics provider:\n%s", tail(out.Bytes(), 20))
	}
	t.Logf("ZooKeeper without its provider:\n%s", tail(out.Bytes(), 6))
	if !strings.Contains(out.String(), ensemble.PrometheusProviderClass) {
		t.Errorf("ZooKeeper's log does not name the missing provider:\n%s", tail(out.Bytes(), 20))
	}
}

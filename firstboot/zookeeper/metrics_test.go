package zookeeper

import (
	"archive/zip"
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/internal/golden"
	"github.com/zkaas/zkaas/internal/realzk"
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
	java := realzk.Java(t, realzk.Classpath)
	ns := realzk.NewNS(t)
	self := netip.MustParseAddr("127.0.0.1")
	cfg := realzk.Config("zk-provider", self)
	cfg.Metrics.ZooKeeper.Enabled = true
	dir := realzk.Dir(t)
	zk := realOwner()
	layout := realLayout(t, dir)
	writeNode(t, cfg, 1, layout, Material{}, zk, true)
	zkp, err := realzk.Start(t, ns, realzk.Server{Java: java, Classpath: realzk.Classpath, JVMFlags: []string{"-Xmx128m"},
		ZooCfg: layout.ZooCfgPath(), Dir: layout.ConfDir, UID: zk.UID, GID: zk.GID, Log: filepath.Join(dir, "zk.log")})
	if err != nil {
		t.Fatal(err)
	}
	exited, err := zkp.Exited(60 * time.Second)
	out := zkp.Output()
	if !exited {
		zkp.Stop()
		t.Fatalf("ZooKeeper still running after 60 s without its metrics provider:\n%s", realzk.Tail(out, 20))
	}
	if err == nil {
		t.Errorf("ZooKeeper exited 0 without its metrics provider:\n%s", realzk.Tail(out, 20))
	}
	t.Logf("ZooKeeper without its provider:\n%s", realzk.Tail(out, 6))
	if !strings.Contains(out, ensemble.PrometheusProviderClass) {
		t.Errorf("ZooKeeper's log does not name the missing provider:\n%s", realzk.Tail(out, 20))
	}
}

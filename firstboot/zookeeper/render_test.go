package zookeeper

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkaas/zkaas/internal/golden"

	"github.com/zkaas/zkaas/ensemble"
)

// ensemble returns the default config with n nodes 10.0.<id>.10 spread over
// three AZs.
func testEnsemble(n int) ensemble.Config {
	cfg := ensemble.Default()
	cfg.Ensemble = "prod-zk"
	for id := 1; id <= n; id++ {
		cfg.Nodes = append(cfg.Nodes, ensemble.Node{
			ID: id,
			AZ: fmt.Sprintf("us-east-1%c", 'a'+(id-1)%3),
			IP: netip.AddrFrom4([4]byte{10, 0, byte(id), 10}),
		})
	}
	return cfg
}

func TestRenderGolden(t *testing.T) {
	layout := DefaultLayout("/var/lib/zookeeper")
	tests := []struct {
		name   string
		cfg    func() ensemble.Config
		nodeID int
	}{
		{"3-node", func() ensemble.Config { return testEnsemble(3) }, 2},
		{"5-node-admin", func() ensemble.Config {
			cfg := testEnsemble(5)
			// Nodes out of id order in the file still render sorted.
			cfg.Nodes[0], cfg.Nodes[4] = cfg.Nodes[4], cfg.Nodes[0]
			cfg.ZooKeeper.AdminServer = ensemble.AdminServer{Enabled: true, Port: 8081}
			cfg.ZooKeeper.Heap = "2g"
			return cfg
		}, 5},
		{"custom-4lw", func() ensemble.Config {
			cfg := testEnsemble(3)
			cfg.ZooKeeper.FourLetterWords = []string{"ruok", "conf"}
			cfg.ZooKeeper.Autopurge = ensemble.Autopurge{SnapRetainCount: 5, PurgeInterval: 0}
			cfg.ZooKeeper.ClientPort, cfg.ZooKeeper.QuorumPort, cfg.ZooKeeper.ElectionPort = 12181, 12888, 13888
			return cfg
		}, 1},
		{"all-4lw", func() ensemble.Config {
			cfg := testEnsemble(3)
			cfg.ZooKeeper.FourLetterWords = []string{"*"}
			return cfg
		}, 3},
		// zookeeper.extra after zkaas's keys, sorted; jute.maxbuffer as a
		// system property; jvm_flags after the GC log.
		{"extra-settings", func() ensemble.Config {
			cfg := testEnsemble(3)
			cfg.ZooKeeper.Extra = ensemble.Extra{
				"snapCount": "50000", "maxClientCnxns": "0", "jute.maxbuffer": "4194304",
				"minSessionTimeout": "6000", "maxSessionTimeout": "60000", "globalOutstandingLimit": "2000",
			}
			cfg.ZooKeeper.JVMFlags = []string{"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=200"}
			return cfg
		}, 1},
		{"no-gc-log", func() ensemble.Config {
			cfg := testEnsemble(3)
			cfg.ZooKeeper.GCLog = false
			return cfg
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg()
			node, _ := cfg.NodeByID(tt.nodeID)
			f, err := Render(cfg, tt.nodeID, node.IP, layout, Material{})
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			for _, part := range []struct {
				name string
				data []byte
			}{{ZooCfgName, f.ZooCfg}, {MyIDName, f.MyID}, {JavaEnvName, f.JavaEnv}} {
				fmt.Fprintf(&got, "==> %s <==\n%s", part.name, part.data)
			}
			golden.Check(t, filepath.Join("testdata", tt.name+".golden"), got.Bytes())
			if f.Layout != layout {
				t.Errorf("Files.Layout = %+v, want %+v", f.Layout, layout)
			}
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	cfg := testEnsemble(5)
	a, err := Render(cfg, 3, cfg.Nodes[2].IP, DefaultLayout("/zk"), Material{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Render(cfg, 3, cfg.Nodes[2].IP, DefaultLayout("/zk"), Material{})
	if !bytes.Equal(a.ZooCfg, b.ZooCfg) || !bytes.Equal(a.JavaEnv, b.JavaEnv) {
		t.Error("two renders of the same input differ")
	}
	if len(cfg.ZooKeeper.FourLetterWords) != 3 {
		t.Errorf("Render modified the caller's config: %v", cfg.ZooKeeper.FourLetterWords)
	}
}

func TestRenderErrors(t *testing.T) {
	cfg := testEnsemble(3)
	good := DefaultLayout("/var/lib/zookeeper")
	tests := []struct {
		name   string
		nodeID int
		self   string
		layout Layout
		want   string
	}{
		{"unknown node", 4, "10.0.4.10", good, "node 4: not in the ensemble config"},
		{"ENI address of another node", 1, "10.0.2.10", good, "ENI address 10.0.2.10 is not the node's configured address 10.0.1.10"},
		{"relative data dir", 1, "10.0.1.10", Layout{ConfDir: "/etc/zk", DataDir: "data", DataLogDir: "/zk/datalog"}, `data dir "data" must be a clean absolute path`},
		{"unclean conf dir", 1, "10.0.1.10", Layout{ConfDir: "/etc/zk/", DataDir: "/zk/data", DataLogDir: "/zk/datalog"}, `conf dir "/etc/zk/"`},
		{"one dir for both", 1, "10.0.1.10", Layout{ConfDir: "/etc/zk", DataDir: "/zk/data", DataLogDir: "/zk/data"}, "data dir and data log dir are both /zk/data"},
		{"relative log dir", 1, "10.0.1.10", Layout{ConfDir: "/etc/zk", DataDir: "/zk/data", DataLogDir: "/zk/datalog", LogDir: "logs"}, `log dir "logs" must be a clean absolute path`},
		{"gc log without log dir", 1, "10.0.1.10", Layout{ConfDir: "/etc/zk", DataDir: "/zk/data", DataLogDir: "/zk/datalog"}, "zookeeper.gc_log is on but the layout has no log dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(cfg, tt.nodeID, netip.MustParseAddr(tt.self), tt.layout, Material{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

package status

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/internal/golden"
	"github.com/zkaas/zkaas/ops/inventory"
	"github.com/zkaas/zkaas/ops/zk"
)

func fixture(t *testing.T) (ensemble.Config, inventory.Snapshot, map[netip.AddrPort]zk.Stat, map[netip.AddrPort]error) {
	t.Helper()
	cfg, _, err := ensemble.Load("../plan/testdata/ensemble.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := inventory.Snapshot{
		ENIs: []inventory.ENI{
			{ID: "eni-1", Node: 1, Instance: "i-1"}, {ID: "eni-2", Node: 2, Instance: "i-2"}, {ID: "eni-3", Node: 3},
		},
		Volumes: []inventory.Volume{
			{ID: "vol-1", Node: 1, Instance: "i-1", LastSnapshot: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)},
			{ID: "vol-2", Node: 2, Instance: "i-2"}, {ID: "vol-3", Node: 3},
		},
		Instances: map[string]inventory.Instance{"i-1": {ID: "i-1", State: "running"}, "i-2": {ID: "i-2", State: "running"}},
		Groups:    []inventory.Group{{Name: "g", Instances: []inventory.GroupInstance{{ID: "i-1", Lifecycle: "InService"}, {ID: "i-2", Lifecycle: "Pending:Wait"}}}},
	}
	a := Addrs(cfg)
	stats := map[netip.AddrPort]zk.Stat{
		a[0]: {Mode: "leader", Zxid: 0x100000005, LatencyAvg: 0.5, Outstanding: 0},
		a[1]: {Mode: "not serving"},
	}
	errs := map[netip.AddrPort]error{a[2]: errors.New("srvr 10.0.3.10:2181: connection refused")}
	return cfg, s, stats, errs
}

func TestStatus(t *testing.T) {
	cfg, s, stats, errs := fixture(t)
	rows := Rows(cfg, s, stats, errs)
	var b bytes.Buffer
	if err := Print(&b, rows); err != nil {
		t.Fatal(err)
	}
	golden.CheckNamed(t, "status", b.String())
	b.Reset()
	if err := JSON(&b, cfg.Ensemble, rows); err != nil {
		t.Fatal(err)
	}
	golden.CheckNamed(t, "status-json", b.String())
}

// TestAddrsTLSOnly: with the plaintext client port closed, status asks the
// secure client ports; otherwise the plaintext ones.
func TestAddrsTLSOnly(t *testing.T) {
	cfg, _, _, _ := fixture(t)
	for _, tc := range []struct {
		name string
		tls  ensemble.TLS
		port uint16
	}{
		{"plaintext", ensemble.TLS{SecureClientPort: 2281}, 2181},
		{"TLS and plaintext", ensemble.TLS{Client: true, ClientPlaintext: true, SecureClientPort: 2281}, 2181},
		{"TLS only", ensemble.TLS{Client: true, SecureClientPort: 2281}, 2281},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg.ZooKeeper.TLS = tc.tls
			for _, a := range Addrs(cfg) {
				if a.Port() != tc.port {
					t.Errorf("asks %s, want port %d", a, tc.port)
				}
			}
		})
	}
}

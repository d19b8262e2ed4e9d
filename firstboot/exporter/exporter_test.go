package exporter

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/zkaas/zkaas/internal/golden"
	"github.com/zkaas/zkaas/internal/realzk"
)

// fixedTime is the report's and the failure's time in the goldens.
var fixedTime = time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)

// writeState copies testdata/<fixture> to dir/name with a fixed mtime.
func writeState(t *testing.T, dir, name, fixture string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fixedTime, fixedTime); err != nil {
		t.Fatal(err)
	}
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pipeZK is a Dial that answers every connection as serveMntr does.
func pipeZK(t *testing.T, answer string, hang bool) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveMntr(t, server, answer, hang)
		return client, nil
	}
}

// serveMntr answers conn with answer once it has read the four-letter
// word mntr, then closes it; hang answers nothing until the test ends.
func serveMntr(t *testing.T, conn net.Conn, answer string, hang bool) {
	defer conn.Close()
	word := make([]byte, 4)
	if _, err := io.ReadFull(conn, word); err != nil || string(word) != "mntr" {
		return
	}
	if hang {
		<-t.Context().Done()
		return
	}
	_, _ = io.WriteString(conn, answer)
}

// scrape gathers c and flattens it to name{labels} → value.
func scrape(t *testing.T, c *Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[flat(mf.GetName(), m)] = value(m)
		}
	}
	return out
}

func flat(name string, m *dto.Metric) string {
	if len(m.GetLabel()) == 0 {
		return name
	}
	var l []string
	for _, p := range m.GetLabel() {
		l = append(l, p.GetName()+`="`+p.GetValue()+`"`)
	}
	return name + "{" + strings.Join(l, ",") + "}"
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// TestExpositionGolden: the whole /metrics answer, through the handler the
// exporter serves, for a fixed mntr of each mode and a fixed boot report.
func TestExpositionGolden(t *testing.T) {
	for _, tt := range []struct{ name, mntr, state, stateFixture string }{
		{"leader", "mntr-leader.txt", ReportFile, "report.json"},
		{"follower", "mntr-follower.txt", ReportFile, "report.json"},
		{"not-serving", "mntr-not-serving.txt", ReportFile, "report.json"},
		{"boot-failed", "mntr-not-serving.txt", FailureFile, "failure.json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeState(t, dir, tt.state, tt.stateFixture)
			c := &Collector{Ensemble: "prod-zk", ZooKeeper: netip.MustParseAddrPort("10.0.2.10:2181"), StateDir: dir, Dial: pipeZK(t, fixture(t, tt.mntr), false)}
			rec := httptest.NewRecorder()
			Handler(c).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			if rec.Code != 200 {
				t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
			}
			golden.CheckNamed(t, tt.name, rec.Body.String())
		})
	}
}

func TestParseMntr(t *testing.T) {
	tests := []struct {
		fixture  string
		mode     string
		key, val string
		err      string
	}{
		{"mntr-leader.txt", "leader", "zk_synced_followers", "2", ""},
		{"mntr-follower.txt", "follower", "zk_znode_count", "", ""},
		{"mntr-not-serving.txt", NotServing, "", "", ""},
		{"mntr-not-whitelisted.txt", "", "", "", "not an mntr answer: \"mntr is not executed because it is not in the whitelist.\""},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			figures, mode, err := ParseMntr(fixture(t, tt.fixture))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || mode != tt.mode {
				t.Fatalf("mode %q, err %v; want %q", mode, err, tt.mode)
			}
			if tt.key != "" {
				if v, ok := figures[tt.key]; !ok || (tt.val != "" && v != tt.val) {
					t.Errorf("%s = %q (present %v), want %q", tt.key, v, ok, tt.val)
				}
			}
		})
	}
}

// TestCollectorZooKeeperDown: a ZooKeeper that refuses, hangs or answers
// garbage is zk_up 0 within the timeout, never a failed scrape, and the
// zkaas figures still arrive.
func TestCollectorZooKeeperDown(t *testing.T) {
	refused := func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("connect: connection refused")
	}
	for _, tt := range []struct {
		name string
		dial func(context.Context, string, string) (net.Conn, error)
	}{
		{"refused", refused},
		{"hangs", pipeZK(t, "", true)},
		{"not whitelisted", pipeZK(t, "mntr is not executed because it is not in the whitelist.\n", false)},
		{"garbage", pipeZK(t, "HTTP/1.1 400 Bad Request\r\n\r\n", false)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeState(t, dir, ReportFile, "report.json")
			c := &Collector{ZooKeeper: netip.MustParseAddrPort("10.0.2.10:2181"), StateDir: dir, Timeout: 300 * time.Millisecond, Dial: tt.dial}
			start := time.Now()
			got := scrape(t, c)
			if d := time.Since(start); d > time.Second {
				t.Errorf("scrape took %s with a %s timeout", d, c.Timeout)
			}
			if got["zk_up"] != 0 {
				t.Errorf("zk_up = %v, want 0", got["zk_up"])
			}
			if got["zkaas_node_id"] != 2 || got["zkaas_boot_success"] != 1 {
				t.Errorf("zkaas figures missing: node_id %v, boot_success %v", got["zkaas_node_id"], got["zkaas_boot_success"])
			}
			for k := range got {
				if strings.HasPrefix(k, "zk_server_state") || k == "zk_znode_count" {
					t.Errorf("%s reported without an answer", k)
				}
			}
		})
	}
}

// TestCollectorNoState: before any run (or with /run/zkaas gone) there are
// no zkaas figures, and ZooKeeper's still arrive.
func TestCollectorNoState(t *testing.T) {
	c := &Collector{ZooKeeper: netip.MustParseAddrPort("10.0.2.10:2181"), StateDir: t.TempDir(), Dial: pipeZK(t, fixture(t, "mntr-follower.txt"), false)}
	got := scrape(t, c)
	if got["zk_up"] != 1 || got[`zk_server_state{state="follower"}`] != 1 {
		t.Errorf("zk_up %v, follower %v", got["zk_up"], got[`zk_server_state{state="follower"}`])
	}
	for k := range got {
		if strings.HasPrefix(k, "zkaas_") {
			t.Errorf("%s without a report", k)
		}
	}
}

// TestListener: over real TCP (a listener in a namespace of the test's
// own) the collector reads a fake server's mntr, and a closed port is
// zk_up 0 at once.
func TestListener(t *testing.T) {
	ns := realzk.NewNS(t)
	ln := ns.Listen(t, "127.0.0.1:0")
	answer := fixture(t, "mntr-leader.txt")
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveMntr(t, conn, answer, false)
		}
	}()
	c := &Collector{ZooKeeper: netip.MustParseAddrPort(ln.Addr().String()), StateDir: t.TempDir(), Dial: ns.Dial}
	got := scrape(t, c)
	if got["zk_up"] != 1 || got[`zk_server_state{state="leader"}`] != 1 || got["zk_synced_followers"] != 2 {
		t.Errorf("over TCP: zk_up %v, leader %v, synced followers %v", got["zk_up"], got[`zk_server_state{state="leader"}`], got["zk_synced_followers"])
	}
	ln.Close()
	if got := scrape(t, c); got["zk_up"] != 0 {
		t.Errorf("closed port: zk_up %v", got["zk_up"])
	}
}

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/firstboot/boot"
	fbexporter "github.com/zkaas/zkaas/firstboot/exporter"
	"github.com/zkaas/zkaas/internal/realzk"
)

var noAWS = []string{"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_REGION=us-east-1"}

// TestExporterCommand runs the real binary's exporter in a namespace where
// the node's ENI address (10.0.2.10) and a stand-in for the instance's
// primary address (10.0.9.9) both exist: /metrics answers on the ENI
// address with the node's figures (and zk_up 0: no ZooKeeper runs), and
// nothing listens on the primary address.
func TestExporterCommand(t *testing.T) {
	ns := realzk.NewNS(t, "10.0.2.10/32", "10.0.9.9/32")
	state := t.TempDir()
	rep, err := os.ReadFile("../../exporter/testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "report.json"), rep, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, ensembleYAML+"metrics:\n  exporter: {enabled: true}\n")
	logPath := filepath.Join(t.TempDir(), "exporter.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(binary, "exporter", "-config", cfg, "-user-data", "none", "-state-dir", state)
	cmd.Env = append(os.Environ(), noAWS...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	dial := ns.Dial
	client := &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: 5 * time.Second}
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := client.Get("http://10.0.2.10:9141/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				body = string(b)
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("no /metrics on 10.0.2.10:9141: %v\n%s", err, log)
		}
	}
	for _, want := range []string{"\nzkaas_node_id 2\n", "\nzk_up 0\n", "\nzkaas_boot_success 1\n", `zkaas_boot_stage_duration_seconds{stage="claim"} 2.14325`, `ensemble="e2e"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", strings.TrimSpace(want), body)
		}
	}
	if c, err := dial(t.Context(), "tcp", "10.0.9.9:9141"); err == nil {
		c.Close()
		t.Error("the exporter answers on the instance's primary address too")
	}
}

func TestExporterCommandRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		report     bool
		code       int
		want       string
	}{
		{"off", ensembleYAML, false, 0, "metrics.exporter is off: nothing to serve"},
		{"no run report", ensembleYAML + "metrics:\n  exporter: {enabled: true}\n", false, 1, "zkaas-firstboot: exporter: no report of a successful run"},
		{"without mntr", ensembleYAML + "zookeeper: {four_letter_words: [srvr]}\nmetrics:\n  exporter: {enabled: true}\n", false, 2, "metrics.exporter.enabled: the exporter reads ZooKeeper's figures with mntr"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runBinary(t, noAWS, "exporter", "-config", writeConfig(t, tt.yaml), "-user-data", "none", "-state-dir", t.TempDir())
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tt.code, tt.want, stderr)
			}
		})
	}
}

// TestStateNode: the node ready and the exporter serve as is the one in
// run's report; without a report they say run did not finish.
func TestStateNode(t *testing.T) {
	s := stateFiles{dir: t.TempDir()}
	if _, _, err := s.node(); err == nil || !strings.Contains(err.Error(), "zkaas-firstboot run did not finish") {
		t.Errorf("no report: %v", err)
	}
	rep, err := os.ReadFile("../../exporter/testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.reportPath(), rep, 0o644); err != nil {
		t.Fatal(err)
	}
	id, ip, err := s.node()
	if err != nil || id != 2 || ip != netip.MustParseAddr("10.0.2.10") {
		t.Errorf("node = %d %s %v", id, ip, err)
	}
}

// TestStateFilesReadByExporter: what run writes (writeReport,
// writeFailure) is what the exporter's collector reads: the two sides
// of report.json and failure.json cannot drift apart unnoticed.
func TestStateFilesReadByExporter(t *testing.T) {
	s := stateFiles{dir: t.TempDir()}
	scrape := func() string {
		c := &fbexporter.Collector{Ensemble: "e2e", ZooKeeper: netip.MustParseAddrPort("127.0.0.1:1"), StateDir: s.dir,
			Dial: func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("no ZooKeeper here") },
			Log:  slog.New(slog.DiscardHandler)}
		rec := httptest.NewRecorder()
		fbexporter.Handler(c).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	var rep boot.Report
	rep.Claim.Node, rep.Claim.IP, rep.Claim.ENI = 3, netip.MustParseAddr("10.0.3.10"), "eni-0123"
	if err := s.writeReport(rep); err != nil {
		t.Fatal(err)
	}
	body := scrape()
	for _, want := range []string{"\nzkaas_boot_success 1\n", "\nzkaas_node_id 3\n", `eni="eni-0123"`} {
		if !strings.Contains(body, want) {
			t.Errorf("after writeReport, /metrics lacks %q:\n%s", strings.TrimSpace(want), body)
		}
	}
	if err := s.writeFailure(errors.New("claim: no slot\nfree"), true, 0); err != nil {
		t.Fatal(err)
	}
	body = scrape()
	for _, want := range []string{"\nzkaas_boot_success 0\n", "\nzkaas_boot_refused 1\n", `zkaas_boot_failure_info{reason="claim: no slot free"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("after writeFailure, /metrics lacks %q:\n%s", strings.TrimSpace(want), body)
		}
	}
	if strings.Contains(body, "zkaas_node_id") {
		t.Errorf("after writeFailure, /metrics still has the report's node:\n%s", body)
	}
}

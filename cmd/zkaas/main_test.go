package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/ops/inventory"
	"github.com/zkaas/zkaas/ops/plan"
	"github.com/zkaas/zkaas/ops/plan/plantest"
	"github.com/zkaas/zkaas/ops/roll"
)

// fake is plantest's cloud with an empty inventory.
type fake struct{ *plantest.Cloud }

func (fake) Inventory(context.Context, ensemble.Config) (inventory.Snapshot, []error, error) {
	return inventory.Snapshot{}, nil, nil
}
func (fake) DryRun(context.Context, ensemble.Config, string) map[string]string { return nil }
func (fake) Roller(string) roll.Cloud                                          { return nil }

func newFake() *plantest.Cloud {
	return plantest.New(
		plan.Subnet{ID: "subnet-0aaaaaaaaaaaaaaaa", VPC: "vpc-1", AZ: "us-east-1a", CIDR: netip.MustParsePrefix("10.0.1.0/24")},
		plan.Subnet{ID: "subnet-b", VPC: "vpc-1", AZ: "us-east-1b", CIDR: netip.MustParsePrefix("10.0.2.0/24")},
		plan.Subnet{ID: "subnet-c", VPC: "vpc-1", AZ: "us-east-1c", CIDR: netip.MustParsePrefix("10.0.3.0/24")})
}

func run(t *testing.T, c *plantest.Cloud, args ...string) (int, string, string, bool) {
	t.Helper()
	var out, errb bytes.Buffer
	called := false
	e := env{stdout: &out, stderr: &errb, newCloud: func(context.Context, ensemble.Config, *slog.Logger) (Cloud, error) {
		called = true
		if c == nil {
			return nil, errors.New("no cloud in this test")
		}
		return fake{c}, nil
	}}
	code := e.run(context.Background(), args)
	return code, out.String(), errb.String(), called
}

func writeConfig(t *testing.T, edit func(string) string) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/ensemble.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ensemble.yaml")
	if err := os.WriteFile(p, []byte(edit(string(raw))), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad input is refused with a clear error before any AWS call.
func TestBadInputBeforeAnyCall(t *testing.T) {
	noDeploy := writeConfig(t, func(s string) string { s, _, _ = strings.Cut(s, "deploy:"); return s })
	badVol := writeConfig(t, func(s string) string { return strings.Replace(s, "type: gp3", "type: gp9", 1) })
	pinned := writeConfig(t, func(s string) string { return "node: 1\n" + s + "  groups: per_node\n" })
	good := "testdata/ensemble.yaml"
	tlsOnly := writeConfig(t, func(s string) string {
		return strings.Replace(s, "deploy:\n", "zookeeper:\n  tls:\n    client: true\n    keystore: {secretsmanager: \"zk/node-{node}\"}\n    truststore: {ssm: /zk/ca}\ndeploy:\n", 1)
	})
	t.Setenv("ZKAAS_TLS_CA", "")
	t.Setenv("ZKAAS_TLS_CERT", "")
	t.Setenv("ZKAAS_TLS_KEY", "")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "usage: zkaas"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"plan", "-config", "nope.yaml"}, "no such file"},
		{[]string{"plan", "-config", noDeploy}, "no deploy section"},
		{[]string{"up", "-config", badVol}, `deploy.volume.type: "gp9"`},
		{[]string{"up", "-config", pinned}, "node: 1 is set"},
		{[]string{"status", "-config", good, "-o", "yaml"}, `-o "yaml"`},
		{[]string{"down", "-config", good, "-delete-data"}, "add -confirm prod-zk"},
		{[]string{"down", "-config", good, "-delete-data", "-confirm", "prod"}, "add -confirm prod-zk"},
		{[]string{"roll", "-config", good, "-image", "ami-0fedcba9876543210"}, "set deploy.image_id to ami-0fedcba9876543210"},
		// The plaintext client port is closed: the probes need a client
		// certificate.
		{[]string{"status", "-config", tlsOnly}, "the ensemble serves clients over TLS only (zookeeper.tls.client without client_plaintext): pass -tls-ca/-tls-cert/-tls-key"},
		{[]string{"doctor", "-config", tlsOnly, "-tls-ca", "/ca.pem"}, "pass -tls-ca/-tls-cert/-tls-key"},
		{[]string{"roll", "-config", tlsOnly}, "pass -tls-ca/-tls-cert/-tls-key"},
		{[]string{"status", "-config", tlsOnly, "-tls-ca", "/nonexistent/ca.pem", "-tls-cert", "/c.pem", "-tls-key", "/k.pem"}, "-tls-ca/-tls-cert/-tls-key: tls ca: open /nonexistent/ca.pem: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr, called := run(t, nil, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if called {
				t.Error("the cloud was created before the input was checked")
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, stderr)
			}
		})
	}
}

func TestPlanUpDown(t *testing.T) {
	c := newFake()
	cfg := "testdata/ensemble.yaml"
	code, out, stderr, _ := run(t, c, "plan", "-config", cfg)
	if code != 0 || !strings.Contains(out, "15 to change") || c.Mutations != 0 {
		t.Fatalf("plan: %d\n%s\n%s", code, out, stderr)
	}
	if code, out, stderr, _ = run(t, c, "up", "-config", cfg); code != 0 || !strings.Contains(out, "up: 15 change(s)") {
		t.Fatalf("up: %d\n%s\n%s", code, out, stderr)
	}
	if code, out, _, _ = run(t, c, "up", "-config", cfg); code != 0 || !strings.Contains(out, "up: 0 change(s)") {
		t.Fatalf("second up: %d\n%s", code, out)
	}
	if code, out, stderr, _ = run(t, c, "down", "-config", cfg); code != 0 || !strings.Contains(out, "kept     volume node-2") {
		t.Fatalf("down: %d\n%s\n%s", code, out, stderr)
	}

}

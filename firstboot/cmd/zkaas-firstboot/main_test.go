package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/firstboot/claim"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/imdsmock"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zkaas-firstboot-test-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "zkaas-firstboot")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runBinary runs the real binary and returns stdout, stderr and exit code.
func runBinary(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ensemble.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const ensembleYAML = `ensemble: e2e
nodes:
  - {id: 1, az: us-east-1a, ip: 10.0.1.10}
  - {id: 2, az: us-east-1b, ip: 10.0.2.10}
  - {id: 3, az: us-east-1c, ip: 10.0.3.10}
claim: {deadline: 20s, stuck_attach: 5s}
`

func TestValidate(t *testing.T) {
	tests := []struct {
		name, yaml string
		code       int
		stdout     string
		stderr     []string
	}{
		{"valid", ensembleYAML, 0, "ok (3 nodes)", nil},
		{"typo", ensembleYAML + "volume: {fstype: xfs}\n", 2, "", []string{"line 7: volume.fstype: unknown field (did you mean \"fs_type\"?)", "invalid config"}},
		{"two problems", strings.Replace(ensembleYAML, "id: 2", "id: 1", 1) + "zookeeper: {heap: big}\n", 2, "", []string{"2 problem(s)", "nodes[1].id", "zookeeper.heap"}},
		{"empty", "", 2, "", []string{"file is empty"}},
		// zookeeper.extra: a key zkaas owns is refused with its line; an
		// unknown key passes with a warning naming its line.
		{"extra owned key", ensembleYAML + "zookeeper:\n  extra:\n    clientPort: 2182\n", 2, "", []string{"line 9: zookeeper.extra.clientPort: clientPort is zkaas's to set (zkaas renders it): use zookeeper.client_port", "invalid config"}},
		{"extra owned dataDir", ensembleYAML + "zookeeper:\n  extra:\n    snapCount: 50000\n    dataDir: /data\n", 2, "", []string{"line 10: zookeeper.extra.dataDir: dataDir is zkaas's to set", "1 problem(s)"}},
		{"extra unknown key", ensembleYAML + "zookeeper:\n  extra:\n    myCompany.auditLog: \"on\"\n", 0, "ok (3 nodes)", []string{"level=WARN", "line 9: zookeeper.extra.myCompany.auditLog: myCompany.auditLog is not a setting zkaas knows: written to zoo.cfg unchecked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runBinary(t, nil, "validate", "-config", writeConfig(t, tt.yaml))
			if code != tt.code || !strings.Contains(stdout, tt.stdout) {
				t.Errorf("exit %d stdout %q, want %d %q; stderr:\n%s", code, stdout, tt.code, tt.stdout, stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
		})
	}
	if _, stderr, code := runBinary(t, nil, "validate", "-config", "/nonexistent/ensemble.yaml"); code != 2 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d, %s", code, stderr)
	}
	if _, _, code := runBinary(t, nil, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}

func TestIAMPolicy(t *testing.T) {
	stdout, stderr, code := runBinary(t, nil, "iam-policy", "-config", writeConfig(t, ensembleYAML))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct{ Statement []struct{ Action []string } }
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc.Statement) == 0 {
		t.Fatalf("not a policy: %v\n%s", err, stdout)
	}
	if !strings.Contains(stdout, `"aws:ResourceTag/zkaas:ensemble": "e2e"`) {
		t.Errorf("policy not scoped to the ensemble tag:\n%s", stdout)
	}
}

// TestClaim runs the real binary against the EC2 simulator and AWS's IMDS
// mock, found through the SDK's standard endpoint variables, twice: the
// second run (a reboot) reuses the claim.
func TestClaim(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{
		Seed:    7,
		Latency: ec2sim.Latency{RoundTrip: 2 * time.Millisecond, ENIAttach: 200 * time.Millisecond, VolumeAttach: 400 * time.Millisecond},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	seed, err := ec2sim.ParseSeed([]byte(`
subnets:
  - {name: a, availabilityZone: us-east-1a, cidrBlock: 10.0.1.0/24}
  - {name: b, availabilityZone: us-east-1b, cidrBlock: 10.0.2.0/24}
networkInterfaces:
  - {subnet: a, privateIpAddress: 10.0.1.10, tags: {"zkaas:ensemble": e2e, "zkaas:node": "1"}}
  - {subnet: b, privateIpAddress: 10.0.2.10, tags: {"zkaas:ensemble": e2e, "zkaas:node": "2"}}
volumes:
  - {availabilityZone: us-east-1a, sizeGiB: 10, tags: {"zkaas:ensemble": e2e, "zkaas:node": "1"}}
  - {availabilityZone: us-east-1b, sizeGiB: 10, tags: {"zkaas:ensemble": e2e, "zkaas:node": "2"}}
instances:
  - {subnet: b}
`))
	if err != nil {
		t.Fatal(err)
	}
	seeded, err := sim.ApplySeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	inst := seeded.Instances[0]
	imds, err := imdsmock.Start(context.Background(), imdsmock.Instance{
		InstanceID: inst.ID, AZ: inst.AZ, Region: "us-east-1", MAC: inst.MAC,
	}, imdsmock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(imds.Stop)
	env := []string{
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imds.URL,
		"AWS_ENDPOINT_URL_EC2=" + srv.URL,
		"AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
	cfg := writeConfig(t, ensembleYAML)
	var first claim.Result
	for run := 0; run < 2; run++ {
		runEnv := env
		if run == 1 {
			// The general endpoint variable works as well as the EC2 one.
			runEnv = append(slices.Clone(env[:1]), env[2:]...)
			runEnv = append(runEnv, "AWS_ENDPOINT_URL="+srv.URL)
		}
		stdout, stderr, code := runBinary(t, runEnv, "claim", "-config", cfg)
		if code != 0 {
			t.Fatalf("run %d: exit %d\n%s", run, code, stderr)
		}
		var r claim.Result
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("run %d: stdout is not one JSON object: %v\n%s", run, err, stdout)
		}
		if r.Node != 2 || r.IP.String() != "10.0.2.10" || r.Volume != seeded.Volumes[1].ID || r.ENI != seeded.NetworkInterfaces[1].ID || r.Device != "/dev/xvdf" {
			t.Errorf("run %d: claimed %+v", run, r)
		}
		if r.Phases.Total <= 0 || r.Phases.Wait > r.Phases.Total || r.Calls == 0 {
			t.Errorf("run %d: no phase timings or call count: %s", run, stdout)
		}
		if run == 0 {
			first = r
		} else if !r.Reused || r.ENI != first.ENI {
			t.Errorf("rerun did not reuse the claim: %+v", r)
		}
	}
	// A second instance in the same AZ finds no free node and says so in
	// one line at its deadline.
	other, err := sim.RunInstance(seeded.Subnets["b"])
	if err != nil {
		t.Fatal(err)
	}
	imds2, err := imdsmock.Start(context.Background(), imdsmock.Instance{InstanceID: other.ID, AZ: other.AZ, Region: "us-east-1", MAC: other.MAC}, imdsmock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(imds2.Stop)
	env[0] = "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imds2.URL
	short := writeConfig(t, strings.Replace(ensembleYAML, "deadline: 20s, stuck_attach: 5s", "deadline: 2s, stuck_attach: 1s", 1))
	_, stderr, code := runBinary(t, env, "claim", "-config", short)
	last := lastLine(stderr)
	if code != 1 || !strings.HasPrefix(last, "zkaas-firstboot: claim failed: claim deadline 2s passed: no free ENI for any node of ensemble e2e in us-east-1b") {
		t.Errorf("exit %d, last line %q", code, last)
	}
}

// TestRender writes a node's files offline; a second render changes nothing.
func TestRender(t *testing.T) {
	out := t.TempDir()
	cfg := writeConfig(t, ensembleYAML)
	stdout, stderr, code := runBinary(t, nil, "render", "-config", cfg, "-node", "2", "-out", out)
	if code != 0 || strings.Count(stdout, "wrote ") != 3 {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	zoo, _ := os.ReadFile(filepath.Join(out, "zoo.cfg"))
	myid, _ := os.ReadFile(filepath.Join(out, "myid"))
	if !strings.Contains(string(zoo), "server.2=10.0.2.10:2888:3888") || !strings.Contains(string(zoo), "clientPortAddress=10.0.2.10") || strings.TrimSpace(string(myid)) != "2" {
		t.Errorf("zoo.cfg:\n%s\nmyid: %q", zoo, myid)
	}
	if stdout, _, code := runBinary(t, nil, "render", "-config", cfg, "-node", "2", "-out", out); code != 0 || stdout != "" {
		t.Errorf("second render: exit %d, wrote %q", code, stdout)
	}
	if _, stderr, code := runBinary(t, nil, "render", "-config", cfg, "-node", "9", "-out", out); code != 2 || !strings.Contains(stderr, "-node") {
		t.Errorf("unknown node: exit %d, %s", code, stderr)
	}
}

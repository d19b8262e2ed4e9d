package provisioner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/zkaas/zkaas/internal/commtest"
	"github.com/zkaas/zkaas/internal/golden"
	"github.com/zkaas/zkaas/plugin/role"
)

// ensembleYAML is a valid ensemble config (firstboot's own test fixture).
const ensembleYAML = "../../ensemble/testdata/ensemble.yaml"

// fixture writes the files the built-in roles need: a firstboot binary,
// ensemble configs (valid, invalid, one enabling the AdminServer) and a
// directory of operator roles.
type fixture struct {
	binary, ensemble, badEnsemble, adminEnsemble, metricsEnsemble, roleDir string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	good, err := os.ReadFile(ensembleYAML)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{
		binary:        filepath.Join(dir, "zkaas-firstboot"),
		ensemble:      filepath.Join(dir, "ensemble.yaml"),
		badEnsemble:   filepath.Join(dir, "bad.yaml"),
		adminEnsemble: filepath.Join(dir, "admin.yaml"),
		// metrics.zookeeper on: the server must ship the provider.
		metricsEnsemble: filepath.Join(dir, "metrics.yaml"),
		roleDir:         filepath.Join(dir, "roles"),
	}
	files := map[string]string{
		f.binary:          "\x7fELF not really\x00",
		f.ensemble:        string(good),
		f.badEnsemble:     "ensemble: prod-zk\nnodes:\n  - id: 300\n    az: us-east-1a\n    ip: 10.0.1.10\n",
		f.adminEnsemble:   string(good) + "  admin_server: {enabled: true, port: 8080}\n",
		f.metricsEnsemble: string(good) + "metrics:\n  zookeeper: {enabled: true}\n",
		filepath.Join(f.roleDir, "custom/role.yaml"): `name: custom
variables:
  url: {default: "http://198.18.0.1:8080/tool.tgz"}
steps:
  - {kind: download, url: "{{.url}}", extract: /opt/tool}
  - {kind: file, dest: /etc/tool.conf, content: "x\n", mode: "0964"}
  - {kind: file, dest: /etc/tool.key, src: tool.key}
`,
		filepath.Join(f.roleDir, "ensembled/role.yaml"): `name: ensembled
variables:
  config: {type: ensemble, required: true}
steps:
  - {kind: file, dest: /etc/ensemble-name, content: "{{ (ensemble .config).Ensemble }}"}
`,
		filepath.Join(f.roleDir, "typed/role.yaml"): `name: typed
variables:
  config:
    type: ensemble
  size: {type: bytes}
steps:
  - {kind: group, name: g}
`,
	}
	for p, data := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestPrepare(t *testing.T) {
	f := newFixture(t)
	all := []string{"java", "zookeeper", "firstboot", "hardening"}
	vars := func(kv ...string) map[string]string {
		m := map[string]string{"binary": f.binary, "ensemble_config": f.ensemble}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		cfg  map[string]any
		want []string // every problem, in order; none for a valid config
	}{
		{name: "built-in roles", cfg: map[string]any{"roles": all, "variables": vars()}},
		{name: "distro zookeeper, java 21", cfg: map[string]any{"roles": all, "variables": vars("zookeeper.source", "distro", "java.version", "21")}},
		{name: "operator role overrides nothing it should not", cfg: map[string]any{"roles": []string{"java"}, "role_paths": []string{f.roleDir}}},
		{name: "operator role with an ensemble variable", cfg: map[string]any{"roles": []string{"ensembled"}, "role_paths": []string{f.roleDir}, "variables": map[string]string{"config": f.ensemble}}},
		{
			name: "no roles",
			cfg:  map[string]any{},
			want: []string{"roles: name at least one role to apply"},
		},
		{
			name: "unknown role and unsupported distro",
			cfg:  map[string]any{"roles": []string{"java", "zookeper"}, "distro_family": "yum"},
			want: []string{
				`distro_family: unsupported "yum" (supported: apt, dnf)`,
				"role zookeper: unknown role: no zookeper/role.yaml in built-in",
			},
		},
		{
			name: "duplicate role, missing role path, negative retries",
			cfg:  map[string]any{"roles": []string{"java", "java"}, "role_paths": []string{"/nonexistent/roles"}, "package_retries": -1},
			want: []string{
				"package_retries: must not be negative",
				`role_paths[0]: "/nonexistent/roles" is not a readable directory`,
				"roles[1]: role java is listed twice",
			},
		},
		{
			name: "missing checksum, bad mode, unreadable file",
			cfg:  map[string]any{"roles": []string{"custom"}, "role_paths": []string{f.roleDir}},
			want: []string{
				"role custom: steps[0] (download): sha512: required: every download is pinned by its checksum",
				`role custom: steps[1] (file): mode: "0964" is not an octal mode like 0644`,
				`role custom: steps[2] (file): src: "tool.key": cannot read files/tool.key of role custom (` + f.roleDir + `): no such file or directory`,
			},
		},
		{
			name: "bad url and checksum of the zookeeper role",
			cfg:  map[string]any{"roles": []string{"zookeeper"}, "variables": map[string]string{"zookeeper.mirror": "ftp://mirror/zookeeper", "zookeeper.sha512": "d44d870c"}},
			want: []string{
				`role zookeeper: variable sha512: value "d44d870c": not a sha512 (128 hex digits)`,
				// The download step uses both: no second message about them.
				`role zookeeper: variable mirror: value "ftp://mirror/zookeeper": not an http or https URL`,
			},
		},
		{
			name: "distro zookeeper on dnf, java 11",
			cfg:  map[string]any{"roles": []string{"java", "zookeeper"}, "distro_family": "dnf", "variables": map[string]string{"source": "distro", "java.version": "11"}},
			want: []string{
				`role java: variable version: value "11": not one of 17, 21`,
				"role zookeeper: steps[5] (packages): dnf: no packages for distro family dnf",
			},
		},
		{
			name: "firstboot: unreadable binary, invalid ensemble config",
			cfg:  map[string]any{"roles": []string{"firstboot"}, "variables": map[string]string{"binary": "/nonexistent/zkaas-firstboot", "ensemble_config": f.badEnsemble}},
			want: []string{
				`role firstboot: variable binary: value "/nonexistent/zkaas-firstboot": cannot read: no such file or directory`,
				`role firstboot: variable ensemble_config: value "` + f.badEnsemble + `": not a valid ensemble config:`,
			},
		},
		{
			// Each role using the config says so once; the steps rendering
			// it (firstboot's drop-in, the asserts) add nothing.
			name: "every role: invalid ensemble config",
			cfg:  map[string]any{"roles": all, "variables": vars("ensemble_config", f.badEnsemble)},
			want: []string{
				`role zookeeper: variable ensemble_config: value "` + f.badEnsemble + `": not a valid ensemble config:`,
				`role firstboot: variable ensemble_config: value "` + f.badEnsemble + `": not a valid ensemble config:`,
				`role hardening: variable ensemble_config: value "` + f.badEnsemble + `": not a valid ensemble config:`,
			},
		},
		{
			name: "operator role: a zkaas variable type and an unknown one",
			cfg:  map[string]any{"roles": []string{"typed"}, "role_paths": []string{f.roleDir}, "variables": map[string]string{"typed.config": f.badEnsemble}},
			want: []string{
				"role typed (" + f.roleDir + `/typed/role.yaml line 5): variables: size: type: unknown type "bytes" (known: string, int, bool, choice, path, url, sha512, ensemble)`,
			},
		},
		{
			name: "firstboot: required variables",
			cfg:  map[string]any{"roles": []string{"firstboot"}},
			want: []string{
				`role firstboot: variable binary: required, set variables["firstboot.binary"]`,
				`role firstboot: variable ensemble_config: required, set variables["firstboot.ensemble_config"]`,
			},
		},
		{
			name: "hardening refuses the AdminServer",
			cfg:  map[string]any{"roles": all, "variables": vars("ensemble_config", f.adminEnsemble)},
			want: []string{"role hardening: steps[3] (assert): that: the ensemble config enables the ZooKeeper AdminServer"},
		},
		{
			name: "distro zookeeper refuses metrics.zookeeper",
			cfg:  map[string]any{"roles": all, "variables": vars("zookeeper.source", "distro", "ensemble_config", f.metricsEnsemble)},
			want: []string{`role zookeeper: steps[8] (assert): that: the ensemble config enables metrics.zookeeper (ZooKeeper's Prometheus provider), but source "distro" installs the distribution's ZooKeeper, which does not ship zookeeper-prometheus-metrics`},
		},
		{name: "tarball zookeeper with metrics.zookeeper", cfg: map[string]any{"roles": all, "variables": vars("ensemble_config", f.metricsEnsemble)}},
		{
			name: "variables naming nothing",
			cfg:  map[string]any{"roles": []string{"java"}, "variables": map[string]string{"zookeeper.version": "3.9.3", "heap": "2g", "java.verison": "21"}},
			want: []string{
				`variables["zookeeper.version"]: role zookeeper is not in roles`,
				`variables["heap"]: no role in roles declares heap (use "<role>.heap" to name one)`,
				`role java: variable "verison": role java has no such variable (did you mean "version"?)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Provisioner
			err := p.Prepare(tt.cfg)
			var got []string
			if me, ok := err.(*packersdk.MultiError); ok {
				for _, e := range me.Errors {
					got = append(got, e.Error())
				}
			} else if err != nil {
				got = []string{err.Error()}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d:\n got %s\nwant %s…", i, got[i], w)
				}
			}
		})
	}
}

// TestPrepareQualifiedWins: a role's own "role.var" beats the bare "var".
func TestPrepareQualifiedWins(t *testing.T) {
	var p Provisioner
	err := p.Prepare(map[string]any{"roles": []string{"java"}, "variables": map[string]string{"version": "21", "java.version": "17"}})
	if err != nil {
		t.Fatal(err)
	}
	if v := p.roles[0].Vars["version"]; v != "17" {
		t.Errorf("java version = %v, want the qualified 17", v)
	}
}

// fakeHost scripts the recording communicator like a fresh Debian host:
// every check finds nothing, every action changes something, and the
// inventory prints one line per path asked about.
func fakeHost(c *commtest.Comm) {
	c.On(".", commtest.Reply{Stdout: "zkaas:changed\n"})
	c.On(`^sh -c 'id -u && mktemp`, commtest.Reply{Stdout: "0\n/tmp/zkaas-bake.TEST\n"})
	c.On(`sha256sum < "\$f"`, commtest.Reply{})
	c.OnFunc(`^sh -c 'set -e\np=`, func(cmd string, _ int) commtest.Reply {
		var b strings.Builder
		for _, m := range regexp.MustCompile(`(?m)^p=(\S+)$`).FindAllStringSubmatch(cmd, -1) {
			fmt.Fprintf(&b, "%x - root:root:644\n", len(m[1]))
		}
		return commtest.Reply{Stdout: b.String()}
	})
}

// TestProvision applies the built-in roles to the recording communicator
// and pins the whole conversation, the progress lines and the manifest.
func TestProvision(t *testing.T) {
	f := newFixture(t)
	manifest := filepath.Join(t.TempDir(), "out", "manifest.json")
	p := Provisioner{retryDelay: time.Millisecond}
	err := p.Prepare(map[string]any{
		"roles":     []string{"java", "zookeeper", "firstboot", "hardening"},
		"manifest":  manifest,
		"variables": map[string]string{"binary": f.binary, "ensemble_config": f.ensemble, "zookeeper.source": "distro"},
	})
	if err != nil {
		t.Fatal(err)
	}
	comm := &commtest.Comm{}
	fakeHost(comm)
	var out, errOut bytes.Buffer
	ui := &packersdk.BasicUi{Writer: &out, ErrorWriter: &errOut}
	if err := p.Provision(context.Background(), ui, comm, nil); err != nil {
		t.Fatalf("Provision: %v\n%s", err, errOut.String())
	}
	transcript := strings.ReplaceAll(comm.Transcript(), f.binary, "BINARY")
	transcript = strings.ReplaceAll(transcript, f.ensemble, "ENSEMBLE")
	golden.CheckNamed(t, "provision-transcript", transcript)
	progress := regexp.MustCompile(`(?m)\(\d+(\.\d+)?(µs|ms|s)\)|in \S+$`).ReplaceAllString(out.String(), "(T)")
	progress = strings.ReplaceAll(progress, manifest, "MANIFEST")
	golden.CheckNamed(t, "provision-ui", progress)

	var m role.Manifest
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	// Every step changes the fresh host but the two checks (java, firstboot validate).
	if m.Steps != 20 || m.Changed != 18 || len(m.Entries) != 14 || m.Entries[0].Path != "/etc/systemd/system/zookeeper.service.d/20-zkaas-distro.conf" {
		t.Errorf("manifest: %d of %d changed, entries %+v", m.Changed, m.Steps, m.Entries)
	}
}

// TestProvisionFailure: the first failing step stops the run; its name is
// in the error and its output in the UI.
func TestProvisionFailure(t *testing.T) {
	p := Provisioner{retryDelay: time.Millisecond}
	if err := p.Prepare(map[string]any{"roles": []string{"java"}, "package_retries": 0}); err != nil {
		t.Fatal(err)
	}
	comm := &commtest.Comm{}
	fakeHost(comm)
	comm.On("dpkg-query", commtest.Reply{Stdout: "Reading package lists...\n", Stderr: "E: Unable to locate package openjdk-17-jre-headless\n", Exit: 100})
	var out, errOut bytes.Buffer
	err := p.Provision(context.Background(), &packersdk.BasicUi{Writer: &out, ErrorWriter: &errOut}, comm, nil)
	want := "zkaas: java/packages openjdk-17-jre-headless: exit status 100: E: Unable to locate package openjdk-17-jre-headless"
	if err == nil || err.Error() != want {
		t.Errorf("Provision = %v\nwant %s", err, want)
	}
	if !strings.Contains(errOut.String(), "Reading package lists...\nE: Unable to locate package") {
		t.Errorf("the failing command's output is not in the UI:\n%s", errOut.String())
	}
	if calls := comm.Calls(); !strings.Contains(calls[len(calls)-1].Command, "rm -rf /tmp/zkaas-bake.TEST") {
		t.Errorf("staging directory not removed after the failure; last call %s", calls[len(calls)-1])
	}
}

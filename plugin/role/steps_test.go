package role

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/zkaas/zkaas/internal/commtest"
	"github.com/zkaas/zkaas/internal/golden"
	"github.com/zkaas/zkaas/plugin/remote"
)

// openSession connects a Session to a recording communicator that answers
// remote.Open as root with a fixed staging directory.
func openSession(t *testing.T, comm *commtest.Comm, family string) *Session {
	t.Helper()
	comm.On(`^sh -c 'id -u && mktemp`, commtest.Reply{Stdout: "0\n/tmp/zkaas-bake.TEST\n"})
	h, err := remote.Open(context.Background(), comm)
	if err != nil {
		t.Fatal(err)
	}
	return &Session{Host: h, Family: family, Retries: 2, RetryDelay: time.Millisecond, Log: func(s string) { t.Log(s) }}
}

// bindRole parses and binds a role named "r" from YAML.
func bindRole(t *testing.T, family, yaml string, files fstest.MapFS, vars map[string]string) *Role {
	t.Helper()
	d, err := Parse("r", "test", []byte(yaml), files, testExt)
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Bind(vars, NewEnv(family))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

const changedReply = "zkaas:changed\n"

// TestStepKinds runs every step kind against the recording communicator
// and pins every command and upload, in order, in a golden transcript.
func TestStepKinds(t *testing.T) {
	binary := filepath.Join(t.TempDir(), "zkaas-firstboot")
	if err := os.WriteFile(binary, []byte("\x7fELF binary\x00"), 0o755); err != nil {
		t.Fatal(err)
	}
	unitText := "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n"
	tests := []struct {
		name        string
		family      string
		steps       string
		vars        map[string]string
		rules       func(c *commtest.Comm)
		wantChanged []bool
	}{
		{
			name:        "packages-apt",
			steps:       "  - {kind: packages, apt: [openjdk-17-jre-headless, curl]}\n  - {kind: packages, apt: [libslf4j-java]}\n",
			rules:       func(c *commtest.Comm) { c.On("dpkg-query", commtest.Reply{Stdout: changedReply}) },
			wantChanged: []bool{true, true}, // the second run skips apt-get update
		},
		{
			name:        "packages-apt-installed",
			steps:       "  - {kind: packages, apt: [openjdk-17-jre-headless]}\n",
			wantChanged: []bool{false},
		},
		{
			name:        "packages-dnf",
			family:      "dnf",
			steps:       "  - {kind: packages, apt: [openjdk-17-jre-headless], dnf: [java-17-openjdk-headless]}\n",
			rules:       func(c *commtest.Comm) { c.On("rpm -q", commtest.Reply{Stdout: changedReply}) },
			wantChanged: []bool{true},
		},
		{
			name: "download-extract-link",
			steps: `  - kind: download
    url: https://archive.apache.org/dist/zookeeper/zookeeper-3.9.3/apache-zookeeper-3.9.3-bin.tar.gz
    sha512: ` + strings.Repeat("AB", 64) + `
    extract: /opt/zookeeper-3.9.3
    strip_components: 1
    link: /opt/zookeeper
`,
			rules:       func(c *commtest.Comm) { c.On("sha512sum", commtest.Reply{Stdout: changedReply}) },
			wantChanged: []bool{true},
		},
		{
			name:        "download-dest",
			steps:       "  - {kind: download, url: 'http://198.18.0.1:8080/a.tgz', sha512: " + strings.Repeat("0", 128) + ", dest: /var/cache/a.tgz, owner: zookeeper, mode: '0640'}\n",
			wantChanged: []bool{false},
		},
		{
			name:        "user-group",
			steps:       "  - {kind: group, name: zookeeper, system: true}\n  - {kind: user, name: zookeeper, group: zookeeper, home: /var/lib/zookeeper, system: true}\n  - {kind: user, name: svc}\n",
			rules:       func(c *commtest.Comm) { c.On("useradd|groupadd", commtest.Reply{Stdout: changedReply}) },
			wantChanged: []bool{true, true, true},
		},
		{
			name:        "file-content-new",
			steps:       "  - {kind: file, dest: /etc/zkaas/x.conf, content: \"a={{.a}}\\n\", owner: root, group: zookeeper, mode: '0640'}\n",
			vars:        map[string]string{},
			wantChanged: []bool{true},
		},
		{
			name:  "file-content-unchanged",
			steps: "  - {kind: file, dest: /etc/zkaas/x.conf, content: \"a=1\\n\", mode: '0600'}\n",
			rules: func(c *commtest.Comm) {
				c.On(`sha256sum < "\$f"`, commtest.Reply{Stdout: sha256Hex("a=1\n") + " root:root:600\n"})
			},
			wantChanged: []bool{false},
		},
		{
			name:  "file-mode-differs",
			steps: "  - {kind: file, dest: /etc/zkaas/x.conf, content: \"a=1\\n\", mode: '0600'}\n",
			rules: func(c *commtest.Comm) {
				c.On(`sha256sum < "\$f"`, commtest.Reply{Stdout: sha256Hex("a=1\n") + " root:root:644\n"})
			},
			wantChanged: []bool{true},
		},
		{
			name:        "file-local-binary",
			steps:       "  - {kind: file, src: '{{.binary}}', dest: /usr/local/bin/zkaas-firstboot, mode: '0755'}\n",
			vars:        map[string]string{"binary": binary},
			wantChanged: []bool{true},
		},
		{
			name:        "template",
			steps:       "  - {kind: template, src: zoo.tmpl, dest: /etc/zkaas/t.conf}\n",
			wantChanged: []bool{true},
		},
		{
			name:        "directory",
			steps:       "  - {kind: directory, path: /etc/zkaas, owner: root, group: zookeeper, mode: '0750'}\n",
			rules:       func(c *commtest.Comm) { c.On("install -d", commtest.Reply{Stdout: changedReply}) },
			wantChanged: []bool{true},
		},
		{
			name:        "unit",
			steps:       "  - {kind: unit, name: zookeeper.service, content: '" + strings.ReplaceAll(unitText, "\n", "\n\n      ") + "', enable: true}\n  - {kind: unit, name: ssh.service, enable: true}\n",
			rules:       func(c *commtest.Comm) { c.On("is-enabled zookeeper", commtest.Reply{Stdout: changedReply}) },
			wantChanged: []bool{true, false},
		},
		{
			name:        "sysctl-limits",
			steps:       "  - {kind: sysctl, file: /etc/sysctl.d/60-zkaas.conf, settings: {vm.swappiness: '1', net.core.somaxconn: '1024'}}\n  - {kind: limits, file: /etc/security/limits.d/60-zkaas.conf, entries: [{domain: zookeeper, type: '-', item: nofile, value: '65536'}]}\n",
			wantChanged: []bool{true, true},
		},
		{
			name: "command",
			steps: `  - {kind: command, run: "touch /var/lib/done", creates: /var/lib/done}
  - {kind: command, run: "echo x >> /etc/motd", unless: "grep -q x /etc/motd"}
  - {kind: command, run: "java -version", check: true}
`,
			rules:       func(c *commtest.Comm) { c.On("touch|motd", commtest.Reply{Stdout: changedReply}) },
			wantChanged: []bool{true, true, false},
		},
		{
			name:  "assert", // checked at bind time: no step, no commands
			steps: "  - {kind: assert, that: '{{ eq .a \"1\" }}', message: a must be 1}\n",
		},
	}
	files := fstest.MapFS{"zoo.tmpl": {Data: []byte("# role {{.a}}\nkey={{.a}}\n")}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			family := tt.family
			if family == "" {
				family = "apt"
			}
			yaml := "name: r\nvariables:\n  a: {default: \"1\"}\n  binary: {type: path}\nsteps:\n" + tt.steps
			r := bindRole(t, family, yaml, files, tt.vars)
			comm := &commtest.Comm{}
			if tt.rules != nil {
				tt.rules(comm)
			}
			s := openSession(t, comm, family)
			var got []bool
			var b strings.Builder
			for _, st := range r.Steps {
				c, err := st.Apply(context.Background(), s)
				if err != nil {
					t.Fatalf("%s: %v", st.Label(), err)
				}
				got = append(got, c)
				fmt.Fprintf(&b, "# %s %s: changed=%v\n", st.Label(), st.Subject(), c)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantChanged) {
				t.Errorf("changed = %v, want %v", got, tt.wantChanged)
			}
			golden.CheckNamed(t, "steps/"+tt.name, b.String()+comm.Transcript())
		})
	}
}

func TestPackagesRetry(t *testing.T) {
	r := bindRole(t, "apt", "name: r\nsteps:\n  - {kind: packages, apt: [curl]}\n", nil, nil)
	lock := commtest.Reply{Stderr: "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 812 (apt-get)\n", Exit: 100}

	comm := &commtest.Comm{}
	comm.OnFunc("dpkg-query", func(_ string, n int) commtest.Reply {
		if n < 2 {
			return lock
		}
		return commtest.Reply{Stdout: changedReply}
	})
	s := openSession(t, comm, "apt")
	var logged []string
	s.Log = func(m string) { logged = append(logged, m) }
	changed, err := r.Steps[0].Apply(context.Background(), s)
	if err != nil || !changed {
		t.Fatalf("Apply = %v, %v; want changed after two retries", changed, err)
	}
	if len(comm.Calls()) != 4 || len(logged) != 2 || !strings.Contains(logged[0], "attempt 1 of 3 failed (exit status 100: E: Could not get lock") {
		t.Errorf("calls %d, log %q", len(comm.Calls()), logged)
	}

	comm = &commtest.Comm{}
	comm.On("dpkg-query", lock)
	s = openSession(t, comm, "apt")
	_, err = r.Steps[0].Apply(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "after 3 attempts: exit status 100: E: Could not get lock") {
		t.Errorf("Apply with the lock always held = %v", err)
	}
}

func TestStepFailures(t *testing.T) {
	tests := []struct {
		name, steps string
		reply       commtest.Reply
		want        string
	}{
		{
			name:  "sha512 mismatch names the file",
			steps: "  - {kind: download, url: 'http://198.18.0.1:8080/zookeeper-3.9.3/apache-zookeeper-3.9.3-bin.tar.gz', sha512: " + strings.Repeat("0", 128) + ", extract: /opt/zk}\n",
			reply: commtest.Reply{Stderr: "download http://198.18.0.1:8080/zookeeper-3.9.3/apache-zookeeper-3.9.3-bin.tar.gz: sha512 mismatch for apache-zookeeper-3.9.3-bin.tar.gz: got 1234, want 0000\n", Exit: 65},
			want:  "exit status 65: download http://198.18.0.1:8080/zookeeper-3.9.3/apache-zookeeper-3.9.3-bin.tar.gz: sha512 mismatch for apache-zookeeper-3.9.3-bin.tar.gz",
		},
		{
			name:  "failing check",
			steps: "  - {kind: command, run: 'test -x /usr/bin/java', check: true}\n",
			reply: commtest.Reply{Stdout: "checking\n", Exit: 1},
			want:  "exit status 1: checking",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bindRole(t, "apt", "name: r\nsteps:\n"+tt.steps, nil, nil)
			comm := &commtest.Comm{}
			comm.On(".", tt.reply)
			s := openSession(t, comm, "apt")
			_, err := r.Steps[0].Apply(context.Background(), s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Apply = %v, want …%s…", err, tt.want)
			}
		})
	}
}

func TestBindErrors(t *testing.T) {
	tests := []struct {
		name  string
		vars  string
		steps string
		set   map[string]string
		want  []string
	}{
		{
			name:  "download without checksum, bad url, bad paths",
			steps: "  - {kind: download, url: 'ftp://x/y.tgz', dest: opt/y.tgz, link: /opt/../y, strip_components: 1}\n",
			want: []string{
				`role r: steps[0] (download): url: "ftp://x/y.tgz": not an http or https URL`,
				"role r: steps[0] (download): sha512: required: every download is pinned by its checksum",
				`role r: steps[0] (download): dest: "opt/y.tgz" must be a clean absolute path`,
				`role r: steps[0] (download): link: "/opt/../y" must be a clean absolute path`,
				"role r: steps[0] (download): strip_components: only with extract",
			},
		},
		{
			name:  "bad mode, owner and missing source",
			steps: "  - {kind: file, dest: /etc/x, mode: '0x644', owner: 'Root User', src: nothere.conf}\n  - {kind: template, dest: /etc/y}\n  - {kind: file, dest: /etc/z, src: /nonexistent/zkaas, content: x}\n  - {kind: file, dest: /etc/w}\n",
			want: []string{
				`role r: steps[0] (file): src: "nothere.conf": cannot read files/nothere.conf of role r (test): file does not exist`,
				`role r: steps[0] (file): owner: "Root User" is not a user or group name`,
				`role r: steps[0] (file): mode: "0x644" is not an octal mode like 0644`,
				"role r: steps[1] (template): src: required",
				"role r: steps[2] (file): src: give src or content, not both",
				"role r: steps[3] (file): src: give src (a file) or content (inline)",
			},
		},
		{
			name: "variables",
			vars: "  v: {type: int}\n  c: {type: choice, choices: [a, b], default: a}\n  s: {type: sha512}\n  u: {type: url}\n  p: {type: path}\n  e: {type: even}\n  q: {required: true}\n",
			set:  map[string]string{"v": "x", "c": "z", "s": "abc", "u": "not a url", "p": "/nonexistent/bin", "e": "3", "verison": "1"},
			want: []string{
				`role r: variable "verison": role r has no such variable`,
				`role r: variable v: value "x": not an integer`,
				`role r: variable c: value "z": not one of a, b`,
				`role r: variable s: value "abc": not a sha512 (128 hex digits)`,
				`role r: variable u: value "not a url": not an http or https URL`,
				`role r: variable p: value "/nonexistent/bin": cannot read: no such file or directory`,
				`role r: variable e: value "3": not even`,
				`role r: variable q: required, set variables["r.q"]`,
			},
		},
		{
			name:  "templates",
			vars:  "  version: {default: '1'}\n",
			steps: "  - {kind: file, dest: '/opt/{{.verison}}', content: x}\n  - {kind: file, dest: /x, content: '{{ if }}'}\n  - {kind: file, dest: /y, content: x, when: 'maybe'}\n",
			want: []string{
				`role r: steps[0] (file): dest: template: unknown variable "verison" (did you mean "version"?)`,
				"role r: steps[1] (file): content: template line 1: missing value for if",
				`role r: steps[2] (file): when: renders to "maybe", want true or false`,
			},
		},
		{
			name:  "packages, units, limits, commands",
			steps: "  - {kind: packages, dnf: [curl]}\n  - {kind: unit, name: zookeeper}\n  - {kind: limits, file: /etc/l, entries: [{domain: zk, type: both, item: files, value: lots}]}\n  - {kind: command, run: rm -rf /tmp/x}\n  - {kind: sysctl, file: /etc/s, settings: {'Vm swappiness': ''}}\n  - {kind: assert, that: 'false', message: nope}\n",
			want: []string{
				"role r: steps[0] (packages): apt: no packages for distro family apt",
				`role r: steps[1] (unit): name: "zookeeper" is not a systemd unit name`,
				"role r: steps[1] (unit): enable: a unit step without src or content only enables a unit: set enable: true",
				`role r: steps[2] (limits): entries[0].type: "both": want soft, hard or -`,
				`role r: steps[2] (limits): entries[0].item: "files" is not a limits.conf item`,
				`role r: steps[2] (limits): entries[0].value: "lots": want a number or unlimited`,
				"role r: steps[3] (command): run: say how to tell the command is done: creates, unless, or check: true",
				`role r: steps[4] (sysctl): settings.Vm swappiness: "Vm swappiness" is not a sysctl name`,
				"role r: steps[5] (assert): that: nope",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := tt.steps
			if steps == "" {
				steps = "  - {kind: group, name: g}\n"
			}
			yaml := "name: r\nsteps:\n" + steps
			if tt.vars != "" {
				yaml = "name: r\nvariables:\n" + tt.vars + "steps:\n" + steps
			}
			d, err := Parse("r", "test", []byte(yaml), fstest.MapFS{}, testExt)
			if err != nil {
				t.Fatal(err)
			}
			_, err = d.Bind(tt.set, NewEnv("apt"))
			errs := Errors(err)
			if len(errs) != len(tt.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("problem %d:\n got %s\nwant %s…", i, errs[i], w)
				}
			}
		})
	}
}

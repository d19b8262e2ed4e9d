package localbake

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchEnv is what every iteration of BenchmarkBake shares: built once.
type benchEnv struct {
	work                                                      string // removed by TestMain
	repo, cache, packer, rootfs, plugins, firstboot, ensemble string
	shellTemplate                                             string // the zkaas run replayed with Packer's own provisioners
	log                                                       *slog.Logger
}

var (
	benchOnce sync.Once
	bench     *benchEnv
	benchErr  error
)

// BenchmarkBake measures the local bake: `packer build` of the local
// build in packer/ (LocalBuild) with the zkaas provisioner against a fresh build
// host (zkaas_ms, the local bake time), and, against another fresh host,
// Packer's own file and shell provisioners running exactly the same
// commands and uploads — the transcript of a zkaas run (shell_ms). The
// ratio zkaas/shell is the provisioner's overhead (target <= 1.05). Both
// install packages from the same warm apt cache, so the mirror's speed
// does not decide the ratio. Medians over b.N pairs.
func BenchmarkBake(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: network namespaces, chroot")
	}
	benchOnce.Do(func() { bench, benchErr = setupBench(b) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	var zk, sh []time.Duration
	for range b.N {
		zk = append(zk, bench.timedBuild(b, false))
		sh = append(sh, bench.timedBuild(b, true))
	}
	mz, ms := median(zk), median(sh)
	b.ReportMetric(float64(mz.Milliseconds()), "zkaas_ms")
	b.ReportMetric(float64(ms.Milliseconds()), "shell_ms")
	b.ReportMetric(float64(mz)/float64(ms), "zkaas/shell")
}

func setupBench(b *testing.B) (*benchEnv, error) {
	ctx := context.Background()
	e := &benchEnv{log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	var err error
	if e.repo, err = filepath.Abs("../.."); err != nil {
		return nil, err
	}
	if e.cache, err = CacheDir(); err != nil {
		return nil, err
	}
	if e.packer, err = Packer(ctx, e.cache, e.log); err != nil {
		return nil, err
	}
	if e.rootfs, err = Rootfs(ctx, e.cache, e.log); err != nil {
		return nil, err
	}
	// Kept for the whole test binary, iterations share it; TestMain
	// removes it.
	work, err := os.MkdirTemp("", "zkaas-bench-")
	if err != nil {
		return nil, err
	}
	e.work = work
	e.plugins = filepath.Join(work, "plugins")
	e.firstboot = filepath.Join(work, "zkaas-firstboot")
	e.ensemble = filepath.Join(e.repo, "ensemble/testdata/ensemble.yaml")
	plugin := filepath.Join(work, "packer-plugin-zkaas")
	if err := BuildPlugin(ctx, e.repo, plugin); err != nil {
		return e, err
	}
	if err := InstallPlugin(ctx, e.packer, plugin, e.plugins); err != nil {
		return e, err
	}
	if err := EnsureAmazonPlugin(ctx, e.packer, e.cache, e.plugins, e.log); err != nil {
		return e, err
	}
	if err := BuildFirstboot(ctx, e.repo, runtime.GOARCH, e.firstboot); err != nil {
		return e, err
	}
	// A warm-up run: fills the apt cache and records what zkaas does.
	h, err := StartHost(ctx, HostConfig{Tarball: e.rootfs, AptCache: filepath.Join(e.cache, "apt-archives")}, e.log)
	if err != nil {
		return e, err
	}
	defer h.Close()
	transcript := filepath.Join(work, "transcript")
	var out bytes.Buffer
	if err := h.Run(ctx, e.build(&out, "transcript="+transcript)); err != nil {
		return e, fmt.Errorf("warm-up build: %w\n%s", err, out.String())
	}
	e.shellTemplate, err = replayTemplate(transcript, work)
	return e, err
}

func (e *benchEnv) build(out *bytes.Buffer, vars ...string) Build {
	return Build{Repo: e.repo, Packer: e.packer, PluginPath: e.plugins, Firstboot: e.firstboot,
		EnsembleConfig: e.ensemble, Vars: vars, Output: out}
}

// timedBuild provisions a fresh build host, with the zkaas provisioner or
// with the replay, and returns how long `packer build` took.
func (e *benchEnv) timedBuild(b *testing.B, replay bool) time.Duration {
	ctx := context.Background()
	b.StopTimer()
	h, err := StartHost(ctx, HostConfig{Tarball: e.rootfs, AptCache: filepath.Join(e.cache, "apt-archives")}, e.log)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	var out bytes.Buffer
	b.StartTimer()
	start := time.Now()
	if replay {
		cmd := h.PackerCommand(ctx, e.packer, "build", "-color=false",
			"-var", "ssh_host="+HostAddr, "-var", "ssh_private_key_file="+h.KeyFile, e.shellTemplate)
		cmd.Env = packerEnv(e.plugins)
		cmd.Stdout, cmd.Stderr = &out, &out
		err = cmd.Run()
	} else {
		err = h.Run(ctx, e.build(&out))
	}
	d := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatalf("replay=%v: %v\n%s", replay, err, out.String())
	}
	return d
}

// replayTemplate writes a Packer template that does what the transcript
// in dir recorded, with Packer's own provisioners: a file provisioner per
// upload (to the same staging path), then one shell script of every
// command line in order. The first recorded command created the staging
// directory with a random name; the replay makes the recorded one.
func replayTemplate(dir, work string) (string, error) {
	cmds, err := os.ReadFile(filepath.Join(dir, "commands.sh"))
	if err != nil {
		return "", err
	}
	first, rest, ok := strings.Cut(string(cmds), "\n")
	if !ok || !strings.Contains(first, "mktemp -d /tmp/zkaas-bake.") {
		return "", fmt.Errorf("transcript %s does not start by opening the host: %q", dir, first)
	}
	f, err := os.Open(filepath.Join(dir, "uploads.tsv"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	var uploads [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n, remote, _ := strings.Cut(sc.Text(), "\t")
		uploads = append(uploads, [2]string{filepath.Join(dir, "uploads", n), remote})
	}
	if len(uploads) == 0 {
		return "", fmt.Errorf("transcript %s has no uploads", dir)
	}
	staging := path.Dir(uploads[0][1])
	script := filepath.Join(work, "replay.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nset -e\n"+rest), 0o755); err != nil {
		return "", err
	}
	var t strings.Builder
	t.WriteString(`variable "ssh_host" { type = string }
variable "ssh_private_key_file" { type = string }
source "null" "replay" {
  communicator         = "ssh"
  ssh_host             = var.ssh_host
  ssh_username         = "root"
  ssh_private_key_file = var.ssh_private_key_file
}
build {
  sources = ["source.null.replay"]
`)
	fmt.Fprintf(&t, "  provisioner \"shell\" { inline = [%q] }\n", "mkdir -p "+staging)
	for _, u := range uploads {
		fmt.Fprintf(&t, "  provisioner \"file\" {\n    source      = %q\n    destination = %q\n  }\n", u[0], u[1])
	}
	fmt.Fprintf(&t, "  provisioner \"shell\" { script = %q }\n}\n", script)
	p := filepath.Join(work, "replay.pkr.hcl")
	return p, os.WriteFile(p, []byte(t.String()), 0o644)
}

// TestMain removes what BenchmarkBake's iterations shared.
func TestMain(m *testing.M) {
	code := m.Run()
	if bench != nil && bench.work != "" {
		os.RemoveAll(bench.work)
	}
	os.Exit(code)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestReplayTemplate pins the replay the benchmark compares against.
func TestReplayTemplate(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"commands.sh":  "sh -c 'id -u && mktemp -d /tmp/zkaas-bake.XXXXXXXX'\nsh -c 'f=/etc/a\necho'\nsh -c 'install /tmp/zkaas-bake.Ab12/1 /etc/a'\n",
		"uploads.tsv":  "1\t/tmp/zkaas-bake.Ab12/1\n",
		"uploads/1":    "a\n",
		"unrelated.md": "",
	}
	for p, data := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmpl, err := replayTemplate(dir, dir)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(tmpl)
	script, _ := os.ReadFile(filepath.Join(dir, "replay.sh"))
	for _, want := range []string{`inline = ["mkdir -p /tmp/zkaas-bake.Ab12"]`, `source      = "` + dir + `/uploads/1"`, `destination = "/tmp/zkaas-bake.Ab12/1"`, `script = "` + dir + `/replay.sh"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("replay template lacks %s:\n%s", want, got)
		}
	}
	if want := "#!/bin/sh\nset -e\nsh -c 'f=/etc/a\necho'\nsh -c 'install /tmp/zkaas-bake.Ab12/1 /etc/a'\n"; string(script) != want {
		t.Errorf("replay.sh = %q, want %q", script, want)
	}
}

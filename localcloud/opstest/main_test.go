package opstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/localbake"
)

// zkaasBin is the operator command under test, built once for the package.
var zkaasBin string

var quietLog = slog.New(slog.DiscardHandler)

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // every test skips with its reason
		}
		dir, err := os.MkdirTemp("", "zkaas-opstest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		zkaasBin = filepath.Join(dir, "zkaas")
		cmd := exec.Command("go", "build", "-o", zkaasBin, "./cmd/zkaas")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build zkaas: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	if os.Geteuid() == 0 {
		// This run's only: other runs may use the host at the same time.
		mine := fmt.Sprintf("%s%d-", localcloud.Prefix, os.Getpid())
		entries, _ := os.ReadDir("/run/netns")
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), mine) {
				fmt.Fprintln(os.Stderr, "leaked network namespace", e.Name())
				code = 1
			}
		}
	}
	os.Exit(code)
}

// image is the baked image, extracted: baked (or reused from the cache, as
// zkensemble's tests do, from the same inputs) once for the package.
var image struct {
	once         sync.Once
	rootfs, skip string
	err          error
}

func sharedImage(t *testing.T) string {
	t.Helper()
	image.once.Do(func() { image.rootfs, image.skip, image.err = bakeImage() })
	if image.skip != "" {
		t.Skip(image.skip)
	}
	if image.err != nil {
		t.Fatal(image.err)
	}
	return image.rootfs
}

func bakeImage() (rootfs, skip string, err error) {
	if os.Geteuid() != 0 {
		return "", "needs root: the bake's build host and the local cloud", nil
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		return "", "needs systemd-nspawn (Debian systemd-container; go tool mage deps installs it)", nil
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return "", "needs nsenter (util-linux): the operator command runs in the VPC's namespace", nil
	}
	dir, err := localbake.ImageDir()
	if err != nil {
		return "", "", err
	}
	cache, err := localbake.CacheDir()
	if err != nil {
		return "", "", err
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		return "", "", err
	}
	plugins, err := os.MkdirTemp("", "zkaas-opstest-plugins-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(plugins)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	var out bytes.Buffer
	// The same inputs as zkensemble's tests (ensemble/testdata/ensemble.yaml
	// baked in): one image in the cache serves both packages.
	img, baked, err := localbake.EnsureImage(ctx, localbake.Options{
		Repo: repo, CacheDir: cache, OutDir: dir, PluginPath: plugins,
		EnsembleConfig: filepath.Join(repo, "ensemble/testdata/ensemble.yaml"),
		Output:         &out, Log: quietLog,
	})
	if err != nil {
		return "", "", fmt.Errorf("bake the image: %w\n%s", err, out.String())
	}
	if rootfs, err = localcloud.ExtractImage(ctx, dir); err != nil {
		return "", "", err
	}
	fmt.Fprintf(os.Stderr, "opstest: image %s (sha256 %.12s, baked now: %v) at %s in %s\n", dir, img.SHA256, baked, rootfs, time.Since(start).Round(time.Millisecond))
	return rootfs, "", nil
}

// latency is an EC2-like model scaled down so the scenario stays quick.
var latency = ec2sim.Latency{
	RoundTrip: 5 * time.Millisecond, RoundTripJitter: 5 * time.Millisecond,
	ENIAttach: 300 * time.Millisecond, VolumeAttach: 600 * time.Millisecond,
	ENIDetach: 200 * time.Millisecond, VolumeDetach: 300 * time.Millisecond,
}

// newCloud starts a local cloud whose instances boot the image, closed
// when the test ends; machines' journals are printed if the test fails.
func newCloud(t *testing.T) *localcloud.Cloud {
	t.Helper()
	rootfs := sharedImage(t)
	cloud, err := localcloud.New(context.Background(), localcloud.Options{
		RootFS: rootfs, Boot: localcloud.BootSystemd, Logger: quietLog, ShutdownTimeout: 30 * time.Second,
		EC2: ec2sim.Options{Latency: latency, Logger: quietLog},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cloud.Close(); err != nil {
			t.Errorf("close cloud: %v", err)
		}
	})
	cloud.PrintJournalsOnFailure(t)
	return cloud
}

// operator runs the zkaas binary as an operator would on a machine inside
// the VPC: in the VPC's network namespace (the VPC router, which reaches
// every endpoint and every node), with the SDK's standard variables
// pointing it at the local cloud's endpoints and nothing of the host's AWS
// setup.
type operator struct {
	netns string
	env   []string
	dir   string
}

func newOperator(t *testing.T, cloud *localcloud.Cloud) *operator {
	t.Helper()
	// The VPC namespace is the one named ip netns of this process's
	// cloud (localcloud names it Prefix + "<pid>-<n>-vpc"): one cloud,
	// one match.
	ns, err := filepath.Glob(filepath.Join("/run/netns", fmt.Sprintf("%s%d-*-vpc", localcloud.Prefix, os.Getpid())))
	if err != nil || len(ns) != 1 {
		t.Fatalf("the VPC's network namespace: %v %v", ns, err)
	}
	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_REGION=" + cloud.Region(),
		"AWS_ENDPOINT_URL_EC2=" + cloud.EC2Endpoint(),
		"AWS_ENDPOINT_URL_AUTO_SCALING=" + cloud.AutoScalingEndpoint(),
		"AWS_ENDPOINT_URL_IAM=" + cloud.IAMEndpoint(),
		"AWS_ENDPOINT_URL_DLM=" + cloud.DLMEndpoint(),
		"AWS_ACCESS_KEY_ID=operator", "AWS_SECRET_ACCESS_KEY=localcloud",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true",
	}
	return &operator{netns: ns[0], env: env, dir: t.TempDir()}
}

// result is one run of the command.
type result struct {
	args           []string
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("zkaas %s: exit %d after %s\n--- stdout\n%s--- stderr\n%s", strings.Join(r.args, " "), r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// run runs zkaas with args until it exits or the test ends (an interrupt,
// SIGINT as Ctrl-C, then a kill 10 s later).
func (o *operator) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx := t.Context()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + o.netns, "--", zkaasBin}, args...)...)
	cmd.Env = o.env
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("zkaas %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// must runs zkaas and fails the test unless it exits 0.
func (o *operator) must(t *testing.T, args ...string) result {
	t.Helper()
	r := o.run(t, args...)
	if r.code != 0 {
		t.Fatal(r)
	}
	t.Logf("zkaas %s: %s", strings.Join(args, " "), r.took.Round(time.Millisecond))
	return r
}

// config writes an ensemble config into the operator's directory and
// returns its path.
func (o *operator) config(t *testing.T, name string, body []byte) string {
	t.Helper()
	p := filepath.Join(o.dir, name)
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

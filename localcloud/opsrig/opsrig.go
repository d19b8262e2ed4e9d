// Package opsrig runs the operator command, the built `zkaas` binary, on
// the local cloud: the cloud whose instances boot the baked image under
// systemd, the operator inside the VPC's network namespace, an ensemble's
// config with its deploy section, and the watchers of a roll (a client
// writing throughout, a monitor sampling every node's srvr). It is the rig
// that localcloud/opstest's tests and benchmarks and `go tool mage demo`
// share; nothing shipped imports it.
//
// Functions take a context and return errors rather than a testing.TB so
// that the demo, which is no test, runs them too.
package opsrig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/localbake"
)

// Missing says what this machine lacks to run the rig ("" when nothing):
// root for the bake's build host and the cloud's namespaces, systemd-nspawn
// for the machines, nsenter for the operator in the VPC's namespace.
func Missing() string {
	if os.Geteuid() != 0 {
		return "needs root: the bake's build host and the local cloud"
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		return "needs systemd-nspawn (Debian systemd-container; go tool mage deps installs it)"
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return "needs nsenter (util-linux): the operator command runs in the VPC's namespace"
	}
	return ""
}

// Image is the baked image, extracted.
type Image struct {
	RootFS string
	*localbake.Image
	Baked bool // baked now, not reused from the cache
	// BakeTook is the bake (or the check that the cached one is current),
	// ExtractTook the extraction (once per image).
	BakeTook, ExtractTook time.Duration
}

// BakeImage bakes the local image (or reuses the cached one made from the
// same inputs) and extracts it. The inputs are zkensemble's tests' (with
// ensemble/testdata/ensemble.yaml baked in) so that one image in the
// cache serves every package and the demo; each instance gets its own
// config as user data anyway. Packer's output goes to out, the bake's
// steps to log.
func BakeImage(ctx context.Context, repo string, out io.Writer, log *slog.Logger) (Image, error) {
	dir, err := localbake.ImageDir()
	if err != nil {
		return Image{}, err
	}
	cache, err := localbake.CacheDir()
	if err != nil {
		return Image{}, err
	}
	plugins, err := os.MkdirTemp("", "zkaas-opsrig-plugins-")
	if err != nil {
		return Image{}, err
	}
	// A plugin directory of its own: nothing goes into
	// ~/.config/packer/plugins.
	defer os.RemoveAll(plugins)
	start := time.Now()
	img, baked, err := localbake.EnsureImage(ctx, localbake.Options{
		Repo: repo, CacheDir: cache, OutDir: dir, PluginPath: plugins,
		EnsembleConfig: filepath.Join(repo, "ensemble/testdata/ensemble.yaml"),
		Output:         out, Log: log,
	})
	if err != nil {
		return Image{}, fmt.Errorf("bake the image: %w", err)
	}
	r := Image{Image: img, Baked: baked, BakeTook: time.Since(start)}
	start = time.Now()
	if r.RootFS, err = localcloud.ExtractImage(ctx, dir); err != nil {
		return Image{}, err
	}
	r.ExtractTook = time.Since(start)
	return r, nil
}

// BuildZkaas builds the operator command from the repository into dir
// and returns its path.
func BuildZkaas(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "zkaas")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/zkaas")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build zkaas: %w\n%s", err, out)
	}
	return bin, nil
}

// Latency is an EC2-like model scaled down (attaches in a third of a
// second or so rather than one to two) so that scenarios of several
// replacements stay quick.
var Latency = ec2sim.Latency{
	RoundTrip: 5 * time.Millisecond, RoundTripJitter: 5 * time.Millisecond,
	ENIAttach: 300 * time.Millisecond, VolumeAttach: 600 * time.Millisecond,
	ENIDetach: 200 * time.Millisecond, VolumeDetach: 300 * time.Millisecond,
}

// CloudOptions configure NewCloud.
type CloudOptions struct {
	RootFS string
	// Latency is the EC2 model (default Latency).
	Latency *ec2sim.Latency
	// GroupInterval is the group controller's period (localcloud's
	// default when zero).
	GroupInterval time.Duration
	Log           *slog.Logger
}

// NewCloud starts a local cloud whose instances boot the image under
// systemd. The caller closes it.
func NewCloud(ctx context.Context, o CloudOptions) (*localcloud.Cloud, error) {
	lat := Latency
	if o.Latency != nil {
		lat = *o.Latency
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return localcloud.New(ctx, localcloud.Options{
		RootFS: o.RootFS, Boot: localcloud.BootSystemd, Logger: o.Log, ShutdownTimeout: 30 * time.Second,
		GroupInterval: o.GroupInterval,
		EC2:           ec2sim.Options{Latency: lat, Logger: o.Log},
	})
}

// Operator runs the zkaas binary as an operator would on a machine inside
// the VPC: in the VPC's network namespace (the VPC router, which reaches
// every endpoint and every node), with the SDK's standard variables
// pointing it at the local cloud's endpoints and nothing of the host's AWS
// setup.
type Operator struct {
	Bin   string
	NetNS string // path of the VPC's network namespace
	Env   []string
	Dir   string // configs and HOME
}

// NewOperator prepares an operator for the cloud, with dir (which the
// caller removes) for its configs and HOME.
func NewOperator(cloud *localcloud.Cloud, bin, dir string) (*Operator, error) {
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_REGION=" + cloud.Region(),
		"AWS_ENDPOINT_URL_EC2=" + cloud.EC2Endpoint(),
		"AWS_ENDPOINT_URL_AUTO_SCALING=" + cloud.AutoScalingEndpoint(),
		"AWS_ENDPOINT_URL_IAM=" + cloud.IAMEndpoint(),
		"AWS_ENDPOINT_URL_DLM=" + cloud.DLMEndpoint(),
		"AWS_ACCESS_KEY_ID=" + OperatorKey, "AWS_SECRET_ACCESS_KEY=localcloud",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true",
	}
	return &Operator{Bin: bin, NetNS: cloud.VPCNetNS(), Env: env, Dir: dir}, nil
}

// OperatorKey is the operator's access key: the local cloud counts EC2
// calls by it (Cloud.EC2Calls).
const OperatorKey = "operator"

// Result is one run of the command.
type Result struct {
	Args           []string
	Stdout, Stderr string
	Code           int
	Took           time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("zkaas %s: exit %d after %s\n--- stdout\n%s--- stderr\n%s", strings.Join(r.Args, " "), r.Code, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// Run runs zkaas with args until it exits or ctx ends (then an interrupt,
// SIGINT as Ctrl-C, to the process by its PID, and a kill 10 s later). The
// error is only for a command that could not run; its exit code is the
// result's.
func (o *Operator) Run(ctx context.Context, args ...string) (Result, error) {
	return o.RunWatch(ctx, nil, args...)
}

// RunWatch is Run with each line of the command's stderr (its log) also
// handed to onLine as it comes.
func (o *Operator) RunWatch(ctx context.Context, onLine func(string), args ...string) (Result, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + o.NetNS, "--", o.Bin}, args...)...)
	cmd.Env = o.Env
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if onLine != nil {
		cmd.Stderr = &lineWriter{buf: &stderr, onLine: onLine}
	}
	start := time.Now()
	err := cmd.Run()
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		return r, fmt.Errorf("zkaas %s: %w", strings.Join(args, " "), err)
	}
	return r, nil
}

// Must runs zkaas and fails unless it exits 0.
func (o *Operator) Must(ctx context.Context, args ...string) (Result, error) {
	return o.MustWatch(ctx, nil, args...)
}

// MustWatch is Must with each line of the command's stderr handed to
// onLine as it comes (RunWatch).
func (o *Operator) MustWatch(ctx context.Context, onLine func(string), args ...string) (Result, error) {
	r, err := o.RunWatch(ctx, onLine, args...)
	if err == nil && r.Code != 0 {
		err = fmt.Errorf("%s", r)
	}
	return r, err
}

// WriteConfig writes an ensemble config into the operator's directory and
// returns its path.
func (o *Operator) WriteConfig(name string, body []byte) (string, error) {
	p := filepath.Join(o.Dir, name)
	if err := os.WriteFile(p, body, 0o644); err != nil {
		return "", err
	}
	return p, nil
}

// lineWriter keeps everything written and hands each complete line on.
type lineWriter struct {
	buf     *bytes.Buffer
	partial []byte
	onLine  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.onLine(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
}

// Ensemble is an ensemble the rig deploys with zkaas.
type Ensemble struct {
	Name  string
	Nodes []Node
	// ClaimDeadline is short so that a boot that cannot claim gives up
	// soon; the happy path never waits for it.
	ClaimDeadline time.Duration
	// Snapshots asks for daily snapshots (DLM): the operator must have
	// made DLM's default role first (CreateDLMRole).
	Snapshots bool
}

// Node is one node of the ensemble.
type Node struct {
	ID int
	AZ string
	IP netip.Addr
}

// Config is the ensemble's YAML with its deploy section, on image.
func (e Ensemble) Config(image string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# zkaas on the local cloud (localcloud/opsrig)\nensemble: %s\nnodes:\n", e.Name)
	for _, n := range e.Nodes {
		fmt.Fprintf(&b, "  - {id: %d, az: %s, ip: %s}\n", n.ID, n.AZ, n.IP)
	}
	fmt.Fprintf(&b, `claim: {deadline: %s, stuck_attach: %s, bootstrap_window: 30m}
zookeeper: {heap: 256m, four_letter_words: [srvr, ruok, mntr]}
deploy:
  image_id: %s
  instance_type: t3.medium
  volume: {type: gp3, size_gib: 1}
  client:
    cidrs: [10.0.0.0/16]
`, e.ClaimDeadline, e.ClaimDeadline/3, image)
	if e.Snapshots {
		b.WriteString("  snapshots: {daily: true, retain: 3}\n")
	}
	return b.Bytes()
}

// IPs are the nodes' addresses by id.
func (e Ensemble) IPs() map[int]netip.Addr {
	out := map[int]netip.Addr{}
	for _, n := range e.Nodes {
		out[n.ID] = n.IP
	}
	return out
}

// IDs are the nodes' ids in the config's order.
func (e Ensemble) IDs() []int {
	var out []int
	for _, n := range e.Nodes {
		out = append(out, n.ID)
	}
	return out
}

// GroupNames are the groups up makes, one per AZ the nodes are in.
func (e Ensemble) GroupNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range e.Nodes {
		if !seen[n.AZ] {
			seen[n.AZ] = true
			out = append(out, "zkaas-"+e.Name+"-"+n.AZ)
		}
	}
	return out
}

// Package localcloud is an AWS region on one Linux machine, for tests, the
// demo and benchmarks. It needs root.
//
//   - The VPC is a network namespace holding a bridge that carries every
//     subnet's gateway (its first host address), with forwarding on: the
//     namespace is the VPC router. The EC2 simulator (ec2sim) serves the EC2
//     API on EC2Address:80 inside it, the Auto Scaling simulator (asgsim)
//     the Auto Scaling API on AutoScalingAddress:80; its group controller
//     runs for the Cloud's lifetime and launches each group's instances as
//     the Cloud's own (autoscaling.go). IAM (iamsim) and Data Lifecycle
//     Manager (dlmsim), which only the operator command calls, answer on
//     IAMAddress and DLMAddress (iam.go).
//   - An instance is a network namespace whose primary interface (ens5, the
//     primary ENI's MAC and address) is a veth on the bridge, a persistent
//     mount namespace of its own, and AWS's IMDS mock (IMDSv2 only) on
//     169.254.169.254 with the instance's metadata. Its programs are the
//     host's, or — with Options.RootFS, the image the bake produced
//     (ExtractImage) — the image's, in a root of its own.
//   - With Options.Boot = BootSystemd an instance is a machine: Launch
//     starts systemd-nspawn (Debian systemd-container) on the instance's
//     overlay root, in its network namespace and a cgroup of its own under
//     the harness's, with the image's systemd as PID 1 and the image's
//     units running unmodified; journald keeps a persistent journal in the
//     root. LaunchWith's Files are put into the root before PID 1 starts.
//     Launch returns once PID 1 runs and IMDS answers, not waiting for
//     units: WaitUnit, WaitSystem, UnitState, FailedUnits and Command (run
//     in all of PID 1's namespaces) look inside; Journal reads the journal,
//     also after the machine is gone; PrintJournalsOnFailure prints every
//     machine's journal when a test fails. Reboot is systemd's own (units
//     stopped in order, volumes unmounted; nspawn exits 133 and the harness
//     boots PID 1 again on the same root, devices still attached);
//     Terminate halts the machine within Options.ShutdownTimeout, then
//     kills it; Crash is kill -9 of every process of its cgroup, no
//     shutdown. BootHost (the default) runs only what the harness starts,
//     for fast low-level tests. See machine.go, systemd.go, machinedev.go.
//   - An instance's IMDS is AWS's mock behind a front of the harness's
//     (imdsmock), which also serves the network/interfaces/macs/<mac>/
//     entries of ENIs attached later — Options.IMDSInterfaceLag after the
//     API says attached, as EC2's IMDS learns of them with a lag.
//   - An ENI attached through the EC2 API appears in the instance, once the
//     simulator's attach delay has passed, as a veth carrying the ENI's MAC,
//     named as Nitro names it (ens5 + device index), down and unconfigured.
//     Options.NICVisibleDelay (and DiskVisibleDelay for volumes) moves the
//     device's appearance after the API's "attached", or before it
//     (visibility.go): on EC2 the OS's view and the API's are not ordered.
//   - A volume attached through the EC2 API appears in the instance as a
//     loop device over the volume's sparse backing file, with the
//     /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol… link and the
//     sysfs serial a Nitro EBS device has — visible to that instance only
//     (inside a machine: in its current boot's /dev and /sys; udev does not
//     run in a container, so the harness plays its part).
//     Backing files outlive instances: a replacement instance that attaches
//     the volume gets the data.
//
// Everything a Cloud creates is removed by Close, also when the context
// given to New is cancelled (Ctrl-C); whatever a crashed run left behind is
// reclaimed by the next New.
package localcloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/internal/steplog"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/secretsim"
)

// Prefix starts the name of every network namespace a Cloud creates:
// Prefix + "<pid>-<n>-vpc" and Prefix + "<pid>-<n>-<instance id>", the pid
// being the harness process's, so that a later run can tell a crashed run's
// leftovers from those of a harness still running.
const Prefix = "zkaas-lc-"

// RunRoot holds one directory per Cloud ("<pid>-<n>"): the bind mounts that
// keep instance mount namespaces alive, the instances' private directories,
// and a record of the state directory, for reclaiming after a crash.
const RunRoot = "/run/zkaas-localcloud"

// The VPC's fixed addressing. Subnets must lie inside VPCCIDR and outside
// the service subnet that holds EC2Address.
const (
	VPCCIDR    = "10.0.0.0/16"
	EC2Address = "10.0.0.2"
)

var serviceSubnet = netip.MustParsePrefix("10.0.0.0/24")

// Cloud is one local region, composed of one part per resource: the
// simulator (the EC2 API and its state), the vpc (vpc.go: namespace,
// bridge, EC2 endpoint), the instances (instance.go; their programs in
// process.go, their mounts in mountns.go), and the enis (eni.go) and
// volumes (volume.go) plugged into them. The Cloud orders them: it starts
// and tears them down and routes the simulator's attach hooks. Its methods
// are safe for concurrent use.
type Cloud struct {
	opts   Options
	log    *slog.Logger
	tools  *tools
	runID  string
	runDir string

	sim        *ec2sim.Sim
	vpc        vpc
	instances  instances
	enis       enis
	volumes    volumes
	visible    visibility         // when hot-plugged devices appear, against the API
	groupState                    // Auto Scaling (autoscaling.go)
	opServices                    // IAM and DLM (iam.go)
	secrets    *secretsim.Service // Secrets Manager and SSM (secrets.go)
	attachLog  holdLog            // attachments as the API had them (holds.go)

	stopCtx  func() bool
	busy     sync.WaitGroup // Launch, Terminate and CreateVolume in progress
	closeErr error
	once     sync.Once

	mu      sync.Mutex
	closing bool // Close has begun: begin refuses new operations

	journaled sync.Map // instance id -> *Instance removed, whose journal is kept until Close
}

var cloudSeq atomic.Uint64

// New starts a local cloud. It needs root. It first reclaims what crashed
// runs left behind. When ctx is cancelled the Cloud closes itself; call
// Close in any case.
func New(ctx context.Context, opts Options) (_ *Cloud, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("localcloud needs root: it creates network namespaces, veth links, loop devices and mounts")
	}
	if err := checkOptions(&opts); err != nil {
		return nil, err
	}
	t, err := findTools(opts.Boot)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Cloud{
		opts:  opts,
		tools: t,
		runID: fmt.Sprintf("%d-%d", os.Getpid(), cloudSeq.Add(1)),
	}
	c.log = log.With("cloud", c.runID)
	c.runDir = filepath.Join(RunRoot, c.runID)
	c.vpc.log = c.log
	c.instances.byID = map[string]*Instance{}
	c.enis = enis{log: c.log, vpc: &c.vpc, plugged: map[string]*eniPlug{}}
	c.volumes = volumes{log: c.log, byID: map[string]*volume{}}
	c.visible = newVisibility(c.log)
	defer c.step("start").Defer(&err)
	defer func() {
		if err != nil {
			if cerr := c.teardown(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up after failed start: %w", cerr))
			}
		}
	}()

	if err := c.reclaim(ctx); err != nil {
		return nil, err
	}
	if err := c.makeRunDir(); err != nil {
		return nil, err
	}
	if err := c.volumes.open(ctx, c.opts.StateDir, c.runDir); err != nil {
		return nil, err
	}
	simOpts := c.opts.EC2
	simOpts.Hooks = ec2sim.Hooks{
		ENIAttached: c.eniAttached, ENIDetached: c.eniDetached,
		VolumeAttached: c.volumeAttached, VolumeDetached: c.volumeDetached,
	}
	if simOpts.Logger == nil {
		simOpts.Logger = c.log.With("component", "ec2sim")
	}
	c.sim = ec2sim.New(simOpts)
	if err := c.vpc.start(ctx, c.tools, Prefix+c.runID+"-vpc", c.sim, c.opts.Subnets); err != nil {
		return nil, err
	}
	if err := c.startAutoScaling(); err != nil {
		return nil, err
	}
	if err := c.startOperatorServices(); err != nil {
		return nil, err
	}
	if err := c.startSecrets(); err != nil {
		return nil, err
	}
	c.stopCtx = context.AfterFunc(ctx, func() {
		c.log.Warn("context done: closing the local cloud", "step", "close", "cause", context.Cause(ctx))
		_ = c.Close()
	})
	return c, nil
}

// makeRunDir creates this run's directory as a private bind mount of itself:
// a mount namespace can only be bind-mounted (kept alive by a file) onto a
// mount that does not propagate, and on systemd hosts / is shared.
func (c *Cloud) makeRunDir() error {
	if err := os.MkdirAll(filepath.Join(c.runDir, "mnt"), 0o700); err != nil {
		return fmt.Errorf("create run dir: %w", err)
	}
	if err := unix.Mount(c.runDir, c.runDir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s: %w", c.runDir, err)
	}
	if err := unix.Mount("", c.runDir, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", c.runDir, err)
	}
	return nil
}

// RootFS is the image instances boot from (Options.RootFS), "" when they
// run the host's programs.
func (c *Cloud) RootFS() string { return c.opts.RootFS }

// Region is the simulated region.
func (c *Cloud) Region() string { return c.opts.EC2.Region }

// Sim is the EC2 simulator, for its admin methods (faults, stats, state).
func (c *Cloud) Sim() *ec2sim.Sim { return c.sim }

// EC2Endpoint is the EC2 API's URL, reachable from instances and through
// HTTPClient.
func (c *Cloud) EC2Endpoint() string { return "http://" + EC2Address }

// DialContext connects from inside the VPC namespace (the VPC router), which
// reaches the EC2 simulator and every instance address: how the harness
// talks to ZooKeeper on an instance. The connection holds the namespace; it
// must be closed before Close returns for Close to release the namespace.
func (c *Cloud) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return c.vpc.dial(ctx, network, address)
}

// VPCNetNS is the path of the VPC's network namespace (/run/netns/...):
// where a program run with `nsenter --net=` reaches every endpoint and
// every instance address, as DialContext does.
func (c *Cloud) VPCNetNS() string { return c.vpc.ns }

// HTTPClient returns a client whose connections start inside the VPC
// namespace (see DialContext): the real EC2 endpoint, from the harness.
func (c *Cloud) HTTPClient() *http.Client { return httpClient(c.DialContext) }

// begin registers an operation that Close must wait for.
func (c *Cloud) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return errors.New("local cloud is closed")
	}
	c.busy.Add(1)
	return nil
}

// Close removes everything the Cloud created: instances (processes killed by
// PID, devices released, namespaces deleted), the VPC, loop devices, mounts,
// the run directory and a temporary state directory. Volume files in a
// caller's StateDir stay. Close is idempotent.
func (c *Cloud) Close() error {
	c.once.Do(func() {
		st := c.step("close")
		c.closeErr = st.End(c.teardown())
	})
	return c.closeErr
}

// teardown undoes New, whatever part of it ran.
func (c *Cloud) teardown() error {
	if c.stopCtx != nil {
		c.stopCtx()
	}
	// The group controller first: it would launch replacements for
	// what is torn down below.
	c.stopAutoScaling()
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.instances.stopPlugging()
	c.visible.close()
	c.busy.Wait()
	// After this no API call comes in and no hook runs: nothing plugs into
	// what is torn down below.
	errs := []error{c.vpc.stopEndpoint()}
	if c.sim != nil {
		c.sim.Close()
	}
	for _, inst := range c.instances.all() {
		errs = append(errs, c.destroy(inst))
	}
	errs = append(errs, c.vpc.close(), c.volumes.close(), removeRunDir(c.runDir))
	return errors.Join(errs...)
}

// removeRunDir unmounts what is bound under a run directory (instance mount
// namespaces), the directory's own bind mount, and removes it.
func removeRunDir(dir string) error {
	var errs []error
	mnts, err := os.ReadDir(filepath.Join(dir, "mnt"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, m := range mnts {
		path := filepath.Join(dir, "mnt", m.Name())
		errs = append(errs, killNamespace("mnt", path), unmountRemove(path))
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("unmount %s: %w", dir, err))
	}
	errs = append(errs, os.RemoveAll(dir))
	return errors.Join(errs...)
}

// step starts a logged step of the local cloud (see steplog). Use as
// defer c.step("name", attrs...).Defer(&err).
func (c *Cloud) step(name string, attrs ...any) *steplog.Step {
	return startStep(c.log, name, attrs...)
}

// startStep is step for the Cloud's parts, which log with the Cloud's logger.
func startStep(log *slog.Logger, name string, attrs ...any) *steplog.Step {
	return steplog.Start(context.Background(), log, name, attrs...)
}

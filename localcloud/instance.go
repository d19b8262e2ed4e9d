package localcloud

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/imdsmock"
)

// imdsAddress is where IMDS answers on every instance.
const imdsAddress = "169.254.169.254"

// Instance is one running instance: its identity in the simulator and the
// namespaces that are its machine. Programs run on it with Command and
// Start.
type Instance struct {
	ID         string
	AZ         string
	Region     string
	SubnetID   string
	SubnetCIDR string
	PrivateIP  string // of the primary ENI, configured on ens5
	MAC        string // of the primary ENI
	NetNS      string // path of its network namespace (/run/netns/...)
	MountNS    string // path of the bind mount that keeps its mount namespace
	// Tags are the instance's tags at launch (a group's propagated tags
	// and aws:autoscaling:groupName for an instance its group launched).
	Tags map[string]string

	cloud   *Cloud
	log     *slog.Logger
	netNL   *netlink.Handle
	primary string   // bridge end of ens5
	root    *os.File // the instance's "/" (O_PATH), see Path
	rootDir string   // with an image: where its root is mounted in its mount namespace
	imds    *imdsmock.Server
	dir     string   // its overlay layers (root or private directories), IMDS files
	machine *machine // with BootSystemd: its OS, systemd as PID 1

	net netnsRef

	mu         sync.Mutex
	terminated bool
	procs      map[*Process]bool
}

// instances is the registry of the running instances. Its lock also
// orders plugging devices into them: an ENI or volume is plugged into an
// instance only while the registry holds it as running, and destroy takes
// it out and unplugs everything from it in one hold, so that nothing is
// plugged into an instance being torn down. Lock order: instances.mu, then
// enis.mu or volumes.mu.
type instances struct {
	mu      sync.Mutex
	closing bool // the Cloud is closing: nothing is plugged any more
	byID    map[string]*Instance
}

// add registers a launched instance.
func (r *instances) add(inst *Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byID[inst.ID] = inst
}

// claim takes the instance out of the registry for Terminate; false when it
// is not (or no longer) this Cloud's, so that two Terminates cannot both run.
func (r *instances) claim(inst *Instance) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[inst.ID] != inst {
		return false
	}
	delete(r.byID, inst.ID)
	return true
}

// plugInto runs plug with the running instance id, holding the registry so
// that the instance cannot be destroyed meanwhile.
func (r *instances) plugInto(id string, plug func(*Instance) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return fmt.Errorf("instance %s: local cloud closing", id)
	}
	inst := r.byID[id]
	if inst == nil {
		return fmt.Errorf("instance %s is not running in this local cloud", id)
	}
	return plug(inst)
}

// remove takes the instance out of the registry and, in the same hold,
// runs unplug on it.
func (r *instances) remove(inst *Instance, unplug func(*Instance) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byID, inst.ID)
	return unplug(inst)
}

// stopPlugging makes plugInto refuse from now on.
func (r *instances) stopPlugging() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closing = true
}

// all lists the registered instances.
func (r *instances) all() []*Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Instance, 0, len(r.byID))
	for _, inst := range r.byID {
		out = append(out, inst)
	}
	return out
}

// Launch starts an instance in the AZ's subnet — a new instance id, the
// subnet's next free address — and returns once it is running in the
// simulator, its network is configured and IMDS answers on it, and with
// BootSystemd once systemd runs as its PID 1 (not waiting for any unit:
// see WaitUnit and WaitSystem).
func (c *Cloud) Launch(ctx context.Context, az string) (*Instance, error) {
	return c.LaunchWith(ctx, az, LaunchOptions{})
}

// LaunchWith is Launch with options.
func (c *Cloud) LaunchWith(ctx context.Context, az string, lo LaunchOptions) (_ *Instance, err error) {
	if err := c.begin(); err != nil {
		return nil, err
	}
	defer c.busy.Done()
	sub, err := c.vpc.subnet(az)
	if err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	si, err := c.sim.RunInstance(sub.id)
	if err != nil {
		return nil, fmt.Errorf("launch in %s: %w", az, err)
	}
	return c.start(ctx, sub, si, lo)
}

// start makes the simulator's instance si, just run in sub, a running
// instance of the local cloud: Launch's work after RunInstance. On failure
// it terminates si in the simulator too.
func (c *Cloud) start(ctx context.Context, sub subnet, si ec2sim.Instance, lo LaunchOptions) (_ *Instance, err error) {
	inst := &Instance{
		ID: si.ID, AZ: si.AZ, Region: c.Region(), SubnetID: sub.id, SubnetCIDR: sub.cidr.String(),
		PrivateIP: si.PrivateIP, MAC: si.MAC, Tags: maps.Clone(lo.Tags),
		cloud: c, log: c.log.With("instance", si.ID),
		dir: filepath.Join(c.runDir, "inst", si.ID), procs: map[*Process]bool{},
	}
	defer c.step("launch", "instance", si.ID, "az", si.AZ, "ip", si.PrivateIP).Defer(&err)
	defer func() {
		if err != nil {
			// The simulator has no launch failure: terminate it there too.
			err = errors.Join(err, c.sim.TerminateInstance(si.ID), c.destroy(inst))
		}
	}()
	if err := c.instanceNetwork(ctx, inst, sub, si.PrimaryENI); err != nil {
		return nil, err
	}
	if err := c.instanceMounts(ctx, inst); err != nil {
		return nil, err
	}
	if err := inst.writeFiles(lo.Files); err != nil {
		return nil, err
	}
	if err := c.startIMDS(ctx, inst, sub, lo); err != nil {
		return nil, err
	}
	if c.asg != nil {
		asg := c.asg
		inst.imds.SetTargetLifecycleState(func() (string, bool) {
			in, ok := asg.Instance(inst.ID)
			return in.TargetLifecycleState, ok
		})
	}
	if err := c.waitRunning(ctx, inst.ID); err != nil {
		return nil, err
	}
	// Registered before PID 1 starts: its units attach ENIs and volumes
	// at once, and the attach hooks plug only into registered instances.
	c.instances.add(inst)
	if c.opts.Boot == BootSystemd {
		if err := c.bootMachine(ctx, inst); err != nil {
			return nil, err
		}
	}
	return inst, nil
}

// instanceNetwork creates the instance's network namespace with lo (also
// carrying the IMDS address) and the primary interface ens5 on the bridge,
// configured as the OS would at boot: address and default route.
func (c *Cloud) instanceNetwork(ctx context.Context, inst *Instance, sub subnet, eni string) (err error) {
	defer c.step("instance network", "instance", inst.ID).Defer(&err)
	path, h, err := c.tools.createNetNS(ctx, Prefix+c.runID+"-"+inst.ID)
	if err != nil {
		return err
	}
	inst.NetNS = path
	inst.net.set(h)
	if inst.netNL, err = netlink.NewHandleAt(h); err != nil {
		return fmt.Errorf("netlink in %s: %w", inst.NetNS, err)
	}
	if inst.primary, err = c.vpc.plugVeth(inst, 0, inst.MAC, inst.PrivateIP, eni+" on "+inst.ID+" (primary)"); err != nil {
		return err
	}
	ip := netip.MustParseAddr(inst.PrivateIP)
	for _, l := range []struct {
		name string
		addr netip.Prefix
	}{
		{"lo", netip.PrefixFrom(netip.MustParseAddr(imdsAddress), 32)},
		{nitroName(0), netip.PrefixFrom(ip, sub.cidr.Bits())},
	} {
		link, err := inst.netNL.LinkByName(l.name)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", l.name, inst.ID, err)
		}
		if err := inst.netNL.AddrAdd(link, addr(l.addr)); err != nil {
			return fmt.Errorf("add %s to %s in %s: %w", l.addr, l.name, inst.ID, err)
		}
		if err := inst.netNL.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up in %s: %w", l.name, inst.ID, err)
		}
	}
	if err := inst.netNL.RouteAdd(&netlink.Route{Gw: sub.gateway.AsSlice()}); err != nil {
		return fmt.Errorf("default route via %s in %s: %w", sub.gateway, inst.ID, err)
	}
	return nil
}

// startIMDS runs AWS's IMDS mock inside the instance's network namespace on
// 169.254.169.254:80 and waits until it hands out tokens.
func (c *Cloud) startIMDS(ctx context.Context, inst *Instance, sub subnet, lo LaunchOptions) (err error) {
	defer c.step("imds", "instance", inst.ID).Defer(&err)
	inst.imds, err = imdsmock.Start(ctx, imdsmock.Instance{
		InstanceID: inst.ID, AZ: inst.AZ, Region: inst.Region, MAC: inst.MAC, PrivateIP: inst.PrivateIP,
		SubnetID: sub.id, SubnetCIDR: sub.cidr.String(), VPCCIDR: VPCCIDR,
		UserData: lo.UserData, Tags: lo.Tags,
	}, imdsmock.Options{
		// The front (hot-attached ENIs' entries) listens from the
		// harness inside the instance's namespace; AWS's mock behind it
		// on its default port, on the instance's loopback.
		Host: imdsAddress, Port: 80, Listen: inst.net.listen,
		BackendPort: 1338, Dial: inst.DialContext,
		// In the instance's run dir, so a crashed run's reclaim removes it.
		Dir: filepath.Join(inst.dir, "imds"),
		Wrap: func(cmd *exec.Cmd) {
			cmd.Args = append([]string{"nsenter", "--net=" + inst.NetNS, "--", cmd.Path}, cmd.Args[1:]...)
			cmd.Path = c.tools.nsenter
		},
		Client: inst.HTTPClient(),
	})
	if err != nil {
		return fmt.Errorf("IMDS of %s: %w", inst.ID, err)
	}
	return nil
}

// imdsLearn tells the instance's IMDS of a hot-attached ENI, whose
// network/interfaces/macs/<mac>/ entries it serves from at on: EC2's IMDS
// learns of an ENI attached after launch some time after the attach
// (Options.IMDSInterfaceLag).
func (c *Cloud) imdsLearn(ev ec2sim.ENIEvent, at time.Time) {
	n, ok := c.sim.NetworkInterface(ev.NetworkInterfaceID)
	if !ok {
		return
	}
	ifc := imdsmock.Interface{
		MAC: ev.MAC, InterfaceID: ev.NetworkInterfaceID, DeviceNumber: int(ev.DeviceIndex),
		LocalIPv4s: ev.PrivateIP, SubnetID: n.SubnetID, VPCID: n.VPCID, VPCCIDR: VPCCIDR,
	}
	if sub, ok := c.vpc.subnetByID(n.SubnetID); ok {
		ifc.SubnetCIDR = sub.cidr.String()
	}
	_ = c.instances.plugInto(ev.InstanceID, func(inst *Instance) error {
		inst.mu.Lock()
		defer inst.mu.Unlock()
		if inst.imds != nil {
			inst.imds.AddInterface(ifc, at)
		}
		return nil
	})
}

// imdsForget takes a detached ENI out of its instance's IMDS.
func (c *Cloud) imdsForget(ev ec2sim.ENIEvent) {
	_ = c.instances.plugInto(ev.InstanceID, func(inst *Instance) error {
		inst.mu.Lock()
		defer inst.mu.Unlock()
		if inst.imds != nil {
			inst.imds.RemoveInterface(ev.MAC)
		}
		return nil
	})
}

// waitRunning waits until the simulator has the instance running (a start
// latency keeps it pending for a while).
func (c *Cloud) waitRunning(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.EC2.Latency.InstanceStart+30*time.Second)
	defer cancel()
	for {
		si, ok := c.sim.Instance(id)
		if !ok {
			return fmt.Errorf("instance %s vanished from the simulator", id)
		}
		switch si.State {
		case ec2sim.StateRunning:
			return nil
		case ec2sim.StateShuttingDown, ec2sim.StateTerminated:
			// Terminated while it booted (its group gave up on it).
			return fmt.Errorf("instance %s is %s", id, si.State)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instance %s still %s: %w", id, si.State, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Terminate ends the instance, terminates it in the simulator — which
// detaches its ENIs and volumes after its latencies, as EC2 does — and
// removes its devices and namespaces at once. In host mode its processes
// are killed (SIGKILL by PID: no clean shutdown); a machine (BootSystemd)
// is shut down in order first, within Options.ShutdownTimeout, and killed
// past it. It does not wait for the simulator. Once started it runs to the
// end whatever ctx does: a half-terminated instance helps no one.
func (c *Cloud) Terminate(ctx context.Context, inst *Instance) error {
	return c.end(ctx, inst, "terminate", true)
}

// Crash is a hardware failure: every process of the instance is killed
// with SIGKILL, by PID (a machine's whole cgroup) — no shutdown at all, so
// nothing is unmounted and no unit stopped — and the instance is
// terminated in the simulator and removed as by Terminate. Its journal
// stays readable (Journal) until the Cloud closes.
func (c *Cloud) Crash(ctx context.Context, inst *Instance) error {
	return c.end(ctx, inst, "crash", false)
}

// end is Terminate (clean) and Crash.
func (c *Cloud) end(ctx context.Context, inst *Instance, what string, clean bool) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", what, inst.ID, err)
	}
	if err := c.begin(); err != nil {
		return err
	}
	defer c.busy.Done()
	defer c.step(what, "instance", inst.ID).Defer(&err)
	if !c.instances.claim(inst) {
		return fmt.Errorf("%s %s: not running in this local cloud", what, inst.ID)
	}
	var serr error
	if clean && inst.machine != nil {
		serr = c.shutdownMachine(inst)
	}
	kerr := inst.kill()
	return errors.Join(serr, kerr, c.sim.TerminateInstance(inst.ID), c.destroy(inst))
}

// kill stops everything running on the instance, by PID: IMDS, the
// processes started with Start, and any other process inside its
// namespaces. Nothing can be started on it afterwards.
func (inst *Instance) kill() error {
	inst.mu.Lock()
	inst.terminated = true
	procs := make([]*Process, 0, len(inst.procs))
	for p := range inst.procs {
		procs = append(procs, p)
	}
	imds := inst.imds
	inst.imds = nil
	inst.mu.Unlock()
	var errs []error
	if inst.machine != nil {
		// The machine first: its processes live in namespaces of their
		// own (PID, mount), and its cgroup holds them all.
		errs = append(errs, inst.machine.kill())
	}
	if imds != nil {
		imds.Stop()
	}
	for _, p := range procs {
		_ = p.cmd.Process.Kill()
	}
	if inst.NetNS != "" {
		errs = append(errs, killNamespace("net", inst.NetNS))
	}
	if inst.MountNS != "" {
		errs = append(errs, killNamespace("mnt", inst.MountNS))
	}
	timeout := time.NewTimer(killWait)
	defer timeout.Stop()
	for _, p := range procs {
		select {
		case <-p.done:
		case <-timeout.C:
			return errors.Join(append(errs, fmt.Errorf("process %d on %s did not exit after SIGKILL", p.PID, inst.ID))...)
		}
	}
	return errors.Join(errs...)
}

// destroy removes an instance's processes, devices and namespaces, whatever
// part of Launch created them. The simulator is not told.
func (c *Cloud) destroy(inst *Instance) error {
	errs := []error{inst.kill()}
	errs = append(errs, c.instances.remove(inst, func(inst *Instance) error {
		return errors.Join(c.enis.unplugAll(inst), c.volumes.unplugAll(inst))
	}))
	if inst.root != nil {
		errs = append(errs, inst.root.Close())
	}
	if inst.MountNS != "" {
		errs = append(errs, unmountRemove(inst.MountNS))
	}
	if inst.primary != "" {
		errs = append(errs, c.vpc.unplugVeth(inst.primary))
	}
	if inst.netNL != nil {
		inst.netNL.Close()
	}
	inst.net.close()
	if inst.NetNS != "" {
		errs = append(errs, deleteNetNS(inst.NetNS))
	}
	errs = append(errs, c.keepJournal(inst), os.RemoveAll(inst.dir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("destroy %s: %w", inst.ID, err)
	}
	return nil
}

// DialContext connects from inside the instance's network namespace, as a
// program on the instance would.
func (inst *Instance) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := inst.net.dial(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("from %s: %w", inst.ID, err)
	}
	return conn, nil
}

// HTTPClient returns a client whose connections start on the instance
// (see DialContext): IMDS at 169.254.169.254, the EC2 endpoint.
func (inst *Instance) HTTPClient() *http.Client { return httpClient(inst.DialContext) }

// Path returns the path under which the harness process reaches p as the
// instance sees it — through its mount namespace and, with an image, inside
// its root: its /dev, its private directories, what programs on it mounted.
// Valid until Terminate. Absolute symlinks met on the way resolve on the
// host, not on the instance: use Open to follow them as the instance does.
func (inst *Instance) Path(p string) string {
	return fmt.Sprintf("/proc/self/fd/%d%s", inst.root.Fd(), filepath.Clean("/"+p))
}

// FS is the instance's file system as its programs see it, read-only, for
// fs.ReadFile, fs.ReadDir and the like: Open with fs.FS's unrooted paths
// ("etc/passwd").
func (inst *Instance) FS() fs.FS { return instanceFS{inst} }

type instanceFS struct{ inst *Instance }

func (f instanceFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	file, err := f.inst.Open(name)
	if err != nil {
		return nil, err
	}
	return file, nil
}

// Open opens p read-only as a program on the instance would: every symlink
// on the way, absolute ones too, resolves inside the instance's root (an
// image's /usr/bin/java -> /etc/alternatives/java -> ...), never on the
// host. Valid until Terminate.
func (inst *Instance) Open(p string) (*os.File, error) {
	fd, err := unix.Openat2(int(inst.root.Fd()), filepath.Clean("/"+p), &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p + " on " + inst.ID, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

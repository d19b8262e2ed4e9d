// Package zkensemble runs a real ZooKeeper ensemble on the local cloud: every
// node's slot (tagged ENI + volume) in the simulator, instances that become
// nodes by running the real zkaas-firstboot, and ZooKeeper started from the
// files firstboot rendered — the way zookeeper.service would.
//
// Instances either run the host's programs (a zkaas-firstboot built for the
// test, the host's Java and Debian's ZooKeeper jars) or, when the cloud
// boots them from the baked image (localcloud.Options.RootFS), the image's:
// its zkaas-firstboot, and ZooKeeper started as its zookeeper.service and
// drop-ins say, with its Java and ZooKeeper.
package zkensemble

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/boot"
	"github.com/zkaas/zkaas/firstboot/systemd"
	"github.com/zkaas/zkaas/firstboot/zookeeper"
	"github.com/zkaas/zkaas/localcloud"
)

// Classpath runs the Debian zookeeper package's server (3.8: no systemd
// unit, QuorumPeerMain in zookeeper.jar) with slf4j-simple so its log
// reaches stderr.
var Classpath = []string{"/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"}

// FirstbootPath is where the bake installs zkaas-firstboot in the image.
const FirstbootPath = "/usr/local/bin/zkaas-firstboot"

// PrivateDirs are what instances must each see privately (like instances
// booted from one image): firstboot writes under /etc. The data volume's
// mount point (/var/lib/zookeeper, from the zookeeper package) needs no
// overlay: the mount itself is private to the instance's mount namespace.
var PrivateDirs = []string{"/etc"}

// Options describes the ensemble.
type Options struct {
	Name  string          // ensemble tag value
	Nodes []ensemble.Node // id, AZ, IP of every node
	// Binary is the zkaas-firstboot to run, as a path on the instances: on
	// instances running the host's programs, a host path (BuildFirstboot);
	// on instances booted from an image, default FirstbootPath, the baked
	// one.
	Binary string
	// Heap for each JVM (config zookeeper.heap); default 256m.
	Heap string
	// VolumeGiB per node; default 2.
	VolumeGiB int32
	// Deadline is the claim deadline; default 60s.
	Deadline time.Duration
	// BootstrapWindow (claim.bootstrap_window); default max(30m, Deadline).
	BootstrapWindow time.Duration
	// LogDir keeps each ZooKeeper's log; default a temp dir.
	LogDir string
	Log    *slog.Logger
}

// Ensemble is the nodes' slots and the instances currently holding them.
type Ensemble struct {
	Cloud *localcloud.Cloud
	opts  Options
	cfg   []byte
	slots map[int]localcloud.Slot

	// tempLogDir: LogDir is a temp dir New made, which Close removes.
	tempLogDir bool

	mu    sync.Mutex
	nodes map[int]*Node // by node id
}

// Node is an instance that became a node.
type Node struct {
	ID       int
	IP       string
	Instance *localcloud.Instance
	Report   boot.Report // the first firstboot run on this instance
	ZK       *localcloud.Process
	ZKLog    string // host path of ZooKeeper's log
	Launched time.Time
}

// New creates every node's slot in the cloud.
func New(cloud *localcloud.Cloud, opts Options) (*Ensemble, error) {
	if opts.Heap == "" {
		opts.Heap = "256m"
	}
	if opts.VolumeGiB == 0 {
		opts.VolumeGiB = 2
	}
	if opts.Deadline == 0 {
		opts.Deadline = 60 * time.Second
	}
	if opts.BootstrapWindow == 0 {
		opts.BootstrapWindow = max(30*time.Minute, opts.Deadline)
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Binary == "" {
		if cloud.RootFS() == "" {
			return nil, errors.New("ensemble: no Binary: build zkaas-firstboot with BuildFirstboot, or boot the cloud from an image")
		}
		opts.Binary = FirstbootPath
	}
	tempLogDir := opts.LogDir == ""
	if tempLogDir {
		dir, err := os.MkdirTemp("", "zkaas-ensemble-")
		if err != nil {
			return nil, err
		}
		opts.LogDir = dir
	}
	e := &Ensemble{Cloud: cloud, opts: opts, slots: map[int]localcloud.Slot{}, nodes: map[int]*Node{}, tempLogDir: tempLogDir}
	e.cfg = e.render()
	if _, _, err := ensemble.Parse("ensemble.yaml", e.cfg); err != nil {
		e.Close()
		return nil, fmt.Errorf("ensemble config: %w", err)
	}
	for _, n := range opts.Nodes {
		slot, err := cloud.CreateSlot(opts.Name, n.ID, n.AZ, n.IP.String(), opts.VolumeGiB)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("slot of node %d: %w", n.ID, err)
		}
		e.slots[n.ID] = slot
	}
	return e, nil
}

// Config returns the ensemble.yaml every instance reads.
func (e *Ensemble) Config() []byte { return e.cfg }

func (e *Ensemble) render() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "ensemble: %s\nnodes:\n", e.opts.Name)
	for _, n := range e.opts.Nodes {
		fmt.Fprintf(&b, "  - {id: %d, az: %s, ip: %s}\n", n.ID, n.AZ, n.IP)
	}
	fmt.Fprintf(&b, "claim: {deadline: %s, stuck_attach: %s, bootstrap_window: %s}\n", e.opts.Deadline, e.opts.Deadline/3, e.opts.BootstrapWindow)
	fmt.Fprintf(&b, "zookeeper: {heap: %s, four_letter_words: [srvr, ruok, mntr]}\n", e.opts.Heap)
	return b.Bytes()
}

// Slot returns node id's slot.
func (e *Ensemble) Slot(id int) localcloud.Slot { return e.slots[id] }

// Node returns the instance currently holding node id.
func (e *Ensemble) Node(id int) *Node {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nodes[id]
}

// Boot launches an instance in az, runs firstboot on it and starts
// ZooKeeper: what the ASG and systemd do for a new instance.
func (e *Ensemble) Boot(ctx context.Context, az string) (*Node, error) {
	launched := time.Now()
	inst, err := e.Cloud.Launch(ctx, az)
	if err != nil {
		return nil, err
	}
	if err := e.InstallConfig(inst); err != nil {
		return nil, err
	}
	rep, err := e.Firstboot(ctx, inst)
	if err != nil {
		return nil, err
	}
	n := &Node{ID: rep.Claim.Node, IP: rep.Claim.IP.String(), Instance: inst, Report: rep, Launched: launched,
		ZKLog: filepath.Join(e.opts.LogDir, fmt.Sprintf("zookeeper-%d-%s.log", rep.Claim.Node, inst.ID))}
	if err := e.startZooKeeper(ctx, n); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.nodes[n.ID] = n
	e.mu.Unlock()
	return n, nil
}

// InstallConfig writes the ensemble config onto the instance, as the image
// (or user data) would carry it; on an image it replaces the baked one.
func (e *Ensemble) InstallConfig(inst *localcloud.Instance) error {
	if err := os.MkdirAll(inst.Path(filepath.Dir(ensemble.DefaultPath)), 0o755); err != nil {
		return fmt.Errorf("install %s on %s: %w", ensemble.DefaultPath, inst.ID, err)
	}
	if err := os.WriteFile(inst.Path(ensemble.DefaultPath), e.cfg, 0o644); err != nil {
		return fmt.Errorf("install %s on %s: %w", ensemble.DefaultPath, inst.ID, err)
	}
	return nil
}

// BootAll boots one instance per AZ given, all at once.
func (e *Ensemble) BootAll(ctx context.Context, azs []string) ([]*Node, error) {
	nodes := make([]*Node, len(azs))
	errs := make([]error, len(azs))
	var wg sync.WaitGroup
	for i, az := range azs {
		wg.Go(func() { nodes[i], errs[i] = e.Boot(ctx, az) })
	}
	wg.Wait()
	return nodes, errors.Join(errs...)
}

// Firstboot runs `zkaas-firstboot run` on the instance and returns its report.
func (e *Ensemble) Firstboot(ctx context.Context, inst *localcloud.Instance) (boot.Report, error) {
	var stdout, stderr bytes.Buffer
	cmd := inst.Command(ctx, e.opts.Binary, "run", "-config", ensemble.DefaultPath)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return boot.Report{}, fmt.Errorf("firstboot on %s: %v: %s", inst.ID, err, lastLine(stderr.String()))
	}
	var rep boot.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return rep, fmt.Errorf("firstboot on %s printed no report: %v\n%s", inst.ID, err, stdout.String())
	}
	return rep, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// RestartZooKeeper kills the node's ZooKeeper (SIGKILL) and starts it again
// on the same instance, as systemd's Restart= would.
func (e *Ensemble) RestartZooKeeper(ctx context.Context, n *Node) error {
	if n.ZK != nil {
		if err := n.ZK.Kill(); err != nil {
			return err
		}
	}
	return e.startZooKeeper(ctx, n)
}

// startZooKeeper runs ZooKeeper on the node as zookeeper.service does,
// its output into the node's log.
func (e *Ensemble) startZooKeeper(ctx context.Context, n *Node) error {
	// ZooKeeper outlives the call that starts it, as a service outlives
	// systemctl start.
	ctx = context.WithoutCancel(ctx)
	var cmd *exec.Cmd
	var err error
	if e.Cloud.RootFS() != "" {
		cmd, err = unitZooKeeper(ctx, n.Instance)
	} else {
		cmd, err = hostZooKeeper(ctx, n.Instance)
	}
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(n.ZKLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	n.ZK, err = n.Instance.Start(cmd)
	return err
}

// hostZooKeeper is the host's Java running Debian's ZooKeeper jars
// (Classpath) as the host's zookeeper user, with the JVM flags of the
// rendered java.env and the rendered zoo.cfg: what zookeeper.service does
// on an image whose ZooKeeper is the distro package's.
func hostZooKeeper(ctx context.Context, inst *localcloud.Instance) (*exec.Cmd, error) {
	env, err := os.ReadFile(inst.Path(filepath.Join(zookeeper.DefaultConfDir, zookeeper.JavaEnvName)))
	if err != nil {
		return nil, err
	}
	owner, err := zookeeper.LookupOwner("zookeeper")
	if err != nil {
		return nil, err
	}
	args := []string{"--reuid=" + strconv.Itoa(owner.UID), "--regid=" + strconv.Itoa(owner.GID), "--clear-groups", "java"}
	args = append(args, jvmFlags(env)...)
	args = append(args, "-cp", strings.Join(Classpath, ":"), "org.apache.zookeeper.server.quorum.QuorumPeerMain",
		filepath.Join(zookeeper.DefaultConfDir, zookeeper.ZooCfgName))
	return inst.Command(ctx, "setpriv", args...), nil
}

// unitZooKeeper is the image's zookeeper.service, read from the instance's
// root with its drop-ins, started the way systemd starts it: the effective
// ExecStart with its variables expanded, in the unit's environment (on top
// of systemd's PATH and the user's HOME, USER, LOGNAME and SHELL), as
// User= and Group= (resolved in the image's /etc/passwd and /etc/group,
// the user's supplementary groups too), in "/". The unit's sandboxing and
// limits (ProtectSystem=, LimitNOFILE=, UMask=, ...) are not applied.
func unitZooKeeper(ctx context.Context, inst *localcloud.Instance) (*exec.Cmd, error) {
	fsys := inst.FS()
	svc, err := loadService(fsys, systemd.ZooKeeper)
	if err != nil {
		return nil, fmt.Errorf("on %s: %w", inst.ID, err)
	}
	env := []string{"PATH=" + defaultPATH}
	argv := svc.Argv
	switch {
	case svc.User != "":
		u, err := lookupUser(fsys, svc.User)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: User=%s: %w", systemd.ZooKeeper, inst.ID, svc.User, err)
		}
		gid := u.gid
		if svc.Group != "" {
			if gid, err = lookupGroup(fsys, svc.Group); err != nil {
				return nil, fmt.Errorf("%s on %s: Group=%s: %w", systemd.ZooKeeper, inst.ID, svc.Group, err)
			}
		}
		env = append(env, "HOME="+u.home, "USER="+u.name, "LOGNAME="+u.name, "SHELL="+u.shell)
		argv = append([]string{"setpriv", "--reuid=" + u.uid, "--regid=" + gid, "--init-groups", "--"}, argv...)
	case svc.Group != "":
		gid, err := lookupGroup(fsys, svc.Group)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: Group=%s: %w", systemd.ZooKeeper, inst.ID, svc.Group, err)
		}
		argv = append([]string{"setpriv", "--regid=" + gid, "--keep-groups", "--"}, argv...)
	}
	cmd := inst.Command(ctx, argv[0], argv[1:]...)
	cmd.Env = dedupEnv(append(env, svc.Env...))
	return cmd, nil
}

// jvmFlags reads SERVER_JVMFLAGS="..." from a java.env.
func jvmFlags(env []byte) []string {
	for _, line := range strings.Split(string(env), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "SERVER_JVMFLAGS="); ok {
			return strings.Fields(strings.Trim(v, `"`))
		}
	}
	return nil
}

// Terminate kills the node's instance (kill -9: no clean shutdown) and its
// ZooKeeper, as a failed instance dies.
func (e *Ensemble) Terminate(ctx context.Context, n *Node) error {
	e.mu.Lock()
	if e.nodes[n.ID] == n {
		delete(e.nodes, n.ID)
	}
	e.mu.Unlock()
	return e.Cloud.Terminate(ctx, n.Instance)
}

// Modes asks every node (by configured IP) for its srvr mode, from inside
// the VPC; silent nodes are missing from the map.
func (e *Ensemble) Modes(ctx context.Context) map[int]string {
	p := zookeeper.Prober{PerPeerTimeout: time.Second, Attempts: 1, Dial: e.Cloud.DialContext}
	var peers []netip.AddrPort
	byAddr := map[netip.AddrPort]int{}
	for _, n := range e.opts.Nodes {
		ap := netip.AddrPortFrom(n.IP, 2181)
		peers = append(peers, ap)
		byAddr[ap] = n.ID
	}
	q := p.Probe(ctx, peers)
	modes := map[int]string{}
	for ap, m := range q.Modes {
		modes[byAddr[ap]] = m
	}
	return modes
}

// WaitServing waits until every listed node serves as leader or follower,
// and at most one of them leads (the leader may be outside ids).
func (e *Ensemble) WaitServing(ctx context.Context, bound time.Duration, ids ...int) (map[int]string, error) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	for {
		modes := e.Modes(ctx)
		leaders, ok := 0, true
		for _, id := range ids {
			switch modes[id] {
			case "leader":
				leaders++
			case "follower":
			default:
				ok = false
			}
		}
		if ok && leaders <= 1 {
			return modes, nil
		}
		select {
		case <-ctx.Done():
			return modes, fmt.Errorf("nodes %v not all serving after %s: %v", ids, bound, describe(modes))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func describe(modes map[int]string) string {
	var ids []int
	for id := range modes {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%d=%s", id, modes[id]))
	}
	return strings.Join(parts, " ")
}

// Sync reports how a node's ZooKeeper synced with the leader, from its log:
// "DIFF" (transactions only), "SNAP" (a full snapshot), "TRUNC", or "" if
// it has not synced (yet).
func (n *Node) Sync() string {
	b, err := os.ReadFile(n.ZKLog)
	if err != nil {
		return ""
	}
	s := string(b)
	switch {
	case strings.Contains(s, "Getting a snapshot from leader"):
		return "SNAP"
	case strings.Contains(s, "Getting a diff from the leader"):
		return "DIFF"
	case strings.Contains(s, "Truncating log to get in sync with the leader"):
		return "TRUNC"
	}
	return ""
}

// Close removes the ZooKeeper logs when they were kept in a temp dir the
// ensemble made; the cloud is the caller's to close.
func (e *Ensemble) Close() error {
	if e.tempLogDir {
		return os.RemoveAll(e.opts.LogDir)
	}
	return nil
}

// Client connects a ZooKeeper client to the node at ip, from inside the VPC.
func (e *Ensemble) Client(ip string) (*zk.Conn, error) {
	dialer := func(network, address string, timeout time.Duration) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return e.Cloud.DialContext(ctx, network, address)
	}
	conn, _, err := zk.Connect([]string{net.JoinHostPort(ip, "2181")}, 10*time.Second,
		zk.WithDialer(dialer), zk.WithLogger(quiet{}))
	return conn, err
}

// WriteZnodes creates /demo/k0000 … with values v0, v1, … through the node
// at ip.
func (e *Ensemble) WriteZnodes(ip string, n int) error {
	c, err := e.Client(ip)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Create("/demo", nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("create /demo via %s: %w", ip, err)
	}
	for i := range n {
		if _, err := c.Create(znode(i), []byte(fmt.Sprintf("v%d", i)), 0, zk.WorldACL(zk.PermAll)); err != nil {
			return fmt.Errorf("create %s via %s: %w", znode(i), ip, err)
		}
	}
	return nil
}

// CheckZnodes reads back what WriteZnodes wrote, through the node at ip
// after a sync: n children, first, middle and last with their values.
func (e *Ensemble) CheckZnodes(ip string, n int) error {
	c, err := e.Client(ip)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Sync("/demo"); err != nil {
		return fmt.Errorf("sync /demo via %s: %w", ip, err)
	}
	kids, _, err := c.Children("/demo")
	if err != nil || len(kids) != n {
		return fmt.Errorf("via %s: /demo has %d children (%v), want %d", ip, len(kids), err, n)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		data, _, err := c.Get(znode(i))
		if err != nil || string(data) != fmt.Sprintf("v%d", i) {
			return fmt.Errorf("via %s: %s = %q, %v; want v%d", ip, znode(i), data, err, i)
		}
	}
	return nil
}

func znode(i int) string { return fmt.Sprintf("/demo/k%04d", i) }

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// BuildFirstboot builds zkaas-firstboot into dir and returns its path.
func BuildFirstboot(ctx context.Context, moduleRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "zkaas-firstboot")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./firstboot/cmd/zkaas-firstboot")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build zkaas-firstboot: %v\n%s", err, out)
	}
	return bin, nil
}

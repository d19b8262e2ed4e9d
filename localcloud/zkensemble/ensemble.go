// Package zkensemble runs a real ZooKeeper ensemble on the local cloud: every
// node's slot (tagged ENI + volume) in the simulator, and instances that
// become nodes by running the real zkaas-firstboot and then ZooKeeper.
//
// It has two modes, chosen by the cloud it is given:
//
//   - On machines (localcloud.BootSystemd with the baked image as
//     Options.RootFS): the product as shipped. Boot launches an instance
//     with the ensemble config in its root, as user data would carry it,
//     and the image's own systemd does the rest — zkaas-firstboot.service
//     runs the image's firstboot, zookeeper.service starts ZooKeeper under
//     its sandbox. The harness only watches: unit states, MainPID, the
//     journal (machine.go).
//   - Host mode (a cloud without RootFS), for the fast low-level tests and
//     host-mode benchmarks: the harness runs a zkaas-firstboot built for the
//     test (BuildFirstboot) and starts the host's Java with Debian's
//     ZooKeeper jars itself (host.go). No systemd runs, no unit applies.
//
// A cloud that has an image but boots it in host mode is refused: nothing
// here reads unit files to decide how to run them.
package zkensemble

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/boot"
	"github.com/zkaas/zkaas/firstboot/zookeeper"
	"github.com/zkaas/zkaas/internal/zktls"
	"github.com/zkaas/zkaas/localcloud"
)

// Options describes the ensemble.
type Options struct {
	Name  string          // ensemble tag value
	Nodes []ensemble.Node // id, AZ, IP of every node
	// Binary is the zkaas-firstboot host mode runs, a host path
	// (BuildFirstboot). Machines run the image's, as its unit says; it is
	// ignored there.
	Binary string
	// Heap for each JVM (config zookeeper.heap); default 256m.
	Heap string
	// VolumeGiB per node; default 2.
	VolumeGiB int32
	// Deadline is the claim deadline; default 60s.
	Deadline time.Duration
	// BootstrapWindow (claim.bootstrap_window); default max(30m, Deadline).
	BootstrapWindow time.Duration
	// ReadyTimeout and RefusedHold (config health.ready_timeout,
	// health.refused_hold) are left to firstboot's defaults when 0.
	ReadyTimeout, RefusedHold time.Duration
	// LogDir keeps each host-mode ZooKeeper's log (machines log to their
	// journal); default a temp dir.
	LogDir string
	Log    *slog.Logger
}

// Ensemble is the nodes' slots and the instances currently holding them.
type Ensemble struct {
	Cloud *localcloud.Cloud
	// ProbeTLS, when set, is the client certificate Modes and WaitServing
	// ask the nodes' secure client ports (2281) with: for configs whose
	// zookeeper.tls closes the plaintext port.
	ProbeTLS *tls.Config
	opts     Options
	cfg      []byte
	slots    map[int]localcloud.Slot

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
	// Report is the first firstboot run on this instance: in host mode
	// what it printed, on a machine what zkaas-firstboot.service printed
	// to the journal.
	Report   boot.Report
	Launched time.Time

	// Host mode only: the ZooKeeper the harness started and its log. On
	// a machine ZooKeeper is zookeeper.service's (ZooKeeperPID) and logs
	// to the journal.
	ZK    *localcloud.Process
	ZKLog string
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
	if opts.Binary == "" && cloud.RootFS() == "" {
		return nil, errors.New("ensemble: no Binary: build zkaas-firstboot with BuildFirstboot, or boot the cloud's instances from the image (BootSystemd)")
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
	var health []string
	if e.opts.ReadyTimeout > 0 {
		health = append(health, "ready_timeout: "+e.opts.ReadyTimeout.String())
	}
	if e.opts.RefusedHold > 0 {
		health = append(health, "refused_hold: "+e.opts.RefusedHold.String())
	}
	if len(health) > 0 {
		fmt.Fprintf(&b, "health: {%s}\n", strings.Join(health, ", "))
	}
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

func (e *Ensemble) add(n *Node) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nodes[n.ID] = n
}

// FirstbootError is Boot's error when firstboot failed on the instance.
// The instance stays up, as on EC2 until the Auto Scaling group replaces
// it — for its units and journal; terminate it when done.
type FirstbootError struct {
	Instance *localcloud.Instance
	// Line is firstboot's last word: on a machine its last journal line
	// (from zkaas-firstboot.service), in host mode its last stderr line.
	Line string
}

func (e *FirstbootError) Error() string {
	return fmt.Sprintf("firstboot on %s failed: %s", e.Instance.ID, e.Line)
}

// Boot launches an instance in az and returns once it became a node: what
// the ASG and the instance's boot do for a new instance. On a machine it
// returns when zkaas-firstboot.service has finished (ZooKeeper then starts
// as zookeeper.service; see WaitServing); in host mode once the harness
// ran firstboot and started ZooKeeper. If firstboot fails the error is a
// *FirstbootError.
func (e *Ensemble) Boot(ctx context.Context, az string) (*Node, error) {
	if e.Cloud.RootFS() != "" {
		return e.bootMachine(ctx, az, nil)
	}
	return e.bootHost(ctx, az)
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

// Terminate kills the node's instance — kill -9 of all of it, a machine's
// systemd included: no clean shutdown, nothing unmounted — as a failed
// instance dies.
func (e *Ensemble) Terminate(ctx context.Context, n *Node) error {
	e.mu.Lock()
	if e.nodes[n.ID] == n {
		delete(e.nodes, n.ID)
	}
	e.mu.Unlock()
	if err := e.Cloud.Crash(ctx, n.Instance); err != nil {
		return fmt.Errorf("terminate node %d: %w", n.ID, err)
	}
	return nil
}

// RestartZooKeeper restarts the node's ZooKeeper on the same instance: on a
// machine `systemctl restart zookeeper.service` (a clean stop, then a
// start); in host mode a SIGKILL and a new start, as Restart= would.
func (e *Ensemble) RestartZooKeeper(ctx context.Context, n *Node) error {
	if onMachine(n.Instance) {
		return n.systemctl(ctx, "restart", zookeeperUnit)
	}
	if n.ZK != nil {
		if err := n.ZK.Kill(); err != nil {
			return fmt.Errorf("restart ZooKeeper of node %d: %w", n.ID, err)
		}
	}
	return e.startZooKeeper(ctx, n)
}

// StopZooKeeper stops the node's ZooKeeper for good, the instance staying
// up: on a machine `systemctl stop zookeeper.service` (no restart follows
// a stop), in host mode a SIGKILL.
func (e *Ensemble) StopZooKeeper(ctx context.Context, n *Node) error {
	if onMachine(n.Instance) {
		return n.systemctl(ctx, "stop", zookeeperUnit)
	}
	if n.ZK == nil {
		return nil
	}
	if err := n.ZK.Kill(); err != nil {
		return fmt.Errorf("stop ZooKeeper of node %d: %w", n.ID, err)
	}
	return nil
}

// ZooKeeperPID is the host PID of the node's ZooKeeper, for /proc and
// signals from the harness: on a machine zookeeper.service's MainPID
// (systemd's word for which process is the service, never a search by
// name), translated out of the machine's PID namespace; in host mode the
// process the harness started. An error if none runs.
func (e *Ensemble) ZooKeeperPID(ctx context.Context, n *Node) (int, error) {
	if onMachine(n.Instance) {
		return n.mainPID(ctx, zookeeperUnit)
	}
	if n.ZK == nil {
		return 0, fmt.Errorf("node %d: no ZooKeeper started", n.ID)
	}
	select {
	case <-n.ZK.Done():
		return 0, fmt.Errorf("node %d: ZooKeeper (pid %d) exited: %v", n.ID, n.ZK.PID, n.ZK.Wait())
	default:
		return n.ZK.PID, nil
	}
}

// Modes asks every node (by configured IP) for its srvr mode, from inside
// the VPC; silent nodes are missing from the map.
func (e *Ensemble) Modes(ctx context.Context) map[int]string {
	p := zookeeper.Prober{PerPeerTimeout: time.Second, Attempts: 1, Dial: e.Cloud.DialContext}
	port := uint16(2181)
	if e.ProbeTLS != nil {
		// The nodes serve clients over TLS only: srvr to the secure port.
		p.Dial, port = zktls.Dialer(e.ProbeTLS, e.Cloud.DialContext), 2281
	}
	var peers []netip.AddrPort
	byAddr := map[netip.AddrPort]int{}
	for _, n := range e.opts.Nodes {
		ap := netip.AddrPortFrom(n.IP, port)
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

// Sync reports how the node's ZooKeeper last synced with the leader, from
// its log (on a machine, zookeeper.service's journal of the current boot):
// "DIFF" (transactions only), "SNAP" (a full snapshot), "TRUNC", or "" if
// it has not synced (yet) — a leader never does.
func (n *Node) Sync() string {
	var log string
	if onMachine(n.Instance) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := n.Instance.Journal(ctx, "--boot=0", "_SYSTEMD_UNIT="+zookeeperUnit, "--output=cat")
		if err != nil {
			return ""
		}
		log = string(out)
	} else {
		b, err := os.ReadFile(n.ZKLog)
		if err != nil {
			return ""
		}
		log = string(b)
	}
	return lastSync(log)
}

// syncLines are what a ZooKeeper 3.8 follower logs (Learner.syncWithLeader)
// for each way of syncing.
var syncLines = []struct{ line, sync string }{
	{"Getting a snapshot from leader", "SNAP"},
	{"Getting a diff from the leader", "DIFF"},
	{"Truncating log to get in sync with the leader", "TRUNC"},
}

// lastSync is the way of the last sync a ZooKeeper log tells of: a
// ZooKeeper restarted (or rejoining after an election) syncs again, and
// the latest is the one that counts.
func lastSync(log string) string {
	best, at := "", -1
	for _, s := range syncLines {
		if i := strings.LastIndex(log, s.line); i > at {
			best, at = s.sync, i
		}
	}
	return best
}

// ReadFile reads p as programs on the node see it: on a machine through
// its PID 1's root, where the volume is mounted (the machine has a mount
// namespace of its own), in host mode through the instance's. Absolute
// symlinks on the way resolve on the host: use it for plain files
// (myid, zoo.cfg).
func (n *Node) ReadFile(p string) ([]byte, error) {
	if onMachine(n.Instance) {
		pid1 := n.Instance.PID1()
		if pid1 == 0 {
			return nil, fmt.Errorf("read %s on node %d (%s): machine not running", p, n.ID, n.Instance.ID)
		}
		return os.ReadFile(fmt.Sprintf("/proc/%d/root%s", pid1, p))
	}
	return os.ReadFile(n.Instance.Path(p))
}

// Close removes the host-mode ZooKeeper logs when they were kept in a temp
// dir the ensemble made; the cloud is the caller's to close.
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

package claim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/identity"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// world is an ensemble laid out in the EC2 simulator: one subnet per AZ,
// and for every node an ENI with the node's IP and a volume, both tagged.
type world struct {
	t       testing.TB
	sim     *ec2sim.Sim
	url     string
	cfg     ensemble.Config
	subnets map[string]string // az -> subnet id
	enis    map[int]string    // node -> eni id
	vols    map[int]string    // node -> volume id
	// devs is what the instances see of their hot-plugged devices; every
	// claimer gets its instance's view as Devices.
	devs *simDevices
	// intercept, when set, sees every request before the simulator (see
	// front).
	intercept atomic.Pointer[interceptor]
}

// layout is "az:count" per AZ, e.g. {"us-east-1a": 3}; node ids count up
// from 1 and IPs are 10.0.<az index+1>.<10+n>.
func newWorld(t testing.TB, opts ec2sim.Options, layout []azNodes) *world {
	t.Helper()
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	devs := newSimDevices()
	opts.Hooks = devs.hooks(opts.Hooks)
	sim := ec2sim.New(opts)
	w := &world{t: t, sim: sim, subnets: map[string]string{}, enis: map[int]string{}, vols: map[int]string{}, devs: devs}
	srv := httptest.NewServer(w.front(sim))
	t.Cleanup(func() { srv.Close(); sim.Close() })
	w.url = srv.URL
	cfg := ensemble.Default()
	cfg.Ensemble = "zk-test"
	cfg.Claim.Deadline = ensemble.Duration(20 * time.Second)
	cfg.Claim.StuckAttach = ensemble.Duration(2 * time.Second)
	id := 0
	for i, l := range layout {
		sub, err := sim.CreateSubnet(l.az, fmt.Sprintf("10.0.%d.0/24", i+1))
		if err != nil {
			t.Fatal(err)
		}
		w.subnets[l.az] = sub
		for j := 0; j < l.n; j++ {
			id++
			ip := netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", i+1, 10+j))
			cfg.Nodes = append(cfg.Nodes, ensemble.Node{ID: id, AZ: l.az, IP: ip})
			w.addSlot(id, l.az, ip.String())
		}
	}
	w.cfg = cfg
	return w
}

type azNodes struct {
	az string
	n  int
}

func (w *world) tags(node int) map[string]string {
	return map[string]string{"zkaas:ensemble": "zk-test", "zkaas:node": strconv.Itoa(node)}
}

func (w *world) addSlot(node int, az, ip string) {
	eni, err := w.sim.CreateNetworkInterface(w.subnets[az], ip, w.tags(node))
	if err != nil {
		w.t.Fatal(err)
	}
	vol, err := w.sim.CreateVolume(az, 10, w.tags(node))
	if err != nil {
		w.t.Fatal(err)
	}
	w.enis[node], w.vols[node] = eni.ID, vol.ID
}

// launch starts an instance in az and returns its IMDS identity.
func (w *world) launch(az string) identity.Instance {
	w.t.Helper()
	inst, err := w.sim.RunInstance(w.subnets[az])
	if err != nil {
		w.t.Fatal(err)
	}
	return identity.Instance{InstanceID: inst.ID, AZ: az, Region: "us-east-1", MAC: inst.MAC}
}

// client is the real SDK client on the simulator, counting its calls.
func (w *world) client() (*ec2.Client, *CallCounter) {
	calls := new(CallCounter)
	return NewEC2(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		BaseEndpoint: aws.String(w.url),
	}, calls.Option()), calls
}

// cloud is the stages' view of the simulator.
func (w *world) cloud() *Cloud {
	api, calls := w.client()
	return &Cloud{EC2: api, Config: w.cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Counter: calls}
}

// claimer talks to the simulator through the real SDK client over HTTP,
// with the same retryer as production.
// The returned counter counts the client's calls, as production's does.
func (w *world) claimer(id identity.Instance, seed uint64) (*Claimer, *CallCounter) {
	api, calls := w.client()
	c := NewClaimer(api, w.cfg, id, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.Counter = calls
	c.Devices = w.devs.of(id.InstanceID)
	c.Rand = rand.New(rand.NewPCG(seed, seed))
	c.Relist = Backoff{First: 100 * time.Millisecond, Factor: 2, Max: 500 * time.Millisecond, Jitter: 0.5}
	return c, c.Counter
}

// checkConsistent asserts the simulator's true state matches a result: the
// ENI and volume of the same node, both attached to the instance.
func (w *world) checkConsistent(id identity.Instance, r Result) {
	w.t.Helper()
	n, ok := w.cfg.NodeByID(r.Node)
	if !ok {
		w.t.Fatalf("claimed unknown node %d", r.Node)
	}
	if r.ENI != w.enis[r.Node] || r.Volume != w.vols[r.Node] {
		w.t.Errorf("node %d: got ENI %s volume %s, want %s %s", r.Node, r.ENI, r.Volume, w.enis[r.Node], w.vols[r.Node])
	}
	if r.IP != n.IP {
		w.t.Errorf("node %d: IP %s, config says %s", r.Node, r.IP, n.IP)
	}
	eni, _ := w.sim.NetworkInterface(r.ENI)
	if eni.Attachment == nil || eni.Attachment.InstanceID != id.InstanceID || eni.Attachment.Status != ec2sim.AttachAttached {
		w.t.Errorf("ENI %s attachment = %+v, want attached to %s", r.ENI, eni.Attachment, id.InstanceID)
	} else if eni.Attachment.DeleteOnTermination {
		w.t.Errorf("ENI %s would be deleted with the instance", r.ENI)
	}
	vol, _ := w.sim.Volume(r.Volume)
	if vol.Attachment == nil || vol.Attachment.InstanceID != id.InstanceID || vol.Attachment.State != ec2sim.AttachAttached || vol.Attachment.Device != r.Device {
		w.t.Errorf("volume %s attachment = %+v, want attached to %s at %s", r.Volume, vol.Attachment, id.InstanceID, r.Device)
	}
}

var fast = ec2sim.Latency{
	RoundTrip: 2 * time.Millisecond, ENIAttach: 150 * time.Millisecond, VolumeAttach: 300 * time.Millisecond,
	ENIDetach: 150 * time.Millisecond, VolumeDetach: 200 * time.Millisecond,
}

func TestClaimUncontended(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}, {"us-east-1b", 1}, {"us-east-1c", 1}})
	id := w.launch("us-east-1b")
	c, api := w.claimer(id, 1)
	r, err := c.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Node != 2 || r.Reused {
		t.Errorf("claimed node %d reused=%v, want node 2 fresh", r.Node, r.Reused)
	}
	w.checkConsistent(id, r)
	if r.Device != "/dev/xvdf" || r.DeviceIndex != 1 {
		t.Errorf("device %s index %d", r.Device, r.DeviceIndex)
	}
	if !r.Initialized.IsZero() || len(r.MAC) != 6 || !r.IP.IsValid() {
		t.Errorf("initialized %v, MAC %v, IP %v: want a fresh volume and the ENI's addresses", r.Initialized, r.MAC, r.IP)
	}
	if peers, err := w.cloud().PeerVolumes(context.Background(), r.Node); err != nil || len(peers) != 2 || peers[0].Node != 1 || peers[1].Node != 3 {
		t.Errorf("peers = %+v (%v)", peers, err)
	}
	// Two listings, two attaches, one confirming Describe once the
	// instance sees both devices.
	if api.Calls() > 5 {
		t.Errorf("%d EC2 calls for an uncontended boot (%v), want <= 5", api.Calls(), w.sim.Stats().Calls)
	}
}

// TestBootStorm: more instances than slots boot at once in one AZ. Exactly
// the slots are claimed, each once, each with its own node's volume; the
// rest fail at their deadline with a line saying what was missing.
func TestBootStorm(t *testing.T) {
	t.Parallel()
	const slots, instances = 3, 7
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", slots}})
	w.cfg.Claim.Deadline = ensemble.Duration(3 * time.Second)
	type outcome struct {
		id  identity.Instance
		r   Result
		err error
	}
	out := make([]outcome, instances)
	var wg sync.WaitGroup
	for i := range out {
		id := w.launch("us-east-1a")
		c, _ := w.claimer(id, uint64(i+1))
		wg.Go(func() {
			r, err := c.Claim(context.Background())
			out[i] = outcome{id, r, err}
		})
	}
	wg.Wait()
	won := map[int]string{}
	failed := 0
	for _, o := range out {
		if o.err != nil {
			failed++
			msg := o.err.Error()
			if !strings.Contains(msg, "deadline") || !strings.Contains(msg, "no free ENI") || strings.Contains(msg, "\n") {
				t.Errorf("%s: unclear failure: %v", o.id.InstanceID, o.err)
			}
			continue
		}
		if o.err != nil {
			continue
		}
		if prev, dup := won[o.r.Node]; dup {
			t.Errorf("node %d claimed by %s and %s", o.r.Node, prev, o.id.InstanceID)
		}
		won[o.r.Node] = o.id.InstanceID
		w.checkConsistent(o.id, o.r)
	}
	if len(won) != slots || failed != instances-slots {
		t.Errorf("%d claims and %d failures, want %d and %d", len(won), failed, slots, instances-slots)
	}
	for _, o := range out {
		w.checkHoldsNothingBut(o.id, map[bool]int{true: 0, false: 1}[o.err != nil])
	}
}

// TestReboot: a second claim on the same instance reuses what it holds and
// attaches nothing.
func TestReboot(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 2}})
	id := w.launch("us-east-1a")
	c, _ := w.claimer(id, 1)
	first, err := c.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := w.sim.Stats()
	c2, api := w.claimer(id, 2)
	second, err := c2.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	after := w.sim.Stats()
	if !second.Reused || second.Node != first.Node || second.ENI != first.ENI || second.Volume != first.Volume || second.Device != first.Device {
		t.Errorf("rerun: %+v\nfirst: %+v", second, first)
	}
	for _, action := range []string{"AttachNetworkInterface", "AttachVolume", "DetachNetworkInterface", "DetachVolume"} {
		if after.Calls[action] != before.Calls[action] {
			t.Errorf("rerun called %s", action)
		}
	}
	if api.Calls() > 4 {
		t.Errorf("rerun made %d calls, want at most 4", api.Calls())
	}
	w.checkConsistent(id, second)
}

// TestPredecessorReleasing: the old instance of a node is terminating and
// still holds its ENI and volume; the replacement waits for both.
func TestPredecessorReleasing(t *testing.T) {
	t.Parallel()
	lat := fast
	lat.ENIDetach, lat.VolumeDetach = 600*time.Millisecond, 1500*time.Millisecond
	w := newWorld(t, ec2sim.Options{Latency: lat}, []azNodes{{"us-east-1a", 1}})
	old := w.launch("us-east-1a")
	c, _ := w.claimer(old, 1)
	if _, err := c.Claim(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.sim.TerminateInstance(old.InstanceID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	repl := w.launch("us-east-1a")
	c2, _ := w.claimer(repl, 2)
	r, err := c2.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.checkConsistent(repl, r)
	if took := time.Since(start); took < lat.VolumeDetach {
		t.Errorf("claimed in %s, before the predecessor could have released the volume (%s)", took, lat.VolumeDetach)
	}
}

// TestStuckAttaching: an attachment that never completes is detached after
// the bound and retried.
func TestStuckAttaching(t *testing.T) {
	t.Parallel()
	// Detaching takes longer than several polls, as on EC2.
	slowDetach := fast
	slowDetach.ENIDetach, slowDetach.VolumeDetach = time.Second, 2*time.Second
	for _, kind := range []string{"eni", "volume"} {
		t.Run(kind, func(t *testing.T) {
			w := newWorld(t, ec2sim.Options{Latency: slowDetach}, []azNodes{{"us-east-1a", 1}})
			w.cfg.Claim.StuckAttach = ensemble.Duration(700 * time.Millisecond)
			stuck := w.vols[1]
			if kind == "eni" {
				stuck = w.enis[1]
			}
			w.sim.StickNextAttach(stuck)
			id := w.launch("us-east-1a")
			c, _ := w.claimer(id, 1)
			r, err := c.Claim(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			w.checkConsistent(id, r)
			st := w.sim.Stats()
			detach := map[string]string{"eni": "DetachNetworkInterface", "volume": "DetachVolume"}[kind]
			if st.Calls[detach] != 1 {
				t.Errorf("%s called %d times, want 1", detach, st.Calls[detach])
			}
		})
	}
}

// TestFaultStorm: five nodes over three AZs boot at once while the
// simulator throttles, loses races and lags; every slot ends claimed once.
func TestFaultStorm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts ec2sim.Options
	}{
		{"throttling", ec2sim.Options{Latency: fast, Faults: ec2sim.Faults{ThrottleRate: 0.3}}},
		{"in-use races", ec2sim.Options{Latency: fast, Faults: ec2sim.Faults{InUseRaceRate: 0.4}}},
		{"eventual consistency", ec2sim.Options{Latency: fast, Consistency: 400 * time.Millisecond}},
		{"everything", ec2sim.Options{Latency: fast, Consistency: 200 * time.Millisecond,
			Faults: ec2sim.Faults{ThrottleRate: 0.2, InUseRaceRate: 0.2, StuckAttachRate: 0.1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.opts, []azNodes{{"us-east-1a", 2}, {"us-east-1b", 2}, {"us-east-1c", 1}})
			w.cfg.Claim.StuckAttach = ensemble.Duration(time.Second)
			azs := []string{"us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b", "us-east-1c"}
			ids := make([]identity.Instance, len(azs))
			for i, az := range azs {
				ids[i] = w.launch(az)
			}
			if tt.opts.Consistency > 0 {
				time.Sleep(tt.opts.Consistency) // instances visible, as at a real boot
			}
			results := make([]Result, len(ids))
			errs := make([]error, len(ids))
			var wg sync.WaitGroup
			for i, id := range ids {
				c, _ := w.claimer(id, uint64(i+10))
				wg.Go(func() { results[i], errs[i] = c.Claim(context.Background()) })
			}
			wg.Wait()
			seen := map[int]bool{}
			for i, r := range results {
				if errs[i] != nil {
					t.Errorf("%s: %v", ids[i].InstanceID, errs[i])
					continue
				}
				if seen[r.Node] {
					t.Errorf("node %d claimed twice", r.Node)
				}
				seen[r.Node] = true
				w.checkConsistent(ids[i], r)
			}
		})
	}
}

// TestMisconfiguredENIRefused: an ENI whose IP is not the config's for its
// node is never attached, and the failure says so at once.
func TestMisconfiguredENIRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
	w.cfg.Nodes[0].IP = netip.MustParseAddr("10.0.1.99")
	id := w.launch("us-east-1a")
	c, _ := w.claimer(id, 1)
	start := time.Now()
	_, err := c.Claim(context.Background())
	if err == nil || !strings.Contains(err.Error(), "has IP 10.0.1.10 but the config says 10.0.1.99") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("misconfiguration took %s to report: waited for the deadline", time.Since(start))
	}
	if n := w.sim.Stats().Calls["AttachNetworkInterface"]; n != 0 {
		t.Errorf("attached a misconfigured ENI (%d calls)", n)
	}
}

// TestPinnedNode: a pinned instance claims its node's ENI and volume at
// once, even when other nodes of its AZ are free.
func TestPinnedNode(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 3}})
	w.cfg.Node = 3
	id := w.launch("us-east-1a")
	c, _ := w.claimer(id, 1)
	r, err := c.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Node != 3 {
		t.Errorf("pinned to 3, claimed %d", r.Node)
	}
	w.checkConsistent(id, r)
}

// TestNoVolumeForNode: holding a node's ENI but finding no volume of that
// node fails at the deadline naming the missing volume; the other node's
// volume, held by its own instance, is not touched.
func TestNoVolumeForNode(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
	first := w.launch("us-east-1a")
	c1, _ := w.claimer(first, 1)
	if _, err := c1.Claim(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Node 2 has an ENI but no volume.
	w.cfg.Nodes = append(w.cfg.Nodes, ensemble.Node{ID: 2, AZ: "us-east-1a", IP: netip.MustParseAddr("10.0.1.20")})
	eni, err := w.sim.CreateNetworkInterface(w.subnets["us-east-1a"], "10.0.1.20", w.tags(2))
	if err != nil {
		t.Fatal(err)
	}
	w.enis[2] = eni.ID
	w.cfg.Claim.Deadline = ensemble.Duration(1500 * time.Millisecond)
	second := w.launch("us-east-1a")
	c2, _ := w.claimer(second, 2)
	_, err = c2.Claim(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no volume is tagged zkaas:ensemble=zk-test, zkaas:node=2") {
		t.Fatalf("err = %v", err)
	}
	if v, _ := w.sim.Volume(w.vols[1]); v.Attachment == nil || v.Attachment.InstanceID != first.InstanceID {
		t.Errorf("node 1's volume moved: %+v", v.Attachment)
	}
	w.checkHoldsNothingBut(second, 1)
}

// checkHoldsNothingBut asserts how many ensemble ENIs the instance holds in
// the simulator's true state, and that it holds no volume of a node whose
// ENI it does not hold.
func (w *world) checkHoldsNothingBut(id identity.Instance, enis int) {
	w.t.Helper()
	nodes := map[int]bool{}
	for node, eni := range w.enis {
		if e, _ := w.sim.NetworkInterface(eni); e.Attachment != nil && e.Attachment.InstanceID == id.InstanceID {
			nodes[node] = true
		}
	}
	if len(nodes) != enis {
		w.t.Errorf("%s holds the ENIs of nodes %v, want %d", id.InstanceID, nodes, enis)
	}
	for node, vol := range w.vols {
		if v, _ := w.sim.Volume(vol); v.Attachment != nil && v.Attachment.InstanceID == id.InstanceID && !nodes[node] {
			w.t.Errorf("%s holds node %d's volume without its ENI", id.InstanceID, node)
		}
	}
}

// TestCrossHold: instance X holds node 1's volume but not its ENI, Y holds
// node 1's ENI but not its volume (an interrupted claim each). X gives the
// volume back and becomes node 2; Y gets its volume and stays node 1.
func TestCrossHold(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 2}})
	x, y := w.launch("us-east-1a"), w.launch("us-east-1a")
	cx, _ := w.claimer(x, 1)
	cy, _ := w.claimer(y, 2)
	ctx := context.Background()
	if _, err := cx.EC2.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(w.vols[1]), InstanceId: aws.String(x.InstanceID), Device: aws.String("/dev/xvdf")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cy.EC2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(w.enis[1]), InstanceId: aws.String(y.InstanceID), DeviceIndex: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	var rx, ry Result
	var ex, ey error
	var wg sync.WaitGroup
	wg.Go(func() { rx, ex = cx.Claim(ctx) })
	wg.Go(func() { ry, ey = cy.Claim(ctx) })
	wg.Wait()
	if ex != nil || ey != nil {
		t.Fatalf("X: %v; Y: %v", ex, ey)
	}
	if rx.Node != 2 || ry.Node != 1 {
		t.Errorf("X became node %d, Y node %d; want 2 and 1", rx.Node, ry.Node)
	}
	w.checkConsistent(x, rx)
	w.checkConsistent(y, ry)
}

// lostResponse makes the first AttachNetworkInterface behave like an SDK
// retry after a lost response: the attach happens, and the retry's answer
// (the ENI is in use — by us) is what the caller sees.
type lostResponse struct {
	EC2API
	once sync.Once
}

func (l *lostResponse) AttachNetworkInterface(ctx context.Context, in *ec2.AttachNetworkInterfaceInput, o ...func(*ec2.Options)) (*ec2.AttachNetworkInterfaceOutput, error) {
	lost := false
	l.once.Do(func() { lost = true })
	out, err := l.EC2API.AttachNetworkInterface(ctx, in, o...)
	if lost && err == nil {
		return l.EC2API.AttachNetworkInterface(ctx, in, o...)
	}
	return out, err
}

func TestLostAttachResponse(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 2}})
	id := w.launch("us-east-1a")
	c, _ := w.claimer(id, 1)
	c.EC2 = &lostResponse{EC2API: c.EC2}
	r, err := c.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.checkConsistent(id, r)
	w.checkHoldsNothingBut(id, 1)
}

// TestSettle: what an instance holds is reconciled with "one node's ENI,
// only that node's volume" even when the listing lags: an ENI this process
// attached counts as held while the listing still shows it available, and
// of two held ENIs one is let go.
func TestSettle(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 3}})
	id := w.launch("us-east-1a")
	c, _ := w.claimer(id, 1)
	c.detached = map[string]bool{}
	ctx := context.Background()
	inv, err := c.discover(ctx) // taken before any attach: a stale view from here on
	if err != nil {
		t.Fatal(err)
	}
	attach := func(node int, idx int32) string {
		out, err := c.EC2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
			NetworkInterfaceId: aws.String(w.enis[node]), InstanceId: aws.String(id.InstanceID), DeviceIndex: aws.Int32(idx)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.AttachmentId)
	}
	c.mine = &ownENI{eni: w.enis[2], attachment: attach(2, 1), deviceIndex: 1}
	held, err := c.settle(ctx, inv)
	if err != nil || held == nil || aws.ToString(held.NetworkInterfaceId) != w.enis[2] {
		t.Fatalf("stale view: settle kept %v (%v), want node 2's ENI", held, err)
	}
	// A lost response made us hold node 3's ENI too.
	attach(3, 2)
	time.Sleep(200 * time.Millisecond) // both attached
	if inv, err = c.discover(ctx); err != nil {
		t.Fatal(err)
	}
	if held, err = c.settle(ctx, inv); err != nil || aws.ToString(held.NetworkInterfaceId) != w.enis[2] {
		t.Fatalf("two held: kept %v (%v), want node 2's", held, err)
	}
	time.Sleep(300 * time.Millisecond) // the detach completes
	w.checkHoldsNothingBut(id, 1)
}

// TestDeadlineNamesVolumeHolder: holding the ENI while another running
// instance keeps the volume ends with a message naming that holder.
func TestDeadlineNamesVolumeHolder(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
	w.cfg.Claim.Deadline = ensemble.Duration(1500 * time.Millisecond)
	squatter, id := w.launch("us-east-1a"), w.launch("us-east-1a")
	cs, _ := w.claimer(squatter, 1)
	if _, err := cs.EC2.AttachVolume(context.Background(), &ec2.AttachVolumeInput{VolumeId: aws.String(w.vols[1]), InstanceId: aws.String(squatter.InstanceID), Device: aws.String("/dev/xvdf")}); err != nil {
		t.Fatal(err)
	}
	c, _ := w.claimer(id, 1)
	_, err := c.Claim(context.Background())
	want := "volume " + w.vols[1] + " is still held by " + squatter.InstanceID
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
}

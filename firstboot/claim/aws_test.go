package claim

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/identity"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// TestDeviceVisibility: the instance may see a hot-plugged device before
// EC2 says attached, with it or after it, or never; the claim converges in
// each, with one confirming Describe when the device shows with or after
// EC2's state, and by its fallback polling when it never shows.
func TestDeviceVisibility(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		delay    time.Duration
		never    bool
		noDevs   bool
		broken   bool
		maxCalls int
	}{
		{name: "device before EC2", delay: -300 * time.Millisecond, maxCalls: 7},
		{name: "device with EC2", maxCalls: 5},
		{name: "device after EC2", delay: 300 * time.Millisecond, maxCalls: 5},
		{name: "device never seen", never: true, maxCalls: 8},
		{name: "no Devices: polling", noDevs: true, maxCalls: 10},
		{name: "signals unavailable: polling", broken: true, maxCalls: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
			w.devs.setDelay(tt.delay)
			w.devs.setNever(tt.never)
			id := w.launch("us-east-1a")
			c, api := w.claimer(id, 1)
			c.Fallback = Backoff{First: 400 * time.Millisecond, Factor: 1.5, Max: time.Second}
			if tt.noDevs {
				c.Devices = nil
			}
			if tt.broken {
				c.Devices = brokenDevices{}
			}
			r, err := c.Claim(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			w.checkConsistent(id, r)
			if api.Calls() > tt.maxCalls {
				t.Errorf("%d EC2 calls (%v), want <= %d", api.Calls(), w.sim.Stats().Calls, tt.maxCalls)
			}
		})
	}
}

// TestForcedDetachLosesIndex: a stuck ENI attachment is force-detached,
// and EC2 keeps its device index unusable (DetachNetworkInterface: "you
// might not be able to attach ... to the same index"): the next attach
// goes to another index at once, without trying the lost one.
func TestForcedDetachLosesIndex(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast, Faults: ec2sim.Faults{ForcedDetachIndexLossRate: 1}}, []azNodes{{"us-east-1a", 1}})
	w.cfg.Claim.StuckAttach = ensemble.Duration(700 * time.Millisecond)
	w.sim.StickNextAttach(w.enis[1])
	id := w.launch("us-east-1a")
	c, _ := w.claimer(id, 1)
	r, err := c.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.checkConsistent(id, r)
	st := w.sim.Stats()
	if r.DeviceIndex != 2 || st.Calls["DetachNetworkInterface"] != 1 || st.Calls["AttachNetworkInterface"] != 2 {
		t.Errorf("device index %d after %d detaches and %d attaches; want index 2, 1 and 2", r.DeviceIndex,
			st.Calls["DetachNetworkInterface"], st.Calls["AttachNetworkInterface"])
	}
}

// TestAttachmentLimit: an instance whose type holds no more network
// interfaces cannot be a node: the claim fails at once, naming the type and
// EC2's limit, instead of retrying until the deadline.
func TestAttachmentLimit(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
	inst, err := w.sim.RunInstanceOfType(w.subnets["us-east-1a"], "t3.micro") // 2 interfaces
	if err != nil {
		t.Fatal(err)
	}
	id := identity.Instance{InstanceID: inst.ID, AZ: "us-east-1a", Region: "us-east-1", MAC: inst.MAC}
	// Something else already took the second interface.
	other, err := w.sim.CreateNetworkInterface(w.subnets["us-east-1a"], "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := w.claimer(id, 1)
	if _, err := c.EC2.AttachNetworkInterface(context.Background(), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(other.ID), InstanceId: aws.String(id.InstanceID), DeviceIndex: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Claim(context.Background())
	if err == nil {
		t.Fatal("claimed a node on an instance with no room for its ENI")
	}
	for _, want := range []string{"cannot hold a node", "t3.micro", "exceeds the limit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("failed after %s: retried instead of failing at once", took)
	}
	w.checkHoldsNothingBut(id, 0)
}

// TestStuckVolumeNewDeviceName: a volume stuck attaching is force-detached;
// its device name stays held (AWS's stuck-attaching troubleshooting), so
// the claim attaches it under the next name and reports that name.
func TestStuckVolumeNewDeviceName(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast, Faults: ec2sim.Faults{ForcedDetachDeviceHoldRate: 1}}, []azNodes{{"us-east-1a", 1}})
	w.cfg.Claim.StuckAttach = ensemble.Duration(700 * time.Millisecond)
	w.sim.StickNextAttach(w.vols[1])
	id := w.launch("us-east-1a")
	c, _ := w.claimer(id, 1)
	r, err := c.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.checkConsistent(id, r) // the simulator's attachment is at r.Device
	if r.Device != "/dev/xvdg" {
		t.Errorf("device %s, want /dev/xvdg (xvdf is held)", r.Device)
	}
	if n := w.sim.Stats().Calls["DetachVolume"]; n != 1 {
		t.Errorf("DetachVolume called %d times, want 1", n)
	}
}

// TestEventualConsistency: DescribeInstances, DescribeVolumes and
// DescribeNetworkInterfaces lag each on its own, answers are not monotonic,
// and fresh ids are unknown to mutations for a while ("Eventual
// consistency in the Amazon EC2 API"); five boots over three AZs still end
// with every node claimed once, consistently.
func TestEventualConsistency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lag   ec2sim.Lag
		delay time.Duration
	}{
		{"instances lag", ec2sim.Lag{Instances: 600 * time.Millisecond}, 0},
		{"volumes lag", ec2sim.Lag{Volumes: 600 * time.Millisecond}, 0},
		{"ENIs lag", ec2sim.Lag{NetworkInterfaces: 600 * time.Millisecond}, 0},
		{"each its own, not monotonic", ec2sim.Lag{Instances: 500 * time.Millisecond, Volumes: 300 * time.Millisecond,
			NetworkInterfaces: 700 * time.Millisecond, Random: true}, 0},
		{"fresh ids unknown", ec2sim.Lag{NewIDs: 500 * time.Millisecond}, 0},
		{"everything, device first", ec2sim.Lag{Instances: 400 * time.Millisecond, Volumes: 300 * time.Millisecond,
			NetworkInterfaces: 500 * time.Millisecond, Random: true, NewIDs: 300 * time.Millisecond}, -200 * time.Millisecond},
		{"everything, device last", ec2sim.Lag{Instances: 400 * time.Millisecond, Volumes: 300 * time.Millisecond,
			NetworkInterfaces: 500 * time.Millisecond, Random: true, NewIDs: 300 * time.Millisecond}, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, ec2sim.Options{Latency: fast, Lag: tt.lag}, []azNodes{{"us-east-1a", 2}, {"us-east-1b", 2}, {"us-east-1c", 1}})
			w.cfg.Claim.StuckAttach = ensemble.Duration(3 * time.Second)
			w.devs.setDelay(tt.delay)
			w.bootAll(t, []string{"us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b", "us-east-1c"})
		})
	}
}

// TestErrorCodes: an in-use ENI answered as InvalidNetworkInterface.InUse
// or as InvalidParameterValue "in use" is a lost race either way; attaches
// to a pending instance (IncorrectInstanceState for the ENI, IncorrectState
// for the volume) are retried until it runs, not fatal and not a race lost.
func TestErrorCodes(t *testing.T) {
	t.Parallel()
	t.Run("in use, both forms", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			rate float64
			code string
		}{{0, "InvalidParameterValue"}, {1, "InvalidNetworkInterface.InUse"}} {
			w := newWorld(t, ec2sim.Options{Latency: fast, Faults: ec2sim.Faults{ENIInUseCodeRate: tt.rate}}, []azNodes{{"us-east-1a", 1}})
			w.cfg.Claim.Deadline = ensemble.Duration(time.Second)
			holder, loser := w.launch("us-east-1a"), w.launch("us-east-1a")
			ch, _ := w.claimer(holder, 1)
			if _, err := ch.Claim(context.Background()); err != nil {
				t.Fatal(err)
			}
			c, _ := w.claimer(loser, 2)
			_, err := c.EC2.AttachNetworkInterface(context.Background(), &ec2.AttachNetworkInterfaceInput{
				NetworkInterfaceId: aws.String(w.enis[1]), InstanceId: aws.String(loser.InstanceID), DeviceIndex: aws.Int32(1)})
			if errorCode(err) != tt.code || !lostRace(err) || slotTaken(err) {
				t.Errorf("in use answered %v (code %q): lostRace %v, slotTaken %v; want %s, a lost race", err, errorCode(err), lostRace(err), slotTaken(err), tt.code)
			}
			// The engine, seeing the ENI free in a stale listing, loses the
			// race and says so at its deadline.
			inv, err := c.discover(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			inv.enis[0].Status, inv.enis[0].Attachment = "available", nil
			c.detached, c.badIndex = map[string]bool{}, map[int32]bool{}
			err = c.takeENI(context.Background(), inv, 0, &waiter{c: c})
			if err == nil || !strings.Contains(err.Error(), "taken by a concurrent boot") {
				t.Errorf("engine: %v, want a lost race", err)
			}
		}
	})
	t.Run("pending instance", func(t *testing.T) {
		t.Parallel()
		for _, pinned := range []bool{false, true} {
			lat := fast
			lat.InstanceStart = 800 * time.Millisecond
			w := newWorld(t, ec2sim.Options{Latency: lat}, []azNodes{{"us-east-1a", 1}})
			if pinned {
				w.cfg.Node = 1 // ENI and volume attached at once, both to the pending instance
			}
			id := w.launch("us-east-1a")
			c, _ := w.claimer(id, 1)
			r, err := c.Claim(context.Background())
			if err != nil {
				t.Fatalf("pinned=%v: %v", pinned, err)
			}
			w.checkConsistent(id, r)
			st := w.sim.Stats()
			if st.Errors["IncorrectInstanceState"] == 0 || (pinned && st.Errors["IncorrectState"] == 0) {
				t.Errorf("pinned=%v: the attaches never met the pending instance (errors %v)", pinned, st.Errors)
			}
		}
	})
}

// TestOwnAttachmentNeverListed: our attach succeeded but Describe never
// shows it: the stuck bound counts from the attach call, the attachment is
// detached and a new one made, long before the deadline.
func TestOwnAttachmentNeverListed(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"eni", "volume"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
			w.cfg.Claim.StuckAttach = ensemble.Duration(700 * time.Millisecond)
			hidden, detach := w.enis[1], "DetachNetworkInterface"
			if kind == "volume" {
				hidden, detach = w.vols[1], "DetachVolume"
			}
			w.sim.HideNextAttach(hidden)
			id := w.launch("us-east-1a")
			c, _ := w.claimer(id, 1)
			start := time.Now()
			r, err := c.Claim(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			w.checkConsistent(id, r)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("claimed after %s: not bounded by the %s stuck bound", took, w.cfg.Claim.StuckAttach)
			}
			if n := w.sim.Stats().Calls[detach]; n != 1 {
				t.Errorf("%s called %d times, want 1", detach, n)
			}
		})
	}
}

// bootAll boots one instance per AZ given at once; each must claim a
// distinct node, consistently.
func (w *world) bootAll(t *testing.T, azs []string) {
	t.Helper()
	ids := make([]identity.Instance, len(azs))
	for i, az := range azs {
		ids[i] = w.launch(az)
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
		w.checkHoldsNothingBut(ids[i], 1)
	}
}

// brokenDevices cannot tell: netlink or sysfs unusable on this instance.
type brokenDevices struct{}

func (brokenDevices) WaitNIC(context.Context, string) error {
	return errors.New("subscribe to link updates: operation not permitted")
}

func (brokenDevices) WaitVolume(context.Context, string, string) error {
	return errors.New("read /sys/class/block: permission denied")
}

// TestDeleteOnTermination: an attachment the claim makes is never deleted
// with the instance, so a fresh boot never calls
// ModifyNetworkInterfaceAttribute; a reused attachment marked
// delete-on-termination (made some other way) is cleared, once.
func TestDeleteOnTermination(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
	id := w.launch("us-east-1a")
	c, _ := w.claimer(id, 1)
	ctx := context.Background()
	if _, err := c.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	if n := w.sim.Stats().Calls["ModifyNetworkInterfaceAttribute"]; n != 0 {
		t.Errorf("a fresh claim called ModifyNetworkInterfaceAttribute %d times", n)
	}
	eni, _ := w.sim.NetworkInterface(w.enis[1])
	if _, err := c.EC2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(eni.ID),
		Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(eni.Attachment.ID), DeleteOnTermination: aws.Bool(true)},
	}); err != nil {
		t.Fatal(err)
	}
	c2, _ := w.claimer(id, 2)
	r, err := c2.Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.checkConsistent(id, r) // delete-on-termination is false again
	if n := w.sim.Stats().Calls["ModifyNetworkInterfaceAttribute"]; n != 2 {
		t.Errorf("ModifyNetworkInterfaceAttribute called %d times in all, want 2 (the test's and the claim's)", n)
	}
}

// TestTwentyNodesAtOnce: a fresh 20-node ensemble over three AZs boots at
// once, unpinned, against EC2's default throttling buckets: every node is
// claimed once and EC2 never throttles (the benchmark measures the same
// with realistic latencies).
func TestTwentyNodesAtOnce(t *testing.T) {
	t.Parallel()
	layout := []azNodes{{"us-east-1a", 7}, {"us-east-1b", 7}, {"us-east-1c", 6}}
	w := newWorld(t, ec2sim.Options{Latency: fast}, layout)
	var azs []string
	for _, l := range layout {
		for range l.n {
			azs = append(azs, l.az)
		}
	}
	w.bootAll(t, azs)
	if st := w.sim.Stats(); st.Errors["RequestLimitExceeded"] != 0 {
		t.Errorf("throttled %d times (calls %v)", st.Errors["RequestLimitExceeded"], st.Calls)
	}
}

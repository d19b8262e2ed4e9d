package ec2sim_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func TestEventualConsistency(t *testing.T) {
	const lag = 300 * time.Millisecond
	e := setup(t, ec2sim.Options{Consistency: lag})
	inst := e.run(e.subA)
	created := time.Now()
	n := e.eni(e.subA, "", tags("prod", "1"))

	// A fresh resource is invisible to Describe, by id and by filter...
	_, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{n.ID}})
	wantError(t, err, "InvalidNetworkInterfaceID.NotFound", "")
	out, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("tag:zkaas:ensemble", "prod")}})
	if err != nil || len(out.NetworkInterfaces) != 0 {
		t.Fatalf("fresh ENI visible to a filtered describe: %v %v", out, err)
	}
	// ...but mutations act on the true state: it can be attached at once.
	att, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(n.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	attached := time.Now()
	time.Sleep(time.Until(created.Add(lag + 20*time.Millisecond)))

	// The ENI is visible now, but as it was before the attach.
	if time.Since(attached) < lag {
		if got := e.describeENI(n.ID); got.Status != types.NetworkInterfaceStatusAvailable || got.Attachment != nil {
			t.Fatalf("describe within the lag after attach: %s %+v, want stale available", got.Status, got.Attachment)
		}
		for _, ni := range e.describeInstance(inst.ID).NetworkInterfaces {
			if aws.ToString(ni.NetworkInterfaceId) == n.ID {
				t.Fatal("DescribeInstances shows the attachment within the lag")
			}
		}
	}
	// A second attacher acting on the stale picture still loses: EC2 is the lock.
	other := e.run(e.subA)
	_, err = e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(n.ID), InstanceId: aws.String(other.ID), DeviceIndex: aws.Int32(1),
	})
	wantError(t, err, "InvalidParameterValue", fmt.Sprintf("Interface: [%s] in use.", n.ID))

	eventually(t, "describe catches up", func() bool {
		got := e.describeENI(n.ID)
		return got.Attachment != nil && aws.ToString(got.Attachment.AttachmentId) == aws.ToString(att.AttachmentId) &&
			got.Attachment.Status == types.AttachmentStatusAttached
	})
	if time.Since(attached) < lag {
		t.Fatalf("describe caught up after %v, before the %v lag", time.Since(attached), lag)
	}
}

func TestThrottlingBuckets(t *testing.T) {
	t.Run("mutating bucket", func(t *testing.T) {
		e := setup(t, ec2sim.Options{})
		n := e.eni(e.subA, "", nil)
		c := e.client(noRetries)
		start := time.Now()
		ok, throttled := 0, 0
		for i := range 70 {
			_, err := c.CreateTags(ctx(t), &ec2.CreateTagsInput{
				Resources: []string{n.ID}, Tags: []types.Tag{{Key: aws.String("n"), Value: aws.String(fmt.Sprint(i))}},
			})
			if err == nil {
				ok++
				continue
			}
			code, msg, status := apiError(t, err)
			if code != "RequestLimitExceeded" || msg != "Request limit exceeded." || status != 503 {
				t.Fatalf("call %d: %s %q HTTP %d", i, code, msg, status)
			}
			throttled++
		}
		// 50 in the bucket plus what refilled at 5/s meanwhile.
		maxOK := 50 + int(time.Since(start).Seconds()*5) + 1
		if ok < 50 || ok > maxOK || throttled == 0 {
			t.Fatalf("%d succeeded, %d throttled; want 50..%d succeeded", ok, throttled, maxOK)
		}
		if st := e.sim.Stats(); st.Errors["RequestLimitExceeded"] != throttled || st.Calls["CreateTags"] != 70 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("unfiltered describe bucket is smaller and separate", func(t *testing.T) {
		e := setup(t, ec2sim.Options{})
		c := e.client(noRetries)
		throttled := 0
		for range 30 {
			if _, err := c.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{}); err != nil {
				throttled++
			}
		}
		if throttled < 5 {
			t.Fatalf("only %d of 30 unfiltered DescribeVolumes throttled", throttled)
		}
		for i := range 30 {
			if _, err := c.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{Filters: []types.Filter{filter("status", "available")}}); err != nil {
				t.Fatalf("filtered describe %d throttled: %v", i, err)
			}
		}
	})
	t.Run("configurable and disableable", func(t *testing.T) {
		small := setup(t, ec2sim.Options{Throttle: &ec2sim.Throttle{Describe: ec2sim.Bucket{Capacity: 3, RefillPerSecond: 0.001}}})
		c := small.client(noRetries)
		for i := range 4 {
			_, err := c.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{small.subA}})
			if (err != nil) != (i == 3) {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		off := setup(t, ec2sim.Options{Throttle: &ec2sim.Throttle{Disabled: true}})
		c = off.client(noRetries)
		for i := range 150 {
			if _, err := c.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{}); err != nil {
				t.Fatalf("call %d with throttling off: %v", i, err)
			}
		}
	})
}

// faultRun performs a fixed sequence of calls and records each outcome.
func faultRun(t *testing.T, seed uint64) []string {
	e := setup(t, ec2sim.Options{Seed: seed, Throttle: &ec2sim.Throttle{Disabled: true},
		Faults: ec2sim.Faults{ThrottleRate: 0.3, InUseRaceRate: 0.3}})
	c := e.client(noRetries)
	var outcomes []string
	for range 30 {
		// One instance each: a t3.medium holds only two more interfaces.
		inst := e.run(e.subA)
		n := e.eni(e.subA, "", nil)
		_, err := c.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
			NetworkInterfaceId: aws.String(n.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(1),
		})
		outcome := "ok"
		if err != nil {
			outcome, _, _ = apiError(t, err)
			// A lost race or throttle changes nothing.
			if got, _ := e.sim.NetworkInterface(n.ID); got.Status != ec2sim.StatusAvailable {
				t.Fatalf("%s left %s %s", outcome, n.ID, got.Status)
			}
		}
		outcomes = append(outcomes, outcome)
	}
	return outcomes
}

func TestFaultInjectionIsSeeded(t *testing.T) {
	first, again, other := faultRun(t, 42), faultRun(t, 42), faultRun(t, 7)
	if !slices.Equal(first, again) {
		t.Fatalf("same seed, different faults:\n%v\n%v", first, again)
	}
	if slices.Equal(first, other) {
		t.Fatalf("different seeds, same faults: %v", first)
	}
	count := map[string]int{}
	for _, o := range first {
		count[o]++
	}
	if count["RequestLimitExceeded"] == 0 || count["InvalidNetworkInterface.InUse"] == 0 || count["ok"] == 0 {
		t.Fatalf("outcomes %v: want some of each", count)
	}
}

func TestStuckAttachments(t *testing.T) {
	e := setup(t, ec2sim.Options{Latency: ec2sim.Latency{ENIAttach: 10 * time.Millisecond, VolumeAttach: 10 * time.Millisecond}})
	inst := e.run(e.subA)

	t.Run("StickNextAttach", func(t *testing.T) {
		n := e.eni(e.subA, "", nil)
		v := e.volume("us-east-1a", nil)
		e.sim.StickNextAttach(n.ID)
		e.sim.StickNextAttach(v.ID)
		out, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
			NetworkInterfaceId: aws.String(n.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(1),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.ec2.AttachVolume(ctx(t), &ec2.AttachVolumeInput{
			VolumeId: aws.String(v.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/xvdf"),
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if got := e.describeENI(n.ID).Attachment.Status; got != types.AttachmentStatusAttaching {
			t.Fatalf("stuck ENI is %s", got)
		}
		if got := e.describeVolume(v.ID).Attachments[0].State; got != types.VolumeAttachmentStateAttaching {
			t.Fatalf("stuck volume is %s", got)
		}
		// Detaching a stuck attachment works, and the next attach is normal.
		if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: out.AttachmentId}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ec2.DetachVolume(ctx(t), &ec2.DetachVolumeInput{VolumeId: aws.String(v.ID)}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "ENI available", func() bool { x, _ := e.sim.NetworkInterface(n.ID); return x.Status == ec2sim.StatusAvailable })
		eventually(t, "volume available", func() bool { x, _ := e.sim.Volume(v.ID); return x.State == ec2sim.StatusAvailable })
		e.attachENI(n.ID, inst.ID, 1)
		e.attachVolume(v.ID, inst.ID, "/dev/xvdf")
	})
	t.Run("StuckAttachRate", func(t *testing.T) {
		e.sim.SetFaults(ec2sim.Faults{StuckAttachRate: 1})
		v := e.volume("us-east-1a", nil)
		if _, err := e.ec2.AttachVolume(ctx(t), &ec2.AttachVolumeInput{
			VolumeId: aws.String(v.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/xvdg"),
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if got, _ := e.sim.Volume(v.ID); got.Attachment.State != ec2sim.AttachAttaching {
			t.Fatalf("volume is %s with StuckAttachRate 1", got.Attachment.State)
		}
		e.sim.SetFaults(ec2sim.Faults{})
	})
}

func TestConcurrentAttachOneWinner(t *testing.T) {
	e := setup(t, ec2sim.Options{Throttle: &ec2sim.Throttle{Disabled: true}, Latency: ec2sim.Latency{RoundTripJitter: 5 * time.Millisecond}})
	n := e.eni(e.subA, "", tags("prod", "1"))
	v := e.volume("us-east-1a", tags("prod", "1"))
	var insts []ec2sim.Instance
	for range 20 {
		insts = append(insts, e.run(e.subA))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	eniWinners, volWinners := []string{}, []string{}
	losses := map[string]int{}
	for _, inst := range insts {
		wg.Go(func() {
			c := e.client()
			_, eniErr := c.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
				NetworkInterfaceId: aws.String(n.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(1),
			})
			_, volErr := c.AttachVolume(ctx(t), &ec2.AttachVolumeInput{
				VolumeId: aws.String(v.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/xvdf"),
			})
			mu.Lock()
			defer mu.Unlock()
			for _, r := range []struct {
				err     error
				winners *[]string
			}{{eniErr, &eniWinners}, {volErr, &volWinners}} {
				if r.err == nil {
					*r.winners = append(*r.winners, inst.ID)
					continue
				}
				code, _, _ := apiError(t, r.err)
				losses[code]++
			}
		})
	}
	wg.Wait()
	if len(eniWinners) != 1 || len(volWinners) != 1 {
		t.Fatalf("ENI winners %v, volume winners %v: want exactly one each", eniWinners, volWinners)
	}
	if losses["InvalidParameterValue"] != 19 || losses["VolumeInUse"] != 19 {
		t.Fatalf("losers got %v", losses)
	}
	if got, _ := e.sim.NetworkInterface(n.ID); got.Attachment.InstanceID != eniWinners[0] {
		t.Fatalf("ENI attached to %s, winner was %s", got.Attachment.InstanceID, eniWinners[0])
	}
}

func TestRoundTripLatency(t *testing.T) {
	e := setup(t, ec2sim.Options{Latency: ec2sim.Latency{RoundTrip: 60 * time.Millisecond, RoundTripJitter: 20 * time.Millisecond}})
	for range 3 {
		start := time.Now()
		if _, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{e.subA}}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 60*time.Millisecond || d > time.Second {
			t.Fatalf("call took %v, want 60..80ms plus overhead", d)
		}
	}
}

func TestStatsAndDryRun(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	n := e.eni(e.subA, "", nil)
	_, err := e.ec2.CreateTags(ctx(t), &ec2.CreateTagsInput{
		DryRun: aws.Bool(true), Resources: []string{n.ID}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}},
	})
	if code, _, status := apiError(t, err); code != "DryRunOperation" || status != 412 {
		t.Fatalf("dry run: %s HTTP %d", code, status)
	}
	if got, _ := e.sim.NetworkInterface(n.ID); len(got.Tags) != 0 {
		t.Fatal("dry run changed tags")
	}
	for range 3 {
		if _, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{n.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-0000000000000000a"}})
	wantError(t, err, "InvalidVolume.NotFound", "")

	st := e.sim.Stats()
	want := ec2sim.Stats{Total: 5,
		Calls:  map[string]int{"CreateTags": 1, "DescribeNetworkInterfaces": 3, "DescribeVolumes": 1},
		Errors: map[string]int{"DryRunOperation": 1, "InvalidVolume.NotFound": 1}}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	st.Calls["CreateTags"] = 99 // a copy
	e.sim.ResetStats()
	if st := e.sim.Stats(); st.Total != 0 || len(st.Calls) != 0 || len(st.Errors) != 0 {
		t.Fatalf("after reset: %+v", st)
	}
}

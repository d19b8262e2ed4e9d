package claim

import (
	"context"
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

// benchLatency is the simulator's latency model for the benchmarks: API
// round trips of 25-35 ms and attach times in the range EC2 shows for
// Nitro instances (an ENI in about a second, a gp3 volume in about two).
var benchLatency = ec2sim.Latency{
	RoundTrip: 25 * time.Millisecond, RoundTripJitter: 10 * time.Millisecond,
	ENIAttach: 1 * time.Second, VolumeAttach: 2 * time.Second,
	ENIDetach: 500 * time.Millisecond, VolumeDetach: time.Second,
}

// benchStuckAttach is the stuck bound in the benchmarks: well above
// benchLatency's attach times, as production's 60 s is above EC2's.
const benchStuckAttach = ensemble.Duration(10 * time.Second)

// BenchmarkClaim measures the claim's critical path against two references
// measured in the same iteration on identical fresh worlds:
//   - floor: an oracle that makes only the necessary calls (list, attach ENI,
//     attach volume, one final describe) and learns of completion for free;
//   - sequential: claim the ENI, wait for it, then claim and wait for the
//     volume — the approach the overlap replaces.
func BenchmarkClaim(b *testing.B) {
	var claim, floor, seq time.Duration
	var calls int
	for i := 0; i < b.N; i++ {
		claim += timeIt(b, func(w *world, id identity.Instance) {
			c, api := w.claimer(id, uint64(i+1))
			if _, err := c.Claim(context.Background()); err != nil {
				b.Fatal(err)
			}
			calls += api.Calls()
		})
		floor += timeIt(b, oracleClaim)
		seq += timeIt(b, sequentialClaim)
	}
	n := float64(b.N)
	b.ReportMetric(float64(claim.Milliseconds())/n, "claim_ms")
	b.ReportMetric(float64(floor.Milliseconds())/n, "floor_ms")
	b.ReportMetric(float64(claim)/float64(floor), "claim/floor")
	b.ReportMetric(float64(seq.Milliseconds())/n, "sequential_ms")
	b.ReportMetric(float64(claim)/float64(seq), "claim/sequential")
	b.ReportMetric(float64(calls)/n, "ec2_calls/claim")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkConcurrentBoot boots a fresh 20-node ensemble over three AZs at
// once (7, 7 and 6 nodes, as many instances), none pinned, against EC2's
// default throttling buckets, and reports how many boots failed and how
// many throttling errors the simulator returned (the SDK retries those).
func BenchmarkConcurrentBoot(b *testing.B) {
	layout := []azNodes{{"us-east-1a", 7}, {"us-east-1b", 7}, {"us-east-1c", 6}}
	var failed, throttled, calls, boots int
	var took time.Duration
	for i := 0; i < b.N; i++ {
		w := newWorld(b, ec2sim.Options{Latency: benchLatency, Seed: uint64(i + 1)}, layout)
		w.cfg.Claim.StuckAttach = benchStuckAttach
		var wg sync.WaitGroup
		var mu sync.Mutex
		var claimers []*Claimer
		for _, l := range layout {
			for range l.n {
				c, _ := w.claimer(w.launch(l.az), uint64(len(claimers)+1))
				claimers = append(claimers, c)
			}
		}
		boots = len(claimers)
		start := time.Now()
		for _, c := range claimers {
			wg.Go(func() {
				if _, err := c.Claim(context.Background()); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
					b.Log(err)
				}
			})
		}
		wg.Wait()
		took += time.Since(start)
		st := w.sim.Stats()
		throttled += st.Errors["RequestLimitExceeded"]
		calls += st.Total
	}
	n := float64(b.N)
	b.ReportMetric(float64(took.Milliseconds())/n, "all20_ms")
	b.ReportMetric(float64(failed)/n, "failed_boots")
	b.ReportMetric(float64(throttled)/n, "throttled_calls")
	b.ReportMetric(float64(calls)/n/float64(boots), "ec2_calls/claim")
	b.ReportMetric(0, "ns/op")
}

// timeIt builds a fresh 3-AZ world, launches one instance in us-east-1b and
// times f on it.
func timeIt(b *testing.B, f func(*world, identity.Instance)) time.Duration {
	b.StopTimer()
	w := newWorld(b, ec2sim.Options{Latency: benchLatency}, []azNodes{{"us-east-1a", 1}, {"us-east-1b", 1}, {"us-east-1c", 1}})
	w.cfg.Claim.StuckAttach = benchStuckAttach
	id := w.launch("us-east-1b")
	b.StartTimer()
	start := time.Now()
	f(w, id)
	return time.Since(start)
}

// oracleClaim is the floor: the same necessary calls, with completion read
// from the simulator's true state at no cost, then one describe to observe
// it as a client must.
func oracleClaim(w *world, id identity.Instance) {
	c, _ := w.claimer(id, 1)
	ctx := context.Background()
	if _, err := c.discover(ctx); err != nil {
		panic(err)
	}
	eni, vol := w.enis[2], w.vols[2]
	attachENI(c, id, eni)
	attachVolume(c, id, vol)
	for {
		e, _ := w.sim.NetworkInterface(eni)
		v, _ := w.sim.Volume(vol)
		if e.Attachment.Status == ec2sim.AttachAttached && v.Attachment.State == ec2sim.AttachAttached {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id.InstanceID}}); err != nil {
		panic(err)
	}
}

// sequentialClaim attaches the ENI, waits for it with the same polling, and
// only then attaches and waits for the volume.
func sequentialClaim(w *world, id identity.Instance) {
	c, _ := w.claimer(id, 1)
	ctx := context.Background()
	if _, err := c.discover(ctx); err != nil {
		panic(err)
	}
	eni, vol := w.enis[2], w.vols[2]
	attachENI(c, id, eni)
	pollUntil(c, func() bool {
		out, err := c.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
		return err == nil && len(out.NetworkInterfaces) == 1 && out.NetworkInterfaces[0].Attachment != nil &&
			out.NetworkInterfaces[0].Attachment.Status == types.AttachmentStatusAttached
	})
	attachVolume(c, id, vol)
	pollUntil(c, func() bool {
		out, err := c.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}})
		return err == nil && len(out.Volumes) == 1 && len(out.Volumes[0].Attachments) == 1 &&
			out.Volumes[0].Attachments[0].State == types.VolumeAttachmentStateAttached
	})
}

// pollUntil polls on the claim's schedule (first wait, then check) until done.
func pollUntil(c *Claimer, done func() bool) {
	for poll := 0; ; poll++ {
		time.Sleep(c.Poll.Delay(poll, c.Rand))
		if done() {
			return
		}
	}
}

// attachENI and attachVolume are the references' attach calls.
func attachENI(c *Claimer, id identity.Instance, eni string) {
	if _, err := c.EC2.AttachNetworkInterface(context.Background(), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(eni), InstanceId: aws.String(id.InstanceID), DeviceIndex: aws.Int32(1)}); err != nil {
		panic(err)
	}
}

func attachVolume(c *Claimer, id identity.Instance, vol string) {
	if _, err := c.EC2.AttachVolume(context.Background(), &ec2.AttachVolumeInput{
		VolumeId: aws.String(vol), InstanceId: aws.String(id.InstanceID), Device: aws.String("/dev/xvdf")}); err != nil {
		panic(err)
	}
}

package zkensemble

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// benchLatency is EC2's attach latencies as the claim benchmark models them.
var benchLatency = ec2sim.Latency{
	RoundTrip: 25 * time.Millisecond, RoundTripJitter: 10 * time.Millisecond,
	ENIAttach: time.Second, VolumeAttach: 2 * time.Second,
	ENIDetach: 500 * time.Millisecond, VolumeDetach: time.Second,
}

func benchEnsemble(b *testing.B, heap string, azs ...string) *Ensemble {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	for _, jar := range Classpath {
		if _, err := os.Stat(jar); err != nil {
			b.Skipf("%s missing", jar)
		}
	}
	cloud, err := localcloud.New(context.Background(), localcloud.Options{
		EC2: ec2sim.Options{Latency: benchLatency}, PrivateDirs: PrivateDirs, Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cloud.Close() })
	e, err := New(cloud, Options{Name: "bench", Nodes: nodes(azs...), Binary: binary, Heap: heap, VolumeGiB: 4, LogDir: b.TempDir(), Log: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// rxBytes is what an instance received on all its interfaces.
func rxBytes(b *testing.B, inst *localcloud.Instance) int64 {
	b.Helper()
	links, err := os.ReadDir(inst.Path("/sys/class/net"))
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, l := range links {
		if l.Name() == "lo" {
			continue
		}
		raw, err := os.ReadFile(inst.Path("/sys/class/net/" + l.Name() + "/statistics/rx_bytes"))
		if err != nil {
			b.Fatal(err)
		}
		v, _ := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
		total += v
	}
	return total
}

// BenchmarkRejoin: an ensemble holding 200+ MB of znode data loses node 2;
// its replacement rejoins once with the node's own volume reattached and
// once with a fresh volume. Reported: bytes the replacement received and the
// time from launch to serving, for both, as ratios from the same run.
func BenchmarkRejoin(b *testing.B) {
	for range b.N {
		e := benchEnsemble(b, "1g", "us-east-1a", "us-east-1b", "us-east-1c")
		ctx := b.Context()
		if _, err := e.BootAll(ctx, []string{"us-east-1a", "us-east-1b", "us-east-1c"}); err != nil {
			b.Fatal(err)
		}
		if _, err := e.WaitServing(ctx, 60*time.Second, 1, 2, 3); err != nil {
			b.Fatal(err)
		}
		const size, count = 900 << 10, 230 // 207 MB: ZooKeeper caps a znode below 1 MB
		c, err := e.Client("10.0.1.11")
		if err != nil {
			b.Fatal(err)
		}
		payload := bytes.Repeat([]byte("z"), size)
		for i := range count {
			if _, err := c.Create(fmt.Sprintf("/blob%03d", i), payload, 0, zk.WorldACL(zk.PermAll)); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()

		rejoin := func(fresh bool) (int64, time.Duration, string) {
			old := e.Node(2)
			if err := e.Terminate(ctx, old); err != nil {
				b.Fatal(err)
			}
			if fresh {
				if err := e.Cloud.Sim().CreateTags([]string{old.Report.Claim.Volume}, map[string]string{"zkaas:ensemble": "retired"}); err != nil {
					b.Fatal(err)
				}
				if _, err := e.Cloud.CreateVolume("us-east-1b", 4, map[string]string{"zkaas:ensemble": "bench", "zkaas:node": "2"}); err != nil {
					b.Fatal(err)
				}
			}
			n, err := e.Boot(ctx, "us-east-1b")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.WaitServing(ctx, 180*time.Second, 1, 2, 3); err != nil {
				b.Fatal(err)
			}
			return rxBytes(b, n.Instance), time.Since(n.Launched), n.Sync()
		}
		ownBytes, ownTime, ownSync := rejoin(false)
		freshBytes, freshTime, freshSync := rejoin(true)
		b.Logf("own volume: %d bytes, %s, %s; fresh volume: %d bytes, %s, %s", ownBytes, ownTime, ownSync, freshBytes, freshTime, freshSync)
		b.ReportMetric(float64(ownBytes)/1e6, "own_MB")
		b.ReportMetric(float64(freshBytes)/1e6, "fresh_MB")
		b.ReportMetric(float64(freshBytes)/float64(ownBytes), "fresh/own_bytes")
		b.ReportMetric(ownTime.Seconds(), "own_s")
		b.ReportMetric(freshTime.Seconds(), "fresh_s")
		b.ReportMetric(0, "ns/op")
	}
}

// BenchmarkColdBoot: time to quorum when 3 or 5 instances boot at once,
// next to the floor measured in the same run: the simulator's attach path
// (round trips + the volume attach) plus ZooKeeper's own start and election,
// timed by restarting every ZooKeeper at once on the booted instances.
func BenchmarkColdBoot(b *testing.B) {
	for _, azs := range [][]string{
		{"us-east-1a", "us-east-1b", "us-east-1c"},
		{"us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b", "us-east-1c"},
	} {
		b.Run(fmt.Sprintf("%d-nodes", len(azs)), func(b *testing.B) {
			var boot, floor time.Duration
			for range b.N {
				e := benchEnsemble(b, "256m", azs...)
				ctx := b.Context()
				ids := make([]int, len(azs))
				for i := range ids {
					ids[i] = i + 1
				}
				start := time.Now()
				booted, err := e.BootAll(ctx, azs)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.WaitServing(ctx, 90*time.Second, ids...); err != nil {
					b.Fatal(err)
				}
				boot += time.Since(start)
				for _, n := range booted {
					b.Logf("node %d stages %v claim phases %+v", n.ID, n.Report.Stages, n.Report.Claim.Phases)
				}
				start = time.Now()
				var wg sync.WaitGroup
				for _, n := range booted {
					wg.Go(func() {
						if err := e.RestartZooKeeper(ctx, n); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				if _, err := e.WaitServing(ctx, 90*time.Second, ids...); err != nil {
					b.Fatal(err)
				}
				election := time.Since(start)
				attach := 4*(benchLatency.RoundTrip+benchLatency.RoundTripJitter/2) + benchLatency.VolumeAttach
				floor += attach + election
			}
			b.ReportMetric(boot.Seconds()/float64(b.N), "quorum_s")
			b.ReportMetric(floor.Seconds()/float64(b.N), "floor_s")
			b.ReportMetric(float64(boot)/float64(floor), "quorum/floor")
			b.ReportMetric(0, "ns/op")
		})
	}
}

package zkensemble

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// benchGroupInterval is the group controller's period in the healing
// benchmark: how long a group may take to notice an instance gone.
const benchGroupInterval = time.Second

// benchClaimCalls are the round trips on an uncontended claim's critical
// path as BenchmarkClaim's floor (its oracle) makes them: list, attach the
// ENI, attach the volume, one describe; the two attaches overlap.
const benchClaimCalls = 4

// healTimes are one healing's figures, from the kill.
type healTimes struct {
	node      int
	total     time.Duration // kill → the ensemble serves with the replacement
	detect    time.Duration // kill → the group starts the launch
	boot      time.Duration // launch → zkaas-firstboot started (PID 1's boot)
	firstboot time.Duration // zkaas-firstboot's run (the claim and the host steps)
	rejoin    time.Duration // firstboot done → serving (JVM start, election or sync)
}

// BenchmarkGroupHeal: the ensemble's three Auto Scaling groups (one per
// AZ) heal each node in turn — node 2, 3, 1 — after a kill -9 of its
// machine, with nothing but the groups launching. Reported (medians over
// the healings): heal_s, kill to the whole ensemble serving again with the
// replacement; its floor heal_floor_s = the group's detection interval
// (benchGroupInterval: a group notices within one pass) + the measured
// launch to zkaas-firstboot started (the machine's boot) + the claim as
// the latency model has it (benchClaimCalls round trips and the longer
// of the overlapping ENI and volume attaches, as BenchmarkClaim's floor) + the measured firstboot-done to serving (ZooKeeper's
// start and sync); heal/floor (goal ≤ 1.2). What is left over is the
// group's own reaction beyond its interval and firstboot's host steps.
// Also detect_s (kill → the launch activity starts), for reference. Then
// one boot fails (node 2's volume held by a stuck predecessor past the
// claim deadline; healFailedBoot) and is replaced: failed_hold_s is the
// longest the failed boot held the node's ENI or volume, against
// failed_hold_bound_s = claim deadline + holdGrace (failed_hold/bound,
// goal ≤ 1).
func BenchmarkGroupHeal(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		b.Skip("needs systemd-nspawn (Debian systemd-container)")
	}
	rootfs := benchImage(b)
	var heals []healTimes
	var held time.Duration
	for range b.N {
		h, longest := measureHeals(b, rootfs)
		heals, held = append(heals, h...), max(held, longest)
	}
	claim := benchClaimCalls*(benchLatency.RoundTrip+benchLatency.RoundTripJitter/2) + max(benchLatency.ENIAttach, benchLatency.VolumeAttach)
	for _, h := range heals {
		b.Logf("node %d: healed in %s: detected %s, boot %s, firstboot %s (claim floor %s), rejoin %s", h.node, h.total, h.detect, h.boot, h.firstboot, claim, h.rejoin)
	}
	fig := func(f func(h healTimes) time.Duration) time.Duration {
		return median(toReplacement(heals, f), func(t replacementTimes) time.Duration { return t.serving })
	}
	total := fig(func(h healTimes) time.Duration { return h.total })
	floor := fig(func(h healTimes) time.Duration { return benchGroupInterval + h.boot + claim + h.rejoin })
	b.ReportMetric(total.Seconds(), "heal_s")
	b.ReportMetric(floor.Seconds(), "heal_floor_s")
	b.ReportMetric(float64(total)/float64(floor), "heal/floor")
	b.ReportMetric(fig(func(h healTimes) time.Duration { return h.detect }).Seconds(), "detect_s")
	b.ReportMetric(held.Seconds(), "failed_hold_s")
	b.ReportMetric((benchDeadline + holdGrace).Seconds(), "failed_hold_bound_s")
	b.ReportMetric(float64(held)/float64(benchDeadline+holdGrace), "failed_hold/bound")
	b.ReportMetric(0, "ns/op")
}

// toReplacement carries one figure of each healing in the serving field,
// for median.
func toReplacement(hs []healTimes, f func(healTimes) time.Duration) []replacementTimes {
	out := make([]replacementTimes, len(hs))
	for i, h := range hs {
		out[i] = replacementTimes{node: h.node, serving: f(h)}
	}
	return out
}

// benchDeadline is the claim deadline in the healing benchmark.
const benchDeadline = 20 * time.Second

// measureHeals runs one cloud: groups, a serving ensemble, three healings
// and a failed boot; it returns the healings and the failed boot's
// longest hold.
func measureHeals(b *testing.B, rootfs string) ([]healTimes, time.Duration) {
	b.Helper()
	ctx := b.Context()
	cloud, err := localcloud.New(ctx, localcloud.Options{
		EC2: ec2sim.Options{Latency: benchLatency}, RootFS: rootfs, Boot: localcloud.BootSystemd,
		GroupInterval: benchGroupInterval, ShutdownTimeout: 30 * time.Second, Logger: quietLog,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cloud.Close()
	e, err := New(cloud, Options{Name: "bench", Nodes: nodes("us-east-1a", "us-east-1b", "us-east-1c"), Deadline: benchDeadline, Log: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	g, err := e.CreateGroups(ctx, GroupOptions{Hook: hasUnit(rootfs, "zkaas-ready.service")})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	if _, err := g.WaitNodes(ctx, 3*time.Minute, 1, 2, 3); err != nil {
		b.Fatal(err)
	}
	if _, err := e.WaitServing(ctx, 2*time.Minute, 1, 2, 3); err != nil {
		b.Fatal(err)
	}
	if err := e.WriteZnodes(e.Node(1).IP, 200); err != nil {
		b.Fatal(err)
	}
	var out []healTimes
	for _, id := range []int{2, 3, 1} {
		old := e.Node(id)
		killWall, killMono := time.Now(), monotonic(b)
		if err := e.Terminate(ctx, old); err != nil {
			b.Fatal(err)
		}
		n, err := g.WaitNode(ctx, 3*time.Minute, id, old.Instance.ID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.WaitServing(ctx, 2*time.Minute, 1, 2, 3); err != nil {
			b.Fatal(err)
		}
		servingMono := monotonic(b)
		started := machineMonotonic(b, n.Instance, "show", "--property=ExecMainStartTimestampMonotonic", "--value", firstbootUnit)
		exited := machineMonotonic(b, n.Instance, "show", "--property=ExecMainExitTimestampMonotonic", "--value", firstbootUnit)
		acts, err := g.Activities(ctx, g.GroupOf(id))
		if err != nil {
			b.Fatal(err)
		}
		var launchMono time.Duration
		for _, a := range acts {
			if strings.HasSuffix(aws.ToString(a.Description), n.Instance.ID) && strings.HasPrefix(aws.ToString(a.Description), "Launching") && a.StartTime != nil {
				launchMono = killMono + a.StartTime.Sub(killWall)
			}
		}
		if launchMono == 0 || !(killMono < launchMono && launchMono < started+time.Millisecond && started < exited && exited < servingMono) {
			b.Fatalf("node %d: kill %s, launch %s, firstboot %s–%s, serving %s (monotonic): not in order", id, killMono, launchMono, started, exited, servingMono)
		}
		out = append(out, healTimes{node: id, total: servingMono - killMono, detect: launchMono - killMono,
			boot: started - launchMono, firstboot: exited - started, rejoin: servingMono - exited})
	}
	if !hasUnit(rootfs, "zkaas-unhealthy@.service") {
		b.Log("the image has no zkaas-unhealthy@.service: no failed boot measured")
		return out, 0
	}
	return out, healFailedBoot(b, e, g)
}

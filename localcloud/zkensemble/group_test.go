package zkensemble

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// newGroups creates the ensemble's groups, deleted (their instances
// terminated) when the test ends, before the cloud closes.
func newGroups(t *testing.T, e *Ensemble, o GroupOptions) *Groups {
	t.Helper()
	g, err := e.CreateGroups(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close groups: %v", err)
		}
	})
	return g
}

// activity finds the group's activity whose description starts with
// prefix; nil if none.
func activity(t testing.TB, g *Groups, group, prefix string) *astypes.Activity {
	t.Helper()
	acts, err := g.Activities(t.Context(), group)
	if err != nil {
		t.Fatal(err)
	}
	for i := range acts {
		if strings.HasPrefix(aws.ToString(acts[i].Description), prefix) {
			return &acts[i]
		}
	}
	return nil
}

// waitActivity waits until the activity exists and has finished.
func waitActivity(t testing.TB, g *Groups, group, prefix string, bound time.Duration) astypes.Activity {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		a := activity(t, g, group, prefix)
		if a != nil && a.Progress != nil && *a.Progress == 100 {
			return *a
		}
		if time.Now().After(deadline) {
			t.Fatalf("no finished activity %q in %s after %s (%+v)", prefix, group, bound, a)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestGroupHeals (machines): the ensemble's three groups (one per AZ)
// launch every node from the launch template's user data; a node killed
// with -9 is seen gone by its group (EC2 state), which launches a
// replacement that becomes the same node — its IP, its volume — and
// rejoins by DIFF with the data; then two groups lose their instance at
// once (quorum lost) and both replacements bring the quorum back.
func TestGroupHeals(t *testing.T) {
	hook := hasUnit(sharedImage(t), "zkaas-ready.service")
	e := newEnsembleWith(t, onMachines, ec2sim.Options{}, nodes("us-east-1a", "us-east-1b", "us-east-1c"), Options{Deadline: 20 * time.Second})
	g := newGroups(t, e, GroupOptions{Hook: hook})
	start := time.Now()
	if _, err := g.WaitNodes(t.Context(), 3*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitServing(t.Context(), 2*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	inService(t, g)
	t.Logf("three groups: ensemble serving %s after the groups were created (launch hook: %v)", time.Since(start).Round(time.Millisecond), hook)
	writeZnodes(t, e, e.Node(1).IP, 200)
	// Meanwhile a group whose user data has an error churns next to the
	// ensemble: checked at the end ("bad config").
	const refusedHold = 15 * time.Second
	badStart := time.Now()
	bad := newGroups(t, e, GroupOptions{Name: "bad", AZs: []string{"us-east-1a"}, UserData: badConfig(t, e, refusedHold)})

	t.Run("kill -9 node 2", func(t *testing.T) {
		inService(t, g)
		old := e.Node(2)
		group := g.GroupOf(2)
		killed := time.Now()
		if err := e.Terminate(t.Context(), old); err != nil {
			t.Fatal(err)
		}
		n, err := g.WaitNode(t.Context(), 3*time.Minute, 2, old.Instance.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.WaitServing(t.Context(), 2*time.Minute, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		t.Logf("node 2 killed -9 (%s) → %s serving as node 2 after %s", old.Instance.ID, n.Instance.ID, time.Since(killed).Round(time.Millisecond))
		if n.IP != old.IP || n.Instance.AZ != old.Instance.AZ || n.Report.Claim.Volume != e.Slot(2).Volume.ID {
			t.Errorf("replacement: ip %s az %s volume %s; want %s %s %s", n.IP, n.Instance.AZ, n.Report.Claim.Volume, old.IP, old.Instance.AZ, e.Slot(2).Volume.ID)
		}
		if n.Report.Disk.Formatted {
			t.Error("replacement formatted node 2's volume")
		}
		checkZnodes(t, e, n.IP, 200)
		if modes := e.Modes(t.Context()); modes[2] == "follower" {
			eventuallySync(t, n, "DIFF")
		}
		term := waitActivity(t, g, group, "Terminating EC2 instance: "+old.Instance.ID, 30*time.Second)
		if !strings.Contains(aws.ToString(term.Cause), "EC2 health check") || term.StatusCode != astypes.ScalingActivityStatusCodeSuccessful {
			t.Errorf("termination activity %s: %s (%s)", aws.ToString(term.Description), aws.ToString(term.Cause), term.StatusCode)
		}
		launch := waitActivity(t, g, group, "Launching a new EC2 instance: "+n.Instance.ID, time.Minute)
		if launch.StatusCode != astypes.ScalingActivityStatusCodeSuccessful {
			t.Errorf("launch activity of %s: %s %s", n.Instance.ID, launch.StatusCode, aws.ToString(launch.StatusMessage))
		}
	})

	t.Run("two groups at once", func(t *testing.T) {
		inService(t, g)
		old1, old3 := e.Node(1), e.Node(3)
		killed := time.Now()
		for _, n := range []*Node{old1, old3} {
			if err := e.Terminate(t.Context(), n); err != nil {
				t.Fatal(err)
			}
		}
		for _, old := range []*Node{old1, old3} {
			if _, err := g.WaitNode(t.Context(), 3*time.Minute, old.ID, old.Instance.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.WaitServing(t.Context(), 2*time.Minute, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		t.Logf("nodes 1 and 3 killed at once → both replaced and quorum back after %s", time.Since(killed).Round(time.Millisecond))
		checkZnodes(t, e, e.Node(3).IP, 200)
	})

	t.Run("heartbeat timeout", func(t *testing.T) {
		// A second launch hook nobody completes (firstboot completes the
		// zkaas ones): the launch waits in Pending:Wait for its heartbeat
		// timeout, then takes its DefaultResult, CONTINUE.
		group := g.GroupOf(1)
		const timeout = 30 // Auto Scaling's minimum
		if _, err := g.API().PutLifecycleHook(t.Context(), &autoscaling.PutLifecycleHookInput{
			AutoScalingGroupName: aws.String(group), LifecycleHookName: aws.String("audit-launch"),
			LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"), HeartbeatTimeout: aws.Int32(timeout), DefaultResult: aws.String("CONTINUE"),
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = g.API().DeleteLifecycleHook(context.Background(), &autoscaling.DeleteLifecycleHookInput{AutoScalingGroupName: aws.String(group), LifecycleHookName: aws.String("audit-launch")})
		})
		inService(t, g)
		old := e.Node(1)
		if err := e.Terminate(t.Context(), old); err != nil {
			t.Fatal(err)
		}
		n, err := g.WaitNode(t.Context(), 3*time.Minute, 1, old.Instance.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.WaitServing(t.Context(), 2*time.Minute, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		if in, ok := e.Cloud.AutoScaling().Instance(n.Instance.ID); !ok || in.LifecycleState != "Pending:Wait" {
			t.Errorf("%s serving as node 1 before the hook's timeout: lifecycle %+v, want Pending:Wait", n.Instance.ID, in)
		}
		launch := waitActivity(t, g, group, "Launching a new EC2 instance: "+n.Instance.ID, 2*timeout*time.Second)
		took := launch.EndTime.Sub(*launch.StartTime)
		if launch.StatusCode != astypes.ScalingActivityStatusCodeSuccessful || took < timeout*time.Second {
			t.Errorf("launch of %s: %s after %s; want Successful (the default result CONTINUE) after the %ds heartbeat timeout", n.Instance.ID, launch.StatusCode, took, timeout)
		}
		if in, _ := e.Cloud.AutoScaling().Instance(n.Instance.ID); in.LifecycleState != "InService" {
			t.Errorf("%s after the timeout: %s, want InService", n.Instance.ID, in.LifecycleState)
		}
		t.Logf("launch of %s held %s by the unanswered hook, then CONTINUE", n.Instance.ID, took.Round(100*time.Millisecond))
	})

	t.Run("failed boot replaced", func(t *testing.T) {
		if !hasUnit(sharedImage(t), "zkaas-unhealthy@.service") {
			t.Skip("the image has no zkaas-unhealthy@.service: a failed boot does not tell its group yet")
		}
		t.Logf("longest hold of the failed boot: %s", healFailedBoot(t, e, g).Round(time.Millisecond))
	})

	t.Run("zookeeper crash loop", func(t *testing.T) {
		if !hasUnit(sharedImage(t), "zkaas-unhealthy@.service") {
			t.Skip("the image has no zkaas-unhealthy@.service: a ZooKeeper that gives up does not tell its group yet")
		}
		healCrashLoop(t, e, g)
	})

	t.Run("bad config", func(t *testing.T) {
		checkBadConfig(t, e, bad, badStart, refusedHold)
	})
}

// badConfig is the ensemble's config with an error (a node id out of
// range) and health.refused_hold set to hold.
func badConfig(t *testing.T, e *Ensemble, hold time.Duration) []byte {
	t.Helper()
	cfg := strings.Replace(string(e.Config()), "{id: 3,", "{id: 300,", 1)
	if cfg == string(e.Config()) {
		t.Fatalf("no node 3 in the config:\n%s", e.Config())
	}
	return []byte(cfg + "health: {refused_hold: " + hold.String() + "}\n")
}

// checkBadConfig: every instance the bad group launched refused the
// config from user data before any EC2 call, saying so as its last word;
// the group replaced them no faster than the refusal hold, so the churn
// is bounded by the time over the hold.
func checkBadConfig(t *testing.T, e *Ensemble, bad *Groups, since time.Time, hold time.Duration) {
	boots := bad.Boots()
	if len(boots) == 0 {
		t.Fatal("the bad group launched nothing")
	}
	elapsed := time.Since(since)
	for i, b := range boots {
		select {
		case <-b.Done:
		case <-time.After(time.Minute):
			t.Fatalf("%s: firstboot not finished", b.InstanceID)
		}
		var fe *FirstbootError
		if !errors.As(b.Err, &fe) || !strings.Contains(fe.Line, "user data") {
			t.Errorf("%s: %v; want firstboot to refuse the user data config", b.InstanceID, b.Err)
		}
		if calls := e.Cloud.EC2Calls(b.InstanceID); len(calls) != 0 {
			t.Errorf("%s refused its config after EC2 calls %v: want none", b.InstanceID, calls)
		}
		if i > 0 {
			if gap := b.Seen.Sub(boots[i-1].Seen); gap < hold {
				t.Errorf("%s launched %s after %s: faster than the refusal hold %s", b.InstanceID, gap, boots[i-1].InstanceID, hold)
			}
		}
	}
	if max := int(elapsed/hold) + 1; len(boots) > max {
		t.Errorf("%d launches in %s: more than %d, the hold %s does not bound the churn", len(boots), elapsed, max, hold)
	}
	t.Logf("bad config: %d launch(es) in %s (hold %s), each refused before any EC2 call: %s", len(boots), elapsed.Round(time.Second), hold, boots[0].Err)
}

// eventuallySync waits, a little, for the node's log to tell how it
// synced: ZooKeeper logs it as the follower starts serving.
func eventuallySync(t *testing.T, n *Node, want string) {
	t.Helper()
	got := ""
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = n.Sync(); got != "" {
			break
		}
	}
	if got != want {
		t.Errorf("node %d (%s) synced by %q, want %s", n.ID, n.Instance.ID, got, want)
	}
}

// healFailedBoot: node 2's volume is held by a stuck predecessor (an
// instance outside the groups) when node 2 dies; the replacement claims
// the ENI, cannot get the volume, fails at the claim deadline and lets
// the ENI go within the deadline and a grace; it tells its group (ABANDON
// or Unhealthy), which replaces it; the predecessor having let go
// meanwhile, the next boot becomes node 2 with its data.
func healFailedBoot(t testing.TB, e *Ensemble, g *Groups) (longest time.Duration) {
	ctx := t.Context()
	group := g.GroupOf(2)
	api := g.API()
	// Launches held while the stage is set, so that no replacement claims
	// the volume before the predecessor has it.
	if _, err := api.SuspendProcesses(ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String(group), ScalingProcesses: []string{"Launch"}}); err != nil {
		t.Fatal(err)
	}
	inService(t, g)
	pred, err := e.Cloud.Launch(ctx, "us-east-1b")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Cloud.Terminate(context.Background(), pred) })
	old := e.Node(2)
	if err := e.Terminate(ctx, old); err != nil {
		t.Fatal(err)
	}
	vol := e.Slot(2).Volume.ID
	ec2c := e.Cloud.EC2Client("harness")
	eventuallyT(t, "node 2's volume detached", 30*time.Second, func() bool {
		v, _ := e.Cloud.Sim().Volume(vol)
		return v.Attachment == nil && v.State == "available"
	})
	if _, err := ec2c.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(vol), InstanceId: aws.String(pred.ID), Device: aws.String("/dev/xvdg")}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.ResumeProcesses(ctx, &autoscaling.ResumeProcessesInput{AutoScalingGroupName: aws.String(group), ScalingProcesses: []string{"Launch"}}); err != nil {
		t.Fatal(err)
	}
	// The first boot after the kill fails; then the predecessor lets go.
	var failed *GroupBoot
	deadline := time.Now().Add(3 * time.Minute)
	for failed == nil {
		for _, b := range g.Boots() {
			if b.Group != group || b.InstanceID == old.Instance.ID || b.Seen.Before(time.Now().Add(-5*time.Minute)) {
				continue
			}
			select {
			case <-b.Done:
				if b.Node == nil && b.Err != nil {
					failed = b
				}
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed boot in %s (boots: %s)", group, g.describe())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("boot %s failed: %v", failed.InstanceID, failed.Err)
	if _, err := ec2c.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(vol), InstanceId: aws.String(pred.ID)}); err != nil {
		t.Fatal(err)
	}
	n, err := g.WaitNode(ctx, 3*time.Minute, 2, old.Instance.ID, failed.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitServing(ctx, 2*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	checkZnodes(t, e, n.IP, 200)
	// What the failed boot held, and for how long.
	bound := e.opts.Deadline + holdGrace
	for _, h := range e.Cloud.Holds(failed.InstanceID) {
		to := h.To
		if to.IsZero() {
			to = time.Now()
		}
		d := to.Sub(h.From)
		longest = max(longest, d)
		if d > bound {
			t.Errorf("failed boot %s held %s for %s: more than the claim deadline %s + %s", failed.InstanceID, h.Resource, d, e.opts.Deadline, holdGrace)
		} else {
			t.Logf("failed boot %s held %s for %s", failed.InstanceID, h.Resource, d.Round(time.Millisecond))
		}
	}
	// The group's account of it: the failed instance taken out (ABANDON
	// cancels its launch; Unhealthy terminates it in service).
	launch := waitActivity(t, g, group, "Launching a new EC2 instance: "+failed.InstanceID, time.Minute)
	switch term := activity(t, g, group, "Terminating EC2 instance: "+failed.InstanceID); {
	case launch.StatusCode == astypes.ScalingActivityStatusCodeCancelled && strings.Contains(aws.ToString(launch.StatusMessage), "abandoned"):
		t.Logf("group %s: launch of %s abandoned: %s", group, failed.InstanceID, aws.ToString(launch.StatusMessage))
	case term != nil && strings.Contains(aws.ToString(term.Cause), "in response to a user health-check"):
		t.Logf("group %s: %s: %s", group, aws.ToString(term.Description), aws.ToString(term.Cause))
	default:
		t.Errorf("group %s: launch of %s %s (%s), termination %+v: want the launch abandoned or the instance terminated as unhealthy",
			group, failed.InstanceID, launch.StatusCode, aws.ToString(launch.StatusMessage), term)
	}
	return longest
}

// holdGrace is what a failed boot may hold a node's ENI or volume past
// its claim deadline: the release calls and EC2's detach.
const holdGrace = 5 * time.Second

// healCrashLoop: node 3's ZooKeeper dies again and again until systemd
// gives up (StartLimitBurst); OnFailure= tells the group the instance is
// Unhealthy, and the group replaces it with one that becomes node 3.
func healCrashLoop(t *testing.T, e *Ensemble, g *Groups) {
	ctx := t.Context()
	inService(t, g)
	old := e.Node(3)
	inst := old.Instance
	t.Cleanup(func() {
		if t.Failed() {
			in, _ := e.Cloud.AutoScaling().Instance(inst.ID)
			j, _ := inst.Journal(context.Background(), "--boot=0", "--unit="+zookeeperUnit, "--unit=zkaas-unhealthy@"+zookeeperUnit+".service", "--output=short-monotonic")
			t.Logf("crash-looped %s in its group: %+v; journal:\n%s", inst.ID, in, lastLines(string(j), 40))
		}
	})
	// The shipped RestartSec is 10 s: a runtime drop-in makes the burst
	// quick; Restart= and the start limit stay the unit's own.
	dropIn := "/run/systemd/system/" + zookeeperUnit + ".d/restart-fast.conf"
	script := "mkdir -p $(dirname " + dropIn + ") && printf '[Service]\\nRestartSec=1s\\n' > " + dropIn + " && systemctl daemon-reload"
	if out, err := inst.Command(ctx, "sh", "-ec", script).CombinedOutput(); err != nil {
		t.Fatalf("drop-in on %s: %v: %s", inst.ID, err, out)
	}
	burst, err := strconv.Atoi(props(t, inst, zookeeperUnit, "StartLimitBurst")["StartLimitBurst"])
	if err != nil || burst < 1 {
		t.Fatalf("StartLimitBurst: %v", err)
	}
	// Killed until systemd gives up: the burst counts the starts in the
	// interval, and a daemon-reload may have reset the count, so up to
	// twice the burst.
	prev, kills := 0, 0
	for ; kills < 2*burst; kills++ {
		pid := 0
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if st, _ := inst.UnitState(ctx, zookeeperUnit); st == "failed" {
				pid = -1
				break
			}
			if pid, err = e.ZooKeeperPID(ctx, old); err == nil && pid != prev {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: no new ZooKeeper on node 3 (%v)", kills+1, err)
			}
		}
		if pid == -1 {
			break
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		prev = pid
	}
	t.Logf("zookeeper.service on %s failed after %d kills (StartLimitBurst %d)", inst.ID, kills, burst)
	n, err := g.WaitNode(ctx, 3*time.Minute, 3, inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitServing(ctx, 2*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	checkZnodes(t, e, n.IP, 200)
	term := waitActivity(t, g, g.GroupOf(3), "Terminating EC2 instance: "+inst.ID, time.Minute)
	// SetInstanceHealth's cause, as Auto Scaling words it.
	if !strings.Contains(aws.ToString(term.Cause), "in response to a user health-check") {
		t.Errorf("termination of %s: cause %q, want the instance's health", inst.ID, aws.ToString(term.Cause))
	}
	t.Logf("crash-looping node 3 (%s) replaced by %s: %s", inst.ID, n.Instance.ID, aws.ToString(term.Cause))
}

// eventuallyT polls cond every 50 ms until it holds or bound passes.
func eventuallyT(t testing.TB, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(bound); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// inService waits until every node's instance is InService in its group.
func inService(t testing.TB, g *Groups) {
	t.Helper()
	if err := g.WaitInService(t.Context(), 2*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

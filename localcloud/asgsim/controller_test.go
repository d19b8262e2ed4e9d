package asgsim_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/zkaas/zkaas/localcloud/asgsim"
)

func TestCapacityBalancedAcrossAZs(t *testing.T) {
	tests := []struct {
		desired int32
		want    map[string]int
	}{
		{1, map[string]int{"us-east-1a": 1}},
		{3, map[string]int{"us-east-1a": 1, "us-east-1b": 1, "us-east-1c": 1}},
		{5, map[string]int{"us-east-1a": 2, "us-east-1b": 2, "us-east-1c": 1}},
	}
	for _, tc := range tests {
		t.Run("", func(t *testing.T) {
			e := setup(t)
			e.create("zk", tc.desired, "subnet-a,subnet-b,subnet-c")
			e.reconcile(3)
			if got := e.perAZ("zk"); !maps.Equal(got, tc.want) {
				t.Fatalf("desired %d: per AZ %v, want %v", tc.desired, got, tc.want)
			}
			// Scaling in keeps the balance: the fullest AZ loses first.
			_, err := e.asg.SetDesiredCapacity(ctx(t), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("zk"), DesiredCapacity: aws.Int32(tc.desired - 1)})
			must(t, err)
			e.reconcile(2)
			n, most, least := 0, 0, 99
			for _, c := range e.perAZ("zk") {
				n, most, least = n+c, max(most, c), min(least, c)
			}
			if n != int(tc.desired-1) || (n > 0 && most-least > 1 && len(e.perAZ("zk")) == 3) {
				t.Fatalf("after scale-in to %d: %v", tc.desired-1, e.perAZ("zk"))
			}
		})
	}
}

func TestTerminatedInstanceReplaced(t *testing.T) {
	e := setup(t)
	e.create("zk", 2, "subnet-a,subnet-b", func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.Tags = []types.Tag{{Key: aws.String("zkaas:ensemble"), Value: aws.String("prod"), PropagateAtLaunch: aws.Bool(true)},
			{Key: aws.String("billing"), Value: aws.String("x"), PropagateAtLaunch: aws.Bool(false)}}
	})
	e.reconcile(2)
	before := e.inService("zk")
	if len(before) != 2 {
		t.Fatalf("in service: %v", e.states("zk"))
	}
	tags := e.ec2.get(before[0]).tags
	if want := map[string]string{"aws:autoscaling:groupName": "zk", "zkaas:ensemble": "prod", "from": "template"}; !maps.Equal(tags, want) {
		t.Fatalf("instance tags %v, want %v", tags, want)
	}
	killed := before[0]
	az := e.ec2.get(killed).az
	e.ec2.kill(killed)
	e.reconcile(1)
	// Replaced at once: taken out of service, a new one launched in its AZ.
	if st := e.states("zk")[killed]; st != "" && !strings.HasPrefix(st, "Terminating") {
		t.Fatalf("killed instance: %s", st)
	}
	e.reconcile(2)
	after := e.inService("zk")
	if len(after) != 2 || slices.Contains(after, killed) {
		t.Fatalf("after replacement: %v", e.states("zk"))
	}
	if got := e.perAZ("zk")[az]; got != 1 {
		t.Fatalf("replacement not in %s: %v", az, e.perAZ("zk"))
	}
	acts := e.activities("zk")
	term := findActivity(t, acts, "Terminating EC2 instance: "+killed)
	if !strings.HasSuffix(aws.ToString(term.Cause), "an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped.") ||
		term.StatusCode != types.ScalingActivityStatusCodeSuccessful {
		t.Fatalf("termination activity: %s %q", term.StatusCode, aws.ToString(term.Cause))
	}
}

func findActivity(t *testing.T, acts []types.Activity, description string) types.Activity {
	t.Helper()
	for _, a := range acts {
		if aws.ToString(a.Description) == description {
			return a
		}
	}
	var ds []string
	for _, a := range acts {
		ds = append(ds, aws.ToString(a.Description))
	}
	t.Fatalf("no activity %q in %q", description, ds)
	return types.Activity{}
}

func TestUnhealthyAndGracePeriod(t *testing.T) {
	tests := []struct {
		name         string
		respect      *bool
		wait         time.Duration // after InService, before SetInstanceHealth
		wantReplaced bool
	}{
		{"within grace, respected: ignored", nil, 10 * time.Second, false},
		{"within grace, not respected: replaced", aws.Bool(false), 10 * time.Second, true},
		{"after grace: replaced", nil, 61 * time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			e.create("zk", 1, "subnet-a", func(in *autoscaling.CreateAutoScalingGroupInput) { in.HealthCheckGracePeriod = aws.Int32(60) })
			e.reconcile(2)
			id := e.inService("zk")[0]
			e.clock.Advance(tc.wait)
			_, err := e.asg.SetInstanceHealth(ctx(t), &autoscaling.SetInstanceHealthInput{InstanceId: aws.String(id), HealthStatus: aws.String("Unhealthy"), ShouldRespectGracePeriod: tc.respect})
			must(t, err)
			e.reconcile(3)
			replaced := !slices.Contains(e.inService("zk"), id)
			if replaced != tc.wantReplaced {
				t.Fatalf("replaced %v, want %v: %v", replaced, tc.wantReplaced, e.states("zk"))
			}
			if len(e.inService("zk")) != 1 {
				t.Fatalf("capacity not kept: %v", e.states("zk"))
			}
			if !tc.wantReplaced {
				// The call was ignored, not deferred: still Healthy, and
				// still in service once the grace period is over.
				if got := e.states("zk")[id]; got != "InService/Healthy" {
					t.Fatalf("ignored call left %s", got)
				}
				e.clock.Advance(time.Minute)
				e.reconcile(2)
				if !slices.Contains(e.inService("zk"), id) {
					t.Fatalf("replaced after the grace period: %v", e.states("zk"))
				}
			}
			if tc.wantReplaced {
				a := findActivity(t, e.activities("zk"), "Terminating EC2 instance: "+id)
				if !strings.HasSuffix(aws.ToString(a.Cause), "an instance was taken out of service in response to a user health-check.") {
					t.Fatalf("cause %q", aws.ToString(a.Cause))
				}
			}
		})
	}
}

// TestEC2HealthCheckWithinGrace: an instance that stops running within
// the grace period is marked Unhealthy and replaced at once, as AWS
// documents: the grace period protects an instance still starting, not one
// EC2 no longer runs (SetInstanceHealth within it still waits:
// TestUnhealthyAndGracePeriod).
func TestEC2HealthCheckWithinGrace(t *testing.T) {
	e := setup(t)
	e.create("zk", 1, "subnet-a", func(in *autoscaling.CreateAutoScalingGroupInput) { in.HealthCheckGracePeriod = aws.Int32(300) })
	e.reconcile(2)
	id := e.inService("zk")[0]
	e.ec2.kill(id)
	e.reconcile(3)
	if got := e.inService("zk"); len(got) != 1 || got[0] == id {
		t.Fatalf("an instance gone within grace is not replaced: %v", e.states("zk"))
	}
}

func TestLaunchHook(t *testing.T) {
	type step struct {
		advance   time.Duration
		complete  string // CONTINUE, ABANDON, or "" for none
		heartbeat bool
	}
	tests := []struct {
		name          string
		defaultResult string
		steps         []step
		wantInService bool   // the first instance
		wantStatus    string // its launch activity
	}{
		{"CONTINUE puts it in service", "ABANDON", []step{{complete: "CONTINUE"}}, true, "Successful"},
		{"ABANDON terminates and replaces it", "CONTINUE", []step{{complete: "ABANDON"}}, false, "Cancelled"},
		{"timeout takes DefaultResult ABANDON", "ABANDON", []step{{advance: 301 * time.Second}}, false, "Cancelled"},
		{"timeout takes DefaultResult CONTINUE", "CONTINUE", []step{{advance: 301 * time.Second}}, true, "Successful"},
		{"heartbeat extends the timeout", "ABANDON", []step{{advance: 200 * time.Second, heartbeat: true}, {advance: 200 * time.Second}, {complete: "CONTINUE"}}, true, "Successful"},
		{"timeout after a heartbeat", "ABANDON", []step{{advance: 200 * time.Second, heartbeat: true}, {advance: 301 * time.Second}}, false, "Cancelled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			e.create("zk", 1, "subnet-a", func(in *autoscaling.CreateAutoScalingGroupInput) {
				in.LifecycleHookSpecificationList = []types.LifecycleHookSpecification{{LifecycleHookName: aws.String("boot"),
					LifecycleTransition: aws.String(asgsim.TransitionLaunching), HeartbeatTimeout: aws.Int32(300), DefaultResult: aws.String(tc.defaultResult)}}
			})
			e.reconcile(2)
			list := e.instances("zk")
			if len(list) != 1 || list[0].LifecycleState != types.LifecycleStatePendingWait {
				t.Fatalf("want one Pending:Wait: %v", e.states("zk"))
			}
			id := aws.ToString(list[0].InstanceId)
			a := findActivity(t, e.activities("zk"), "Launching a new EC2 instance: "+id)
			if a.StatusCode != types.ScalingActivityStatusCodeMidLifecycleAction {
				t.Fatalf("launch activity while waiting: %s", a.StatusCode)
			}
			// What the instance's IMDS would answer meanwhile.
			if info, ok := e.svc.Instance(id); !ok || info.TargetLifecycleState != "InService" || info.LifecycleState != "Pending:Wait" || info.Group != "zk" {
				t.Fatalf("Instance(%s) = %+v, %v", id, info, ok)
			}
			for _, s := range tc.steps {
				e.clock.Advance(s.advance)
				if s.heartbeat {
					_, err := e.asg.RecordLifecycleActionHeartbeat(ctx(t), &autoscaling.RecordLifecycleActionHeartbeatInput{AutoScalingGroupName: aws.String("zk"),
						LifecycleHookName: aws.String("boot"), InstanceId: aws.String(id)})
					must(t, err)
				}
				if s.complete != "" {
					_, err := e.asg.CompleteLifecycleAction(ctx(t), &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String("zk"),
						LifecycleHookName: aws.String("boot"), InstanceId: aws.String(id), LifecycleActionResult: aws.String(s.complete)})
					must(t, err)
				}
				e.reconcile(1)
			}
			e.reconcile(2)
			inService := slices.Contains(e.inService("zk"), id)
			if inService != tc.wantInService {
				t.Fatalf("in service %v, want %v: %v", inService, tc.wantInService, e.states("zk"))
			}
			if !tc.wantInService {
				if st := e.ec2.get(id).state; st != "terminated" {
					t.Fatalf("abandoned instance is %s in EC2", st)
				}
				// Its replacement waits on the hook in turn.
				if n := len(e.instances("zk")); n != 1 {
					t.Fatalf("replacement: %v", e.states("zk"))
				}
			}
			a = findActivity(t, e.activities("zk"), "Launching a new EC2 instance: "+id)
			if string(a.StatusCode) != tc.wantStatus {
				t.Fatalf("launch activity %s %q, want %s", a.StatusCode, aws.ToString(a.StatusMessage), tc.wantStatus)
			}
			if tc.wantStatus == "Cancelled" && !strings.HasPrefix(aws.ToString(a.StatusMessage), "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token ") {
				t.Fatalf("status message %q", aws.ToString(a.StatusMessage))
			}
		})
	}
}

func TestCompleteByToken(t *testing.T) {
	e := setup(t)
	e.create("zk", 1, "subnet-a", func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.LifecycleHookSpecificationList = []types.LifecycleHookSpecification{{LifecycleHookName: aws.String("boot"), LifecycleTransition: aws.String(asgsim.TransitionLaunching)}}
	})
	e.reconcile(2)
	token := e.svc.LifecycleActionToken("zk", "boot", aws.ToString(e.instances("zk")[0].InstanceId))
	if token == "" {
		t.Fatal("no pending action")
	}
	_, err := e.asg.CompleteLifecycleAction(ctx(t), &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String("zk"),
		LifecycleHookName: aws.String("boot"), LifecycleActionToken: aws.String(token), LifecycleActionResult: aws.String("CONTINUE")})
	must(t, err)
	e.reconcile(1)
	if len(e.inService("zk")) != 1 {
		t.Fatalf("%v", e.states("zk"))
	}
}

func TestTerminateHook(t *testing.T) {
	e := setup(t)
	e.create("zk", 1, "subnet-a", func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.LifecycleHookSpecificationList = []types.LifecycleHookSpecification{{LifecycleHookName: aws.String("drain"), LifecycleTransition: aws.String(asgsim.TransitionTerminating)}}
	})
	e.reconcile(2)
	id := e.inService("zk")[0]
	_, err := e.asg.TerminateInstanceInAutoScalingGroup(ctx(t), &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(false)})
	must(t, err)
	e.reconcile(2)
	if got := e.states("zk")[id]; got != "Terminating:Wait/Healthy" {
		t.Fatalf("want Terminating:Wait: %v", e.states("zk"))
	}
	if st := e.ec2.get(id).state; st != "running" {
		t.Fatalf("terminated before the hook completed: %s", st)
	}
	_, err = e.asg.CompleteLifecycleAction(ctx(t), &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String("zk"),
		LifecycleHookName: aws.String("drain"), InstanceId: aws.String(id), LifecycleActionResult: aws.String("CONTINUE")})
	must(t, err)
	e.reconcile(2)
	if st := e.ec2.get(id).state; st != "terminated" {
		t.Fatalf("after CONTINUE: %s", st)
	}
	if got := e.inService("zk"); len(got) != 1 || got[0] == id {
		t.Fatalf("replacement: %v", e.states("zk"))
	}
}

func TestSuspendedReplaceUnhealthy(t *testing.T) {
	for _, proc := range []string{"ReplaceUnhealthy", "HealthCheck"} {
		t.Run(proc, func(t *testing.T) {
			e := setup(t)
			e.create("zk", 1, "subnet-a")
			e.reconcile(2)
			id := e.inService("zk")[0]
			_, err := e.asg.SuspendProcesses(ctx(t), &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("zk"), ScalingProcesses: []string{proc}})
			must(t, err)
			if proc == "ReplaceUnhealthy" {
				_, err = e.asg.SetInstanceHealth(ctx(t), &autoscaling.SetInstanceHealthInput{InstanceId: aws.String(id), HealthStatus: aws.String("Unhealthy")})
				must(t, err)
			} else {
				e.ec2.kill(id)
			}
			e.reconcile(3)
			want := "InService/Unhealthy"
			if proc == "HealthCheck" {
				want = "InService/Healthy" // not even marked
			}
			if got := e.states("zk"); len(got) != 1 || got[id] != want {
				t.Fatalf("suspended %s: %v, want %s", proc, got, want)
			}
			_, err = e.asg.ResumeProcesses(ctx(t), &autoscaling.ResumeProcessesInput{AutoScalingGroupName: aws.String("zk")})
			must(t, err)
			e.reconcile(3)
			if got := e.inService("zk"); len(got) != 1 || got[0] == id {
				t.Fatalf("resumed: %v", e.states("zk"))
			}
		})
	}
}

func TestAZRebalance(t *testing.T) {
	for _, suspended := range []bool{false, true} {
		t.Run(map[bool]string{false: "active", true: "suspended"}[suspended], func(t *testing.T) {
			e := setup(t)
			e.create("zk", 2, "subnet-a")
			e.reconcile(2)
			old := e.inService("zk")
			if suspended {
				_, err := e.asg.SuspendProcesses(ctx(t), &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("zk"), ScalingProcesses: []string{"AZRebalance"}})
				must(t, err)
			}
			_, err := e.asg.UpdateAutoScalingGroup(ctx(t), &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("zk"), VPCZoneIdentifier: aws.String("subnet-a,subnet-b")})
			must(t, err)
			e.reconcile(1)
			if !suspended {
				// Launch first: three instances, two still in A.
				if n := len(e.instances("zk")); n != 3 {
					t.Fatalf("rebalance launch: %v", e.states("zk"))
				}
			}
			e.reconcile(4)
			want := map[string]int{"us-east-1a": 1, "us-east-1b": 1}
			if suspended {
				want = map[string]int{"us-east-1a": 2}
			}
			if got := e.perAZ("zk"); !maps.Equal(got, want) {
				t.Fatalf("per AZ %v, want %v", got, want)
			}
			terminated := 0
			for _, id := range old {
				if e.ec2.get(id).state == "terminated" {
					terminated++
				}
			}
			if wantT := map[bool]int{false: 1, true: 0}[suspended]; terminated != wantT {
				t.Fatalf("terminated %d of the old instances, want %d", terminated, wantT)
			}
		})
	}
}

func TestScalingActivities(t *testing.T) {
	e := setup(t)
	e.create("zk", 1, "subnet-a")
	e.reconcile(2)
	_, err := e.asg.SetDesiredCapacity(ctx(t), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("zk"), DesiredCapacity: aws.Int32(2)})
	must(t, err)
	e.reconcile(2)
	e.ec2.launchErr = errString("InsufficientInstanceCapacity: We currently do not have sufficient t3.small capacity in the Availability Zone you requested (us-east-1a)")
	_, err = e.asg.SetDesiredCapacity(ctx(t), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("zk"), DesiredCapacity: aws.Int32(3)})
	must(t, err)
	e.reconcile(1)

	acts := e.activities("zk")
	if len(acts) != 3 {
		t.Fatalf("%d activities", len(acts))
	}
	newest, second, first := acts[0], acts[1], acts[2]
	ids := e.inService("zk")
	tests := []struct {
		a                     types.Activity
		description, causeHas string
		status                types.ScalingActivityStatusCode
	}{
		{first, "Launching a new EC2 instance: " + ids[0],
			"a user request created an AutoScalingGroup changing the desired capacity from 0 to 1.  At 2026-01-02T03:04:05Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 0 to 1.",
			types.ScalingActivityStatusCodeSuccessful},
		{second, "Launching a new EC2 instance: " + ids[1],
			"a user request explicitly set group desired capacity changing the desired capacity from 1 to 2.  At 2026-01-02T03:04:05Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 1 to 2.",
			types.ScalingActivityStatusCodeSuccessful},
		{newest, "Launching a new EC2 instance.  Status Reason: InsufficientInstanceCapacity: We currently do not have sufficient t3.small capacity in the Availability Zone you requested (us-east-1a). Launching EC2 instance failed.",
			"increasing the capacity from 2 to 3.", types.ScalingActivityStatusCodeFailed},
	}
	for _, tc := range tests {
		if aws.ToString(tc.a.Description) != tc.description || !strings.Contains(aws.ToString(tc.a.Cause), tc.causeHas) || tc.a.StatusCode != tc.status ||
			aws.ToString(tc.a.AutoScalingGroupName) != "zk" || tc.a.StartTime == nil || aws.ToString(tc.a.ActivityId) == "" {
			t.Errorf("activity %+v\nwant %q / %q / %s", tc.a, tc.description, tc.causeHas, tc.status)
		}
	}
	if d := aws.ToString(first.Details); d != `{"Availability Zone":"us-east-1a","Subnet ID":"subnet-a"}` {
		t.Errorf("details %s", d)
	}
	out, err := e.asg.DescribeScalingActivities(ctx(t), &autoscaling.DescribeScalingActivitiesInput{ActivityIds: []string{aws.ToString(second.ActivityId)}})
	must(t, err)
	if len(out.Activities) != 1 || aws.ToString(out.Activities[0].ActivityId) != aws.ToString(second.ActivityId) {
		t.Fatalf("by id: %+v", out.Activities)
	}
	// The failed launch is retried on the next pass.
	e.ec2.launchErr = nil
	e.reconcile(2)
	if n := len(e.inService("zk")); n != 3 {
		t.Fatalf("after retry: %v", e.states("zk"))
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestRun: Run reconciles on a real ticker until its context ends.
func TestRun(t *testing.T) {
	e := setup(t, func(o *asgsim.Options) { o.Now = nil })
	e.create("zk", 2, "subnet-a,subnet-b")
	c, cancel := context.WithCancel(ctx(t))
	done := make(chan struct{})
	go func() { e.svc.Run(c, 5*time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.inService("zk")) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("not at capacity: %v", e.states("zk"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestDeleteHookCompletesActions: deleting a launching hook abandons the
// actions it holds, so the instance is terminated and replaced — now
// without waiting.
func TestDeleteHookCompletesActions(t *testing.T) {
	e := setup(t)
	e.create("zk", 1, "subnet-a", func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.LifecycleHookSpecificationList = []types.LifecycleHookSpecification{{LifecycleHookName: aws.String("boot"), LifecycleTransition: aws.String(asgsim.TransitionLaunching)}}
	})
	e.reconcile(2)
	id := aws.ToString(e.instances("zk")[0].InstanceId)
	_, err := e.asg.DeleteLifecycleHook(ctx(t), &autoscaling.DeleteLifecycleHookInput{AutoScalingGroupName: aws.String("zk"), LifecycleHookName: aws.String("boot")})
	must(t, err)
	e.reconcile(3)
	if got := e.inService("zk"); len(got) != 1 || got[0] == id {
		t.Fatalf("after deleting the hook: %v", e.states("zk"))
	}
	a := findActivity(t, e.activities("zk"), "Launching a new EC2 instance: "+id)
	if a.StatusCode != types.ScalingActivityStatusCodeCancelled || !strings.HasSuffix(aws.ToString(a.StatusMessage), "was abandoned: Lifecycle Hook Deleted") {
		t.Fatalf("activity %s %q", a.StatusCode, aws.ToString(a.StatusMessage))
	}
}

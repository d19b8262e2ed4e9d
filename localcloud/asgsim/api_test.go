package asgsim_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/zkaas/zkaas/localcloud/asgsim"
)

// TestOperations runs each operation's happy path through the real SDK.
func TestOperations(t *testing.T) {
	e := setup(t)
	c := ctx(t)
	e.create("zk", 2, "subnet-a,subnet-b", func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.HealthCheckType = aws.String("EC2")
		in.HealthCheckGracePeriod = aws.Int32(60)
		in.Tags = []types.Tag{{Key: aws.String("zkaas:ensemble"), Value: aws.String("prod"), PropagateAtLaunch: aws.Bool(true)},
			{Key: aws.String("team"), Value: aws.String("db"), PropagateAtLaunch: aws.Bool(false)}}
		in.LifecycleHookSpecificationList = []types.LifecycleHookSpecification{{
			LifecycleHookName: aws.String("boot"), LifecycleTransition: aws.String(asgsim.TransitionLaunching), HeartbeatTimeout: aws.Int32(300),
		}}
	})

	g := e.group("zk")
	if aws.ToInt32(g.DesiredCapacity) != 2 || aws.ToInt32(g.HealthCheckGracePeriod) != 60 || aws.ToString(g.HealthCheckType) != "EC2" ||
		!slices.Equal(g.AvailabilityZones, []string{"us-east-1a", "us-east-1b"}) || aws.ToString(g.VPCZoneIdentifier) != "subnet-a,subnet-b" ||
		len(g.Tags) != 2 || !strings.HasPrefix(aws.ToString(g.AutoScalingGroupARN), "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:") ||
		aws.ToString(g.LaunchTemplate.Version) != "$Latest" || aws.ToString(g.LaunchTemplate.LaunchTemplateId) != "lt-0123456789abcdef0" ||
		aws.ToString(g.LaunchTemplate.LaunchTemplateName) != "zk" {
		t.Fatalf("describe: %+v", g)
	}

	t.Run("filters by tag", func(t *testing.T) {
		e.create("other", 0, "subnet-a")
		for _, tc := range []struct {
			filter types.Filter
			want   []string
		}{
			{types.Filter{Name: aws.String("tag:zkaas:ensemble"), Values: []string{"prod"}}, []string{"zk"}},
			{types.Filter{Name: aws.String("tag-key"), Values: []string{"team"}}, []string{"zk"}},
			{types.Filter{Name: aws.String("tag-value"), Values: []string{"nope"}}, nil},
		} {
			out, err := e.asg.DescribeAutoScalingGroups(c, &autoscaling.DescribeAutoScalingGroupsInput{Filters: []types.Filter{tc.filter}})
			must(t, err)
			var names []string
			for _, g := range out.AutoScalingGroups {
				names = append(names, aws.ToString(g.AutoScalingGroupName))
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("%s=%v: got %v, want %v", aws.ToString(tc.filter.Name), tc.filter.Values, names, tc.want)
			}
		}
		out, err := e.asg.DescribeAutoScalingGroups(c, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"missing"}})
		must(t, err)
		if len(out.AutoScalingGroups) != 0 {
			t.Errorf("unknown name: %d groups", len(out.AutoScalingGroups))
		}
		out, err = e.asg.DescribeAutoScalingGroups(c, &autoscaling.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(1)})
		must(t, err)
		if len(out.AutoScalingGroups) != 1 || out.NextToken == nil {
			t.Fatalf("page 1: %d groups, token %v", len(out.AutoScalingGroups), out.NextToken)
		}
		out2, err := e.asg.DescribeAutoScalingGroups(c, &autoscaling.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(1), NextToken: out.NextToken})
		must(t, err)
		if len(out2.AutoScalingGroups) != 1 || out2.NextToken != nil || aws.ToString(out2.AutoScalingGroups[0].AutoScalingGroupName) == aws.ToString(out.AutoScalingGroups[0].AutoScalingGroupName) {
			t.Fatalf("page 2: %+v", out2)
		}
	})

	e.reconcile(1)
	ids := []string{}
	for _, in := range e.instances("zk") {
		ids = append(ids, aws.ToString(in.InstanceId))
		if in.LifecycleState != types.LifecycleStatePendingWait || aws.ToString(in.HealthStatus) != "Healthy" ||
			aws.ToString(in.LaunchTemplate.Version) != "2" || aws.ToString(in.InstanceType) != "t3.small" {
			t.Fatalf("instance: %+v", in)
		}
	}

	t.Run("lifecycle hooks", func(t *testing.T) {
		_, err := e.asg.PutLifecycleHook(c, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: aws.String("zk"), LifecycleHookName: aws.String("drain"),
			LifecycleTransition: aws.String(asgsim.TransitionTerminating), DefaultResult: aws.String("CONTINUE")})
		must(t, err)
		out, err := e.asg.DescribeLifecycleHooks(c, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String("zk")})
		must(t, err)
		if len(out.LifecycleHooks) != 2 {
			t.Fatalf("hooks: %+v", out.LifecycleHooks)
		}
		boot, drain := out.LifecycleHooks[0], out.LifecycleHooks[1]
		if aws.ToInt32(boot.HeartbeatTimeout) != 300 || aws.ToInt32(boot.GlobalTimeout) != 30000 || aws.ToString(boot.DefaultResult) != "ABANDON" ||
			aws.ToInt32(drain.HeartbeatTimeout) != 3600 || aws.ToInt32(drain.GlobalTimeout) != 172800 || aws.ToString(drain.DefaultResult) != "CONTINUE" {
			t.Fatalf("hooks: %+v %+v", boot, drain)
		}
		_, err = e.asg.RecordLifecycleActionHeartbeat(c, &autoscaling.RecordLifecycleActionHeartbeatInput{AutoScalingGroupName: aws.String("zk"),
			LifecycleHookName: aws.String("boot"), InstanceId: aws.String(ids[0])})
		must(t, err)
		for _, id := range ids {
			_, err = e.asg.CompleteLifecycleAction(c, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String("zk"),
				LifecycleHookName: aws.String("boot"), InstanceId: aws.String(id), LifecycleActionResult: aws.String("CONTINUE")})
			must(t, err)
		}
		_, err = e.asg.DeleteLifecycleHook(c, &autoscaling.DeleteLifecycleHookInput{AutoScalingGroupName: aws.String("zk"), LifecycleHookName: aws.String("drain")})
		must(t, err)
	})
	e.reconcile(1)
	if got := e.inService("zk"); len(got) != 2 {
		t.Fatalf("in service: %v (%v)", got, e.states("zk"))
	}

	t.Run("instances", func(t *testing.T) {
		out, err := e.asg.DescribeAutoScalingInstances(c, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{ids[0], "i-00000000000000999"}})
		must(t, err)
		if len(out.AutoScalingInstances) != 1 {
			t.Fatalf("instances: %+v", out.AutoScalingInstances)
		}
		in := out.AutoScalingInstances[0]
		if aws.ToString(in.AutoScalingGroupName) != "zk" || aws.ToString(in.HealthStatus) != "HEALTHY" || aws.ToString(in.LifecycleState) != "InService" {
			t.Fatalf("instance: %+v", in)
		}
	})

	t.Run("processes", func(t *testing.T) {
		_, err := e.asg.SuspendProcesses(c, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("zk"), ScalingProcesses: []string{"AZRebalance", "ReplaceUnhealthy"}})
		must(t, err)
		g := e.group("zk")
		if len(g.SuspendedProcesses) != 2 || aws.ToString(g.SuspendedProcesses[0].ProcessName) != "AZRebalance" ||
			!strings.HasPrefix(aws.ToString(g.SuspendedProcesses[0].SuspensionReason), "User suspended at 2026-") {
			t.Fatalf("suspended: %+v", g.SuspendedProcesses)
		}
		_, err = e.asg.ResumeProcesses(c, &autoscaling.ResumeProcessesInput{AutoScalingGroupName: aws.String("zk"), ScalingProcesses: []string{"ReplaceUnhealthy"}})
		must(t, err)
		if g := e.group("zk"); len(g.SuspendedProcesses) != 1 {
			t.Fatalf("after resume: %+v", g.SuspendedProcesses)
		}
		_, err = e.asg.SuspendProcesses(c, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("other")})
		must(t, err)
		if g := e.group("other"); len(g.SuspendedProcesses) != 9 {
			t.Fatalf("suspend all: %d", len(g.SuspendedProcesses))
		}
	})

	t.Run("capacity", func(t *testing.T) {
		_, err := e.asg.SetDesiredCapacity(c, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("zk"), DesiredCapacity: aws.Int32(3)})
		must(t, err)
		_, err = e.asg.UpdateAutoScalingGroup(c, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("zk"), MinSize: aws.Int32(1), MaxSize: aws.Int32(4), HealthCheckGracePeriod: aws.Int32(0)})
		must(t, err)
		g := e.group("zk")
		if aws.ToInt32(g.DesiredCapacity) != 3 || aws.ToInt32(g.MinSize) != 1 || aws.ToInt32(g.MaxSize) != 4 {
			t.Fatalf("group: min %d max %d desired %d", aws.ToInt32(g.MinSize), aws.ToInt32(g.MaxSize), aws.ToInt32(g.DesiredCapacity))
		}
		_, err = e.asg.UpdateAutoScalingGroup(c, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("zk"), MaxSize: aws.Int32(2)})
		must(t, err)
		if g := e.group("zk"); aws.ToInt32(g.DesiredCapacity) != 2 {
			t.Fatalf("MaxSize below desired: desired %d, want 2", aws.ToInt32(g.DesiredCapacity))
		}
	})

	t.Run("health and terminate", func(t *testing.T) {
		_, err := e.asg.SetInstanceHealth(c, &autoscaling.SetInstanceHealthInput{InstanceId: aws.String(ids[0]), HealthStatus: aws.String("Unhealthy")})
		must(t, err)
		if got := e.states("zk")[ids[0]]; got != "InService/Unhealthy" {
			t.Fatalf("after SetInstanceHealth: %s", got)
		}
		out, err := e.asg.TerminateInstanceInAutoScalingGroup(c, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(ids[1]), ShouldDecrementDesiredCapacity: aws.Bool(true)})
		must(t, err)
		if a := out.Activity; a == nil || aws.ToString(a.Description) != "Terminating EC2 instance: "+ids[1] || a.StatusCode != types.ScalingActivityStatusCodeInProgress {
			t.Fatalf("activity: %+v", out.Activity)
		}
		if g := e.group("zk"); aws.ToInt32(g.DesiredCapacity) != 1 {
			t.Fatalf("desired %d after decrement", aws.ToInt32(g.DesiredCapacity))
		}
	})

	t.Run("delete", func(t *testing.T) {
		_, err := e.asg.DeleteAutoScalingGroup(c, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("other")})
		must(t, err)
		_, err = e.asg.DeleteAutoScalingGroup(c, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("zk"), ForceDelete: aws.Bool(true)})
		must(t, err)
		if g := e.group("zk"); aws.ToString(g.Status) != "Delete in progress" {
			t.Fatalf("status %q", aws.ToString(g.Status))
		}
		e.reconcile(2)
		out, err := e.asg.DescribeAutoScalingGroups(c, &autoscaling.DescribeAutoScalingGroupsInput{})
		must(t, err)
		if len(out.AutoScalingGroups) != 0 {
			t.Fatalf("groups left: %d", len(out.AutoScalingGroups))
		}
		acts, err := e.asg.DescribeScalingActivities(c, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("zk"), IncludeDeletedGroups: aws.Bool(true)})
		must(t, err)
		if len(acts.Activities) == 0 || aws.ToString(acts.Activities[0].AutoScalingGroupState) != "Deleted" {
			t.Fatalf("deleted group's activities: %+v", acts.Activities)
		}
	})
}

// TestErrors checks each operation's AWS errors: code, message, HTTP 400.
func TestErrors(t *testing.T) {
	e := setup(t, func(o *asgsim.Options) { o.Limits = asgsim.Limits{Groups: 2, HooksPerGroup: 1} })
	c := ctx(t)
	e.create("zk", 1, "subnet-a", func(in *autoscaling.CreateAutoScalingGroupInput) { in.MinSize = aws.Int32(1) })
	e.reconcile(2)
	id := e.inService("zk")[0]
	lt := &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String("lt-0123456789abcdef0")}
	create := func(name string, min, max, want int32, subnets string, lt *types.LaunchTemplateSpecification) error {
		_, err := e.asg.CreateAutoScalingGroup(c, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name),
			LaunchTemplate: lt, MinSize: aws.Int32(min), MaxSize: aws.Int32(max), DesiredCapacity: aws.Int32(want), VPCZoneIdentifier: aws.String(subnets)})
		return err
	}
	zk := aws.String("zk")
	tests := []struct {
		name, code, msg string
		call            func() error
	}{
		{"create exists", "AlreadyExists", "AutoScalingGroup by this name already exists - A group with the name zk already exists",
			func() error { return create("zk", 0, 1, 0, "subnet-a", lt) }},
		{"create desired above max", "ValidationError", "Desired capacity:5 must be between the specified min size:0 and max size:3",
			func() error { return create("x", 0, 3, 5, "subnet-a", lt) }},
		{"create min above max", "ValidationError", "Max bound, 1, must be greater than or equal to min bound, 2",
			func() error { return create("x", 2, 1, 2, "subnet-a", lt) }},
		{"create unknown subnet", "ValidationError", "The subnet ID 'subnet-zz' does not exist",
			func() error { return create("x", 0, 1, 0, "subnet-zz", lt) }},
		{"create unknown template", "ValidationError", "You must use a valid fully-formed launch template. The specified launch template, with template name nope, does not exist.",
			func() error {
				return create("x", 0, 1, 0, "subnet-a", &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("nope")})
			}},
		{"create template id and name", "ValidationError", "Valid requests must contain either launchTemplateId or LaunchTemplateName",
			func() error {
				return create("x", 0, 1, 0, "subnet-a", &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String("lt-1"), LaunchTemplateName: aws.String("zk")})
			}},
		{"create no template", "ValidationError", "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
			func() error { return create("x", 0, 1, 0, "subnet-a", nil) }},
		{"create reserved tag", "ValidationError", "Tag keys starting with 'aws:' are reserved for internal use",
			func() error {
				_, err := e.asg.CreateAutoScalingGroup(c, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("x"), LaunchTemplate: lt,
					MinSize: aws.Int32(0), MaxSize: aws.Int32(1), VPCZoneIdentifier: aws.String("subnet-a"), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("1")}}})
				return err
			}},
		{"create limit", "LimitExceeded", "",
			func() error {
				if err := create("second", 0, 1, 0, "subnet-a", lt); err != nil {
					return err
				}
				return create("third", 0, 1, 0, "subnet-a", lt)
			}},
		{"update unknown", "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup 'nope' not found",
			func() error {
				_, err := e.asg.UpdateAutoScalingGroup(c, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("nope"), MaxSize: aws.Int32(1)})
				return err
			}},
		{"update desired out of bounds", "ValidationError", "Desired capacity:11 must be between the specified min size:1 and max size:10",
			func() error {
				_, err := e.asg.UpdateAutoScalingGroup(c, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: zk, DesiredCapacity: aws.Int32(11)})
				return err
			}},
		{"delete unknown", "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup 'nope' not found",
			func() error {
				_, err := e.asg.DeleteAutoScalingGroup(c, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("nope")})
				return err
			}},
		{"delete with instances", "ResourceInUse", "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.",
			func() error {
				_, err := e.asg.DeleteAutoScalingGroup(c, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: zk})
				return err
			}},
		{"set desired above max", "ValidationError", "New SetDesiredCapacity value 11 is above max value 10 for the AutoScalingGroup.",
			func() error {
				_, err := e.asg.SetDesiredCapacity(c, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: zk, DesiredCapacity: aws.Int32(11)})
				return err
			}},
		{"set desired below min", "ValidationError", "New SetDesiredCapacity value 0 is below min value 1 for the AutoScalingGroup.",
			func() error {
				_, err := e.asg.SetDesiredCapacity(c, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: zk, DesiredCapacity: aws.Int32(0)})
				return err
			}},
		{"set desired honor cooldown", "ScalingActivityInProgress", "",
			func() error {
				_, err := e.asg.SetDesiredCapacity(c, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: zk, DesiredCapacity: aws.Int32(2), HonorCooldown: aws.Bool(true)})
				return err
			}},
		{"terminate unknown", "ValidationError", "Instance Id not found - No managed instance found for instance ID: i-0000000000000dead",
			func() error {
				_, err := e.asg.TerminateInstanceInAutoScalingGroup(c, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String("i-0000000000000dead"), ShouldDecrementDesiredCapacity: aws.Bool(false)})
				return err
			}},
		{"terminate below min", "ValidationError", "Currently, desiredSize equals minSize (1). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.",
			func() error {
				_, err := e.asg.TerminateInstanceInAutoScalingGroup(c, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(true)})
				return err
			}},
		{"set health unknown", "ValidationError", "Instance Id not found - No managed instance found for instance ID: i-0000000000000dead",
			func() error {
				_, err := e.asg.SetInstanceHealth(c, &autoscaling.SetInstanceHealthInput{InstanceId: aws.String("i-0000000000000dead"), HealthStatus: aws.String("Unhealthy")})
				return err
			}},
		{"set health bad status", "ValidationError", "Valid health status values are Healthy and Unhealthy",
			func() error {
				_, err := e.asg.SetInstanceHealth(c, &autoscaling.SetInstanceHealthInput{InstanceId: aws.String(id), HealthStatus: aws.String("Sick")})
				return err
			}},
		{"suspend bad process", "ValidationError", "Process names are invalid: Reboot",
			func() error {
				_, err := e.asg.SuspendProcesses(c, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: zk, ScalingProcesses: []string{"Reboot"}})
				return err
			}},
		{"resume unknown group", "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup 'nope' not found",
			func() error {
				_, err := e.asg.ResumeProcesses(c, &autoscaling.ResumeProcessesInput{AutoScalingGroupName: aws.String("nope")})
				return err
			}},
		{"hook heartbeat too short", "ValidationError", "1 validation error detected: Value '10' at 'heartbeatTimeout' failed to satisfy constraint: Member must have value greater than or equal to 30",
			func() error {
				_, err := e.asg.PutLifecycleHook(c, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: zk, LifecycleHookName: aws.String("h"),
					LifecycleTransition: aws.String(asgsim.TransitionLaunching), HeartbeatTimeout: aws.Int32(10)})
				return err
			}},
		{"hook heartbeat too long", "ValidationError", "1 validation error detected: Value '7201' at 'heartbeatTimeout' failed to satisfy constraint: Member must have value less than or equal to 7200",
			func() error {
				_, err := e.asg.PutLifecycleHook(c, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: zk, LifecycleHookName: aws.String("h"),
					LifecycleTransition: aws.String(asgsim.TransitionLaunching), HeartbeatTimeout: aws.Int32(7201)})
				return err
			}},
		{"hook bad transition", "ValidationError", "Invalid Lifecycle Transition: autoscaling:EC2_INSTANCE_REBOOTING",
			func() error {
				_, err := e.asg.PutLifecycleHook(c, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: zk, LifecycleHookName: aws.String("h"),
					LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_REBOOTING")})
				return err
			}},
		{"hook bad default result", "ValidationError", "Valid values for DefaultResult are CONTINUE and ABANDON. Given value: RETRY",
			func() error {
				_, err := e.asg.PutLifecycleHook(c, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: zk, LifecycleHookName: aws.String("h"),
					LifecycleTransition: aws.String(asgsim.TransitionLaunching), DefaultResult: aws.String("RETRY")})
				return err
			}},
		{"hook limit", "LimitExceeded", "Cannot have more than 1 lifecycle hooks per Auto Scaling group.",
			func() error {
				for _, name := range []string{"h1", "h2"} {
					if _, err := e.asg.PutLifecycleHook(c, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: zk, LifecycleHookName: aws.String(name),
						LifecycleTransition: aws.String(asgsim.TransitionTerminating)}); err != nil {
						return err
					}
				}
				return nil
			}},
		{"delete unknown hook", "ValidationError", "No Lifecycle Hook found with name nope for group zk",
			func() error {
				_, err := e.asg.DeleteLifecycleHook(c, &autoscaling.DeleteLifecycleHookInput{AutoScalingGroupName: zk, LifecycleHookName: aws.String("nope")})
				return err
			}},
		{"complete with nothing pending", "ValidationError", "No active Lifecycle Action found with instance ID " + id,
			func() error {
				_, err := e.asg.CompleteLifecycleAction(c, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: zk, LifecycleHookName: aws.String("h1"),
					InstanceId: aws.String(id), LifecycleActionResult: aws.String("CONTINUE")})
				return err
			}},
		{"complete unknown token", "ValidationError", "No active Lifecycle Action found with token 6c2b8d3e-0000-4000-8000-000000000000",
			func() error {
				_, err := e.asg.CompleteLifecycleAction(c, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: zk, LifecycleHookName: aws.String("h1"),
					LifecycleActionToken: aws.String("6c2b8d3e-0000-4000-8000-000000000000"), LifecycleActionResult: aws.String("CONTINUE")})
				return err
			}},
		{"complete bad result", "ValidationError", "Valid values for LifecycleActionResult are CONTINUE and ABANDON. Given value: MAYBE",
			func() error {
				_, err := e.asg.CompleteLifecycleAction(c, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: zk, LifecycleHookName: aws.String("h1"),
					InstanceId: aws.String(id), LifecycleActionResult: aws.String("MAYBE")})
				return err
			}},
		{"complete neither id nor token", "ValidationError", "Either InstanceId or LifecycleActionToken must be specified.",
			func() error {
				_, err := e.asg.CompleteLifecycleAction(c, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: zk, LifecycleHookName: aws.String("h1"),
					LifecycleActionResult: aws.String("CONTINUE")})
				return err
			}},
		{"heartbeat with nothing pending", "ValidationError", "No active Lifecycle Action found with instance ID " + id,
			func() error {
				_, err := e.asg.RecordLifecycleActionHeartbeat(c, &autoscaling.RecordLifecycleActionHeartbeatInput{AutoScalingGroupName: zk, LifecycleHookName: aws.String("h1"),
					InstanceId: aws.String(id)})
				return err
			}},
		{"describe hooks unknown group", "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup 'nope' not found",
			func() error {
				_, err := e.asg.DescribeLifecycleHooks(c, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String("nope")})
				return err
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantError(t, tc.call(), tc.code, tc.msg) })
	}

}

// TestDeleteWhileScaling: a launch held by its hook is an activity in
// progress, which a delete without ForceDelete refuses.
func TestDeleteWhileScaling(t *testing.T) {
	e := setup(t)
	e.create("busy", 1, "subnet-a", func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.LifecycleHookSpecificationList = []types.LifecycleHookSpecification{{LifecycleHookName: aws.String("boot"), LifecycleTransition: aws.String(asgsim.TransitionLaunching)}}
	})
	e.reconcile(1)
	_, err := e.asg.DeleteAutoScalingGroup(ctx(t), &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("busy")})
	wantError(t, err, "ScalingActivityInProgress", "You cannot delete an AutoScalingGroup while there are scaling activities in progress for that group.")
}

// TestWireFormat checks the awsquery shapes a raw request gets back.
func TestWireFormat(t *testing.T) {
	e := setup(t)
	srv := httptest.NewServer(e.svc)
	t.Cleanup(srv.Close)
	post := func(form url.Values) (int, string) {
		resp, err := http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	e.create("zk", 0, "subnet-a")
	status, body := post(url.Values{"Action": {"DescribeAutoScalingGroups"}, "Version": {"2011-01-01"}})
	for _, want := range []string{
		`<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups><member><AutoScalingGroupName>zk</AutoScalingGroupName>`,
		`</DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>`,
	} {
		if status != 200 || !strings.Contains(body, want) {
			t.Fatalf("HTTP %d, want %s in\n%s", status, want, body)
		}
	}
	status, body = post(url.Values{"Action": {"SetDesiredCapacity"}, "Version": {"2011-01-01"}, "AutoScalingGroupName": {"zk"}, "DesiredCapacity": {"0"}})
	if status != 200 || !strings.Contains(body, `<SetDesiredCapacityResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><ResponseMetadata><RequestId>`) {
		t.Fatalf("HTTP %d: %s", status, body)
	}
	status, body = post(url.Values{"Action": {"DeleteAutoScalingGroup"}, "Version": {"2011-01-01"}})
	if want := `<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>1 validation error detected: Value null at &#39;autoScalingGroupName&#39; failed to satisfy constraint: Member must not be null</Message></Error><RequestId>`; status != 400 || !strings.Contains(body, want) {
		t.Fatalf("HTTP %d, want %s in\n%s", status, want, body)
	}
	status, body = post(url.Values{"Action": {"AttachInstances"}})
	if status != 400 || !strings.Contains(body, "<Code>InvalidAction</Code>") {
		t.Fatalf("HTTP %d: %s", status, body)
	}
}

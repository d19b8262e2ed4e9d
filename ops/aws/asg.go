package aws

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/inventory"
	"github.com/zkaas/zkaas/ops/plan"
)

// ASGAPI is the part of *autoscaling.Client the operator uses.
type ASGAPI interface {
	DescribeAutoScalingGroups(context.Context, *autoscaling.DescribeAutoScalingGroupsInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
	CreateAutoScalingGroup(context.Context, *autoscaling.CreateAutoScalingGroupInput, ...func(*autoscaling.Options)) (*autoscaling.CreateAutoScalingGroupOutput, error)
	UpdateAutoScalingGroup(context.Context, *autoscaling.UpdateAutoScalingGroupInput, ...func(*autoscaling.Options)) (*autoscaling.UpdateAutoScalingGroupOutput, error)
	DeleteAutoScalingGroup(context.Context, *autoscaling.DeleteAutoScalingGroupInput, ...func(*autoscaling.Options)) (*autoscaling.DeleteAutoScalingGroupOutput, error)
	SuspendProcesses(context.Context, *autoscaling.SuspendProcessesInput, ...func(*autoscaling.Options)) (*autoscaling.SuspendProcessesOutput, error)
	DescribeLifecycleHooks(context.Context, *autoscaling.DescribeLifecycleHooksInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeLifecycleHooksOutput, error)
	PutLifecycleHook(context.Context, *autoscaling.PutLifecycleHookInput, ...func(*autoscaling.Options)) (*autoscaling.PutLifecycleHookOutput, error)
	TerminateInstanceInAutoScalingGroup(context.Context, *autoscaling.TerminateInstanceInAutoScalingGroupInput, ...func(*autoscaling.Options)) (*autoscaling.TerminateInstanceInAutoScalingGroupOutput, error)
	DescribeAutoScalingInstances(context.Context, *autoscaling.DescribeAutoScalingInstancesInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error)
}

const launching = "autoscaling:EC2_INSTANCE_LAUNCHING"

// Groups lists the groups tagged with the ensemble, with their launch
// hooks and instances.
func (c *Cloud) Groups(ctx context.Context, ens string) ([]inventory.Group, error) {
	var out []inventory.Group
	p := autoscaling.NewDescribeAutoScalingGroupsPaginator(c.ASG, &autoscaling.DescribeAutoScalingGroupsInput{
		Filters: []types.Filter{{Name: sdk.String("tag:" + c.TagEnsemble), Values: []string{ens}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe auto scaling groups: %w", err)
		}
		for _, g := range page.AutoScalingGroups {
			name := sdk.ToString(g.AutoScalingGroupName)
			tags := map[string]string{}
			for _, t := range g.Tags {
				tags[sdk.ToString(t.Key)] = sdk.ToString(t.Value)
			}
			spec := deploy.GroupSpec{GroupName: name, Size: int(sdk.ToInt32(g.DesiredCapacity)),
				Grace: time.Duration(sdk.ToInt32(g.HealthCheckGracePeriod)) * time.Second}
			if len(g.AvailabilityZones) == 1 {
				spec.AZ = g.AvailabilityZones[0]
			}
			spec.Subnet = sdk.ToString(g.VPCZoneIdentifier)
			if lt := g.LaunchTemplate; lt != nil {
				spec.Template = sdk.ToString(lt.LaunchTemplateName)
			}
			for _, sp := range g.SuspendedProcesses {
				spec.Suspended = append(spec.Suspended, sdk.ToString(sp.ProcessName))
			}
			slices.Sort(spec.Suspended)
			if n, err := strconv.Atoi(tags[c.TagNode]); err == nil {
				spec.Node = n
			}
			hooks, err := c.ASG.DescribeLifecycleHooks(ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: sdk.String(name)})
			if err != nil {
				return nil, fmt.Errorf("describe lifecycle hooks of %s: %w", name, err)
			}
			for _, h := range hooks.LifecycleHooks {
				if sdk.ToString(h.LifecycleHookName) == deploy.HookName && sdk.ToString(h.LifecycleTransition) == launching {
					spec.Hook = deploy.Hook{Name: deploy.HookName, Heartbeat: time.Duration(sdk.ToInt32(h.HeartbeatTimeout)) * time.Second, DefaultResult: sdk.ToString(h.DefaultResult)}
				}
			}
			grp := inventory.Group{Name: name, Spec: spec, Tags: tags, HealthCheckType: sdk.ToString(g.HealthCheckType)}
			for _, i := range g.Instances {
				gi := inventory.GroupInstance{ID: sdk.ToString(i.InstanceId), AZ: sdk.ToString(i.AvailabilityZone),
					Lifecycle: string(i.LifecycleState), Health: sdk.ToString(i.HealthStatus)}
				if lt := i.LaunchTemplate; lt != nil {
					gi.Template, gi.Version = sdk.ToString(lt.LaunchTemplateName), sdk.ToString(lt.Version)
				}
				grp.Instances = append(grp.Instances, gi)
			}
			out = append(out, grp)
		}
	}
	return out, nil
}

func (c *Cloud) listGroups(ctx context.Context, d *deploy.Desired) ([]plan.Existing, error) {
	groups, err := c.Groups(ctx, d.Ensemble)
	if err != nil {
		return nil, err
	}
	var out []plan.Existing
	for _, g := range groups {
		out = append(out, plan.Existing{Kind: deploy.KindGroup, Name: g.Name, ID: g.Name, Spec: g.Spec, Tags: g.Tags, Managed: managed(g.Tags)})
	}
	return out, nil
}

func seconds(d time.Duration) *int32 { return sdk.Int32(int32(d / time.Second)) }

// createGroup makes the group with its launch hook in the same call, so no
// instance launches unheld, then suspends AZRebalance. Its tags (but not
// zkaas:resource) propagate to the instances; a per-node group also tags
// its node.
func (c *Cloud) createGroup(ctx context.Context, s deploy.GroupSpec, tags map[string]string) (string, error) {
	if s.Node > 0 {
		tags[c.TagNode] = strconv.Itoa(s.Node)
	}
	var ts []types.Tag
	for _, k := range sortedKeys(tags) {
		ts = append(ts, types.Tag{Key: sdk.String(k), Value: sdk.String(tags[k]), PropagateAtLaunch: sdk.Bool(k != deploy.TagResource),
			ResourceId: sdk.String(s.GroupName), ResourceType: sdk.String("auto-scaling-group")})
	}
	_, err := c.ASG.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: sdk.String(s.GroupName),
		LaunchTemplate:       &types.LaunchTemplateSpecification{LaunchTemplateName: sdk.String(s.Template), Version: sdk.String("$Default")},
		MinSize:              sdk.Int32(int32(s.Size)), MaxSize: sdk.Int32(int32(s.Size)), DesiredCapacity: sdk.Int32(int32(s.Size)),
		VPCZoneIdentifier:      sdk.String(s.Subnet),
		HealthCheckType:        sdk.String("EC2"),
		HealthCheckGracePeriod: seconds(s.Grace),
		LifecycleHookSpecificationList: []types.LifecycleHookSpecification{{
			LifecycleHookName: sdk.String(s.Hook.Name), LifecycleTransition: sdk.String(launching),
			HeartbeatTimeout: seconds(s.Hook.Heartbeat), DefaultResult: sdk.String(s.Hook.DefaultResult),
		}},
		Tags: ts,
	})
	if err != nil && code(err) != "AlreadyExists" {
		return "", fmt.Errorf("create auto scaling group %s: %w", s.GroupName, err)
	}
	return s.GroupName, c.suspend(ctx, s)
}

func (c *Cloud) suspend(ctx context.Context, s deploy.GroupSpec) error {
	if len(s.Suspended) == 0 {
		return nil
	}
	if _, err := c.ASG.SuspendProcesses(ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: sdk.String(s.GroupName), ScalingProcesses: s.Suspended}); err != nil {
		return fmt.Errorf("suspend %v on %s: %w", s.Suspended, s.GroupName, err)
	}
	return nil
}

func (c *Cloud) updateGroup(ctx context.Context, s deploy.GroupSpec, ex plan.Existing) error {
	_, err := c.ASG.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: sdk.String(s.GroupName),
		LaunchTemplate:       &types.LaunchTemplateSpecification{LaunchTemplateName: sdk.String(s.Template), Version: sdk.String("$Default")},
		MinSize:              sdk.Int32(int32(s.Size)), MaxSize: sdk.Int32(int32(s.Size)), DesiredCapacity: sdk.Int32(int32(s.Size)),
		VPCZoneIdentifier: sdk.String(s.Subnet), HealthCheckGracePeriod: seconds(s.Grace),
	})
	if err != nil {
		return fmt.Errorf("update auto scaling group %s: %w", s.GroupName, err)
	}
	got, _ := ex.Spec.(deploy.GroupSpec)
	if got.Hook != s.Hook {
		_, err := c.ASG.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: sdk.String(s.GroupName),
			LifecycleHookName: sdk.String(s.Hook.Name), LifecycleTransition: sdk.String(launching),
			HeartbeatTimeout: seconds(s.Hook.Heartbeat), DefaultResult: sdk.String(s.Hook.DefaultResult)})
		if err != nil {
			return fmt.Errorf("put lifecycle hook %s on %s: %w", s.Hook.Name, s.GroupName, err)
		}
	}
	return c.suspend(ctx, s)
}

// deleteGroup force-deletes the group (its instances terminate) and waits
// until it is gone, so the template, profile and groups after it are free.
func (c *Cloud) deleteGroup(ctx context.Context, ex plan.Existing) error {
	_, err := c.ASG.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: sdk.String(ex.ID), ForceDelete: sdk.Bool(true)})
	if err != nil && code(err) != "ValidationError" && code(err) != "ScalingActivityInProgress" {
		return fmt.Errorf("delete auto scaling group %s: %w", ex.ID, err)
	}
	return c.waitFor(ctx, "delete auto scaling group "+ex.ID, func() (bool, error) {
		out, err := c.ASG.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{ex.ID}})
		if err != nil {
			return false, fmt.Errorf("describe auto scaling group %s: %w", ex.ID, err)
		}
		return len(out.AutoScalingGroups) == 0, nil
	})
}

// Package health tells the instance's Auto Scaling group the truth about a
// boot: a launch that cannot become its node is abandoned (or the instance
// marked Unhealthy), and a launch completes only once ZooKeeper serves. A
// group's default health check is EC2's status check, which an instance
// whose firstboot failed passes forever; only this makes the group replace
// it.
//
// The instance finds its group with one DescribeAutoScalingInstances of
// itself — the group name and its lifecycle state (Pending:Wait while a
// launch hook holds it) — and the launch hook to complete with
// DescribeLifecycleHooks: the launching hooks whose name starts with
// HookPrefix ("zkaas", as `zkaas up` names its hook), or the group's only
// launching hook. An instance outside any group gets ErrNotInGroup, and
// boot just exits non-zero as it always did.
//
// The API is the SDK's own signatures behind the domain methods Find, Fail
// and Ready, as package claim does for EC2.
package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/smithy-go"
)

// API is the part of *autoscaling.Client used here.
type API interface {
	DescribeAutoScalingInstances(context.Context, *autoscaling.DescribeAutoScalingInstancesInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error)
	DescribeLifecycleHooks(context.Context, *autoscaling.DescribeLifecycleHooksInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeLifecycleHooksOutput, error)
	CompleteLifecycleAction(context.Context, *autoscaling.CompleteLifecycleActionInput, ...func(*autoscaling.Options)) (*autoscaling.CompleteLifecycleActionOutput, error)
	RecordLifecycleActionHeartbeat(context.Context, *autoscaling.RecordLifecycleActionHeartbeatInput, ...func(*autoscaling.Options)) (*autoscaling.RecordLifecycleActionHeartbeatOutput, error)
	SetInstanceHealth(context.Context, *autoscaling.SetInstanceHealthInput, ...func(*autoscaling.Options)) (*autoscaling.SetInstanceHealthOutput, error)
}

// ErrNotInGroup: the instance belongs to no Auto Scaling group, so there
// is no one to tell.
var ErrNotInGroup = errors.New("not in an auto scaling group")

// Lifecycle states and results as Auto Scaling names them
// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html).
const (
	StatePendingWait = "Pending:Wait"
	StateInService   = "InService"
	launching        = "autoscaling:EC2_INSTANCE_LAUNCHING"
	resultContinue   = "CONTINUE"
	resultAbandon    = "ABANDON"
)

// Group is this instance as a member of its Auto Scaling group.
type Group struct {
	API        API
	InstanceID string
	Log        *slog.Logger
	// HookPrefix picks the launch hooks that are zkaas's to complete;
	// default "zkaas".
	HookPrefix string
	// Poll paces Ready's serving probe; default 2 s. Tests shorten it.
	Poll time.Duration
	Rand *rand.Rand
}

// Membership is what Find learned.
type Membership struct {
	Group string
	State string // lifecycle state, e.g. Pending:Wait
	Hooks []Hook // launch hooks this instance completes
}

// Hook is a launching lifecycle hook.
type Hook struct {
	Name      string
	Heartbeat time.Duration // the hook's HeartbeatTimeout
}

// Find returns the instance's group, its lifecycle state and the launch
// hooks to complete.
func (g *Group) Find(ctx context.Context) (Membership, error) {
	out, err := g.API.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{g.InstanceID}})
	if err != nil {
		return Membership{}, fmt.Errorf("describe auto scaling instance %s: %w", g.InstanceID, err)
	}
	var m Membership
	for _, i := range out.AutoScalingInstances {
		if aws.ToString(i.InstanceId) == g.InstanceID {
			m.Group, m.State = aws.ToString(i.AutoScalingGroupName), aws.ToString(i.LifecycleState)
		}
	}
	if m.Group == "" {
		return Membership{}, fmt.Errorf("instance %s: %w", g.InstanceID, ErrNotInGroup)
	}
	hooks, err := g.API.DescribeLifecycleHooks(ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String(m.Group)})
	if err != nil {
		return m, fmt.Errorf("describe lifecycle hooks of group %s: %w", m.Group, err)
	}
	var all, ours []Hook
	for _, h := range hooks.LifecycleHooks {
		if aws.ToString(h.LifecycleTransition) != launching {
			continue
		}
		hk := Hook{Name: aws.ToString(h.LifecycleHookName), Heartbeat: time.Duration(aws.ToInt32(h.HeartbeatTimeout)) * time.Second}
		all = append(all, hk)
		if strings.HasPrefix(hk.Name, cmp.Or(g.HookPrefix, "zkaas")) {
			ours = append(ours, hk)
		}
	}
	switch {
	case len(ours) > 0:
		m.Hooks = ours
	case len(all) == 1:
		m.Hooks = all
	case len(all) > 1:
		g.log().Warn("several launch hooks, none named for zkaas: completing none", "step", "health", "group", m.Group, "hooks", len(all))
	}
	return m, nil
}

// Fail tells the group this launch cannot become a node: each pending
// launch action is completed with ABANDON (the group terminates the
// instance and launches another); an instance past its launch is marked
// Unhealthy without waiting for the grace period, which exists for
// instances still booting, not for one that knows it failed. It returns
// what it did, for the journal.
func (g *Group) Fail(ctx context.Context, reason string) (string, error) {
	m, err := g.Find(ctx)
	if err != nil {
		return "", err
	}
	if m.State == StatePendingWait && len(m.Hooks) > 0 {
		done, err := g.complete(ctx, m, resultAbandon)
		if err == nil && done > 0 {
			return fmt.Sprintf("abandoned the launch of %s in group %s (%s)", g.InstanceID, m.Group, reason), nil
		}
		if err != nil {
			g.log().Warn("abandon failed, marking unhealthy instead", "step", "health", "group", m.Group, "err", err)
		}
	}
	_, err = g.API.SetInstanceHealth(ctx, &autoscaling.SetInstanceHealthInput{
		InstanceId: aws.String(g.InstanceID), HealthStatus: aws.String("Unhealthy"), ShouldRespectGracePeriod: aws.Bool(false),
	})
	if err != nil {
		return "", fmt.Errorf("set instance %s unhealthy in group %s: %w", g.InstanceID, m.Group, err)
	}
	return fmt.Sprintf("marked %s Unhealthy in group %s (%s)", g.InstanceID, m.Group, reason), nil
}

// Hold waits d before a failure is reported, keeping any pending launch
// action alive with heartbeats meanwhile: a refusal that every
// replacement would hit too (a bad config, a volume that may hold another
// node's data) is reported only after the hold, which bounds the churn to
// one instance per hold and leaves the instance up to be looked at.
func (g *Group) Hold(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	m, err := g.Find(ctx)
	if err != nil {
		return err
	}
	end := time.Now().Add(d)
	beat := heartbeatEvery(m.Hooks)
	pending := m.State == StatePendingWait && len(m.Hooks) > 0
	g.log().Info("holding before reporting the failure to the group (health.refused_hold): every replacement would fail the same way; the reason is the failed unit's last journal line",
		"step", "health", "group", m.Group, "instance", g.InstanceID, "hold", d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		if err := sleep(ctx, min(left, beat)); err != nil {
			return err
		}
		if pending && time.Until(end) > 0 {
			g.heartbeat(ctx, m)
		}
	}
}

// Ready waits, within bound, until serving says ZooKeeper serves as
// leader or follower, recording a heartbeat on each pending launch action
// so that its timeout does not pass while ZooKeeper syncs, then completes
// them with CONTINUE. An instance already in service (a reboot) has
// nothing to complete. If the bound passes first, the launch is failed
// (see Fail) and the error says what serving last reported.
func (g *Group) Ready(ctx context.Context, serving func(context.Context) (bool, string, error), bound time.Duration) (string, error) {
	m, err := g.Find(ctx)
	if err != nil {
		return "", err
	}
	pending := m.State == StatePendingWait && len(m.Hooks) > 0
	deadline := time.Now().Add(bound)
	beat := heartbeatEvery(m.Hooks)
	lastBeat := time.Now()
	poll := cmp.Or(g.Poll, 2*time.Second)
	why := "not probed yet"
	for {
		ok, state, err := serving(ctx)
		switch {
		case err != nil:
			why = err.Error()
		case ok:
			if !pending {
				return fmt.Sprintf("zookeeper serves (%s); %s is %s in group %s, no launch to complete", state, g.InstanceID, m.State, m.Group), nil
			}
			if _, err := g.complete(ctx, m, resultContinue); err != nil {
				return "", err
			}
			return fmt.Sprintf("zookeeper serves (%s); completed the launch of %s in group %s", state, g.InstanceID, m.Group), nil
		default:
			why = state
		}
		if time.Now().After(deadline) {
			reason := fmt.Sprintf("zookeeper did not serve within %s: %s", bound, why)
			did, ferr := g.Fail(ctx, reason)
			if ferr != nil {
				return "", errors.Join(errors.New(reason), ferr)
			}
			return did, errors.New(reason)
		}
		if pending && time.Since(lastBeat) >= beat {
			g.heartbeat(ctx, m)
			lastBeat = time.Now()
		}
		if err := sleep(ctx, jitter(poll, g.Rand)); err != nil {
			return "", err
		}
	}
}

// heartbeatEvery is a third of the shortest hook timeout: two heartbeats
// may be lost before the action times out.
func heartbeatEvery(hooks []Hook) time.Duration {
	d := time.Hour
	for _, h := range hooks {
		if h.Heartbeat > 0 {
			d = min(d, h.Heartbeat/3)
		}
	}
	return max(d, time.Second)
}

func (g *Group) heartbeat(ctx context.Context, m Membership) {
	for _, h := range m.Hooks {
		_, err := g.API.RecordLifecycleActionHeartbeat(ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{
			AutoScalingGroupName: aws.String(m.Group), LifecycleHookName: aws.String(h.Name), InstanceId: aws.String(g.InstanceID),
		})
		if err != nil {
			// The next heartbeat may do; the timeout is three of them away.
			g.log().Warn("lifecycle heartbeat failed", "step", "health", "group", m.Group, "hook", h.Name, "err", err)
		}
	}
}

// complete completes each hook's pending action with result and returns
// how many it completed. An action that is no longer pending (completed by
// an earlier run, or timed out) is not an error: Auto Scaling answers
// ValidationError "No active Lifecycle Action found".
func (g *Group) complete(ctx context.Context, m Membership, result string) (int, error) {
	n := 0
	for _, h := range m.Hooks {
		_, err := g.API.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{
			AutoScalingGroupName: aws.String(m.Group), LifecycleHookName: aws.String(h.Name),
			InstanceId: aws.String(g.InstanceID), LifecycleActionResult: aws.String(result),
		})
		if noActiveAction(err) {
			g.log().Info("no pending launch action", "step", "health", "group", m.Group, "hook", h.Name)
			continue
		}
		if err != nil {
			return n, fmt.Errorf("complete launch hook %s of group %s with %s: %w", h.Name, m.Group, result, err)
		}
		n++
		g.log().Info("completed launch hook", "step", "health", "group", m.Group, "hook", h.Name, "result", result)
	}
	return n, nil
}

func noActiveAction(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationError" && strings.Contains(ae.ErrorMessage(), "No active Lifecycle Action")
}

func (g *Group) log() *slog.Logger {
	if g.Log == nil {
		return slog.Default()
	}
	return g.Log
}

// jitter spreads d by ±20%, so a fleet of nodes does not probe in step.
func jitter(d time.Duration, r *rand.Rand) time.Duration {
	f := rand.Float64
	if r != nil {
		f = r.Float64
	}
	return time.Duration(float64(d) * (0.8 + 0.4*f()))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

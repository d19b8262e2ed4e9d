package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/smithy-go"
)

// fakeAPI is a group with one instance, recording the calls that change
// something as "Op hook result".
type fakeAPI struct {
	group    string // "" = not in a group
	state    string
	hooks    []types.LifecycleHook
	noAction bool // CompleteLifecycleAction finds no pending action
	calls    []string
}

// record: Group calls its API from one goroutine, so no lock.
func (f *fakeAPI) record(s string) { f.calls = append(f.calls, s) }

func (f *fakeAPI) DescribeAutoScalingInstances(_ context.Context, in *autoscaling.DescribeAutoScalingInstancesInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error) {
	out := &autoscaling.DescribeAutoScalingInstancesOutput{}
	if f.group != "" {
		out.AutoScalingInstances = []types.AutoScalingInstanceDetails{{
			InstanceId: aws.String(in.InstanceIds[0]), AutoScalingGroupName: aws.String(f.group), LifecycleState: aws.String(f.state),
		}}
	}
	return out, nil
}

func (f *fakeAPI) DescribeLifecycleHooks(context.Context, *autoscaling.DescribeLifecycleHooksInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeLifecycleHooksOutput, error) {
	return &autoscaling.DescribeLifecycleHooksOutput{LifecycleHooks: f.hooks}, nil
}

func (f *fakeAPI) CompleteLifecycleAction(_ context.Context, in *autoscaling.CompleteLifecycleActionInput, _ ...func(*autoscaling.Options)) (*autoscaling.CompleteLifecycleActionOutput, error) {
	if f.noAction {
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "No active Lifecycle Action found with instance ID " + aws.ToString(in.InstanceId)}
	}
	f.record("Complete " + aws.ToString(in.LifecycleHookName) + " " + aws.ToString(in.LifecycleActionResult))
	return &autoscaling.CompleteLifecycleActionOutput{}, nil
}

func (f *fakeAPI) RecordLifecycleActionHeartbeat(_ context.Context, in *autoscaling.RecordLifecycleActionHeartbeatInput, _ ...func(*autoscaling.Options)) (*autoscaling.RecordLifecycleActionHeartbeatOutput, error) {
	f.record("Heartbeat " + aws.ToString(in.LifecycleHookName))
	return &autoscaling.RecordLifecycleActionHeartbeatOutput{}, nil
}

func (f *fakeAPI) SetInstanceHealth(_ context.Context, in *autoscaling.SetInstanceHealthInput, _ ...func(*autoscaling.Options)) (*autoscaling.SetInstanceHealthOutput, error) {
	f.record(fmt.Sprintf("SetInstanceHealth %s respect-grace=%v", aws.ToString(in.HealthStatus), aws.ToBool(in.ShouldRespectGracePeriod)))
	return &autoscaling.SetInstanceHealthOutput{}, nil
}

func hook(name, transition string, timeout int32) types.LifecycleHook {
	return types.LifecycleHook{LifecycleHookName: aws.String(name), LifecycleTransition: aws.String(transition), HeartbeatTimeout: aws.Int32(timeout)}
}

var (
	zkaasLaunch = hook("zkaas-launch", launching, 300)
	drain       = hook("zkaas-drain", "autoscaling:EC2_INSTANCE_TERMINATING", 300)
	otherLaunch = hook("cmdb-register", launching, 300)
)

func TestFail(t *testing.T) {
	for _, tc := range []struct {
		name  string
		api   fakeAPI
		calls []string
		did   string // substring of what Fail reports
		err   error
	}{
		{name: "outside a group", api: fakeAPI{}, err: ErrNotInGroup},
		{name: "pending launch: abandon ours only",
			api:   fakeAPI{group: "zk-a", state: StatePendingWait, hooks: []types.LifecycleHook{otherLaunch, zkaasLaunch, drain}},
			calls: []string{"Complete zkaas-launch ABANDON"}, did: "abandoned the launch of i-1 in group zk-a (bad volume)"},
		{name: "pending launch, the group's only hook",
			api:   fakeAPI{group: "zk-a", state: StatePendingWait, hooks: []types.LifecycleHook{otherLaunch}},
			calls: []string{"Complete cmdb-register ABANDON"}, did: "abandoned"},
		{name: "pending launch, several hooks none ours: unhealthy",
			api:   fakeAPI{group: "zk-a", state: StatePendingWait, hooks: []types.LifecycleHook{otherLaunch, hook("x", launching, 60)}},
			calls: []string{"SetInstanceHealth Unhealthy respect-grace=false"}, did: "marked i-1 Unhealthy in group zk-a"},
		{name: "action already gone: unhealthy",
			api:   fakeAPI{group: "zk-a", state: StatePendingWait, hooks: []types.LifecycleHook{zkaasLaunch}, noAction: true},
			calls: []string{"SetInstanceHealth Unhealthy respect-grace=false"}, did: "Unhealthy"},
		{name: "in service (a reboot): unhealthy, not waiting for grace",
			api:   fakeAPI{group: "zk-a", state: StateInService, hooks: []types.LifecycleHook{zkaasLaunch}},
			calls: []string{"SetInstanceHealth Unhealthy respect-grace=false"}, did: "Unhealthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Group{API: &tc.api, InstanceID: "i-1"}
			did, err := g.Fail(context.Background(), "bad volume")
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !slices.Equal(tc.api.calls, tc.calls) {
				t.Errorf("calls %q, want %q", tc.api.calls, tc.calls)
			}
			if !strings.Contains(did, tc.did) {
				t.Errorf("reported %q, want %q in it", did, tc.did)
			}
		})
	}
}

func TestReady(t *testing.T) {
	servesAfter := func(d time.Duration) func(context.Context) (bool, string, error) {
		start := time.Now()
		return func(context.Context) (bool, string, error) {
			if time.Since(start) < d {
				return false, "mode: looking", nil
			}
			return true, "follower", nil
		}
	}
	short := hook("zkaas-launch", launching, 3) // a heartbeat every second
	for _, tc := range []struct {
		name    string
		api     fakeAPI
		serving func(context.Context) (bool, string, error)
		bound   time.Duration
		calls   []string
		err     string
	}{
		{name: "serves at once", api: fakeAPI{group: "zk-a", state: StatePendingWait, hooks: []types.LifecycleHook{zkaasLaunch}},
			serving: servesAfter(0), bound: time.Second, calls: []string{"Complete zkaas-launch CONTINUE"}},
		{name: "heartbeats while syncing", api: fakeAPI{group: "zk-a", state: StatePendingWait, hooks: []types.LifecycleHook{short}},
			serving: servesAfter(1300 * time.Millisecond), bound: 5 * time.Second,
			calls: []string{"Heartbeat zkaas-launch", "Complete zkaas-launch CONTINUE"}},
		{name: "in service: nothing to complete", api: fakeAPI{group: "zk-a", state: StateInService, hooks: []types.LifecycleHook{zkaasLaunch}},
			serving: servesAfter(0), bound: time.Second},
		{name: "never serves: abandoned", api: fakeAPI{group: "zk-a", state: StatePendingWait, hooks: []types.LifecycleHook{zkaasLaunch}},
			serving: servesAfter(time.Hour), bound: 200 * time.Millisecond,
			calls: []string{"Complete zkaas-launch ABANDON"}, err: "zookeeper did not serve within 200ms: mode: looking"},
		{name: "probe errors: the last one is the reason", api: fakeAPI{group: "zk-a", state: StateInService},
			serving: func(context.Context) (bool, string, error) {
				return false, "", errors.New("dial tcp 10.0.1.10:2181: connection refused")
			},
			bound: 100 * time.Millisecond, calls: []string{"SetInstanceHealth Unhealthy respect-grace=false"}, err: "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Group{API: &tc.api, InstanceID: "i-1", Poll: 20 * time.Millisecond}
			_, err := g.Ready(context.Background(), tc.serving, tc.bound)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			if !slices.Equal(tc.api.calls, tc.calls) {
				t.Errorf("calls %q, want %q", tc.api.calls, tc.calls)
			}
		})
	}
}

func TestHeartbeatEvery(t *testing.T) {
	for _, tc := range []struct {
		hooks []Hook
		want  time.Duration
	}{
		{nil, time.Hour},
		{[]Hook{{Heartbeat: 300 * time.Second}, {Heartbeat: 90 * time.Second}}, 30 * time.Second},
		{[]Hook{{Heartbeat: time.Second}}, time.Second},
	} {
		if got := heartbeatEvery(tc.hooks); got != tc.want {
			t.Errorf("heartbeatEvery(%v) = %s, want %s", tc.hooks, got, tc.want)
		}
	}
}

func TestHold(t *testing.T) {
	api := &fakeAPI{group: "zk-a", state: StatePendingWait, hooks: []types.LifecycleHook{hook("zkaas-launch", launching, 3)}}
	g := &Group{API: api, InstanceID: "i-1"}
	start := time.Now()
	if err := g.Hold(context.Background(), 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2500*time.Millisecond || took > 4*time.Second {
		t.Errorf("held %s, want 2.5s", took)
	}
	// A heartbeat each second (a third of the 3 s timeout), none at the end.
	if want := []string{"Heartbeat zkaas-launch", "Heartbeat zkaas-launch"}; !slices.Equal(api.calls, want) {
		t.Errorf("calls %q, want %q", api.calls, want)
	}
	inService := &fakeAPI{group: "zk-a", state: StateInService, hooks: []types.LifecycleHook{zkaasLaunch}}
	if err := (&Group{API: inService, InstanceID: "i-1"}).Hold(context.Background(), 10*time.Millisecond); err != nil || len(inService.calls) != 0 {
		t.Errorf("in service: %v, calls %q", err, inService.calls)
	}
}

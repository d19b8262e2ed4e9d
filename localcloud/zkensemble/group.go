package zkensemble

// Groups: the ensemble's Auto Scaling groups in the local cloud. The group
// launches every instance — none is launched by the harness — from a
// launch template whose user data is the ensemble config; the image's
// firstboot reads it from IMDS and tells the group the truth (zkaas-ready:
// CONTINUE once ZooKeeper serves; zkaas-unhealthy: ABANDON or Unhealthy).
// The harness only watches: the group's instances, each one's firstboot,
// and the group's scaling activities.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// HookName is the launch hook the groups get: firstboot completes the
// launching hooks whose name starts with "zkaas" (firstboot/health).
const HookName = "zkaas-launch"

// GroupOptions configures the groups.
type GroupOptions struct {
	// UserData is the launch template's user data; default the
	// ensemble's config.
	UserData []byte
	// Hook adds a launch lifecycle hook (HookName) to every group, with
	// HeartbeatTimeout (default 60 s; Auto Scaling's minimum is 30 s) and
	// DefaultResult (default ABANDON).
	Hook             bool
	HeartbeatTimeout time.Duration
	DefaultResult    string
	// GracePeriod is the groups' HealthCheckGracePeriod (default 0).
	GracePeriod time.Duration
	// AZs limits the groups to these AZs' nodes; default every node's.
	AZs []string
	// Name prefixes the group and template names; default the ensemble's
	// name.
	Name string
}

// Groups are the ensemble's Auto Scaling groups, one per AZ (each holding
// that AZ's nodes), and what the harness saw them launch.
type Groups struct {
	e        *Ensemble
	api      *autoscaling.Client
	Template ec2sim.LaunchTemplate
	Names    []string // group names, in AZ order
	byAZ     map[string]string

	stop context.CancelFunc
	done chan struct{}

	mu    sync.Mutex
	boots map[string]*GroupBoot // by instance id
	order []*GroupBoot
}

// GroupBoot is one instance a group launched, as the harness followed it.
type GroupBoot struct {
	InstanceID, Group, AZ string
	Seen                  time.Time // first listed in its group
	// Done is closed once firstboot finished (or the instance is gone):
	// then Node is the node it became, or Err says why not (a
	// *FirstbootError when firstboot failed).
	Done     chan struct{}
	Node     *Node
	Err      error
	Finished time.Time
}

// CreateGroups creates the launch template and one group per AZ of the
// ensemble's nodes (desired = min = max = its nodes, AZRebalance
// suspended as a slot-based ensemble needs), with the launch hook when
// asked, and follows every instance they launch until Close.
func (e *Ensemble) CreateGroups(ctx context.Context, o GroupOptions) (_ *Groups, err error) {
	if o.UserData == nil {
		o.UserData = e.cfg
	}
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = time.Minute
	}
	if o.DefaultResult == "" {
		o.DefaultResult = "ABANDON"
	}
	if o.Name == "" {
		o.Name = e.opts.Name
	}
	perAZ := map[string]int32{}
	var azs []string
	for _, n := range e.opts.Nodes {
		if len(o.AZs) > 0 && !slices.Contains(o.AZs, n.AZ) {
			continue
		}
		if perAZ[n.AZ] == 0 {
			azs = append(azs, n.AZ)
		}
		perAZ[n.AZ]++
	}
	lt, err := e.Cloud.Sim().CreateLaunchTemplate("zkaas-"+o.Name, ec2sim.LaunchTemplateData{
		ImageID: "ami-zkaaslocal", UserData: base64.StdEncoding.EncodeToString(o.UserData),
	})
	if err != nil {
		return nil, fmt.Errorf("launch template: %w", err)
	}
	g := &Groups{e: e, api: e.Cloud.AutoScalingClient(), Template: lt, boots: map[string]*GroupBoot{}, byAZ: map[string]string{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, g.Close())
		}
	}()
	wctx, cancel := context.WithCancel(context.Background())
	g.stop, g.done = cancel, make(chan struct{})
	go g.watch(wctx)
	for _, az := range azs {
		name := fmt.Sprintf("%s-%s", o.Name, az)
		subnet, err := e.Cloud.SubnetID(az)
		if err != nil {
			return nil, err
		}
		in := &autoscaling.CreateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String(name),
			MinSize:              aws.Int32(perAZ[az]), MaxSize: aws.Int32(perAZ[az]), DesiredCapacity: aws.Int32(0),
			VPCZoneIdentifier:      aws.String(subnet),
			LaunchTemplate:         &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt.ID), Version: aws.String("$Latest")},
			HealthCheckType:        aws.String("EC2"),
			HealthCheckGracePeriod: aws.Int32(int32(o.GracePeriod / time.Second)),
			Tags:                   []astypes.Tag{{Key: aws.String("zkaas:ensemble"), Value: aws.String(e.opts.Name), PropagateAtLaunch: aws.Bool(true)}},
		}
		// Min 0 while the hook goes on: nothing launches before it.
		in.MinSize = aws.Int32(0)
		if _, err := g.api.CreateAutoScalingGroup(ctx, in); err != nil {
			return nil, fmt.Errorf("create group %s: %w", name, err)
		}
		g.mu.Lock()
		g.Names = append(g.Names, name)
		g.byAZ[az] = name
		g.mu.Unlock()
		// "Suspend AZRebalance for a slot-based ensemble": a rebalance
		// would terminate a node to move it.
		if _, err := g.api.SuspendProcesses(ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String(name), ScalingProcesses: []string{"AZRebalance"}}); err != nil {
			return nil, fmt.Errorf("suspend AZRebalance of %s: %w", name, err)
		}
		if o.Hook {
			if _, err := g.api.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{
				AutoScalingGroupName: aws.String(name), LifecycleHookName: aws.String(HookName),
				LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"),
				HeartbeatTimeout:    aws.Int32(int32(o.HeartbeatTimeout / time.Second)), DefaultResult: aws.String(o.DefaultResult),
			}); err != nil {
				return nil, fmt.Errorf("launch hook of %s: %w", name, err)
			}
		}
		if _, err := g.api.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String(name), MinSize: aws.Int32(perAZ[az]), DesiredCapacity: aws.Int32(perAZ[az]),
		}); err != nil {
			return nil, fmt.Errorf("start group %s: %w", name, err)
		}
		e.opts.Log.Info("group created", "step", "groups", "group", name, "az", az, "capacity", perAZ[az], "hook", o.Hook)
	}
	return g, nil
}

// watchEvery paces the harness's look at the groups.
const watchEvery = 100 * time.Millisecond

// watch lists the groups' instances and follows each new one's boot.
func (g *Groups) watch(ctx context.Context) {
	defer close(g.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		out, err := g.api.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{})
		if err == nil {
			for _, in := range out.AutoScalingInstances {
				name := aws.ToString(in.AutoScalingGroupName)
				id := aws.ToString(in.InstanceId)
				g.mu.Lock()
				ours := slices.Contains(g.Names, name)
				b := g.boots[id]
				if ours && b == nil {
					b = &GroupBoot{InstanceID: id, Group: name, AZ: aws.ToString(in.AvailabilityZone), Seen: time.Now(), Done: make(chan struct{})}
					g.boots[id] = b
					g.order = append(g.order, b)
					wg.Go(func() { g.follow(ctx, b) })
				}
				g.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(watchEvery):
		}
	}
}

// follow waits for the instance to start and its firstboot to finish.
func (g *Groups) follow(ctx context.Context, b *GroupBoot) {
	defer close(b.Done)
	defer func() { b.Finished = time.Now() }()
	inst, err := g.e.Cloud.GroupInstance(ctx, b.InstanceID)
	if err != nil {
		b.Err = err
		return
	}
	if !onMachine(inst) {
		b.Err = fmt.Errorf("instance %s boots in host mode: groups need machines (localcloud.BootSystemd)", inst.ID)
		return
	}
	rep, err := g.e.waitFirstboot(ctx, inst)
	if err != nil {
		b.Err = err
		return
	}
	n := &Node{ID: rep.Claim.Node, IP: rep.Claim.IP.String(), Instance: inst, Report: rep, Launched: b.Seen}
	g.e.add(n)
	b.Node = n
	g.e.opts.Log.Info("group instance became a node", "step", "groups", "group", b.Group, "instance", inst.ID, "node", n.ID, "duration", time.Since(b.Seen))
}

// Boots returns every instance the groups launched so far, in the order
// the harness saw them.
func (g *Groups) Boots() []*GroupBoot {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.order)
}

// WaitNode waits until an instance the groups launched became node id
// and holds it now (Ensemble.Node), other than the instances in not (the
// node's earlier holders), and returns it.
func (g *Groups) WaitNode(ctx context.Context, bound time.Duration, id int, not ...string) (*Node, error) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	for {
		for _, b := range g.Boots() {
			select {
			case <-b.Done:
				if b.Node != nil && b.Node.ID == id && !slices.Contains(not, b.InstanceID) && g.e.Node(id) == b.Node {
					return b.Node, nil
				}
			default:
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no instance of groups %v became node %d within %s (boots: %s)", g.Names, id, bound, g.describe())
		case <-time.After(watchEvery):
		}
	}
}

// WaitInService waits until the instances holding the nodes are
// InService in their groups (a launch hook completed, or none): from then
// on the group's health checks watch them.
func (g *Groups) WaitInService(ctx context.Context, bound time.Duration, ids ...int) error {
	deadline := time.Now().Add(bound)
	for _, id := range ids {
		for {
			n := g.e.Node(id)
			var state string
			if n != nil {
				in, _ := g.e.Cloud.AutoScaling().Instance(n.Instance.ID)
				if state = in.LifecycleState; state == "InService" {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %d (%v) not in service in its group after %s: %q", id, n != nil, bound, state)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(watchEvery):
			}
		}
	}
	return nil
}

// WaitNodes waits until every node of the groups is held by one of their
// instances and returns them by id.
func (g *Groups) WaitNodes(ctx context.Context, bound time.Duration, ids ...int) (map[int]*Node, error) {
	out := map[int]*Node{}
	deadline := time.Now().Add(bound)
	for _, id := range ids {
		n, err := g.WaitNode(ctx, time.Until(deadline), id)
		if err != nil {
			return out, err
		}
		out[id] = n
	}
	return out, nil
}

func (g *Groups) describe() string {
	var s []string
	for _, b := range g.Boots() {
		st := "booting"
		select {
		case <-b.Done:
			if b.Node != nil {
				st = fmt.Sprintf("node %d", b.Node.ID)
			} else {
				st = fmt.Sprintf("failed: %v", b.Err)
			}
		default:
		}
		s = append(s, fmt.Sprintf("%s in %s: %s", b.InstanceID, b.Group, st))
	}
	return fmt.Sprint(s)
}

// Activities returns the group's scaling activities, newest first, as
// DescribeScalingActivities answers.
func (g *Groups) Activities(ctx context.Context, group string) ([]astypes.Activity, error) {
	var err error
	// A few tries: a read of the answer can fail when the harness's
	// connection into the VPC is cut short, which says nothing of the
	// group.
	for range 3 {
		var out *autoscaling.DescribeScalingActivitiesOutput
		if out, err = g.api.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String(group)}); err == nil {
			return out.Activities, nil
		}
	}
	return nil, fmt.Errorf("activities of %s: %w", group, err)
}

// GroupOf returns the name of the group holding node id (its AZ's).
func (g *Groups) GroupOf(id int) string {
	for _, n := range g.e.opts.Nodes {
		if n.ID == id {
			return g.byAZ[n.AZ]
		}
	}
	return ""
}

// API is the Auto Scaling client the groups were created with.
func (g *Groups) API() *autoscaling.Client { return g.api }

// Close deletes the groups (ForceDelete: their instances are terminated,
// cleanly, as Auto Scaling does) and waits, a minute at most, until EC2
// has them terminated; then stops following.
func (g *Groups) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, name := range g.Names {
		if _, err := g.api.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String(name), ForceDelete: aws.Bool(true)}); err != nil {
			errs = append(errs, fmt.Errorf("delete group %s: %w", name, err))
		}
	}
	for _, b := range g.Boots() {
		for {
			si, ok := g.e.Cloud.Sim().Instance(b.InstanceID)
			if !ok || si.State == ec2sim.StateTerminated {
				break
			}
			if ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("instance %s still %s after its group was deleted", b.InstanceID, si.State))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if g.stop != nil {
		g.stop()
		<-g.done
	}
	return errors.Join(errs...)
}

// hasUnit reports whether the image installs the unit: the groups' launch
// hook and the failed-boot report need the image's zkaas-ready and
// zkaas-unhealthy units.
func hasUnit(rootfs, unit string) bool {
	for _, dir := range []string{"etc/systemd/system", "lib/systemd/system", "usr/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(rootfs, dir, unit)); err == nil {
			return true
		}
	}
	return false
}

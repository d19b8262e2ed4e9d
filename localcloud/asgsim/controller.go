package asgsim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Run reconciles every interval until ctx is done: the group controller on
// a real clock. Tests call Reconcile themselves after moving a fake clock.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("reconcile", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type launchReq struct {
	group, subnet, az string
	cause             string
	rebalance         bool
}

// Reconcile runs one pass of the group controller over every group, at the
// clock's current time:
//
//  1. observe each instance's EC2 state;
//  2. move instances along their lifecycle: Pending → (Pending:Wait while a
//     launching hook's action is pending → Pending:Proceed) → InService once
//     EC2 says running; expired lifecycle actions take their hook's
//     DefaultResult; Terminating:Proceed → Terminated once EC2 says
//     terminated (the instance then leaves the group);
//  3. health: an InService instance whose EC2 state is no longer running is
//     Unhealthy (the EC2 health check, unless HealthCheck is suspended); an
//     Unhealthy one past its grace period — or at once, within it, if EC2
//     no longer runs it — is terminated (unless ReplaceUnhealthy is
//     suspended), terminating hooks first;
//  4. capacity: launch (unless Launch is suspended) into the AZ with the
//     fewest instances, or terminate extras (unless Terminate is
//     suspended) by the default termination policy; rebalance AZs (unless
//     AZRebalance is suspended) by launching in the emptiest AZ first;
//  5. call EC2 for the launches and terminations decided, without the lock,
//     and record the results.
//
// An error is returned only for ctx; EC2 failures become Failed
// activities and are retried on the next pass.
func (s *Service) Reconcile(ctx context.Context) error {
	s.recMu.Lock()
	defer s.recMu.Unlock()

	// 1. Observe.
	s.mu.Lock()
	var ids []string
	for _, g := range s.groups {
		for id := range g.instances {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	states := map[string]string{}
	for _, id := range ids {
		st, err := s.ec2.State(ctx, id)
		switch {
		case errors.Is(err, ErrInstanceNotFound):
			st = "terminated"
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Warn("instance state", "instance", id, "error", err)
			continue // unknown this pass
		}
		states[id] = st
	}

	// 2-4. Decide.
	s.mu.Lock()
	now := s.opts.Now()
	var launches []launchReq
	var terminations []string
	for _, name := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[name]
		s.step(g, states, now)
		launches = append(launches, s.plan(g, now)...)
		for _, in := range g.sortedInstances() {
			if in.lifecycle == StateTerminatingProceed && !in.terminateSent {
				in.terminateSent = true
				terminations = append(terminations, in.id)
			}
		}
		if g.deleting && len(g.instances) == 0 {
			s.removeGroup(g)
		}
	}
	templates := map[string]LaunchTemplateRef{}
	for _, l := range launches {
		templates[l.group] = s.groups[l.group].template
	}
	s.mu.Unlock()

	// 5. Act.
	for _, id := range terminations {
		if err := s.ec2.Terminate(ctx, id); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Warn("terminate", "instance", id, "error", err)
			s.mu.Lock()
			if _, in, e := s.findInstance(id); e == nil {
				in.terminateSent = false // try again next pass
			}
			s.mu.Unlock()
		}
	}
	for _, l := range launches {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.launch(ctx, l, templates[l.group])
	}
	return nil
}

// step moves each instance of g along its lifecycle and applies health
// checks. Call with s.mu held.
func (s *Service) step(g *group, states map[string]string, now time.Time) {
	for _, in := range g.sortedInstances() {
		st, known := states[in.id]
		gone := known && (st == "terminated" || st == "shutting-down" || st == "stopping" || st == "stopped")
		switch in.lifecycle {
		case StatePendingWait, StateTerminatingWait:
			s.expireActions(g, in, now)
		}
		switch in.lifecycle {
		case StatePending, StatePendingProceed:
			switch {
			case gone:
				// The instance died before it came into service.
				if in.launchActivity != nil {
					in.launchActivity.finish(StatusFailed, fmt.Sprintf("Instance %s is %s before it came into service.", in.id, st), now)
				}
				in.lifecycle, in.terminateSent = StateTerminatingProceed, st == "terminated" || st == "shutting-down"
			case st == "running":
				in.lifecycle, in.inService = StateInService, now
				if in.launchActivity != nil {
					in.launchActivity.finish(StatusSuccessful, "", now)
				}
				s.log.Info("instance in service", "group", g.name, "instance", in.id, "az", in.az)
			}
		case StateInService:
			if gone && in.health == Healthy && !g.suspendedProc("HealthCheck") {
				in.health = Unhealthy
				in.healthCause = fmt.Sprintf("At %s an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped.", causeTime(now))
			}
			// The grace period protects an instance still starting, not
			// one EC2 no longer runs: "During the health check grace
			// period, if Amazon EC2 Auto Scaling detects that an instance
			// is no longer in the Amazon EC2 running state, it
			// immediately marks the instance as unhealthy and replaces
			// it" (https://docs.aws.amazon.com/autoscaling/ec2/userguide/health-check-grace-period.html).
			if in.health == Unhealthy && !g.suspendedProc("ReplaceUnhealthy") && (!g.withinGrace(in, now) || in.forceHealth || gone) {
				s.startTermination(g, in, now, in.healthCause, false)
			}
		case StateTerminatingProceed:
			if known && st == "terminated" {
				in.lifecycle = StateTerminated
				if in.termActivity != nil {
					in.termActivity.finish(StatusSuccessful, "", now)
				}
				delete(g.instances, in.id)
				s.log.Info("instance terminated", "group", g.name, "instance", in.id)
			}
		}
	}
}

func (g *group) hasHooks(transition string) bool {
	for _, h := range g.hooks {
		if h.transition == transition {
			return true
		}
	}
	return false
}

// startTermination takes an instance out of service: Terminating, then
// Terminating:Wait while terminating hooks are pending (unless skipHooks),
// else Terminating:Proceed, when the next pass calls EC2. It returns the
// activity. Call with s.mu held.
func (s *Service) startTermination(g *group, in *instance, now time.Time, cause string, skipHooks bool) *activity {
	if in.launchActivity != nil {
		in.launchActivity.finish(StatusCancelled, "Instance was taken out of service before it came into service.", now)
	}
	in.lifecycle = StateTerminating
	in.actions = nil
	in.termActivity = s.newActivity(g, "Terminating EC2 instance: "+in.id, cause, now, in.subnet, in.az)
	s.log.Info("terminating instance", "group", g.name, "instance", in.id, "cause", cause)
	if !skipHooks && s.startActions(g, in, TransitionTerminating, now) {
		in.lifecycle = StateTerminatingWait
		in.termActivity.status, in.termActivity.progress = StatusMidLifecycleAction, 50
		return in.termActivity
	}
	in.lifecycle = StateTerminatingProceed
	return in.termActivity
}

// plan decides launches and scale-in terminations for g. Call with s.mu
// held.
func (s *Service) plan(g *group, now time.Time) []launchReq {
	if g.deleting || s.rebalanceStep(g, now) {
		return nil
	}
	count := g.activeCount()
	perAZ := g.perAZ()
	var out []launchReq
	switch {
	case count < g.want && !g.suspendedProc("Launch"):
		cause := g.takeCause(fmt.Sprintf("At %s an instance was started in response to a difference between desired and actual capacity, increasing the capacity from %d to %d.", causeTime(now), count, g.want))
		for range g.want - count {
			az := g.emptiestAZ(perAZ)
			perAZ[az]++
			out = append(out, launchReq{group: g.name, subnet: g.subnetFor(az), az: az, cause: cause})
		}
	case count > g.want && !g.suspendedProc("Terminate"):
		for range count - g.want {
			victim := g.victim()
			if victim == nil {
				break
			}
			cause := g.takeCause(fmt.Sprintf("At %s an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from %d to %d.", causeTime(now), count, g.want))
			s.startTermination(g, victim, now, cause, false)
		}
	case count == g.want && !g.suspendedProc("AZRebalance") && !g.suspendedProc("Launch") && g.settled():
		// AZRebalance "launches new instances before terminating the
		// earlier ones, so that rebalancing does not compromise the
		// performance or availability of your application"; meanwhile the
		// group may exceed its maximum by 10 percent, at least one instance
		// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/auto-scaling-benefits.html,
		// "Instance distribution" and "Rebalancing activities").
		small, large := g.emptiestAZ(perAZ), g.fullestAZ(perAZ)
		if perAZ[large]-perAZ[small] > 1 && count+1 <= g.max+max(1, g.max/10) {
			cause := fmt.Sprintf("At %s an instance was launched in order to rebalance the Availability Zones.", causeTime(now))
			out = append(out, launchReq{group: g.name, subnet: g.subnetFor(small), az: small, cause: cause, rebalance: true})
			g.rebalancing = true
		}
	}
	return out
}

// rebalanceStep follows a rebalancing launch: once the new instance is in
// service, one instance in the fullest AZ is terminated; until then nothing
// else happens to the group's capacity. It reports whether plan should
// stop here. Call with s.mu held.
func (s *Service) rebalanceStep(g *group, now time.Time) bool {
	if !g.rebalancing {
		return false
	}
	in := g.instances[g.rebalanceID]
	switch {
	case in == nil || !in.active():
		// The launch failed or the instance went away: start over.
		g.rebalancing, g.rebalanceID = false, ""
		return false
	case in.lifecycle != StateInService:
		return true
	}
	g.rebalancing, g.rebalanceID = false, ""
	if g.activeCount() > g.want && !g.suspendedProc("Terminate") {
		if v := g.victim(); v != nil {
			s.startTermination(g, v, now, fmt.Sprintf("At %s an instance was taken out of service in order to rebalance the Availability Zones.", causeTime(now)), false)
		}
	}
	return true
}

// settled: every instance is InService.
func (g *group) settled() bool {
	for _, in := range g.instances {
		if in.lifecycle != StateInService {
			return false
		}
	}
	return true
}

func (g *group) perAZ() map[string]int {
	m := map[string]int{}
	for _, az := range g.azs() {
		m[az] = 0
	}
	for _, in := range g.instances {
		if in.active() {
			m[in.az]++
		}
	}
	return m
}

// emptiestAZ is the group AZ with fewest active instances, the first in
// subnet order on a tie.
func (g *group) emptiestAZ(perAZ map[string]int) string {
	best := ""
	for _, az := range g.azs() {
		if best == "" || perAZ[az] < perAZ[best] {
			best = az
		}
	}
	return best
}

func (g *group) fullestAZ(perAZ map[string]int) string {
	best := ""
	for az, n := range perAZ {
		if best == "" || n > perAZ[best] || (n == perAZ[best] && az < best) {
			best = az
		}
	}
	return best
}

// subnetFor returns the group's first subnet in az.
func (g *group) subnetFor(az string) string {
	for _, sub := range g.subnets {
		if g.subnetAZ[sub] == az {
			return sub
		}
	}
	return ""
}

// victim picks the instance to terminate on scale-in by the default
// termination policy
// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-termination-policies.html):
// the AZ with the most instances, then instances not yet in service, then
// the oldest launch template version, then the oldest instance (standing in
// for "closest to the next billing hour"), then the lowest id.
func (g *group) victim() *instance {
	perAZ := g.perAZ()
	az := g.fullestAZ(perAZ)
	var cands []*instance
	for _, in := range g.sortedInstances() {
		if in.active() && in.az == az {
			cands = append(cands, in)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	slices.SortStableFunc(cands, func(a, b *instance) int {
		if c := cmp.Compare(boolInt(a.lifecycle == StateInService), boolInt(b.lifecycle == StateInService)); c != 0 {
			return c
		}
		if c := cmp.Compare(versionNum(a.template.Version), versionNum(b.template.Version)); c != 0 {
			return c
		}
		return a.launched.Compare(b.launched)
	})
	return cands[0]
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func versionNum(v string) int {
	n := 0
	fmt.Sscan(v, &n)
	return n
}

// launch runs one launch: resolve the template (versions like $Latest are
// resolved at launch, as Auto Scaling does), call EC2, record the instance
// and its activity. Called without s.mu.
func (s *Service) launch(ctx context.Context, l launchReq, ref LaunchTemplateRef) {
	lt, err := s.ec2.LaunchTemplate(ctx, ref)
	var id string
	tags := map[string]string{}
	if err == nil {
		maps.Copy(tags, lt.Data.InstanceTags)
		s.mu.Lock()
		if g := s.groups[l.group]; g != nil {
			for _, t := range g.tags {
				if t.Propagate {
					tags[t.Key] = t.Value
				}
			}
		}
		s.mu.Unlock()
		// "Amazon EC2 Auto Scaling adds a tag to instances with a key of
		// aws:autoscaling:groupName and a value of the name of the Auto
		// Scaling group" (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-tagging.html).
		tags["aws:autoscaling:groupName"] = l.group
		id, err = s.ec2.Launch(ctx, LaunchSpec{Group: l.group, Subnet: l.subnet, AZ: l.az, Template: lt, Tags: tags})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	g := s.groups[l.group]
	if g == nil || g.deleting {
		if err == nil {
			// The group went away while EC2 launched: give the instance back.
			s.mu.Unlock()
			_ = s.ec2.Terminate(ctx, id)
			s.mu.Lock()
		}
		return
	}
	if err != nil {
		a := s.newActivity(g, "Launching a new EC2 instance.  Status Reason: "+err.Error()+". Launching EC2 instance failed.", l.cause, now, l.subnet, l.az)
		a.finish(StatusFailed, err.Error()+". Launching EC2 instance failed.", now)
		s.log.Warn("launch failed", "group", g.name, "az", l.az, "error", err)
		return
	}
	in := &instance{id: id, subnet: l.subnet, az: l.az, instanceType: lt.Data.InstanceType, template: lt,
		lifecycle: StatePending, health: Healthy, launched: now}
	in.launchActivity = s.newActivity(g, "Launching a new EC2 instance: "+id, l.cause, now, l.subnet, l.az)
	in.launchActivity.status, in.launchActivity.progress = StatusPreInService, 30
	g.instances[id] = in
	if l.rebalance && g.rebalancing {
		g.rebalanceID = id
	}
	s.log.Info("launched instance", "group", g.name, "instance", id, "az", l.az, "template", lt.ID, "version", lt.Version)
	if s.startActions(g, in, TransitionLaunching, now) {
		in.lifecycle = StatePendingWait
		in.launchActivity.status, in.launchActivity.progress = StatusMidLifecycleAction, 50
	}
}

package asgsim

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Lifecycle transitions (API_PutLifecycleHook.html, LifecycleTransition).
const (
	TransitionLaunching   = "autoscaling:EC2_INSTANCE_LAUNCHING"
	TransitionTerminating = "autoscaling:EC2_INSTANCE_TERMINATING"
)

// Lifecycle action results.
const (
	Continue = "CONTINUE"
	Abandon  = "ABANDON"
)

type hook struct {
	name, group, transition string
	heartbeat               int // seconds, 30..7200, default 3600
	defaultResult           string
	metadata, target, role  string
}

// globalTimeout is "the maximum time, in seconds, that an instance can
// remain in a Pending:Wait or Terminating:Wait state. The maximum is 172800
// seconds (48 hours) or 100 times HeartbeatTimeout, whichever is smaller."
// (API_LifecycleHook.html).
func (h *hook) globalTimeout() int { return min(172800, 100*h.heartbeat) }

// lifecycleAction is one hook's pending action on one instance.
type lifecycleAction struct {
	hook     *hook
	token    string
	deadline time.Time // heartbeat timeout
	global   time.Time
	result   string // "" while pending
	reason   string // how it ended, for the activity's status message
}

func errHookLimit(n int) *apiError {
	return &apiError{Code: CodeLimitExceeded, Message: fmt.Sprintf("Cannot have more than %d lifecycle hooks per Auto Scaling group.", n)}
}

// readHook reads one hook's fields under prefix ("" for PutLifecycleHook,
// "LifecycleHookSpecificationList.member.N." for CreateAutoScalingGroup),
// with PutLifecycleHook's constraints
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutLifecycleHook.html):
// HeartbeatTimeout 30 to 7200, default 3600; DefaultResult CONTINUE or
// ABANDON, default ABANDON.
func readHook(q query, prefix, groupName string) (*hook, *apiError) {
	name := q.str(prefix + "LifecycleHookName")
	if name == "" {
		return nil, errNull("lifecycleHookName")
	}
	h := &hook{
		name: name, group: groupName, transition: q.str(prefix + "LifecycleTransition"),
		heartbeat: 3600, defaultResult: cmp.Or(q.str(prefix+"DefaultResult"), Abandon),
		metadata: q.str(prefix + "NotificationMetadata"), target: q.str(prefix + "NotificationTargetARN"), role: q.str(prefix + "RoleARN"),
	}
	if h.transition != TransitionLaunching && h.transition != TransitionTerminating {
		if h.transition == "" && prefix == "" {
			return nil, validation("LifecycleTransition must be specified when creating a new lifecycle hook.")
		}
		return nil, validation("Invalid Lifecycle Transition: %s", h.transition)
	}
	if h.defaultResult != Continue && h.defaultResult != Abandon {
		return nil, validation("Valid values for DefaultResult are CONTINUE and ABANDON. Given value: %s", h.defaultResult)
	}
	if v, ok, err := q.int(prefix+"HeartbeatTimeout", "heartbeatTimeout"); err != nil {
		return nil, err
	} else if ok {
		if v < 30 || v > 7200 {
			return nil, errRange("heartbeatTimeout", v, 30, 7200)
		}
		h.heartbeat = int(v)
	}
	return h, nil
}

// putLifecycleHook is PutLifecycleHook: creates or updates a hook. An
// update changes only what is given; it does not touch actions already
// pending.
func (s *Service) putLifecycleHook(q query, _ time.Time) (any, *apiError) {
	name, err := q.required("AutoScalingGroupName", "autoScalingGroupName")
	if err != nil {
		return nil, err
	}
	g, err := s.findGroup(name)
	if err != nil {
		return nil, err
	}
	hookName, err := q.required("LifecycleHookName", "lifecycleHookName")
	if err != nil {
		return nil, err
	}
	if old := g.hooks[hookName]; old != nil {
		// Fill in what the update leaves out from the existing hook.
		if !q.has("LifecycleTransition") {
			q.form.Set("LifecycleTransition", old.transition)
		}
		if !q.has("HeartbeatTimeout") {
			q.form.Set("HeartbeatTimeout", fmt.Sprint(old.heartbeat))
		}
		if !q.has("DefaultResult") {
			q.form.Set("DefaultResult", old.defaultResult)
		}
	} else if len(g.hooks) >= s.opts.Limits.HooksPerGroup {
		return nil, errHookLimit(s.opts.Limits.HooksPerGroup)
	}
	h, err := readHook(q, "", name)
	if err != nil {
		return nil, err
	}
	g.hooks[h.name] = h
	return struct{}{}, nil
}

type xmlHook struct {
	Name          string `xml:"LifecycleHookName"`
	Group         string `xml:"AutoScalingGroupName"`
	Transition    string `xml:"LifecycleTransition"`
	Target        string `xml:"NotificationTargetARN,omitempty"`
	Role          string `xml:"RoleARN,omitempty"`
	Metadata      string `xml:"NotificationMetadata,omitempty"`
	Heartbeat     int    `xml:"HeartbeatTimeout"`
	GlobalTimeout int    `xml:"GlobalTimeout"`
	DefaultResult string `xml:"DefaultResult"`
}

// describeLifecycleHooks is DescribeLifecycleHooks
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeLifecycleHooks.html).
func (s *Service) describeLifecycleHooks(q query, _ time.Time) (any, *apiError) {
	name, err := q.required("AutoScalingGroupName", "autoScalingGroupName")
	if err != nil {
		return nil, err
	}
	g, err := s.findGroup(name)
	if err != nil {
		return nil, err
	}
	names := q.list("LifecycleHookNames")
	out := struct {
		Hooks []xmlHook `xml:"LifecycleHooks>member"`
	}{Hooks: []xmlHook{}}
	for _, hn := range slices.Sorted(maps.Keys(g.hooks)) {
		if len(names) > 0 && !slices.Contains(names, hn) {
			continue
		}
		h := g.hooks[hn]
		out.Hooks = append(out.Hooks, xmlHook{Name: h.name, Group: g.name, Transition: h.transition, Target: h.target, Role: h.role,
			Metadata: h.metadata, Heartbeat: h.heartbeat, GlobalTimeout: h.globalTimeout(), DefaultResult: h.defaultResult})
	}
	return out, nil
}

// deleteLifecycleHook is DeleteLifecycleHook
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DeleteLifecycleHook.html):
// "If there are any outstanding lifecycle actions, they are completed
// first (ABANDON for launching instances, CONTINUE for terminating
// instances)."
func (s *Service) deleteLifecycleHook(q query, now time.Time) (any, *apiError) {
	name, err := q.required("AutoScalingGroupName", "autoScalingGroupName")
	if err != nil {
		return nil, err
	}
	hookName, err := q.required("LifecycleHookName", "lifecycleHookName")
	if err != nil {
		return nil, err
	}
	g, err := s.findGroup(name)
	if err != nil {
		return nil, err
	}
	h := g.hooks[hookName]
	if h == nil {
		return nil, validation("No Lifecycle Hook found with name %s for group %s", hookName, name)
	}
	for _, in := range g.sortedInstances() {
		for _, a := range in.actions {
			if a.hook == h && a.result == "" {
				result := Abandon
				if h.transition == TransitionTerminating {
					result = Continue
				}
				s.finishAction(g, in, a, result, "Lifecycle Hook Deleted", now)
			}
		}
	}
	delete(g.hooks, hookName)
	return struct{}{}, nil
}

// actionFor finds the pending action of a hook by instance id or token.
func (s *Service) actionFor(q query) (*group, *instance, *lifecycleAction, *apiError) {
	name, err := q.required("AutoScalingGroupName", "autoScalingGroupName")
	if err != nil {
		return nil, nil, nil, err
	}
	hookName, err := q.required("LifecycleHookName", "lifecycleHookName")
	if err != nil {
		return nil, nil, nil, err
	}
	g, err := s.findGroup(name)
	if err != nil {
		return nil, nil, nil, err
	}
	id, token := q.str("InstanceId"), q.str("LifecycleActionToken")
	if id == "" && token == "" {
		return nil, nil, nil, validation("Either InstanceId or LifecycleActionToken must be specified.")
	}
	for _, in := range g.instances {
		if id != "" && in.id != id {
			continue
		}
		for _, a := range in.actions {
			if a.hook.name == hookName && a.result == "" && (token == "" || a.token == token) {
				return g, in, a, nil
			}
		}
	}
	// AWS's messages, from real answers: "No active Lifecycle Action found
	// with instance ID i-…" / "… with token …".
	if token != "" {
		return nil, nil, nil, validation("No active Lifecycle Action found with token %s", token)
	}
	return nil, nil, nil, validation("No active Lifecycle Action found with instance ID %s", id)
}

// completeLifecycleAction is CompleteLifecycleAction
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html).
func (s *Service) completeLifecycleAction(q query, now time.Time) (any, *apiError) {
	result, err := q.required("LifecycleActionResult", "lifecycleActionResult")
	if err != nil {
		return nil, err
	}
	if result != Continue && result != Abandon {
		return nil, validation("Valid values for LifecycleActionResult are CONTINUE and ABANDON. Given value: %s", result)
	}
	g, in, a, err := s.actionFor(q)
	if err != nil {
		return nil, err
	}
	s.finishAction(g, in, a, result, "Lifecycle Action Completed with "+result+" Result", now)
	return struct{}{}, nil
}

// recordHeartbeat is RecordLifecycleActionHeartbeat
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RecordLifecycleActionHeartbeat.html):
// "This extends the timeout by the length of time defined using the
// PutLifecycleHook API call": "you can restart the timeout period by
// recording a heartbeat" (How lifecycle hooks work,
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html),
// so the new deadline is now plus HeartbeatTimeout, capped by the global
// timeout.
func (s *Service) recordHeartbeat(q query, now time.Time) (any, *apiError) {
	_, _, a, err := s.actionFor(q)
	if err != nil {
		return nil, err
	}
	a.deadline = now.Add(time.Duration(a.hook.heartbeat) * time.Second)
	if a.deadline.After(a.global) {
		a.deadline = a.global
	}
	return struct{}{}, nil
}

// startActions puts an instance into the wait state of a transition when
// the group has hooks for it, one action per hook (they run together); it
// reports whether any did.
func (s *Service) startActions(g *group, in *instance, transition string, now time.Time) bool {
	in.actions = nil
	for _, hn := range slices.Sorted(maps.Keys(g.hooks)) {
		h := g.hooks[hn]
		if h.transition != transition {
			continue
		}
		in.actions = append(in.actions, &lifecycleAction{
			hook: h, token: s.uuidLocked(),
			deadline: now.Add(time.Duration(h.heartbeat) * time.Second),
			global:   now.Add(time.Duration(h.globalTimeout()) * time.Second),
		})
	}
	return len(in.actions) > 0
}

// finishAction records one action's result and moves the instance on once
// none is pending. For a launch, ABANDON (from any hook) terminates the
// instance and cancels its launch activity; for a termination, both
// results let it terminate ("ABANDON … the instance terminates", Amazon
// EC2 Auto Scaling lifecycle hooks,
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks.html).
func (s *Service) finishAction(g *group, in *instance, a *lifecycleAction, result, reason string, now time.Time) {
	a.result, a.reason = result, reason
	s.log.Info("lifecycle action completed", "group", g.name, "instance", in.id, "hook", a.hook.name, "result", result, "reason", reason)
	abandoned := result == Abandon
	for _, other := range in.actions {
		if other.result == "" {
			if !abandoned {
				return // still waiting for another hook
			}
			other.result, other.reason = Abandon, reason
		}
	}
	switch in.lifecycle {
	case StatePendingWait:
		if !abandoned {
			in.lifecycle = StatePendingProceed
			return
		}
		if act := in.launchActivity; act != nil {
			act.finish(StatusCancelled, fmt.Sprintf("Instance failed to complete user's Lifecycle Action: Lifecycle Action with token %s was abandoned: %s", a.token, reason), now)
		}
		in.lifecycle = StateTerminatingProceed
	case StateTerminatingWait:
		in.lifecycle = StateTerminatingProceed
	}
}

// expireActions applies DefaultResult to actions past their heartbeat or
// global timeout.
func (s *Service) expireActions(g *group, in *instance, now time.Time) {
	for _, a := range slices.Clone(in.actions) {
		if a.result == "" && (!now.Before(a.deadline) || !now.Before(a.global)) {
			s.finishAction(g, in, a, a.hook.defaultResult, "Heartbeat Timeout", now)
		}
	}
}

// LifecycleActionToken returns the token of an instance's pending action
// for a hook, "" if none: what Auto Scaling would send to the hook's
// notification target, which the simulator does not model.
func (s *Service) LifecycleActionToken(groupName, hookName, instanceID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[groupName]
	if g == nil || g.instances[instanceID] == nil {
		return ""
	}
	for _, a := range g.instances[instanceID].actions {
		if a.hook.name == hookName && a.result == "" {
			return a.token
		}
	}
	return ""
}

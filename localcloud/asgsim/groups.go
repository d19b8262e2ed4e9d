package asgsim

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Lifecycle states, exactly as Amazon EC2 Auto Scaling names them
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Instance.html,
// LifecycleState; the lifecycle is described in
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html).
const (
	StatePending            = "Pending"
	StatePendingWait        = "Pending:Wait"
	StatePendingProceed     = "Pending:Proceed"
	StateInService          = "InService"
	StateTerminating        = "Terminating"
	StateTerminatingWait    = "Terminating:Wait"
	StateTerminatingProceed = "Terminating:Proceed"
	StateTerminated         = "Terminated"
)

// Health statuses (API_Instance.html, HealthStatus).
const (
	Healthy   = "Healthy"
	Unhealthy = "Unhealthy"
)

// Processes SuspendProcesses accepts
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SuspendProcesses.html).
var processes = []string{"Launch", "Terminate", "AddToLoadBalancer", "AlarmNotification",
	"AZRebalance", "HealthCheck", "InstanceRefresh", "ReplaceUnhealthy", "ScheduledActions"}

type tag struct {
	Key, Value string
	Propagate  bool
}

type group struct {
	name, arn       string
	template        LaunchTemplateRef
	templateID      string // both id and name, whichever the group named
	templateName    string
	subnets         []string          // VPCZoneIdentifier order
	subnetAZ        map[string]string // subnet -> AZ
	min, max, want  int
	healthCheckType string
	grace           int
	cooldown        int
	tags            []tag
	hooks           map[string]*hook
	suspended       map[string]string // process -> reason
	instances       map[string]*instance
	created         time.Time
	deleting        bool
	removed         bool
	rebalancing     bool        // an AZRebalance launch is out
	rebalanceID     string      // its instance
	activities      []*activity // oldest first
	// cause is the user request that changed the desired capacity, which
	// Auto Scaling prefixes to the next activity's cause.
	cause string
}

type instance struct {
	id, subnet, az string
	instanceType   string
	template       LaunchTemplate // the resolved version it was launched from
	lifecycle      string
	health         string
	healthCause    string
	forceHealth    bool // set Unhealthy with ShouldRespectGracePeriod=false
	launched       time.Time
	inService      time.Time
	actions        []*lifecycleAction
	launchActivity *activity
	termActivity   *activity
	terminateSent  bool
}

func (s *Service) findGroup(name string) (*group, *apiError) {
	g := s.groups[name]
	if g == nil {
		return nil, errGroupNotFound(name)
	}
	return g, nil
}

// findInstance finds a managed instance by id.
func (s *Service) findInstance(id string) (*group, *instance, *apiError) {
	for _, g := range s.groups {
		if in := g.instances[id]; in != nil && in.lifecycle != StateTerminated {
			return g, in, nil
		}
	}
	return nil, nil, errInstanceNotFound(id)
}

func (g *group) suspendedProc(p string) bool { _, ok := g.suspended[p]; return ok }

// active is what counts toward desired capacity: instances launching or in
// service, not those on their way out.
func (in *instance) active() bool {
	switch in.lifecycle {
	case StatePending, StatePendingWait, StatePendingProceed, StateInService:
		return true
	}
	return false
}

func (g *group) activeCount() int {
	n := 0
	for _, in := range g.instances {
		if in.active() {
			n++
		}
	}
	return n
}

func (g *group) sortedInstances() []*instance {
	out := slices.Collect(maps.Values(g.instances))
	slices.SortFunc(out, func(a, b *instance) int { return cmp.Compare(a.id, b.id) })
	return out
}

// azs returns the group's AZs in subnet order, without repeats.
func (g *group) azs() []string {
	var out []string
	for _, sub := range g.subnets {
		if az := g.subnetAZ[sub]; !slices.Contains(out, az) {
			out = append(out, az)
		}
	}
	return out
}

// prepareGroup resolves VPCZoneIdentifier's subnets and the launch
// template with EC2 before the lock is taken.
func (s *Service) prepareGroup(ctx context.Context, q *query) *apiError {
	if vz := q.str("VPCZoneIdentifier"); vz != "" {
		for _, sub := range strings.Split(vz, ",") {
			sub = strings.TrimSpace(sub)
			if sub == "" || slices.Contains(q.subnets, sub) {
				continue
			}
			az, err := s.ec2.SubnetAZ(ctx, sub)
			if err != nil {
				// CreateAutoScalingGroup answers an unknown subnet with
				// ValidationError "The subnet ID '…' does not exist".
				return validation("The subnet ID '%s' does not exist", sub)
			}
			q.subnets = append(q.subnets, sub)
			q.azs = append(q.azs, az)
		}
	}
	ref, given, err := templateRef(*q)
	if err != nil {
		return err
	}
	if given {
		lt, err := s.ec2.LaunchTemplate(ctx, ref)
		if err != nil {
			// "You must use a valid fully-formed launch template. …" is how
			// Auto Scaling wraps EC2's answer about the template.
			return validation("You must use a valid fully-formed launch template. %s", err.Error())
		}
		q.template = &lt
	}
	return nil
}

// templateRef reads LaunchTemplate.{LaunchTemplateId,LaunchTemplateName,
// Version} (API_LaunchTemplateSpecification.html: "You must specify either
// a LaunchTemplateId or a LaunchTemplateName").
func templateRef(q query) (LaunchTemplateRef, bool, *apiError) {
	ref := LaunchTemplateRef{
		ID: q.str("LaunchTemplate.LaunchTemplateId"), Name: q.str("LaunchTemplate.LaunchTemplateName"),
		Version: q.str("LaunchTemplate.Version"),
	}
	switch {
	case ref.ID == "" && ref.Name == "" && ref.Version == "":
		return ref, false, nil
	case ref.ID != "" && ref.Name != "":
		return ref, true, validation("Valid requests must contain either launchTemplateId or LaunchTemplateName")
	case ref.ID == "" && ref.Name == "":
		return ref, true, validation("Valid requests must contain either launchTemplateId or LaunchTemplateName")
	}
	if ref.Version == "" {
		ref.Version = "$Default"
	}
	return ref, true, nil
}

// readTags reads Tags.member.N.{Key,Value,PropagateAtLaunch}
// (API_Tag.html).
func readTags(q query) ([]tag, *apiError) {
	var out []tag
	for _, n := range q.members("Tags") {
		p := member("Tags", n)
		key := q.str(p + ".Key")
		if key == "" {
			return nil, errNull("tags.member." + strconv.Itoa(n) + ".key")
		}
		if strings.HasPrefix(key, "aws:") {
			return nil, validation("Tag keys starting with 'aws:' are reserved for internal use")
		}
		prop, _ := q.bool(p + ".PropagateAtLaunch")
		t := tag{Key: key, Value: q.str(p + ".Value"), Propagate: prop}
		if i := slices.IndexFunc(out, func(o tag) bool { return o.Key == key }); i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	return out, nil
}

// checkCapacity applies CreateAutoScalingGroup's and
// UpdateAutoScalingGroup's bounds checks, with AWS's messages.
func checkCapacity(min, max, want int) *apiError {
	if min > max {
		return validation("Max bound, %d, must be greater than or equal to min bound, %d", max, min)
	}
	if want < min || want > max {
		return validation("Desired capacity:%d must be between the specified min size:%d and max size:%d", want, min, max)
	}
	return nil
}

// createGroup is CreateAutoScalingGroup
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html).
// Only launch templates (no launch configurations or mixed instances
// policies) and VPC subnets (no AvailabilityZones-only groups) are modelled.
func (s *Service) createGroup(q query, now time.Time) (any, *apiError) {
	name, err := q.required("AutoScalingGroupName", "autoScalingGroupName")
	if err != nil {
		return nil, err
	}
	if len(name) > 255 {
		return nil, validation("1 validation error detected: Value '%s' at 'autoScalingGroupName' failed to satisfy constraint: Member must have length less than or equal to 255", name)
	}
	if _, exists := s.groups[name]; exists {
		return nil, &apiError{Code: CodeAlreadyExists, Message: fmt.Sprintf("AutoScalingGroup by this name already exists - A group with the name %s already exists", name)}
	}
	if len(s.groups) >= s.opts.Limits.Groups {
		return nil, &apiError{Code: CodeLimitExceeded, Message: fmt.Sprintf("You have reached your limit of %d Auto Scaling groups. Delete unused groups or request a limit increase.", s.opts.Limits.Groups)}
	}
	if q.template == nil {
		if q.has("LaunchConfigurationName") || q.has("MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateId") {
			return nil, validation("asgsim models launch templates only (LaunchTemplate)")
		}
		return nil, validation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
	}
	if len(q.subnets) == 0 {
		return nil, validation("At least one Availability Zone or VPC Subnet is required.")
	}
	min, _, err := q.int("MinSize", "minSize")
	if err != nil {
		return nil, err
	}
	if !q.has("MinSize") {
		return nil, errNull("minSize")
	}
	max, _, err := q.int("MaxSize", "maxSize")
	if err != nil {
		return nil, err
	}
	if !q.has("MaxSize") {
		return nil, errNull("maxSize")
	}
	want, ok, err := q.int("DesiredCapacity", "desiredCapacity")
	if err != nil {
		return nil, err
	}
	if !ok {
		want = min // "If you do not specify a desired capacity, the default is the minimum size of the group."
	}
	if err := checkCapacity(int(min), int(max), int(want)); err != nil {
		return nil, err
	}
	hc := cmp.Or(q.str("HealthCheckType"), "EC2")
	if hc != "EC2" && hc != "ELB" {
		return nil, validation("Health check type must be one of: [EC2, ELB, EBS, VPC_LATTICE]")
	}
	grace, _, err := q.int("HealthCheckGracePeriod", "healthCheckGracePeriod")
	if err != nil {
		return nil, err
	}
	cooldown, ok, err := q.int("DefaultCooldown", "defaultCooldown")
	if err != nil {
		return nil, err
	}
	if !ok {
		cooldown = 300
	}
	tags, err := readTags(q)
	if err != nil {
		return nil, err
	}
	hooks := map[string]*hook{}
	for _, n := range q.members("LifecycleHookSpecificationList") {
		h, err := readHook(q, member("LifecycleHookSpecificationList", n)+".", name)
		if err != nil {
			return nil, err
		}
		hooks[h.name] = h
	}
	if len(hooks) > s.opts.Limits.HooksPerGroup {
		return nil, errHookLimit(s.opts.Limits.HooksPerGroup)
	}
	g := &group{
		name: name, arn: fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:%s:autoScalingGroupName/%s", s.opts.Region, accountID, s.uuidLocked(), name),
		template: templateRefFrom(q), subnets: q.subnets, subnetAZ: map[string]string{},
		min: int(min), max: int(max), want: int(want), healthCheckType: hc, grace: int(grace), cooldown: int(cooldown),
		tags: tags, hooks: hooks, suspended: map[string]string{}, instances: map[string]*instance{}, created: now,
	}
	for i, sub := range q.subnets {
		g.subnetAZ[sub] = q.azs[i]
	}
	g.templateID, g.templateName = q.template.ID, q.template.Name
	if want > 0 {
		g.cause = fmt.Sprintf("At %s a user request created an AutoScalingGroup changing the desired capacity from 0 to %d.", causeTime(now), want)
	}
	s.groups[name] = g
	return nil, nil
}

func templateRefFrom(q query) LaunchTemplateRef {
	ref, _, _ := templateRef(q)
	return ref
}

// updateGroup is UpdateAutoScalingGroup
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html).
// "If you specify a new value for MinSize without specifying a value for
// DesiredCapacity, and the new MinSize is larger than the current size of
// the group, this sets the group's DesiredCapacity to the new MinSize
// value" (and likewise for MaxSize).
func (s *Service) updateGroup(q query, now time.Time) (any, *apiError) {
	name, err := q.required("AutoScalingGroupName", "autoScalingGroupName")
	if err != nil {
		return nil, err
	}
	g, err := s.findGroup(name)
	if err != nil {
		return nil, err
	}
	if g.deleting {
		return nil, &apiError{Code: CodeScalingActivityInProgress, Message: "AutoScalingGroup is pending delete."}
	}
	min, max, want := g.min, g.max, g.want
	if v, ok, err := q.int("MinSize", "minSize"); err != nil {
		return nil, err
	} else if ok {
		min = int(v)
	}
	if v, ok, err := q.int("MaxSize", "maxSize"); err != nil {
		return nil, err
	} else if ok {
		max = int(v)
	}
	v, wantGiven, err := q.int("DesiredCapacity", "desiredCapacity")
	if err != nil {
		return nil, err
	}
	if wantGiven {
		want = int(v)
	} else {
		want = clamp(want, min, max)
	}
	if err := checkCapacity(min, max, want); err != nil {
		return nil, err
	}
	hc := g.healthCheckType
	if v := q.str("HealthCheckType"); v != "" {
		if v != "EC2" && v != "ELB" {
			return nil, validation("Health check type must be one of: [EC2, ELB, EBS, VPC_LATTICE]")
		}
		hc = v
	}
	grace := g.grace
	if v, ok, err := q.int("HealthCheckGracePeriod", "healthCheckGracePeriod"); err != nil {
		return nil, err
	} else if ok {
		grace = int(v)
	}
	if q.template != nil {
		g.template = templateRefFrom(q)
		g.templateID, g.templateName = q.template.ID, q.template.Name
	}
	if len(q.subnets) > 0 {
		g.subnets, g.subnetAZ = q.subnets, map[string]string{}
		for i, sub := range q.subnets {
			g.subnetAZ[sub] = q.azs[i]
		}
	}
	if want != g.want {
		g.cause = fmt.Sprintf("At %s a user request update of AutoScalingGroup constraints to min: %d, max: %d, desired: %d changing the desired capacity from %d to %d.",
			causeTime(now), min, max, want, g.want, want)
	}
	g.min, g.max, g.want, g.healthCheckType, g.grace = min, max, want, hc, grace
	return nil, nil
}

func clamp(v, lo, hi int) int { return max(lo, min(hi, v)) }

// deleteGroup is DeleteAutoScalingGroup
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DeleteAutoScalingGroup.html):
// "If the group has instances or scaling activities in progress, you must
// specify the option to force the deletion in order for it to succeed."
// ForceDelete "deletes the group along with all instances associated with
// the group, without waiting for all instances to be terminated. This
// action also deletes any outstanding lifecycle actions": the group shows
// Status "Delete in progress" until its instances are gone.
func (s *Service) deleteGroup(q query, now time.Time) (any, *apiError) {
	name, err := q.required("AutoScalingGroupName", "autoScalingGroupName")
	if err != nil {
		return nil, err
	}
	g, err := s.findGroup(name)
	if err != nil {
		return nil, err
	}
	force, _ := q.bool("ForceDelete")
	if !force {
		for _, a := range g.activities {
			if a.inProgress() {
				return nil, &apiError{Code: CodeScalingActivityInProgress, Message: "You cannot delete an AutoScalingGroup while there are scaling activities in progress for that group."}
			}
		}
		if len(g.instances) > 0 {
			return nil, &apiError{Code: CodeResourceInUse, Message: "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group."}
		}
		s.removeGroup(g)
		return nil, nil
	}
	g.deleting = true
	g.want, g.min, g.max = 0, 0, 0
	for _, in := range g.sortedInstances() {
		in.actions = nil
		if in.lifecycle == StateTerminatingProceed || in.lifecycle == StateTerminated {
			continue
		}
		s.startTermination(g, in, now, fmt.Sprintf("At %s an instance was taken out of service in response to a user request to delete the AutoScalingGroup.", causeTime(now)), true)
	}
	if len(g.instances) == 0 {
		s.removeGroup(g)
	}
	return nil, nil
}

func (s *Service) removeGroup(g *group) {
	delete(s.groups, g.name)
	g.removed = true
	s.deleted = append(s.deleted, g)
}

type xmlLaunchTemplate struct {
	ID      string `xml:"LaunchTemplateId"`
	Name    string `xml:"LaunchTemplateName"`
	Version string `xml:"Version"`
}

type xmlGroupInstance struct {
	InstanceID       string            `xml:"InstanceId"`
	InstanceType     string            `xml:"InstanceType,omitempty"`
	AZ               string            `xml:"AvailabilityZone"`
	LifecycleState   string            `xml:"LifecycleState"`
	HealthStatus     string            `xml:"HealthStatus"`
	LaunchTemplate   xmlLaunchTemplate `xml:"LaunchTemplate"`
	ProtectedFromSIn bool              `xml:"ProtectedFromScaleIn"`
}

type xmlSuspended struct {
	ProcessName      string `xml:"ProcessName"`
	SuspensionReason string `xml:"SuspensionReason"`
}

type xmlTag struct {
	ResourceID        string `xml:"ResourceId"`
	ResourceType      string `xml:"ResourceType"`
	Key               string `xml:"Key"`
	Value             string `xml:"Value"`
	PropagateAtLaunch bool   `xml:"PropagateAtLaunch"`
}

type xmlGroup struct {
	Name              string             `xml:"AutoScalingGroupName"`
	ARN               string             `xml:"AutoScalingGroupARN"`
	LaunchTemplate    xmlLaunchTemplate  `xml:"LaunchTemplate"`
	MinSize           int                `xml:"MinSize"`
	MaxSize           int                `xml:"MaxSize"`
	DesiredCapacity   int                `xml:"DesiredCapacity"`
	DefaultCooldown   int                `xml:"DefaultCooldown"`
	AZs               []string           `xml:"AvailabilityZones>member"`
	LoadBalancerNames struct{}           `xml:"LoadBalancerNames"`
	TargetGroupARNs   struct{}           `xml:"TargetGroupARNs"`
	HealthCheckType   string             `xml:"HealthCheckType"`
	Grace             int                `xml:"HealthCheckGracePeriod"`
	Instances         []xmlGroupInstance `xml:"Instances>member"`
	CreatedTime       string             `xml:"CreatedTime"`
	Suspended         []xmlSuspended     `xml:"SuspendedProcesses>member"`
	VPCZoneIdentifier string             `xml:"VPCZoneIdentifier"`
	EnabledMetrics    struct{}           `xml:"EnabledMetrics"`
	Status            string             `xml:"Status,omitempty"`
	Tags              []xmlTag           `xml:"Tags>member"`
	TermPolicies      []string           `xml:"TerminationPolicies>member"`
	NewProtected      bool               `xml:"NewInstancesProtectedFromScaleIn"`
	ServiceLinkedRole string             `xml:"ServiceLinkedRoleARN"`
}

func (s *Service) xmlGroup(g *group) xmlGroup {
	x := xmlGroup{
		Name: g.name, ARN: g.arn,
		LaunchTemplate: xmlLaunchTemplate{ID: g.templateID, Name: g.templateName, Version: g.template.Version},
		MinSize:        g.min, MaxSize: g.max, DesiredCapacity: g.want, DefaultCooldown: g.cooldown,
		AZs: g.azs(), HealthCheckType: g.healthCheckType, Grace: g.grace, CreatedTime: xmlTime(g.created),
		VPCZoneIdentifier: strings.Join(g.subnets, ","), TermPolicies: []string{"Default"},
		ServiceLinkedRole: fmt.Sprintf("arn:aws:iam::%s:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", accountID),
	}
	if g.deleting {
		x.Status = "Delete in progress"
	}
	for _, in := range g.sortedInstances() {
		x.Instances = append(x.Instances, xmlGroupInstance{
			InstanceID: in.id, InstanceType: in.instanceType, AZ: in.az, LifecycleState: in.lifecycle, HealthStatus: in.health,
			LaunchTemplate: xmlLaunchTemplate{ID: in.template.ID, Name: in.template.Name, Version: in.template.Version},
		})
	}
	for _, p := range slices.Sorted(maps.Keys(g.suspended)) {
		x.Suspended = append(x.Suspended, xmlSuspended{ProcessName: p, SuspensionReason: g.suspended[p]})
	}
	for _, t := range slices.SortedFunc(slices.Values(g.tags), func(a, b tag) int { return cmp.Compare(a.Key, b.Key) }) {
		x.Tags = append(x.Tags, xmlTag{ResourceID: g.name, ResourceType: "auto-scaling-group", Key: t.Key, Value: t.Value, PropagateAtLaunch: t.Propagate})
	}
	return x
}

// describeGroups is DescribeAutoScalingGroups
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html):
// names that match no group are left out without an error; Filters take
// tag:<key>, tag-key and tag-value; MaxRecords defaults to 50, at most 100.
func (s *Service) describeGroups(q query, _ time.Time) (any, *apiError) {
	names := q.list("AutoScalingGroupNames")
	type filter struct {
		name   string
		values []string
	}
	var filters []filter
	for _, n := range q.members("Filters") {
		p := member("Filters", n)
		f := filter{name: q.str(p + ".Name"), values: q.list(p + ".Values")}
		if f.name != "tag-key" && f.name != "tag-value" && !strings.HasPrefix(f.name, "tag:") {
			return nil, validation("Filter type %s is not correct. Allowed Filter types are: tag-key, tag-value, tag:<key>", f.name)
		}
		filters = append(filters, f)
	}
	match := func(g *group) bool {
		for _, f := range filters {
			ok := false
			for _, t := range g.tags {
				switch {
				case f.name == "tag-key":
					ok = ok || slices.Contains(f.values, t.Key)
				case f.name == "tag-value":
					ok = ok || slices.Contains(f.values, t.Value)
				default:
					ok = ok || (t.Key == strings.TrimPrefix(f.name, "tag:") && slices.Contains(f.values, t.Value))
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}
	var list []*group
	for _, name := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[name]
		if (len(names) == 0 || slices.Contains(names, name)) && match(g) {
			list = append(list, g)
		}
	}
	page, next, err := paginate(q, list, func(g *group) string { return g.name }, 50, 100)
	if err != nil {
		return nil, err
	}
	out := struct {
		Groups    []xmlGroup `xml:"AutoScalingGroups>member"`
		NextToken string     `xml:"NextToken,omitempty"`
	}{NextToken: next}
	out.Groups = []xmlGroup{}
	for _, g := range page {
		out.Groups = append(out.Groups, s.xmlGroup(g))
	}
	return out, nil
}

// paginate cuts one page by MaxRecords (default def, at most hi) after
// NextToken (the last key of the previous page).
func paginate[T any](q query, items []T, key func(T) string, def, hi int64) ([]T, string, *apiError) {
	maxRecords, ok, err := q.int("MaxRecords", "maxRecords")
	if err != nil {
		return nil, "", err
	}
	if !ok {
		maxRecords = def
	}
	if maxRecords < 1 || maxRecords > hi {
		return nil, "", errRange("maxRecords", maxRecords, 1, hi)
	}
	if tok := q.str("NextToken"); tok != "" {
		after, derr := base64.RawURLEncoding.DecodeString(tok)
		if derr != nil {
			return nil, "", validation("Invalid NextToken value.")
		}
		i := slices.IndexFunc(items, func(t T) bool { return key(t) == string(after) })
		if i < 0 {
			return nil, "", validation("Invalid NextToken value.")
		}
		items = items[i+1:]
	}
	if int64(len(items)) <= maxRecords {
		return items, "", nil
	}
	items = items[:maxRecords]
	return items, base64.RawURLEncoding.EncodeToString([]byte(key(items[len(items)-1]))), nil
}

// describeInstances is DescribeAutoScalingInstances
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingInstances.html).
// Its HealthStatus is upper case (HEALTHY, UNHEALTHY), unlike
// DescribeAutoScalingGroups', as AWS answers it. Unknown ids are left out.
func (s *Service) describeInstances(q query, _ time.Time) (any, *apiError) {
	ids := q.list("InstanceIds")
	type row struct {
		g  *group
		in *instance
	}
	var rows []row
	for _, g := range s.groups {
		for _, in := range g.instances {
			if len(ids) == 0 || slices.Contains(ids, in.id) {
				rows = append(rows, row{g, in})
			}
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.in.id, b.in.id) })
	page, next, err := paginate(q, rows, func(r row) string { return r.in.id }, 50, 50)
	if err != nil {
		return nil, err
	}
	type xmlASI struct {
		InstanceID     string            `xml:"InstanceId"`
		InstanceType   string            `xml:"InstanceType,omitempty"`
		Group          string            `xml:"AutoScalingGroupName"`
		AZ             string            `xml:"AvailabilityZone"`
		LifecycleState string            `xml:"LifecycleState"`
		HealthStatus   string            `xml:"HealthStatus"`
		LaunchTemplate xmlLaunchTemplate `xml:"LaunchTemplate"`
		Protected      bool              `xml:"ProtectedFromScaleIn"`
	}
	out := struct {
		Instances []xmlASI `xml:"AutoScalingInstances>member"`
		NextToken string   `xml:"NextToken,omitempty"`
	}{Instances: []xmlASI{}, NextToken: next}
	for _, r := range page {
		out.Instances = append(out.Instances, xmlASI{
			InstanceID: r.in.id, InstanceType: r.in.instanceType, Group: r.g.name, AZ: r.in.az, LifecycleState: r.in.lifecycle,
			HealthStatus:   strings.ToUpper(r.in.health),
			LaunchTemplate: xmlLaunchTemplate{ID: r.in.template.ID, Name: r.in.template.Name, Version: r.in.template.Version},
		})
	}
	return out, nil
}

// setDesiredCapacity is SetDesiredCapacity
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetDesiredCapacity.html).
// HonorCooldown: with it, the call fails with ScalingActivityInProgress
// while a scaling activity is in progress or the group's cooldown since
// the last one has not elapsed.
func (s *Service) setDesiredCapacity(q query, now time.Time) (any, *apiError) {
	name, err := q.required("AutoScalingGroupName", "autoScalingGroupName")
	if err != nil {
		return nil, err
	}
	if !q.has("DesiredCapacity") {
		return nil, errNull("desiredCapacity")
	}
	want, _, err := q.int("DesiredCapacity", "desiredCapacity")
	if err != nil {
		return nil, err
	}
	g, err := s.findGroup(name)
	if err != nil {
		return nil, err
	}
	switch {
	case int(want) > g.max:
		return nil, validation("New SetDesiredCapacity value %d is above max value %d for the AutoScalingGroup.", want, g.max)
	case int(want) < g.min:
		return nil, validation("New SetDesiredCapacity value %d is below min value %d for the AutoScalingGroup.", want, g.min)
	}
	if honor, _ := q.bool("HonorCooldown"); honor {
		for _, a := range g.activities {
			if a.inProgress() || (!a.end.IsZero() && now.Sub(a.end) < time.Duration(g.cooldown)*time.Second) {
				return nil, &apiError{Code: CodeScalingActivityInProgress, Message: "Scaling activity in progress or the cooldown period has not expired."}
			}
		}
	}
	if int(want) != g.want {
		g.cause = fmt.Sprintf("At %s a user request explicitly set group desired capacity changing the desired capacity from %d to %d.", causeTime(now), g.want, want)
		g.want = int(want)
	}
	return nil, nil
}

// terminateInstance is TerminateInstanceInAutoScalingGroup
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_TerminateInstanceInAutoScalingGroup.html).
// Without ShouldDecrementDesiredCapacity the group launches a replacement.
// Terminating lifecycle hooks run.
func (s *Service) terminateInstance(q query, now time.Time) (any, *apiError) {
	id, err := q.required("InstanceId", "instanceId")
	if err != nil {
		return nil, err
	}
	if !q.has("ShouldDecrementDesiredCapacity") {
		return nil, errNull("shouldDecrementDesiredCapacity")
	}
	dec, _ := q.bool("ShouldDecrementDesiredCapacity")
	g, in, err := s.findInstance(id)
	if err != nil {
		return nil, err
	}
	if !in.active() {
		// Already on its way out: AWS answers with the activity that is
		// terminating it.
		return terminateResult(g, in.termActivity), nil
	}
	cause := fmt.Sprintf("At %s instance %s was taken out of service in response to a user request.", causeTime(now), id)
	if dec {
		if g.want <= g.min {
			return nil, validation("Currently, desiredSize equals minSize (%d). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.", g.min)
		}
		cause = fmt.Sprintf("At %s instance %s was taken out of service in response to a user request, shrinking the capacity from %d to %d.", causeTime(now), id, g.want, g.want-1)
		g.want--
	}
	a := s.startTermination(g, in, now, cause, false)
	return terminateResult(g, a), nil
}

func terminateResult(g *group, a *activity) any {
	if a == nil {
		return struct{}{}
	}
	return struct {
		Activity xmlActivity `xml:"Activity"`
	}{a.xml(g)}
}

// setInstanceHealth is SetInstanceHealth
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceHealth.html).
// With ShouldRespectGracePeriod (the default) a status set within the
// group's health check grace period is ignored, as the grace period
// "specifies the minimum amount of time (in seconds) to keep a new instance
// in service before terminating it if it's found to be unhealthy"
// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/health-check-grace-period.html).
func (s *Service) setInstanceHealth(q query, now time.Time) (any, *apiError) {
	id, err := q.required("InstanceId", "instanceId")
	if err != nil {
		return nil, err
	}
	status, err := q.required("HealthStatus", "healthStatus")
	if err != nil {
		return nil, err
	}
	if status != Healthy && status != Unhealthy {
		return nil, validation("Valid health status values are Healthy and Unhealthy")
	}
	respect, given := q.bool("ShouldRespectGracePeriod")
	if !given {
		respect = true
	}
	g, in, err := s.findInstance(id)
	if err != nil {
		return nil, err
	}
	if respect && g.withinGrace(in, now) {
		s.log.Debug("SetInstanceHealth within the grace period: ignored", "group", g.name, "instance", id, "status", status)
		return nil, nil
	}
	if in.health == Unhealthy && status == Healthy && in.lifecycle == StateInService {
		in.health, in.healthCause = Healthy, ""
		return nil, nil
	}
	if status == Unhealthy && in.health != Unhealthy {
		in.health, in.forceHealth = Unhealthy, !respect
		in.healthCause = fmt.Sprintf("At %s an instance was taken out of service in response to a user health-check.", causeTime(now))
	}
	return nil, nil
}

// withinGrace reports whether an instance is still in its health check
// grace period, counted from when it came into service (an instance not yet
// in service is in it too).
func (g *group) withinGrace(in *instance, now time.Time) bool {
	if in.lifecycle != StateInService {
		return in.active()
	}
	return now.Before(in.inService.Add(time.Duration(g.grace) * time.Second))
}

// suspendProcesses is SuspendProcesses
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SuspendProcesses.html):
// no ScalingProcesses suspends them all.
func (s *Service) suspendProcesses(q query, now time.Time) (any, *apiError) {
	g, procs, err := s.processArgs(q)
	if err != nil {
		return nil, err
	}
	for _, p := range procs {
		if _, ok := g.suspended[p]; !ok {
			g.suspended[p] = fmt.Sprintf("User suspended at %s", causeTime(now))
		}
	}
	return nil, nil
}

// resumeProcesses is ResumeProcesses
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_ResumeProcesses.html).
func (s *Service) resumeProcesses(q query, _ time.Time) (any, *apiError) {
	g, procs, err := s.processArgs(q)
	if err != nil {
		return nil, err
	}
	for _, p := range procs {
		delete(g.suspended, p)
	}
	return nil, nil
}

func (s *Service) processArgs(q query) (*group, []string, *apiError) {
	name, err := q.required("AutoScalingGroupName", "autoScalingGroupName")
	if err != nil {
		return nil, nil, err
	}
	g, err := s.findGroup(name)
	if err != nil {
		return nil, nil, err
	}
	procs := q.list("ScalingProcesses")
	for _, p := range procs {
		if !slices.Contains(processes, p) {
			return nil, nil, validation("Process names are invalid: %s", p)
		}
	}
	if len(procs) == 0 {
		procs = processes
	}
	return g, procs, nil
}

// InstanceInfo is what the Go API tells about a managed instance, for the
// local cloud (its IMDS serves autoscaling/target-lifecycle-state).
type InstanceInfo struct {
	ID, Group, AZ, Subnet string
	LifecycleState        string // Pending, Pending:Wait, ..., as DescribeAutoScalingInstances
	HealthStatus          string // Healthy | Unhealthy
	// TargetLifecycleState is what IMDS's
	// /latest/meta-data/autoscaling/target-lifecycle-state answers: the
	// state the instance is moving to, InService while it launches (also in
	// Pending:Wait) and Terminated once it is being terminated
	// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html).
	TargetLifecycleState string
	Template             LaunchTemplate
}

// Instance returns a managed instance by id.
func (s *Service) Instance(id string) (InstanceInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, in, err := s.findInstance(id)
	if err != nil {
		return InstanceInfo{}, false
	}
	target := StateInService
	if !in.active() {
		target = StateTerminated
	}
	return InstanceInfo{ID: in.id, Group: g.name, AZ: in.az, Subnet: in.subnet, LifecycleState: in.lifecycle,
		HealthStatus: in.health, TargetLifecycleState: target, Template: in.template}, true
}

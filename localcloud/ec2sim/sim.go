// Package ec2sim is a wire-level simulator of the EC2 Query API, faithful
// enough that the real aws-sdk-go-v2 EC2 client can drive it over HTTP: the
// calls zkaas makes (Describe/Attach/Detach for network interfaces and
// volumes, DescribeInstances, DescribeSubnets, CreateTags,
// ModifyNetworkInterfaceAttribute; for the operator command the creates,
// security groups and launch templates), EC2's XML shapes and error codes, the
// attach/detach state machines, instance lifecycle, and the things that make
// real EC2 hard to program against: API latency, attach delays, eventual
// consistency of Describe, per-account throttling and injected faults
// (throttling, attachments stuck in attaching, lost attach races).
//
// The knobs, all off in the zero Options:
//   - Latency: round trips and transition delays.
//   - Consistency and Lag: how stale Describe is, per API
//     (Lag.Instances, Lag.Volumes, Lag.NetworkInterfaces), whether each
//     answer picks its own staleness (Lag.Random: not monotonic), and how
//     long a new id is unknown to mutations (Lag.NewIDs). SetLag changes
//     them at run time.
//   - Faults (SetFaults): throttling, stuck attaches, lost races, forced
//     detaches that lose the ENI's device index or hold the volume's
//     device name, the code an in-use ENI answers with.
//   - Per resource: StickNextAttach, HideNextAttach.
//   - Hooks: device plug/unplug around the attach state machine, and
//     ENIAttachedInAPI/VolumeAttachedInAPI after the API state changed.
//   - Instance types (Options.InstanceType, RunInstanceOfType) cap the
//     network interfaces (AttachmentLimitExceeded).
//   - Instance lifecycle beyond launch and terminate: StopInstance,
//     StartInstance, RebootInstance (they release what forced detaches
//     left behind).
//
// The admin API (admin.go) and the ec2sim command's flags expose the same.
//
// The operator command's calls (create.go, securitygroup.go, describe.go):
// CreateNetworkInterface (fixed address checked against the subnet and its
// reserved addresses, security groups, tags) and DeleteNetworkInterface;
// CreateVolume (gp2/gp3/io1/io2/st1/sc1/standard with AWS's size, IOPS and
// throughput bounds, encryption and KMS key, snapshots registered with
// AddSnapshot; creating, then available after SetVolumeCreateDelay) and
// DeleteVolume; VPC security groups and their rules (IPv4 CIDRs and group
// peers; the VPC's default group); DescribeVpcs (the one VPC, not a
// default VPC), DescribeInstanceTypes (the simulator's table, with vCPUs,
// memory and architecture), DescribeImages (a registry, RegisterImage);
// DryRun everywhere, and a permission model (Deny, Allow) answering
// UnauthorizedOperation. Not modelled there: IPv6, prefix lists, secondary
// addresses, ModifyVolume, snapshots as resources, KMS key existence; and
// security groups, images and instance types are read without lag.
//
// A Sim is an http.Handler. EC2 calls are POSTed to any path; paths under
// /_sim/ are a small JSON admin API mirroring the Go admin methods
// (CreateSubnet, RunInstance, ...) for the standalone command.
package ec2sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configures a Sim. The zero value is a usable simulator with no
// latency, no lag, no faults and EC2's default throttling.
type Options struct {
	Region      string        // default "us-east-1"
	Latency     Latency       // all zero: instant
	Consistency time.Duration // Describe* shows state as it was this long ago
	Lag         Lag           // per-API, random and mutation lags, on top of Consistency
	// InstanceType is what RunInstance launches; "" is DefaultInstanceType.
	// New panics on a type the simulator does not know (MaxNetworkInterfaces).
	InstanceType string
	Throttle     *Throttle // nil = DefaultThrottle; &Throttle{Disabled: true} switches it off
	Faults       Faults
	Hooks        Hooks
	Seed         uint64 // seeds ids, MACs, jitter and faults: same seed, same run
	Logger       *slog.Logger
}

// Latency is the timing model. RoundTrip+uniform[0,RoundTripJitter) is spent
// on every API call, half before the call takes effect and half after (the
// request and the response in flight). The others are how long a
// transition takes once started.
type Latency struct {
	RoundTrip, RoundTripJitter time.Duration
	ENIAttach, ENIDetach       time.Duration // attaching→attached, detaching→available
	VolumeAttach, VolumeDetach time.Duration
	InstanceStart              time.Duration // pending→running; 0 launches instances already running
	InstanceStop               time.Duration // stopping→stopped (StopInstance)
	InstanceTerminate          time.Duration // shutting-down→terminated
}

// Lag refines Consistency. EC2's "Eventual consistency in the Amazon EC2
// API" (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html):
// "the result of an API command you run that affects your Amazon EC2
// resources might not be immediately visible to all subsequent commands you
// run", and "if you run a command to modify or describe the resource that
// you just created, its ID might not have propagated throughout the system,
// and you will get an error responding that the resource does not exist."
// The zero value adds nothing: every Describe shows the state exactly
// Consistency ago, and mutations see the true state.
type Lag struct {
	// Instances, Volumes and NetworkInterfaces are how stale
	// DescribeInstances (with the interfaces and block devices it embeds),
	// DescribeVolumes and DescribeNetworkInterfaces are, each on its own;
	// 0 means Consistency. So DescribeInstances may show a volume attached
	// while DescribeVolumes still shows it attaching, or the other way round.
	Instances         time.Duration `json:"instances"`
	Volumes           time.Duration `json:"volumes"`
	NetworkInterfaces time.Duration `json:"networkInterfaces"`
	// Random makes each answer (and each NewIDs check) pick its own
	// staleness, uniformly between none and the maximum, instead of always
	// the maximum: Describe is then not monotonic, a later call may show an
	// older state than an earlier one (it reached another replica).
	Random bool `json:"random"`
	// NewIDs: for this long after an ENI, volume, instance or subnet was
	// created, mutations naming it (AttachNetworkInterface,
	// ModifyNetworkInterfaceAttribute, AttachVolume, DetachVolume,
	// CreateTags; the instance of an attach too) answer its
	// Invalid....NotFound error, as Describe does within its lag. The Go
	// admin API is not affected.
	NewIDs time.Duration `json:"newIds"`
}

// api names the Describe views that lag independently.
type api int

const (
	apiInstances api = iota
	apiVolumes
	apiENIs
	apiSubnets
)

// Faults are injected with the given probabilities, drawn from the seeded
// generator.
type Faults struct {
	// ThrottleRate: any API call fails with RequestLimitExceeded.
	ThrottleRate float64 `json:"throttleRate"`
	// StuckAttachRate: an attach is accepted but stays attaching until it is
	// detached (EC2's stuck-attaching volumes and ENIs).
	StuckAttachRate float64 `json:"stuckAttachRate"`
	// InUseRaceRate: an attach of an available resource fails as if a
	// concurrent attacher had won (InvalidNetworkInterface.InUse or
	// VolumeInUse), without changing any state.
	InUseRaceRate float64 `json:"inUseRaceRate"`
	// ForcedDetachIndexLossRate: a DetachNetworkInterface with Force
	// leaves the device index unusable on that instance for as long as it
	// lives or until it is stopped (StopInstance): an attach at that index
	// answers as if an interface were there (InvalidParameterValue "...
	// already has an interface attached at device index ..."), and the
	// lost index counts toward the instance type's interface limit.
	// DetachNetworkInterface's documentation
	// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DetachNetworkInterface.html,
	// Force): "If you use the Force parameter to detach a network
	// interface, you might not be able to attach a different network
	// interface to the same index on the instance without first stopping
	// and starting the instance."
	ForcedDetachIndexLossRate float64 `json:"forcedDetachIndexLossRate"`
	// ForcedDetachDeviceHoldRate: a DetachVolume with Force leaves the
	// device name held by the instance's block device driver: a later
	// attach of any volume to that instance under that name (or its
	// sd/xvd twin) is accepted but stays attaching until it is detached;
	// another name works. RebootInstance, StopInstance or termination
	// releases the names. AWS's knowledge center article "Why is my Amazon EBS volume
	// stuck in the attaching state?"
	// (https://repost.aws/knowledge-center/ebs-stuck-attaching): "If a
	// user has initiated a forced detach of an Amazon EBS volume, the block
	// device driver of the Amazon EC2 instance might not immediately
	// release the device name for reuse. Attempting to use that device
	// name when attaching a volume causes the volume to be stuck in the
	// attaching state. You must either choose a different device name or
	// reboot the instance."
	ForcedDetachDeviceHoldRate float64 `json:"forcedDetachDeviceHoldRate"`
	// ENIInUseCodeRate: an attach of an ENI that is attached (or attaching,
	// or detaching) answers InvalidNetworkInterface.InUse instead of
	// InvalidParameterValue; both carry "Interface: [eni-...] in use.".
	// EC2 documents both (see errENIInUse). 0 always answers
	// InvalidParameterValue, 1 always InvalidNetworkInterface.InUse, in
	// between a seeded draw per answer. Injected races (InUseRaceRate)
	// always answer InvalidNetworkInterface.InUse.
	ENIInUseCodeRate float64 `json:"eniInUseCodeRate"`
}

// Hooks are called, outside the simulator's lock, when an attachment made
// by the API finishes or goes away; they let a local cloud plug in real
// devices. The primary ENI and root volume an instance is launched with do
// not fire hooks.
type Hooks struct {
	// ENIAttached runs as an ENI attachment would become attached; an error
	// leaves it attaching (and is logged), like a stuck attachment.
	ENIAttached func(ENIEvent) error
	// ENIDetached runs after a secondary ENI left its instance (detached, or
	// deleted with it on termination).
	ENIDetached func(ENIEvent)
	// VolumeAttached and VolumeDetached are the same for volumes.
	VolumeAttached func(VolumeEvent) error
	VolumeDetached func(VolumeEvent)
	// ENIAttachedInAPI and VolumeAttachedInAPI run just after an attachment
	// became attached in the API's true state (after ENIAttached or
	// VolumeAttached succeeded; Describe may show it later, see Lag). A
	// local cloud that wants the device to appear after the API says
	// attached plugs it from here (and returns nil at once from
	// ENIAttached/VolumeAttached); one that wants it before plugs in
	// ENIAttached/VolumeAttached and waits there.
	ENIAttachedInAPI    func(ENIEvent)
	VolumeAttachedInAPI func(VolumeEvent)
}

// ENIEvent describes an ENI attachment for Hooks.
type ENIEvent struct {
	NetworkInterfaceID string
	MAC                string
	PrivateIP          string
	InstanceID         string
	DeviceIndex        int32
	// Forced (ENIDetached only): the detach was forced. EC2 warns that then
	// "the instance metadata might not get updated. This means that the
	// attributes associated with the detached network interface might still
	// be visible. The instance metadata will get updated when you stop and
	// start the instance." (DetachNetworkInterface, Force): an IMDS model
	// may keep serving the interface.
	Forced bool
}

// VolumeEvent describes a volume attachment for Hooks.
type VolumeEvent struct {
	VolumeID   string
	InstanceID string
	Device     string
	Forced     bool // VolumeDetached only: the detach was forced
}

// Stats counts API calls (not admin calls).
type Stats struct {
	Total  int            `json:"total"`
	Calls  map[string]int `json:"calls"`  // by Action, failed calls included
	Errors map[string]int `json:"errors"` // by error code
}

// Sim is one simulated EC2 region of one account.
type Sim struct {
	opts  Options
	log   *slog.Logger
	admin http.Handler

	mu         sync.Mutex
	vpcID      string
	subnets    *store[Subnet]
	instances  *store[Instance]
	enis       *store[NetworkInterface]
	volumes    *store[Volume]
	faults     Faults
	lag        Lag
	retain     time.Duration              // how far back a Describe can look: the largest lag ever configured
	stick      map[string]bool            // resource ids whose next attach sticks
	hide       map[string]bool            // resource ids whose next attach Describe never shows
	lostIndex  map[string]map[int32]bool  // instance id -> device indexes a forced detach made unusable
	heldDevice map[string]map[string]bool // instance id -> device slots a forced detach left held
	lt         *ltState                   // launch templates (launchtemplate.go)
	limiter    *limiter
	stats      Stats
	gen        uint64 // volume attachment generations

	// Separate streams so that, for one seed, ids do not depend on how many
	// faults were drawn and faults do not depend on jitter.
	idRNG, faultRNG, jitterRNG, lagRNG *rand.Rand

	timers   map[uint64]*time.Timer
	timerSeq uint64
	pending  sync.WaitGroup
	closed   bool
}

// New returns a simulator with one VPC and nothing in it.
func New(opts Options) *Sim {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.InstanceType == "" {
		opts.InstanceType = DefaultInstanceType
	}
	if err := checkInstanceType(opts.InstanceType); err != nil {
		panic(fmt.Sprintf("ec2sim.New: Options.InstanceType: %v", err))
	}
	stream := func(n uint64) *rand.Rand { return rand.New(rand.NewPCG(opts.Seed, n)) }
	s := &Sim{
		opts:       opts,
		log:        opts.Logger,
		subnets:    newStore[Subnet](),
		instances:  newStore[Instance](),
		enis:       newStore[NetworkInterface](),
		volumes:    newStore[Volume](),
		faults:     opts.Faults,
		stick:      map[string]bool{},
		hide:       map[string]bool{},
		lostIndex:  map[string]map[int32]bool{},
		heldDevice: map[string]map[string]bool{},
		limiter:    newLimiter(opts.Throttle, time.Now()),
		stats:      Stats{Calls: map[string]int{}, Errors: map[string]int{}},
		idRNG:      stream(1),
		faultRNG:   stream(2),
		jitterRNG:  stream(3),
		lagRNG:     stream(4),
		lag:        opts.Lag,
		timers:     map[uint64]*time.Timer{},
	}
	s.retain = maxLag(opts.Consistency, opts.Lag)
	s.vpcID = s.newID("vpc-")
	s.admin = s.adminHandler()
	return s
}

// Close stops every pending transition and waits for running ones (and
// their hooks) to finish. The Sim must not be used afterwards.
func (s *Sim) Close() {
	s.mu.Lock()
	s.closed = true
	for key, t := range s.timers {
		if t.Stop() {
			s.pending.Done()
		}
		delete(s.timers, key)
	}
	s.mu.Unlock()
	s.pending.Wait()
}

// after runs fn once d has passed, unless the Sim is closed first. Call
// with s.mu held; fn runs without it.
func (s *Sim) after(d time.Duration, fn func()) {
	if s.closed {
		return
	}
	s.timerSeq++
	key := s.timerSeq
	s.pending.Add(1)
	s.timers[key] = time.AfterFunc(d, func() {
		defer s.pending.Done()
		s.mu.Lock()
		delete(s.timers, key)
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			fn()
		}
	})
}

// SetFaults replaces the fault probabilities.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// StickNextAttach makes the next attach of this ENI or volume stay
// attaching until it is detached.
func (s *Sim) StickNextAttach(resourceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stick[resourceID] = true
}

// HideNextAttach makes the next attach of this ENI or volume invisible to
// every Describe call for as long as that attachment lasts: they show the
// resource available and unattached (and DescribeInstances without it),
// while the true state proceeds (attached, hooks fire, another attach
// answers in use). It models an attachment of one's own that never shows
// up, as eventual consistency can make it look for a long time.
func (s *Sim) HideNextAttach(resourceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hide[resourceID] = true
}

// Stats returns a copy of the call counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Total: s.stats.Total, Calls: maps.Clone(s.stats.Calls), Errors: maps.Clone(s.stats.Errors)}
}

// ResetStats zeroes the call counters.
func (s *Sim) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{Calls: map[string]int{}, Errors: map[string]int{}}
}

// fault draws one fault with probability p. Call with s.mu held.
func (s *Sim) fault(p float64) bool { return p > 0 && s.faultRNG.Float64() < p }

// newID returns prefix + 17 hex digits, EC2's current id format (whose
// first digit is in practice 0). Call with s.mu held (or before the Sim is
// shared).
func (s *Sim) newID(prefix string) string {
	return fmt.Sprintf("%s%017x", prefix, s.idRNG.Uint64())
}

// newMAC returns a random locally administered unicast MAC, as EC2 hands
// out (02:xx:...).
func (s *Sim) newMAC() string {
	b := s.idRNG.Uint64()
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(b>>32), byte(b>>24), byte(b>>16), byte(b>>8), byte(b))
}

// SetLag replaces Options.Lag. Versions older than every lag configured so
// far are already gone, so raising a lag shows history from now on only.
func (s *Sim) SetLag(l Lag) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = l
	s.retain = max(s.retain, maxLag(s.opts.Consistency, l))
}

func maxLag(consistency time.Duration, l Lag) time.Duration {
	return max(consistency, l.Instances, l.Volumes, l.NetworkInterfaces, l.NewIDs)
}

// staleness draws how far behind one answer is, given the maximum. Call
// with s.mu held.
func (s *Sim) staleness(most time.Duration) time.Duration {
	if !s.lag.Random || most <= 0 {
		return most
	}
	return time.Duration(s.lagRNG.Int64N(int64(most) + 1))
}

// describeTime is the moment one Describe call of that API sees. Call with
// s.mu held.
func (s *Sim) describeTime(a api, now time.Time) time.Time {
	most := s.opts.Consistency
	switch {
	case a == apiInstances && s.lag.Instances > 0:
		most = s.lag.Instances
	case a == apiVolumes && s.lag.Volumes > 0:
		most = s.lag.Volumes
	case a == apiENIs && s.lag.NetworkInterfaces > 0:
		most = s.lag.NetworkInterfaces
	}
	return now.Add(-s.staleness(most))
}

// gcTime is the moment before which no Describe can look any more. Call
// with s.mu held.
func (s *Sim) gcTime(now time.Time) time.Time { return now.Add(-s.retain) }

// findForMutation is kind.find for an API mutation: within Lag.NewIDs of
// its creation, a resource is not found yet. Call with s.mu held.
func findForMutation[T any](s *Sim, k *kind[T], st *store[T], id string, now time.Time) (T, error) {
	v, err := k.find(st, id)
	if err != nil || s.lag.NewIDs <= 0 {
		return v, err
	}
	if created, ok := st.createdAt(id); ok && now.Sub(created) < s.staleness(s.lag.NewIDs) {
		var zero T
		return zero, k.notFound(id)
	}
	return v, nil
}

type action struct {
	mutating bool
	idParam  string // for Describe*: the explicit-id parameter
	run      func(s *Sim, q query, now time.Time) (result, error)
}

var actions = map[string]action{
	"DescribeNetworkInterfaces":       operatorActions["DescribeNetworkInterfaces"], // describeNetworkInterfaces + security groups
	"AttachNetworkInterface":          {mutating: true, run: (*Sim).attachNetworkInterface},
	"DetachNetworkInterface":          {mutating: true, run: (*Sim).detachNetworkInterface},
	"ModifyNetworkInterfaceAttribute": operatorActions["ModifyNetworkInterfaceAttribute"], // groups, else modifyNetworkInterfaceAttribute
	"DescribeVolumes":                 operatorActions["DescribeVolumes"],                 // describeVolumes + type, IOPS, encryption
	"AttachVolume":                    operatorActions["AttachVolume"],                    // attachVolume, refusing a creating volume
	"DetachVolume":                    {mutating: true, run: (*Sim).detachVolume},
	"DescribeInstances":               {idParam: "InstanceId", run: (*Sim).describeInstances},
	"DescribeSubnets":                 {idParam: "SubnetId", run: (*Sim).describeSubnets},
	"CreateTags":                      operatorActions["CreateTags"], // createTags, and security groups, rules, images
	// The operator command's calls (create.go, securitygroup.go, describe.go).
	"CreateNetworkInterface":        operatorActions["CreateNetworkInterface"],
	"DeleteNetworkInterface":        operatorActions["DeleteNetworkInterface"],
	"CreateVolume":                  operatorActions["CreateVolume"],
	"DeleteVolume":                  operatorActions["DeleteVolume"],
	"CreateSecurityGroup":           operatorActions["CreateSecurityGroup"],
	"DeleteSecurityGroup":           operatorActions["DeleteSecurityGroup"],
	"DescribeSecurityGroups":        operatorActions["DescribeSecurityGroups"],
	"DescribeSecurityGroupRules":    operatorActions["DescribeSecurityGroupRules"],
	"AuthorizeSecurityGroupIngress": operatorActions["AuthorizeSecurityGroupIngress"],
	"AuthorizeSecurityGroupEgress":  operatorActions["AuthorizeSecurityGroupEgress"],
	"RevokeSecurityGroupIngress":    operatorActions["RevokeSecurityGroupIngress"],
	"RevokeSecurityGroupEgress":     operatorActions["RevokeSecurityGroupEgress"],
	"DescribeVpcs":                  operatorActions["DescribeVpcs"],
	"DescribeInstanceTypes":         operatorActions["DescribeInstanceTypes"],
	"DescribeImages":                operatorActions["DescribeImages"],
	"DescribeSnapshots":             operatorActions["DescribeSnapshots"],
	"ModifyVolume":                  operatorActions["ModifyVolume"],
	// Launch templates (launchtemplate.go).
	"CreateLaunchTemplate":           launchTemplateActions["CreateLaunchTemplate"],
	"CreateLaunchTemplateVersion":    launchTemplateActions["CreateLaunchTemplateVersion"],
	"DescribeLaunchTemplates":        launchTemplateActions["DescribeLaunchTemplates"],
	"DescribeLaunchTemplateVersions": launchTemplateActions["DescribeLaunchTemplateVersions"],
	"ModifyLaunchTemplate":           launchTemplateActions["ModifyLaunchTemplate"],
	"DeleteLaunchTemplate":           launchTemplateActions["DeleteLaunchTemplate"],
}

// ServeHTTP answers one EC2 Query API call, or an admin call under /_sim/.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.admin.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	requestID := newRequestID()
	res, actionName, apiErr := s.call(r)
	code := ""
	if apiErr != nil {
		code = apiErr.Code
		writeError(w, requestID, apiErr)
	} else {
		writeResult(w, actionName, requestID, res)
	}

	s.mu.Lock()
	s.stats.Total++
	s.stats.Calls[actionName]++
	if code != "" {
		s.stats.Errors[code]++
	}
	s.mu.Unlock()
	s.log.Debug("ec2 call", "action", actionName, "caller", caller(r), "remote", r.RemoteAddr,
		"duration", time.Since(start), "error_code", code, "request_id", requestID)
}

func (s *Sim) call(r *http.Request) (result, string, *APIError) {
	if err := r.ParseForm(); err != nil {
		return nil, "", clientError("MalformedQueryString", "%s", err.Error())
	}
	q := query{form: r.Form}
	name := q.str("Action")
	if r.Header.Get("Authorization") == "" {
		return nil, name, errAuth()
	}
	before, after := s.roundTrip()
	if err := sleep(r.Context(), before); err != nil {
		return nil, name, clientError("RequestCanceled", "%s", err.Error())
	}
	res, apiErr := s.dispatch(name, q)
	// The response is in flight: its content is already decided.
	_ = sleep(r.Context(), after)
	return res, name, apiErr
}

func (s *Sim) dispatch(name string, q query) (result, *APIError) {
	if name == "" {
		return nil, clientError(CodeMissingAction, "The request must contain the parameter Action")
	}
	a, ok := actions[name]
	if !ok {
		return nil, clientError(CodeInvalidAction, "The action %s is not valid for this web service.", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	class := classMutating
	if !a.mutating {
		class = classUnfilteredDescribe
		if len(q.indexes("Filter")) > 0 || len(q.indexes(a.idParam)) > 0 {
			class = classDescribe
		}
	}
	if !s.limiter.allow(class, now) || s.fault(s.faults.ThrottleRate) {
		return nil, errThrottled()
	}
	if dry, _, _ := q.bool("DryRun"); dry {
		return nil, s.dryRunError(name) // UnauthorizedOperation for a denied action (ext.go)
	}
	res, err := a.run(s, q, now)
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			return nil, apiErr
		}
		return nil, &APIError{Status: http.StatusInternalServerError, Code: "InternalError", Message: err.Error()}
	}
	return res, nil
}

// roundTrip draws this call's latency and splits it into request and
// response halves.
func (s *Sim) roundTrip() (time.Duration, time.Duration) {
	l := s.opts.Latency
	d := l.RoundTrip
	if l.RoundTripJitter > 0 {
		s.mu.Lock()
		d += time.Duration(s.jitterRNG.Int64N(int64(l.RoundTripJitter)))
		s.mu.Unlock()
	}
	return d / 2, d - d/2
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// caller is the access key id of a SigV4 Authorization header, which is
// who the call is from as far as EC2 is concerned.
func caller(r *http.Request) string {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(cred, "/")
	return key
}

// newRequestID returns a UUID-shaped request id. It does not come from the
// seeded streams: ids and faults must not depend on how many calls were made.
func newRequestID() string {
	a, b := rand.Uint64(), rand.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, uint16(b>>48)&0x3fff|0x8000, b&(1<<48-1))
}

package ec2sim

import (
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"weak"
)

// This file holds the state of the calls the operator command (zkaas up,
// doctor, down) makes beyond what the boot's claim needs: security groups
// and their rules, the security groups of each ENI, the attributes of
// volumes created through CreateVolume (type, IOPS, throughput,
// encryption), the image registry, the known snapshots and the permission
// model. It lives beside the Sim, keyed by a weak pointer, like the launch
// templates' state, and goes away with it. Every access holds s.mu.

type extState struct {
	groups        map[string]SecurityGroup // by group id
	ruleSeq       int
	eniGroups     map[string][]string              // ENI id -> group ids (absent: the VPC's default group)
	volumeAttrs   map[string]VolumeOptions         // volume id -> what CreateVolume was given
	images        map[string]Image                 // by image id
	snapshots     map[string]Snapshot              // by snapshot id
	modifications map[string][]*volumeModification // volume id -> its ModifyVolume calls
	denied        map[string]bool                  // EC2 actions the caller may not perform
	tokens        map[string]idempotent            // action + ClientToken -> first answer
	loseNext      map[string]int                   // action -> successful calls whose answer is lost
	failNext      map[string][]*APIError           // action -> errors the next calls answer
	createDelay   time.Duration                    // CreateVolume: creating -> available
	defaultGroup  string                           // the VPC's default security group id, once made
}

var (
	extMu     sync.Mutex
	extStates = map[weak.Pointer[Sim]]*extState{}
)

// ext returns s's state for the operator's calls. Call with s.mu held.
func (s *Sim) ext() *extState {
	key := weak.Make(s)
	extMu.Lock()
	defer extMu.Unlock()
	st := extStates[key]
	if st == nil {
		st = &extState{
			groups: map[string]SecurityGroup{}, eniGroups: map[string][]string{},
			volumeAttrs: map[string]VolumeOptions{}, images: map[string]Image{},
			snapshots: map[string]Snapshot{}, denied: map[string]bool{},
			tokens: map[string]idempotent{}, loseNext: map[string]int{}, failNext: map[string][]*APIError{},
			modifications: map[string][]*volumeModification{},
		}
		// The image every simulated instance reports (DescribeInstances'
		// imageId) is in the registry from the start.
		st.images[imageID] = Image{ID: imageID, Name: "ec2sim-default", Architecture: "x86_64", State: "available"}
		extStates[key] = st
		runtime.AddCleanup(s, func(k weak.Pointer[Sim]) {
			extMu.Lock()
			defer extMu.Unlock()
			delete(extStates, k)
		}, key)
	}
	return st
}

// Error codes of the operator's calls, from "Error codes for the Amazon
// EC2 API" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
const (
	CodeCannotDelete                 = "CannotDelete"
	CodeDependencyViolation          = "DependencyViolation"
	CodeInvalidGroupDuplicate        = "InvalidGroup.Duplicate"
	CodeInvalidGroupNotFound         = "InvalidGroup.NotFound"
	CodeInvalidGroupIDMalformed      = "InvalidGroupId.Malformed"
	CodeInvalidIPAddressInUse        = "InvalidIPAddress.InUse"
	CodeInvalidImageIDNotFound       = "InvalidAMIID.NotFound"
	CodeInvalidImageIDMalformed      = "InvalidAMIID.Malformed"
	CodeInvalidInstanceType          = "InvalidInstanceType"
	CodeInvalidParameterDependency   = "InvalidParameterDependency"
	CodeInvalidPermissionDuplicate   = "InvalidPermission.Duplicate"
	CodeInvalidPermissionMalformed   = "InvalidPermission.Malformed"
	CodeInvalidPermissionNotFound    = "InvalidPermission.NotFound"
	CodeInvalidRuleIDNotFound        = "InvalidSecurityGroupRuleId.NotFound"
	CodeInvalidRuleIDMalformed       = "InvalidSecurityGroupRuleId.Malformed"
	CodeInvalidSnapshotNotFound      = "InvalidSnapshot.NotFound"
	CodeInvalidVpcIDNotFound         = "InvalidVpcID.NotFound"
	CodeRulesPerGroupLimitExceeded   = "RulesPerSecurityGroupLimitExceeded"
	CodeSecurityGroupsPerENIExceeded = "SecurityGroupsPerInterfaceLimitExceeded"
	CodeUnauthorizedOperation        = "UnauthorizedOperation"
	CodeVPCIDNotSpecified            = "VPCIdNotSpecified"
)

// tagSpecs reads TagSpecification.N.ResourceType / .Tag.M.Key / .Value for
// a call that creates one kind of resource: every specification must name
// that type ("The tags to apply to the ... during creation", e.g.
// CreateVolume's TagSpecifications,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html).
func tagSpecs(q query, resourceType string) (map[string]string, error) {
	var out map[string]string
	for _, n := range q.indexes("TagSpecification") {
		p := "TagSpecification." + strconv.Itoa(n) + "."
		if rt := q.str(p + "ResourceType"); rt != resourceType {
			return nil, clientError(CodeInvalidParameterValue, "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		sub := query{form: map[string][]string{}}
		for k, v := range q.form {
			if rest, ok := strings.CutPrefix(k, p); ok {
				sub.form[rest] = v
			}
		}
		tags, err := sub.tags()
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			if err := checkTag(t); err != nil {
				return nil, err
			}
			if out == nil {
				out = map[string]string{}
			}
			out[t.Key] = t.Value
		}
	}
	return out, nil
}

// checkTag is CreateTags' validation of one tag (tags.go).
func checkTag(t xmlTag) error {
	switch {
	case strings.HasPrefix(t.Key, "aws:"):
		return clientError(CodeInvalidParameterValue, "Tag keys starting with 'aws:' are reserved for internal use")
	case len(t.Key) > 128:
		return clientError(CodeInvalidParameterValue, "Tag key exceeds the maximum length of 128 characters")
	case len(t.Value) > 256:
		return clientError(CodeInvalidParameterValue, "Tag value exceeds the maximum length of 256 characters")
	}
	return nil
}

// The permission model. EC2 answers a call the caller's policies do not
// allow with UnauthorizedOperation ("You are not authorized to perform this
// operation."), with or without DryRun: "If you have the required
// permissions, the error response is DryRunOperation. Otherwise, it is
// UnauthorizedOperation." (the DryRun parameter of every mutating call,
// e.g. https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html).

// Deny makes the named EC2 actions ("CreateVolume", ...) answer
// UnauthorizedOperation: with DryRun every action; without, the
// operator's calls (operatorActions in describe.go: the creates, deletes,
// security group calls, CreateTags, AttachVolume, ModifyVolume,
// ModifyNetworkInterfaceAttribute and their Describe calls). Allow undoes
// it.
func (s *Sim) Deny(actions ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range actions {
		s.ext().denied[a] = true
	}
}

// Allow lets the named actions through again.
func (s *Sim) Allow(actions ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range actions {
		delete(s.ext().denied, a)
	}
}

// guarded wraps an operator call: a denied action answers
// UnauthorizedOperation. DryRun is answered by dispatch before the call
// runs (denied: UnauthorizedOperation, see dryRunError); the check here
// only guards direct callers. Calls with a ClientToken are idempotent, and
// LoseNextResponse makes one succeed but answer an internal error.
func guarded(name string, run func(*Sim, query, time.Time) (result, error)) func(*Sim, query, time.Time) (result, error) {
	return func(s *Sim, q query, now time.Time) (result, error) {
		st := s.ext()
		if st.denied[name] {
			return nil, errUnauthorized()
		}
		if f := st.failNext[name]; len(f) > 0 {
			st.failNext[name] = f[1:]
			return nil, f[0]
		}
		if dry, _, _ := q.bool("DryRun"); dry {
			return nil, errDryRun()
		}
		// "If you repeat a request with the same client token and the same
		// request parameters, Amazon EC2 returns the same response ... If
		// you repeat a request with the same client token, but change one
		// or more of the request parameters, Amazon EC2 returns an
		// IdempotentParameterMismatch error." (Ensuring idempotency,
		// https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html)
		token := q.str("ClientToken")
		key := name + "\x00" + token
		if token != "" {
			if len(token) > 64 {
				return nil, clientError(CodeInvalidParameterValue, "The client token must be at most 64 ASCII characters")
			}
			if prev, ok := st.tokens[key]; ok {
				if prev.params != canonicalParams(q) {
					return nil, clientError("IdempotentParameterMismatch", "The client token you have provided is associated with a resource that is already deleted or has different parameters. Please use a different client token.")
				}
				return st.lose(name, prev.replay())
			}
		}
		res, err := run(s, q, now)
		if err != nil {
			return nil, err
		}
		if token != "" {
			st.tokens[key] = idempotent{params: canonicalParams(q), replay: replayOf(res)}
		}
		return st.lose(name, res)
	}
}

// lose answers an internal error instead of res while LoseNextResponse
// says so.
func (st *extState) lose(name string, res result) (result, error) {
	if st.loseNext[name] > 0 {
		st.loseNext[name]--
		return nil, &APIError{Status: http.StatusInternalServerError, Code: "InternalError",
			Message: "An internal error has occurred"}
	}
	return res, nil
}

// idempotent is a remembered answer to a call with a ClientToken.
type idempotent struct {
	params string
	replay func() result
}

// replayOf returns a function that gives a fresh copy of res (its request
// id is set per answer).
func replayOf(res result) func() result {
	switch r := res.(type) {
	case *createENIResponse:
		c := *r
		return func() result { x := c; return &x }
	case *createVolumeResponse:
		c := *r
		return func() result { x := c; return &x }
	}
	return func() result { return res }
}

// canonicalParams is the request without what may differ between retries.
func canonicalParams(q query) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(q.form)) {
		switch k {
		case "ClientToken", "DryRun", "Version", "Action":
			continue
		}
		fmt.Fprintf(&b, "%s=%q;", k, q.form[k])
	}
	return b.String()
}

// FailNext makes the next n calls of the action (one of the operator's,
// see Deny) answer EC2's error with that code and change nothing:
// RequestLimitExceeded is the throttling answer (HTTP 503, the SDK
// retries it), InternalError and Unavailable are HTTP 500/503 (retried
// too), anything else an HTTP 400 client error (not retried).
func (s *Sim) FailNext(action string, n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e *APIError
	switch code {
	case CodeRequestLimitExceeded:
		e = errThrottled()
	case "InternalError":
		e = &APIError{Status: http.StatusInternalServerError, Code: code, Message: "An internal error has occurred"}
	case "Unavailable":
		e = &APIError{Status: http.StatusServiceUnavailable, Code: code, Message: "The server is overloaded and can't handle the request."}
	default:
		e = clientError(code, "injected by FailNext")
	}
	st := s.ext()
	for range n {
		st.failNext[action] = append(st.failNext[action], e)
	}
}

// LoseNextResponse makes the next n successful calls of the action (one
// of the operator's: CreateNetworkInterface, CreateVolume,
// CreateSecurityGroup, ...) take effect and then answer HTTP 500
// InternalError, as a response lost on its way would look: the SDK retries
// it (with the same ClientToken, if the caller set one).
func (s *Sim) LoseNextResponse(action string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ext().loseNext[action] += n
}

func errUnauthorized() *APIError {
	return clientError(CodeUnauthorizedOperation, "You are not authorized to perform this operation.")
}

// dryRunError is dispatch's answer to DryRun=true: UnauthorizedOperation
// for a denied action, else DryRunOperation. Call with s.mu held.
func (s *Sim) dryRunError(action string) *APIError {
	if s.ext().denied[action] {
		return errUnauthorized()
	}
	return errDryRun()
}

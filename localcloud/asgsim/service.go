package asgsim

import (
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Service.
type Options struct {
	Region string // default "us-east-1"
	// EC2 launches, terminates and observes instances; required.
	EC2 EC2
	// Now is the clock the controller and the API read (lifecycle
	// deadlines, grace periods, activity times); default time.Now. Tests
	// drive a fake one and call Reconcile.
	Now    func() time.Time
	Limits Limits
	Seed   uint64 // seeds ARNs, activity ids and lifecycle action tokens
	Logger *slog.Logger
}

// Limits are the account quotas the simulator enforces (LimitExceeded).
// Zero fields take the AWS defaults documented in "Quotas for Amazon EC2
// Auto Scaling"
// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-quotas.html):
// 500 groups per Region, 50 lifecycle hooks per group.
type Limits struct {
	Groups        int
	HooksPerGroup int
}

// Service is one simulated Amazon EC2 Auto Scaling endpoint (one Region
// of one account) and its group controller. It is an http.Handler for the
// Auto Scaling Query API.
type Service struct {
	opts Options
	log  *slog.Logger
	ec2  EC2

	recMu sync.Mutex // serializes Reconcile

	mu      sync.Mutex
	groups  map[string]*group
	deleted []*group // kept for DescribeScalingActivities IncludeDeletedGroups
	rng     *rand.Rand
}

// New returns a Service with no groups.
func New(opts Options) *Service {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Limits.Groups == 0 {
		opts.Limits.Groups = 500
	}
	if opts.Limits.HooksPerGroup == 0 {
		opts.Limits.HooksPerGroup = 50
	}
	return &Service{
		opts: opts, log: opts.Logger, ec2: opts.EC2,
		groups: map[string]*group{},
		rng:    rand.New(rand.NewPCG(opts.Seed, 7)),
	}
}

// accountID is the simulated account, as in ec2sim.
const accountID = "123456789012"

const xmlns = "http://autoscaling.amazonaws.com/doc/2011-01-01/"

// apiError is an Auto Scaling error as it goes on the wire. Every error the
// simulator returns is a Sender (client) fault with HTTP 400, as AWS
// answers the errors modelled here.
type apiError struct {
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// Error codes, as the Auto Scaling API reference lists them per operation
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/CommonErrors.html
// for ValidationError, the operation pages for the others).
const (
	CodeValidationError           = "ValidationError"
	CodeAlreadyExists             = "AlreadyExists"
	CodeLimitExceeded             = "LimitExceeded"
	CodeResourceInUse             = "ResourceInUse"
	CodeScalingActivityInProgress = "ScalingActivityInProgress"
	CodeInvalidAction             = "InvalidAction"
	CodeMissingAction             = "MissingAction"
)

func validation(format string, args ...any) *apiError {
	return &apiError{Code: CodeValidationError, Message: fmt.Sprintf(format, args...)}
}

// errNull is AWS's model-validation message for a missing required
// parameter (the SDK checks these client-side too).
func errNull(member string) *apiError {
	return validation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
}

func errRange(member string, v int64, lo, hi int64) *apiError {
	if v < lo {
		return validation("1 validation error detected: Value '%d' at '%s' failed to satisfy constraint: Member must have value greater than or equal to %d", v, member, lo)
	}
	return validation("1 validation error detected: Value '%d' at '%s' failed to satisfy constraint: Member must have value less than or equal to %d", v, member, hi)
}

// errGroupNotFound is the message Auto Scaling answers for an unknown
// group name in Update/Delete/SetDesiredCapacity and the lifecycle calls.
func errGroupNotFound(name string) *apiError {
	return validation("AutoScalingGroup name not found - AutoScalingGroup '%s' not found", name)
}

// errInstanceNotFound is AWS's message for an instance id no group
// manages (TerminateInstanceInAutoScalingGroup, SetInstanceHealth).
func errInstanceNotFound(id string) *apiError {
	return validation("Instance Id not found - No managed instance found for instance ID: %s", id)
}

type handler func(s *Service, q query, now time.Time) (any, *apiError)

var handlers = map[string]handler{
	"CreateAutoScalingGroup":              (*Service).createGroup,
	"UpdateAutoScalingGroup":              (*Service).updateGroup,
	"DeleteAutoScalingGroup":              (*Service).deleteGroup,
	"DescribeAutoScalingGroups":           (*Service).describeGroups,
	"DescribeAutoScalingInstances":        (*Service).describeInstances,
	"SetDesiredCapacity":                  (*Service).setDesiredCapacity,
	"TerminateInstanceInAutoScalingGroup": (*Service).terminateInstance,
	"SetInstanceHealth":                   (*Service).setInstanceHealth,
	"SuspendProcesses":                    (*Service).suspendProcesses,
	"ResumeProcesses":                     (*Service).resumeProcesses,
	"PutLifecycleHook":                    (*Service).putLifecycleHook,
	"DescribeLifecycleHooks":              (*Service).describeLifecycleHooks,
	"DeleteLifecycleHook":                 (*Service).deleteLifecycleHook,
	"CompleteLifecycleAction":             (*Service).completeLifecycleAction,
	"RecordLifecycleActionHeartbeat":      (*Service).recordHeartbeat,
	"DescribeScalingActivities":           (*Service).describeActivities,
}

// prepare runs before the lock is taken: the calls that must ask EC2
// (subnets, launch templates) do it here, and the handler finds the answer
// in q.
var prepare = map[string]func(s *Service, ctx context.Context, q *query) *apiError{
	"CreateAutoScalingGroup": (*Service).prepareGroup,
	"UpdateAutoScalingGroup": (*Service).prepareGroup,
}

// ServeHTTP answers one Auto Scaling Query API call.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	action, res, err := s.call(r)
	if err != nil {
		s.log.Debug("autoscaling call", "action", action, "error_code", err.Code, "error", err.Message, "request_id", requestID)
		writeError(w, requestID, err)
		return
	}
	s.log.Debug("autoscaling call", "action", action, "request_id", requestID)
	writeResult(w, action, requestID, res)
}

func (s *Service) call(r *http.Request) (string, any, *apiError) {
	if err := r.ParseForm(); err != nil {
		return "", nil, &apiError{Code: "MalformedQueryString", Message: err.Error()}
	}
	q := query{form: r.Form}
	name := q.str("Action")
	if name == "" {
		return name, nil, &apiError{Code: CodeMissingAction, Message: "The request must contain the parameter Action"}
	}
	h, ok := handlers[name]
	if !ok {
		return name, nil, &apiError{Code: CodeInvalidAction, Message: fmt.Sprintf("The action %s is not valid for this web service.", name)}
	}
	if p := prepare[name]; p != nil {
		if err := p(s, r.Context(), &q); err != nil {
			return name, nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := h(s, q, s.opts.Now())
	return name, res, err
}

// uuidLocked returns a version-4 UUID from the seeded generator (ARNs,
// activity ids, lifecycle action tokens). Call with s.mu held.
func (s *Service) uuidLocked() string { return uuid(s.rng.Uint64(), s.rng.Uint64()) }

// newRequestID returns a request id that does not come from the seeded
// stream, so that ids and tokens do not depend on how many calls were made.
func newRequestID() string { return uuid(rand.Uint64(), rand.Uint64()) }

func uuid(a, b uint64) string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, uint16(b>>48)&0x3fff|0x8000, b&(1<<48-1))
}

// query reads awsquery parameters: scalars by name, lists as
// Name.member.N, structures as Name.Field or Name.member.N.Field.
type query struct {
	form url.Values
	// filled in by prepare
	azs      []string
	subnets  []string
	template *LaunchTemplate
}

func (q query) str(name string) string { return q.form.Get(name) }
func (q query) has(name string) bool   { return q.form.Has(name) }

func (q query) required(name, member string) (string, *apiError) {
	v := q.form.Get(name)
	if v == "" {
		return "", errNull(member)
	}
	return v, nil
}

func (q query) int(name, member string) (int64, bool, *apiError) {
	raw := q.form.Get(name)
	if raw == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(raw, 10, 32)
	if err != nil {
		return 0, false, validation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must be an integer", raw, member)
	}
	return n, true, nil
}

func (q query) bool(name string) (bool, bool) {
	raw := q.form.Get(name)
	if raw == "" {
		return false, false
	}
	b, err := strconv.ParseBool(raw)
	return b && err == nil, err == nil
}

// members returns the N of every prefix.member.N or prefix.member.N.*
// key, ascending.
func (q query) members(prefix string) []int {
	seen := map[int]bool{}
	for key := range q.form {
		rest, ok := strings.CutPrefix(key, prefix+".member.")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// list returns the values of prefix.member.1, .2, ... in order.
func (q query) list(prefix string) []string {
	var out []string
	for _, n := range q.members(prefix) {
		if v := q.form.Get(prefix + ".member." + strconv.Itoa(n)); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func member(prefix string, n int) string { return prefix + ".member." + strconv.Itoa(n) }

// Responses.

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

// writeResult writes <ActionResponse xmlns=…><ActionResult>…</ActionResult>
// <ResponseMetadata>…; actions without output have no Result element.
func writeResult(w http.ResponseWriter, action, requestID string, res any) {
	type body struct {
		XMLName  xml.Name
		Xmlns    string           `xml:"xmlns,attr"`
		Result   any              `xml:",omitempty"`
		Metadata responseMetadata `xml:"ResponseMetadata"`
	}
	b := body{XMLName: xml.Name{Local: action + "Response"}, Xmlns: xmlns, Metadata: responseMetadata{requestID}}
	if res != nil {
		b.Result = wrapped{name: action + "Result", v: res}
	}
	writeXML(w, http.StatusOK, requestID, b)
}

// wrapped encodes v under an element name chosen at run time.
type wrapped struct {
	name string
	v    any
}

func (x wrapped) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return e.EncodeElement(x.v, xml.StartElement{Name: xml.Name{Local: x.name}})
}

// writeError writes the awsquery error shape:
// <ErrorResponse xmlns=…><Error><Type>Sender</Type><Code>…</Code>
// <Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>.
func writeError(w http.ResponseWriter, requestID string, e *apiError) {
	type xmlErr struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	body := struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Error     xmlErr   `xml:"Error"`
		RequestID string   `xml:"RequestId"`
	}{Xmlns: xmlns, Error: xmlErr{"Sender", e.Code, e.Message}, RequestID: requestID}
	writeXML(w, http.StatusBadRequest, requestID, body)
}

func writeXML(w http.ResponseWriter, status int, requestID string, body any) {
	out, err := xml.Marshal(body)
	if err != nil {
		http.Error(w, "asgsim: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", requestID)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

func xmlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// causeTime is how activity causes print a time ("At 2024-01-02T03:04:05Z …").
func causeTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

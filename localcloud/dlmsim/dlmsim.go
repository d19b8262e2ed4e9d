// Package dlmsim is a wire-level simulator of Amazon Data Lifecycle
// Manager (DLM), for the zkaas operator command's daily volume snapshots
// in the local cloud's tests: an http.Handler for the DLM REST-JSON API
// (POST/GET /policies, GET/PATCH/DELETE /policies/{id}, POST/GET/DELETE
// /tags/{arn}; JSON bodies; errors as an X-Amzn-ErrorType header and a
// {"Code", "message", …} body), driven in tests by the real aws-sdk-go-v2
// dlm client.
//
// It models custom EBS snapshot policies (PolicyType
// EBS_SNAPSHOT_MANAGEMENT): CreateLifecyclePolicy, GetLifecyclePolicies
// (filters policyIds, state, resourceTypes, targetTags, tagsToAdd),
// GetLifecyclePolicy, UpdateLifecyclePolicy, DeleteLifecyclePolicy,
// TagResource, UntagResource and ListTagsForResource, with the validation
// of the DLM API Reference
// (https://docs.aws.amazon.com/dlm/latest/APIReference/): ExecutionRoleArn,
// Description and State required; ResourceTypes VOLUME or INSTANCE;
// 1 to 50 target tags; 1 to 4 schedules, each with a CreateRule (Interval
// 1, 2, 3, 4, 6, 8, 12 or 24 HOURS with at most one start time, or a cron
// expression, not both) and a RetainRule (Count 1 to 1000, or an age);
// errors InvalidRequestException (400), ResourceNotFoundException (404),
// LimitExceededException (429; 100 policies per Region).
//
// Not modelled: running the schedules (no snapshot is ever taken: the
// policy is only stored), default policies, event-based and AMI policies,
// cross-Region copy, fast snapshot restore, archive, sharing, pre/post
// scripts, the ERROR state, and checking the execution role with IAM.
package dlmsim

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configures a Service.
type Options struct {
	Region string           // default "us-east-1"
	Now    func() time.Time // default time.Now
	Seed   uint64           // seeds policy ids
	Logger *slog.Logger
	// MaxPolicies is the quota "Lifecycle policies per Region: 100"
	// (https://docs.aws.amazon.com/general/latest/gr/dlm.html); 0 means 100.
	MaxPolicies int
}

// Service is one simulated DLM endpoint (one Region of one account).
type Service struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	policies map[string]*Policy
	rng      *rand.Rand
	calls    map[string]int
	failNext map[string][]*APIError // action -> errors the next calls answer
	loseNext map[string]int         // action -> successful calls whose answer is lost
}

// AccountID is the simulated account, as in ec2sim.
const AccountID = "123456789012"

// Policy is one lifecycle policy, in the JSON shape of DLM's
// LifecyclePolicy.
type Policy struct {
	PolicyID         string            `json:"PolicyId"`
	PolicyARN        string            `json:"PolicyArn"`
	Description      string            `json:"Description"`
	State            string            `json:"State"`
	StatusMessage    string            `json:"StatusMessage,omitempty"`
	ExecutionRoleArn string            `json:"ExecutionRoleArn"`
	DateCreated      time.Time         `json:"DateCreated"`
	DateModified     time.Time         `json:"DateModified"`
	PolicyDetails    PolicyDetails     `json:"PolicyDetails"`
	Tags             map[string]string `json:"Tags,omitempty"`
	DefaultPolicy    bool              `json:"DefaultPolicy"`
}

// PolicyDetails is the modelled part of DLM's PolicyDetails.
type PolicyDetails struct {
	PolicyType        string     `json:"PolicyType,omitempty"`
	ResourceTypes     []string   `json:"ResourceTypes,omitempty"`
	ResourceLocations []string   `json:"ResourceLocations,omitempty"`
	TargetTags        []Tag      `json:"TargetTags,omitempty"`
	Schedules         []Schedule `json:"Schedules,omitempty"`
	PolicyLanguage    string     `json:"PolicyLanguage,omitempty"`
}

// Tag is a key and value.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// Schedule is one schedule of a policy.
type Schedule struct {
	Name       string      `json:"Name,omitempty"`
	CopyTags   bool        `json:"CopyTags,omitempty"`
	TagsToAdd  []Tag       `json:"TagsToAdd,omitempty"`
	CreateRule *CreateRule `json:"CreateRule,omitempty"`
	RetainRule *RetainRule `json:"RetainRule,omitempty"`
}

// CreateRule is when snapshots are taken.
type CreateRule struct {
	Location       string   `json:"Location,omitempty"`
	Interval       int      `json:"Interval,omitempty"`
	IntervalUnit   string   `json:"IntervalUnit,omitempty"`
	Times          []string `json:"Times,omitempty"`
	CronExpression string   `json:"CronExpression,omitempty"`
}

// RetainRule is how many snapshots, or for how long, are kept.
type RetainRule struct {
	Count        int    `json:"Count,omitempty"`
	Interval     int    `json:"Interval,omitempty"`
	IntervalUnit string `json:"IntervalUnit,omitempty"`
}

// New returns a Service with no policies.
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
	if opts.MaxPolicies == 0 {
		opts.MaxPolicies = 100
	}
	return &Service{opts: opts, log: opts.Logger, policies: map[string]*Policy{},
		rng: rand.New(rand.NewPCG(opts.Seed, 13)), calls: map[string]int{},
		failNext: map[string][]*APIError{}, loseNext: map[string]int{}}
}

// Error codes (the "Errors" of each action in the DLM API Reference).
const (
	CodeInvalidRequest   = "InvalidRequestException"
	CodeResourceNotFound = "ResourceNotFoundException"
	CodeLimitExceeded    = "LimitExceededException"
)

// APIError is a DLM error as it goes on the wire.
type APIError struct {
	Status       int      `json:"-"`
	Code         string   `json:"Code"`
	Message      string   `json:"message"`
	ResourceType string   `json:"ResourceType,omitempty"`
	ResourceIDs  []string `json:"ResourceIds,omitempty"`
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func invalid(format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

func notFound(ids ...string) *APIError {
	return &APIError{Status: http.StatusNotFound, Code: CodeResourceNotFound,
		Message: fmt.Sprintf("Policy %s not found.", strings.Join(ids, ", ")), ResourceType: "LifecyclePolicy", ResourceIDs: ids}
}

// ServeHTTP answers one DLM call.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action, res, err := s.routeWithFaults(r)
	s.mu.Lock()
	s.calls[action]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-RequestId", uuid(rand.Uint64(), rand.Uint64()))
	if err != nil {
		s.log.Debug("dlm call", "action", action, "error_code", err.Code, "error", err.Message)
		w.Header().Set("X-Amzn-ErrorType", err.Code)
		w.WriteHeader(err.Status)
		_ = json.NewEncoder(w).Encode(err)
		return
	}
	s.log.Debug("dlm call", "action", action)
	if res == nil {
		res = struct{}{}
	}
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(res)
}

// routeWithFaults is route with FailNext and LoseNextResponse applied.
func (s *Service) routeWithFaults(r *http.Request) (string, any, *APIError) {
	action := actionOf(r)
	s.mu.Lock()
	if f := s.failNext[action]; len(f) > 0 {
		s.failNext[action] = f[1:]
		s.mu.Unlock()
		return action, nil, f[0]
	}
	s.mu.Unlock()
	action, res, err := s.route(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.loseNext[action] > 0 {
		s.loseNext[action]--
		return action, nil, &APIError{Status: http.StatusInternalServerError, Code: "InternalServerException", Message: "An internal error occurred."}
	}
	return action, res, err
}

// actionOf names the operation a request is, before it runs.
func actionOf(r *http.Request) string {
	path := strings.TrimSuffix(r.URL.EscapedPath(), "/")
	switch {
	case path == "/policies" && r.Method == http.MethodPost:
		return "CreateLifecyclePolicy"
	case path == "/policies":
		return "GetLifecyclePolicies"
	case strings.HasPrefix(path, "/policies/"):
		return map[string]string{http.MethodGet: "GetLifecyclePolicy", http.MethodPatch: "UpdateLifecyclePolicy", http.MethodDelete: "DeleteLifecyclePolicy"}[r.Method]
	case strings.HasPrefix(path, "/tags/"):
		return map[string]string{http.MethodGet: "ListTagsForResource", http.MethodPost: "TagResource", http.MethodDelete: "UntagResource"}[r.Method]
	}
	return "Unknown"
}

// FailNext makes the next n calls of the action (CreateLifecyclePolicy,
// ...) answer an error with that code and change nothing:
// InternalServerException is HTTP 500 (the SDK retries it),
// LimitExceededException 429, ResourceNotFoundException 404, anything
// else 400.
func (s *Service) FailNext(action string, n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	status := map[string]int{"InternalServerException": 500, CodeLimitExceeded: 429, CodeResourceNotFound: 404}[code]
	if status == 0 {
		status = http.StatusBadRequest
	}
	for range n {
		s.failNext[action] = append(s.failNext[action], &APIError{Status: status, Code: code, Message: "injected by FailNext"})
	}
}

// LoseNextResponse makes the next n successful calls of the action take
// effect and then answer HTTP 500 InternalServerException. DLM has no
// client tokens: a retried create makes a second policy.
func (s *Service) LoseNextResponse(action string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseNext[action] += n
}

// route maps the REST bindings of the DLM model to the handlers.
func (s *Service) route(r *http.Request) (string, any, *APIError) {
	path := strings.TrimSuffix(r.URL.EscapedPath(), "/")
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return "", nil, invalid("read body: %v", err)
		}
		body = b
	}
	decode := func(v any) *APIError {
		if len(body) == 0 {
			return nil
		}
		dec := json.NewDecoder(strings.NewReader(string(body)))
		if err := dec.Decode(v); err != nil {
			return invalid("Could not parse request body into json: %v", err)
		}
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	switch rest, isTags := strings.CutPrefix(path, "/tags/"); {
	case path == "/policies" && r.Method == http.MethodPost:
		var in policyInput
		if err := decode(&in); err != nil {
			return "CreateLifecyclePolicy", nil, err
		}
		res, err := s.create(in, now)
		return "CreateLifecyclePolicy", res, err
	case path == "/policies" && r.Method == http.MethodGet:
		res, err := s.list(r.URL.Query())
		return "GetLifecyclePolicies", res, err
	case strings.HasPrefix(path, "/policies/"):
		id, _ := url.PathUnescape(strings.TrimPrefix(path, "/policies/"))
		switch r.Method {
		case http.MethodGet:
			p, err := s.find(id)
			if err != nil {
				return "GetLifecyclePolicy", nil, err
			}
			return "GetLifecyclePolicy", map[string]any{"Policy": p}, nil
		case http.MethodPatch:
			var in policyInput
			if err := decode(&in); err != nil {
				return "UpdateLifecyclePolicy", nil, err
			}
			return "UpdateLifecyclePolicy", nil, s.update(id, in, now)
		case http.MethodDelete:
			if _, err := s.find(id); err != nil {
				return "DeleteLifecyclePolicy", nil, err
			}
			delete(s.policies, id)
			return "DeleteLifecyclePolicy", nil, nil
		}
	case isTags:
		arn, err := url.PathUnescape(rest)
		if err != nil {
			return "TagResource", nil, invalid("Invalid resource ARN")
		}
		p, apiErr := s.byARN(arn)
		switch r.Method {
		case http.MethodGet:
			if apiErr != nil {
				return "ListTagsForResource", nil, apiErr
			}
			return "ListTagsForResource", map[string]any{"Tags": tagsOrEmpty(p.Tags)}, nil
		case http.MethodPost:
			if apiErr != nil {
				return "TagResource", nil, apiErr
			}
			var in struct {
				Tags map[string]string `json:"Tags"`
			}
			if err := decode(&in); err != nil {
				return "TagResource", nil, err
			}
			if err := checkTagMap(in.Tags, true); err != nil {
				return "TagResource", nil, err
			}
			if p.Tags == nil {
				p.Tags = map[string]string{}
			}
			maps.Copy(p.Tags, in.Tags)
			if len(p.Tags) > 45 {
				return "TagResource", nil, invalid("The number of tags on the resource exceeds the maximum of 45.")
			}
			return "TagResource", nil, nil
		case http.MethodDelete:
			if apiErr != nil {
				return "UntagResource", nil, apiErr
			}
			for _, k := range r.URL.Query()["tagKeys"] {
				delete(p.Tags, k)
			}
			return "UntagResource", nil, nil
		}
	}
	return "Unknown", nil, &APIError{Status: http.StatusNotFound, Code: "UnknownOperationException", Message: "Unknown operation " + r.Method + " " + path}
}

func tagsOrEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// policyInput is CreateLifecyclePolicy's and UpdateLifecyclePolicy's body.
type policyInput struct {
	ExecutionRoleArn *string           `json:"ExecutionRoleArn"`
	Description      *string           `json:"Description"`
	State            *string           `json:"State"`
	PolicyDetails    *PolicyDetails    `json:"PolicyDetails"`
	Tags             map[string]string `json:"Tags"`
	DefaultPolicy    *string           `json:"DefaultPolicy"`
}

// Constraints from CreateLifecyclePolicy's Request Syntax
// (https://docs.aws.amazon.com/dlm/latest/APIReference/API_CreateLifecyclePolicy.html):
// ExecutionRoleArn "Length Constraints: Minimum length of 0. Maximum
// length of 2048. Pattern: arn:aws(-[a-z]{1,3}){0,2}:iam::\d+:role/.*";
// Description "Maximum length of 500. Pattern: [0-9A-Za-z _-]+"; State
// "Valid Values: ENABLED | DISABLED".
var (
	roleARN     = regexp.MustCompile(`^arn:aws(-[a-z]{1,3}){0,2}:iam::\d+:role/.*$`)
	description = regexp.MustCompile(`^[0-9A-Za-z _-]+$`)
	cronExpr    = regexp.MustCompile(`^cron\([^\n]{11,100}\)$`)
	timeOfDay   = regexp.MustCompile(`^([0-9]|0[0-9]|1[0-9]|2[0-3]):[0-5][0-9]$`)
	tagKey      = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
)

func validation(value, member, constraint string) *APIError {
	return invalid("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint)
}

func checkTagMap(tags map[string]string, resource bool) *APIError {
	for k, v := range tags {
		if !tagKey.MatchString(k) {
			return validation(k, "tags", "Member must satisfy regular expression pattern: ^(?!aws:)[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*$")
		}
		if strings.HasPrefix(k, "aws:") {
			return invalid("Tag keys starting with 'aws:' are reserved")
		}
		if len(v) > 256 {
			return validation(v, "tags", "Member must have length less than or equal to 256")
		}
	}
	if resource && len(tags) > 45 {
		return invalid("The number of tags on the resource exceeds the maximum of 45.")
	}
	return nil
}

func checkTags(tags []Tag, member string, min, max int) *APIError {
	if len(tags) < min || len(tags) > max {
		return validation(fmt.Sprint(tags), member, fmt.Sprintf("Member must have length between %d and %d", min, max))
	}
	for _, t := range tags {
		if !tagKey.MatchString(t.Key) || len(t.Value) > 256 {
			return validation(t.Key, member, "Member must satisfy regular expression pattern: [\\p{all}]*")
		}
	}
	return nil
}

// checkDetails validates a custom EBS snapshot policy's PolicyDetails
// (API_PolicyDetails.html, API_Schedule.html, API_CreateRule.html,
// API_RetainRule.html).
func checkDetails(d *PolicyDetails) *APIError {
	if d.PolicyType == "" {
		// PolicyType: "The default is EBS_SNAPSHOT_MANAGEMENT."
		d.PolicyType = "EBS_SNAPSHOT_MANAGEMENT"
	}
	if d.PolicyType != "EBS_SNAPSHOT_MANAGEMENT" {
		return invalid("The simulator models only EBS_SNAPSHOT_MANAGEMENT policies, not %s", d.PolicyType)
	}
	// ResourceTypes: "Array Members: Fixed number of 1 item. Valid Values:
	// VOLUME | INSTANCE".
	if len(d.ResourceTypes) != 1 || (d.ResourceTypes[0] != "VOLUME" && d.ResourceTypes[0] != "INSTANCE") {
		return invalid("PolicyDetails.ResourceTypes must be exactly one of VOLUME, INSTANCE")
	}
	if len(d.ResourceLocations) == 0 {
		d.ResourceLocations = []string{"CLOUD"}
	}
	// TargetTags: "Array Members: Minimum number of 1 item. Maximum number
	// of 50 items."
	if err := checkTags(d.TargetTags, "policyDetails.targetTags", 1, 50); err != nil {
		if len(d.TargetTags) == 0 {
			return invalid("Target tags are required for policies of type EBS_SNAPSHOT_MANAGEMENT.")
		}
		return err
	}
	// Schedules: "Minimum number of 1 item. Maximum number of 4 items."
	if len(d.Schedules) < 1 || len(d.Schedules) > 4 {
		return validation(fmt.Sprint(len(d.Schedules)), "policyDetails.schedules", "Member must have length between 1 and 4")
	}
	for i := range d.Schedules {
		sc := &d.Schedules[i]
		if len(sc.Name) > 120 {
			return validation(sc.Name, "policyDetails.schedules.name", "Member must have length less than or equal to 120")
		}
		if err := checkTags(sc.TagsToAdd, "policyDetails.schedules.tagsToAdd", 0, 45); err != nil {
			return err
		}
		c := sc.CreateRule
		if c == nil {
			return invalid("Schedule %q must have a CreateRule.", sc.Name)
		}
		switch {
		case c.CronExpression != "" && (c.Interval != 0 || c.IntervalUnit != "" || len(c.Times) > 0):
			// "You must specify either CronExpression, or Interval,
			// IntervalUnit, and Times." (API_CreateRule.html)
			return invalid("The CreateRule can specify either a cron expression or an interval, not both.")
		case c.CronExpression != "":
			if !cronExpr.MatchString(c.CronExpression) {
				return validation(c.CronExpression, "policyDetails.schedules.createRule.cronExpression",
					"Member must satisfy regular expression pattern: cron\\([^\\n]{11,100}\\)")
			}
		default:
			// Interval: "Valid Values: 1 | 2 | 3 | 4 | 6 | 8 | 12 | 24";
			// IntervalUnit: "Valid Values: HOURS"; Times: "Maximum number
			// of 1 item", each "hh:mm".
			if !slices.Contains([]int{1, 2, 3, 4, 6, 8, 12, 24}, c.Interval) {
				return invalid("Invalid interval %d. Valid values are 1, 2, 3, 4, 6, 8, 12 and 24.", c.Interval)
			}
			if c.IntervalUnit != "HOURS" {
				return invalid("Invalid interval unit %q. Valid value is HOURS.", c.IntervalUnit)
			}
			if len(c.Times) > 1 {
				return validation(strings.Join(c.Times, ","), "policyDetails.schedules.createRule.times", "Member must have length less than or equal to 1")
			}
			for _, t := range c.Times {
				if !timeOfDay.MatchString(t) {
					return validation(t, "policyDetails.schedules.createRule.times", "Member must satisfy regular expression pattern: ^(([0-1]?[0-9])|(2[0-3])):[0-5][0-9]$")
				}
			}
		}
		if c.Location == "" {
			c.Location = "CLOUD"
		}
		rr := sc.RetainRule
		// RetainRule: "You can retain snapshots based on either a count or
		// a time interval." Count "Valid Range: Minimum value of 0. Maximum
		// value of 1000."; IntervalUnit DAYS | WEEKS | MONTHS | YEARS.
		switch {
		case rr == nil:
			return invalid("Schedule %q must have a RetainRule.", sc.Name)
		case rr.Count != 0 && (rr.Interval != 0 || rr.IntervalUnit != ""):
			return invalid("The RetainRule can specify either a count or an interval, not both.")
		case rr.Count != 0:
			if rr.Count < 1 || rr.Count > 1000 {
				return invalid("Invalid retain count %d. It must be between 1 and 1000.", rr.Count)
			}
		default:
			if rr.Interval < 1 || !slices.Contains([]string{"DAYS", "WEEKS", "MONTHS", "YEARS"}, rr.IntervalUnit) {
				return invalid("The RetainRule must specify a count, or an interval and an interval unit (DAYS, WEEKS, MONTHS, YEARS).")
			}
		}
	}
	return nil
}

func checkCommon(in policyInput, creating bool) *APIError {
	if in.ExecutionRoleArn != nil || creating {
		v := deref(in.ExecutionRoleArn)
		if v == "" {
			return validation("null", "executionRoleArn", "Member must not be null")
		}
		if len(v) > 2048 || !roleARN.MatchString(v) {
			return validation(v, "executionRoleArn", "Member must satisfy regular expression pattern: arn:aws(-[a-z]{1,3}){0,2}:iam::\\d+:role/.*")
		}
	}
	if in.Description != nil || creating {
		v := deref(in.Description)
		if v == "" {
			return validation("null", "description", "Member must not be null")
		}
		if len(v) > 500 || !description.MatchString(v) {
			return validation(v, "description", "Member must satisfy regular expression pattern: [0-9A-Za-z _-]+")
		}
	}
	if in.State != nil || creating {
		if v := deref(in.State); v != "ENABLED" && v != "DISABLED" {
			return validation(v, "state", "Member must satisfy enum value set: [ENABLED, DISABLED]")
		}
	}
	if in.DefaultPolicy != nil {
		return invalid("The simulator does not model default policies")
	}
	if in.PolicyDetails != nil {
		if err := checkDetails(in.PolicyDetails); err != nil {
			return err
		}
	} else if creating {
		return invalid("PolicyDetails is required for a custom policy.")
	}
	return checkTagMap(in.Tags, true)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// create is CreateLifecyclePolicy (API_CreateLifecyclePolicy.html).
func (s *Service) create(in policyInput, now time.Time) (any, *APIError) {
	if err := checkCommon(in, true); err != nil {
		return nil, err
	}
	if len(s.policies) >= s.opts.MaxPolicies {
		return nil, &APIError{Status: http.StatusTooManyRequests, Code: CodeLimitExceeded,
			Message: fmt.Sprintf("The maximum number of lifecycle policies (%d) has been reached.", s.opts.MaxPolicies), ResourceType: "LifecyclePolicy"}
	}
	id := fmt.Sprintf("policy-%017x", s.rng.Uint64())
	p := &Policy{PolicyID: id, PolicyARN: fmt.Sprintf("arn:aws:dlm:%s:%s:policy/%s", s.opts.Region, AccountID, id),
		Description: *in.Description, State: *in.State, ExecutionRoleArn: *in.ExecutionRoleArn,
		DateCreated: now.UTC(), DateModified: now.UTC(), PolicyDetails: *in.PolicyDetails, Tags: maps.Clone(in.Tags)}
	p.StatusMessage = statusMessage(p.State)
	s.policies[id] = p
	return map[string]string{"PolicyId": id}, nil
}

func statusMessage(state string) string {
	if state == "ENABLED" {
		return "ENABLED"
	}
	return "DISABLED"
}

// update is UpdateLifecyclePolicy (API_UpdateLifecyclePolicy.html): each
// given field replaces the policy's.
func (s *Service) update(id string, in policyInput, now time.Time) *APIError {
	p, err := s.find(id)
	if err != nil {
		return err
	}
	if len(in.Tags) > 0 {
		return invalid("Tags cannot be updated with UpdateLifecyclePolicy; use TagResource.")
	}
	if err := checkCommon(in, false); err != nil {
		return err
	}
	if in.ExecutionRoleArn != nil {
		p.ExecutionRoleArn = *in.ExecutionRoleArn
	}
	if in.Description != nil {
		p.Description = *in.Description
	}
	if in.State != nil {
		p.State = *in.State
		p.StatusMessage = statusMessage(p.State)
	}
	if in.PolicyDetails != nil {
		p.PolicyDetails = *in.PolicyDetails
	}
	p.DateModified = now.UTC()
	return nil
}

func (s *Service) find(id string) (*Policy, *APIError) {
	p := s.policies[id]
	if p == nil {
		return nil, notFound(id)
	}
	return p, nil
}

func (s *Service) byARN(arn string) (*Policy, *APIError) {
	for _, p := range s.policies {
		if p.PolicyARN == arn {
			return p, nil
		}
	}
	if !strings.HasPrefix(arn, "arn:aws:dlm:") {
		return nil, invalid("1 validation error detected: Value '%s' at 'resourceArn' failed to satisfy constraint: Member must satisfy regular expression pattern: ^arn:aws(-[a-z]{1,3}){0,2}:dlm:[A-Za-z0-9_/.-]{0,63}:\\d+:policy/[0-9A-Za-z_-]{1,128}$", arn)
	}
	id := arn[strings.LastIndex(arn, "/")+1:]
	return nil, notFound(id)
}

// summary is DLM's LifecyclePolicySummary.
type summary struct {
	PolicyID      string            `json:"PolicyId"`
	Description   string            `json:"Description"`
	State         string            `json:"State"`
	Tags          map[string]string `json:"Tags,omitempty"`
	PolicyType    string            `json:"PolicyType"`
	DefaultPolicy bool              `json:"DefaultPolicy"`
}

// list is GetLifecyclePolicies (API_GetLifecyclePolicies.html): "To get
// complete information about a policy, use GetLifecyclePolicy." Filters:
// policyIds, state (ENABLED | DISABLED | ERROR), resourceTypes,
// targetTags ("key=value"), tagsToAdd ("key=value"). Unknown policy ids
// answer ResourceNotFoundException.
func (s *Service) list(q url.Values) (any, *APIError) {
	for _, st := range q["state"] {
		if st != "ENABLED" && st != "DISABLED" && st != "ERROR" {
			return nil, validation(st, "state", "Member must satisfy enum value set: [ENABLED, DISABLED, ERROR]")
		}
	}
	var missing []string
	for _, id := range q["policyIds"] {
		if s.policies[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, notFound(missing...)
	}
	pairs := func(name string) ([]Tag, *APIError) {
		var out []Tag
		for _, kv := range q[name] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, validation(kv, name, "Member must satisfy regular expression pattern: [\\p{all}]*")
			}
			out = append(out, Tag{Key: k, Value: v})
		}
		return out, nil
	}
	targets, err := pairs("targetTags")
	if err != nil {
		return nil, err
	}
	added, err := pairs("tagsToAdd")
	if err != nil {
		return nil, err
	}
	out := []summary{}
	for _, id := range slices.Sorted(maps.Keys(s.policies)) {
		p := s.policies[id]
		switch {
		case len(q["policyIds"]) > 0 && !slices.Contains(q["policyIds"], id),
			q.Get("state") != "" && !slices.Contains(q["state"], p.State),
			len(q["resourceTypes"]) > 0 && !slices.ContainsFunc(p.PolicyDetails.ResourceTypes, func(rt string) bool { return slices.Contains(q["resourceTypes"], rt) }),
			len(targets) > 0 && !slices.ContainsFunc(targets, func(t Tag) bool { return slices.Contains(p.PolicyDetails.TargetTags, t) }),
			len(added) > 0 && !slices.ContainsFunc(added, func(t Tag) bool {
				return slices.ContainsFunc(p.PolicyDetails.Schedules, func(sc Schedule) bool { return slices.Contains(sc.TagsToAdd, t) })
			}):
			continue
		}
		out = append(out, summary{PolicyID: p.PolicyID, Description: p.Description, State: p.State, Tags: p.Tags,
			PolicyType: p.PolicyDetails.PolicyType})
	}
	return map[string]any{"Policies": out}, nil
}

// The Go API.

// Policies returns copies of every policy, by id.
func (s *Service) Policies() []Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Policy, 0, len(s.policies))
	for _, id := range slices.Sorted(maps.Keys(s.policies)) {
		p := *s.policies[id]
		p.Tags = maps.Clone(p.Tags)
		out = append(out, p)
	}
	return out
}

// Calls returns how many calls of each action were answered.
func (s *Service) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

func uuid(a, b uint64) string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, uint16(b>>48)&0x3fff|0x8000, b&(1<<48-1))
}

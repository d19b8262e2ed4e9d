// Package iamsim is a wire-level simulator of the parts of AWS Identity and
// Access Management the zkaas operator command calls, for the local
// cloud's tests: an http.Handler for the IAM Query API (protocol awsquery:
// form-encoded POSTs with Action and Version=2010-05-08, XML answers
// <XxxResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><XxxResult>…
// <ResponseMetadata><RequestId>…, errors as <ErrorResponse><Error>
// <Type>Sender</Type><Code>…</Code><Message>…), driven in tests by the real
// aws-sdk-go-v2 iam client.
//
// It models roles (CreateRole with its trust policy, GetRole, DeleteRole,
// TagRole, UntagRole, ListRoleTags), inline role policies (PutRolePolicy,
// GetRolePolicy, DeleteRolePolicy, ListRolePolicies) and instance profiles
// (CreateInstanceProfile, GetInstanceProfile, DeleteInstanceProfile,
// AddRoleToInstanceProfile, RemoveRoleFromInstanceProfile,
// ListInstanceProfilesForRole), with the validation and error codes of the
// IAM API Reference (https://docs.aws.amazon.com/IAM/latest/APIReference/),
// each handler citing its page: names and paths checked against their
// patterns (ValidationError), EntityAlreadyExists (names are unique
// regardless of case), NoSuchEntity, DeleteConflict (a role with inline
// policies or in a profile, a profile holding a role), LimitExceeded (a
// second role in a profile, the 10,240-character inline policy quota, 50
// tags), MalformedPolicyDocument (not JSON, no Version or Statement, a
// statement without Effect or Action, a trust policy without Principal).
// Policy documents come back URL-encoded, as IAM sends them.
//
// Not modelled: users, groups, managed policies and attachments, policy
// evaluation (nothing is ever denied), permissions boundaries, service-
// linked roles, pagination beyond MaxItems/Marker on the list calls,
// UpdateRole, eventual consistency ("changes that you make in IAM ... take
// time to become visible"; here they are visible at once), throttling.
package iamsim

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Service.
type Options struct {
	Now    func() time.Time // default time.Now
	Seed   uint64           // seeds role and profile ids
	Logger *slog.Logger
}

// Service is one simulated IAM endpoint (IAM is global: one per account).
type Service struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	roles    map[string]*Role            // by lower-cased name
	profiles map[string]*InstanceProfile // by lower-cased name
	rng      *rand.Rand
	calls    map[string]int
	failNext map[string][]*APIError // action -> errors the next calls answer
	loseNext map[string]int         // action -> successful calls whose answer is lost
}

// Role is an IAM role.
type Role struct {
	Name               string            `json:"roleName"`
	Path               string            `json:"path"`
	ID                 string            `json:"roleId"`
	ARN                string            `json:"arn"`
	CreateDate         time.Time         `json:"createDate"`
	AssumeRolePolicy   string            `json:"assumeRolePolicyDocument"` // as given (decoded)
	Description        string            `json:"description,omitempty"`
	MaxSessionDuration int               `json:"maxSessionDuration"`
	Tags               map[string]string `json:"tags,omitempty"`
	Policies           map[string]string `json:"policies,omitempty"` // inline: name -> document
}

// InstanceProfile is an IAM instance profile.
type InstanceProfile struct {
	Name       string            `json:"instanceProfileName"`
	Path       string            `json:"path"`
	ID         string            `json:"instanceProfileId"`
	ARN        string            `json:"arn"`
	CreateDate time.Time         `json:"createDate"`
	Role       string            `json:"role,omitempty"` // the role's name; at most one
	Tags       map[string]string `json:"tags,omitempty"`
}

// AccountID is the simulated account, as in ec2sim.
const AccountID = "123456789012"

const xmlns = "https://iam.amazonaws.com/doc/2010-05-08/"

// New returns a Service with no roles and no profiles.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{opts: opts, log: opts.Logger, roles: map[string]*Role{}, profiles: map[string]*InstanceProfile{},
		rng: rand.New(rand.NewPCG(opts.Seed, 11)), calls: map[string]int{},
		failNext: map[string][]*APIError{}, loseNext: map[string]int{}}
}

// Error codes, from "Common Errors" and each action's Errors section of
// the IAM API Reference.
const (
	CodeEntityAlreadyExists     = "EntityAlreadyExists"
	CodeNoSuchEntity            = "NoSuchEntity"
	CodeDeleteConflict          = "DeleteConflict"
	CodeLimitExceeded           = "LimitExceeded"
	CodeMalformedPolicyDocument = "MalformedPolicyDocument"
	CodeInvalidInput            = "InvalidInput"
	CodeValidationError         = "ValidationError"
	CodeInvalidAction           = "InvalidAction"
	CodeMissingAction           = "MissingAction"
	CodeMissingParameter        = "MissingParameter"
)

// APIError is an IAM error as it goes on the wire.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// The HTTP statuses are the ones the API Reference gives per error
// (NoSuchEntity 404, EntityAlreadyExists/DeleteConflict/LimitExceeded 409,
// the others 400).
func errNoSuchEntity(format string, args ...any) *APIError {
	return apiErr(http.StatusNotFound, CodeNoSuchEntity, format, args...)
}
func errExists(format string, args ...any) *APIError {
	return apiErr(http.StatusConflict, CodeEntityAlreadyExists, format, args...)
}
func errConflict(format string, args ...any) *APIError {
	return apiErr(http.StatusConflict, CodeDeleteConflict, format, args...)
}
func errLimit(format string, args ...any) *APIError {
	return apiErr(http.StatusConflict, CodeLimitExceeded, format, args...)
}
func errMalformed(format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, CodeMalformedPolicyDocument, format, args...)
}

// errValidation is AWS's model-validation wording.
func errValidation(value, member, constraint string) *APIError {
	return apiErr(http.StatusBadRequest, CodeValidationError,
		"1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint)
}

func errNull(member string) *APIError {
	return apiErr(http.StatusBadRequest, CodeValidationError,
		"1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
}

// Name and path constraints, as the API Reference states them: RoleName
// "Length Constraints: Minimum length of 1. Maximum length of 64. Pattern:
// [\w+=,.@-]+" (API_CreateRole.html); InstanceProfileName and PolicyName
// the same pattern, at most 128; Path "Minimum length of 1. Maximum length
// of 512. Pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)".
var (
	namePattern = regexp.MustCompile(`^[\w+=,.@-]+$`)
	pathPattern = regexp.MustCompile(`^(/|/[\x21-\x7E]+/)$`)
)

func checkName(v, member string, max int) *APIError {
	switch {
	case v == "":
		return errNull(member)
	case len(v) > max:
		return errValidation(v, member, fmt.Sprintf("Member must have length less than or equal to %d", max))
	case !namePattern.MatchString(v):
		return errValidation(v, member, `Member must satisfy regular expression pattern: [\w+=,.@-]+`)
	}
	return nil
}

func checkPath(v string) (string, *APIError) {
	if v == "" {
		return "/", nil
	}
	if len(v) > 512 || !pathPattern.MatchString(v) {
		return "", errValidation(v, "path", `Member must satisfy regular expression pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)`)
	}
	return v, nil
}

// checkPolicy is IAM's grammar check of a policy document ("IAM JSON
// policy elements", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html):
// JSON, a Version of 2012-10-17 or 2008-10-17, a Statement (one object or
// a list), each with Effect Allow or Deny and Action or NotAction; a trust
// policy's statements name a Principal and no Resource, a permissions
// policy's statements name no Principal.
func checkPolicy(doc string, trust bool) *APIError {
	var p map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return errMalformed("This policy contains invalid Json")
	}
	var version string
	if raw, ok := p["Version"]; !ok || json.Unmarshal(raw, &version) != nil {
		return errMalformed("Syntax errors in policy.")
	}
	if version != "2012-10-17" && version != "2008-10-17" {
		return errMalformed("The policy failed legacy parsing")
	}
	raw, ok := p["Statement"]
	if !ok {
		return errMalformed("Syntax errors in policy.")
	}
	var stmts []map[string]json.RawMessage
	if json.Unmarshal(raw, &stmts) != nil {
		var one map[string]json.RawMessage
		if json.Unmarshal(raw, &one) != nil {
			return errMalformed("Syntax errors in policy.")
		}
		stmts = []map[string]json.RawMessage{one}
	}
	if len(stmts) == 0 {
		return errMalformed("Syntax errors in policy.")
	}
	for _, st := range stmts {
		var effect string
		if json.Unmarshal(st["Effect"], &effect) != nil || (effect != "Allow" && effect != "Deny") {
			return errMalformed("Syntax errors in policy.")
		}
		_, act := st["Action"]
		_, notAct := st["NotAction"]
		if !act && !notAct {
			return errMalformed("Syntax errors in policy.")
		}
		_, principal := st["Principal"]
		_, resource := st["Resource"]
		switch {
		case trust && !principal:
			return errMalformed("Missing required field Principal")
		case trust && resource:
			return errMalformed("Has prohibited field Resource")
		case !trust && principal:
			return errMalformed("Policy document should not specify a principal.")
		}
	}
	return nil
}

// encodePolicy is how IAM returns policy documents: "The policy document
// returned in this structure is URL-encoded compliant with RFC 3986"
// (GetRolePolicy, https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRolePolicy.html).
func encodePolicy(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
}

type handler func(s *Service, q query, now time.Time) (any, *APIError)

var handlers = map[string]handler{
	"CreateRole":                    (*Service).createRole,
	"GetRole":                       (*Service).getRole,
	"DeleteRole":                    (*Service).deleteRole,
	"UpdateAssumeRolePolicy":        (*Service).updateAssumeRolePolicy,
	"TagRole":                       (*Service).tagRole,
	"UntagRole":                     (*Service).untagRole,
	"ListRoleTags":                  (*Service).listRoleTags,
	"PutRolePolicy":                 (*Service).putRolePolicy,
	"GetRolePolicy":                 (*Service).getRolePolicy,
	"DeleteRolePolicy":              (*Service).deleteRolePolicy,
	"ListRolePolicies":              (*Service).listRolePolicies,
	"CreateInstanceProfile":         (*Service).createInstanceProfile,
	"GetInstanceProfile":            (*Service).getInstanceProfile,
	"DeleteInstanceProfile":         (*Service).deleteInstanceProfile,
	"AddRoleToInstanceProfile":      (*Service).addRoleToInstanceProfile,
	"RemoveRoleFromInstanceProfile": (*Service).removeRoleFromInstanceProfile,
	"ListInstanceProfilesForRole":   (*Service).listInstanceProfilesForRole,
}

// ServeHTTP answers one IAM Query API call.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := uuid(rand.Uint64(), rand.Uint64())
	action, res, err := s.call(r)
	s.mu.Lock()
	s.calls[action]++
	s.mu.Unlock()
	if err != nil {
		s.log.Debug("iam call", "action", action, "error_code", err.Code, "error", err.Message)
		writeError(w, requestID, err)
		return
	}
	s.log.Debug("iam call", "action", action)
	writeResult(w, action, requestID, res)
}

func (s *Service) call(r *http.Request) (string, any, *APIError) {
	if err := r.ParseForm(); err != nil {
		return "", nil, apiErr(http.StatusBadRequest, "MalformedQueryString", "%s", err.Error())
	}
	q := query{form: r.Form}
	name := q.str("Action")
	if name == "" {
		return name, nil, apiErr(http.StatusBadRequest, CodeMissingAction, "The request must contain the parameter Action")
	}
	h, ok := handlers[name]
	if !ok {
		return name, nil, apiErr(http.StatusBadRequest, CodeInvalidAction, "The action %s is not valid for this web service.", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.failNext[name]; len(f) > 0 {
		s.failNext[name] = f[1:]
		return name, nil, f[0]
	}
	res, err := h(s, q, s.opts.Now())
	if err == nil && s.loseNext[name] > 0 {
		s.loseNext[name]--
		return name, nil, apiErr(http.StatusInternalServerError, "ServiceFailure", "The request processing has failed because of an unknown error, exception or failure.")
	}
	return name, res, err
}

// FailNext makes the next n calls of the action answer an error with that
// code and change nothing: "Throttling" (HTTP 400, which the SDK retries),
// "ServiceFailure" (HTTP 500, retried), anything else HTTP 400.
func (s *Service) FailNext(action string, n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	status := http.StatusBadRequest
	msg := "injected by FailNext"
	switch code {
	case "Throttling":
		msg = "Rate exceeded"
	case "ServiceFailure":
		status, msg = http.StatusInternalServerError, "The request processing has failed because of an unknown error, exception or failure."
	}
	for range n {
		s.failNext[action] = append(s.failNext[action], apiErr(status, code, "%s", msg))
	}
}

// LoseNextResponse makes the next n successful calls of the action take
// effect and then answer HTTP 500 ServiceFailure, as a lost answer looks.
// IAM has no client tokens: a retried create then meets
// EntityAlreadyExists.
func (s *Service) LoseNextResponse(action string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseNext[action] += n
}

// Calls returns how many calls of each action were answered.
func (s *Service) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// newID returns IAM's unique-id shape: a 4-letter prefix (AROA for roles,
// AIPA for instance profiles) and 17 upper-case letters and digits
// ("IAM identifiers", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html).
func (s *Service) newID(prefix string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := []byte(prefix)
	for range 17 {
		b = append(b, alphabet[s.rng.IntN(len(alphabet))])
	}
	return string(b)
}

func uuid(a, b uint64) string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, uint16(b>>48)&0x3fff|0x8000, b&(1<<48-1))
}

// query reads awsquery parameters (Name.member.N.Field for lists).
type query struct{ form url.Values }

func (q query) str(name string) string { return q.form.Get(name) }

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
	return slices.Sorted(maps.Keys(seen))
}

// tags reads Tags.member.N.Key/Value with IAM's tag constraints
// ("Tag": Key 1-128, Value 0-256 characters).
func (q query) tags() (map[string]string, *APIError) {
	out := map[string]string{}
	for _, n := range q.members("Tags") {
		p := "Tags.member." + strconv.Itoa(n) + "."
		k, v := q.str(p+"Key"), q.str(p+"Value")
		switch {
		case k == "":
			return nil, errNull("tags." + strconv.Itoa(n) + ".member.key")
		case len(k) > 128:
			return nil, errValidation(k, "tags."+strconv.Itoa(n)+".member.key", "Member must have length less than or equal to 128")
		case len(v) > 256:
			return nil, errValidation(v, "tags."+strconv.Itoa(n)+".member.value", "Member must have length less than or equal to 256")
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return nil, apiErr(http.StatusBadRequest, CodeInvalidInput, "User is not authorized to perform: iam:TagRole for tag keys starting with aws:")
		}
		out[k] = v
	}
	return out, nil
}

func (q query) list(prefix string) []string {
	var out []string
	for _, n := range q.members(prefix) {
		out = append(out, q.str(prefix+".member."+strconv.Itoa(n)))
	}
	return out
}

// Responses.

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

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

type wrapped struct {
	name string
	v    any
}

func (x wrapped) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return e.EncodeElement(x.v, xml.StartElement{Name: xml.Name{Local: x.name}})
}

func writeError(w http.ResponseWriter, requestID string, e *APIError) {
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
	writeXML(w, e.Status, requestID, body)
}

func writeXML(w http.ResponseWriter, status int, requestID string, body any) {
	out, err := xml.Marshal(body)
	if err != nil {
		http.Error(w, "iamsim: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", requestID)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

func xmlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// Package secretsim is a wire-level simulator of AWS Secrets Manager and
// AWS Systems Manager Parameter Store, for the secrets a node fetches at
// boot (keystores, truststores, SASL passwords): one http.Handler speaking
// the JSON 1.1 protocol of both (POST /, X-Amz-Target
// "secretsmanager.<Action>" or "AmazonSSM.<Action>", JSON bodies; errors as
// an X-Amzn-ErrorType header and a {"__type", "message"} body), driven in
// tests by the real aws-sdk-go-v2 secretsmanager and ssm clients. Point
// AWS_ENDPOINT_URL_SECRETS_MANAGER and AWS_ENDPOINT_URL_SSM at it.
//
// Secrets Manager (https://docs.aws.amazon.com/secretsmanager/latest/apireference/):
// CreateSecret, PutSecretValue and GetSecretValue; SecretString or
// SecretBinary (exactly one, at most 65536 bytes); versions with staging
// labels (a new value becomes AWSCURRENT, the old one AWSPREVIOUS);
// ClientRequestToken as the version id, idempotent for the same value and
// ResourceExistsException for another; SecretId as the name, the full ARN
// (name plus "-" and six random characters) or the partial ARN. Errors:
// ResourceNotFoundException, ResourceExistsException,
// InvalidParameterException, AccessDeniedException, DecryptionFailure,
// EncryptionFailure (CommonErrors and each action's "Errors");
// InvalidRequestException (a secret scheduled for deletion) only by
// FailNext.
//
// Parameter Store (https://docs.aws.amazon.com/systems-manager/latest/APIReference/):
// PutParameter and GetParameter; String, StringList and SecureString;
// versions ("name:3" selects one); Overwrite; the Standard tier's 4 KB and
// the Advanced tier's 8 KB value limits; SecureString encrypted with KeyId
// (default the AWS managed key alias/aws/ssm) and returned as ciphertext
// unless WithDecryption. Errors: ParameterNotFound,
// ParameterVersionNotFound, ParameterAlreadyExists, InvalidKeyId (an unknown
// or disabled key), ValidationException, AccessDeniedException.
//
// Who may read what: the caller is the access key id of the SigV4
// Authorization header, mapped to a principal by Options.Principals. Until
// the first Allow every call is allowed (wire tests need no policy); after
// it, GetSecretValue and GetParameter need an Allow of their action for the
// secret's or parameter's ARN, and reading a value encrypted with a
// customer managed key also needs kms:Decrypt on the key (AWS managed keys
// need nothing more: their key policy allows every principal of the account
// that may use the service). The writes (CreateSecret, PutSecretValue,
// PutParameter) are the test's set-up and are never denied. The policy is
// an allow-list, not IAM: no Deny, no conditions.
//
// Not modelled: deletion and restore, rotation, replication, resource
// policies, tags, Describe/List calls, GetParameters/GetParametersByPath,
// labels and parameter policies, throttling.
package secretsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AccountID is the simulated account, as in ec2sim.
const AccountID = "123456789012"

// Actions as IAM names them, for Allow.
const (
	ActionGetSecretValue = "secretsmanager:GetSecretValue"
	ActionGetParameter   = "ssm:GetParameter"
	ActionDecrypt        = "kms:Decrypt"
)

// AWS managed keys: the default encryption key of each service.
const (
	AliasSecretsManager = "alias/aws/secretsmanager"
	AliasSSM            = "alias/aws/ssm"
)

// Options configures a Service.
type Options struct {
	Region string           // default "us-east-1"
	Now    func() time.Time // default time.Now
	Seed   uint64           // seeds ARN suffixes and key ids
	Logger *slog.Logger
	// Principals maps access key ids to principal ARNs (an instance
	// profile's role session, say). A key id not listed is its own
	// principal.
	Principals map[string]string
}

// Service is one simulated endpoint of both services (one Region of one
// account).
type Service struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	rng      *rand.Rand
	secrets  map[string]*secret // by name
	params   map[string]*param  // by name
	keys     map[string]*key    // by key id
	aliases  map[string]string  // alias name -> key id
	allow    []grant
	enforce  bool
	calls    map[string]int
	failNext map[string][]*APIError
}

type grant struct{ principal, action, resource string }

type key struct {
	id, arn  string
	managed  bool // AWS managed: usable by every principal of the account
	disabled bool
}

type secret struct {
	name, arn, kmsKeyID string
	created             time.Time
	versions            map[string]*secretVersion
	order               []string // version ids, oldest first
}

type secretVersion struct {
	id      string
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

type param struct {
	name, arn string
	versions  []*paramVersion // version N at index N-1
}

type paramVersion struct {
	typ, value, keyID, tier, dataType, description string
	modified                                       time.Time
}

// New returns a Service holding only the two AWS managed keys.
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
	s := &Service{opts: opts, log: opts.Logger, rng: rand.New(rand.NewPCG(opts.Seed, 29)),
		secrets: map[string]*secret{}, params: map[string]*param{}, keys: map[string]*key{},
		aliases: map[string]string{}, calls: map[string]int{}, failNext: map[string][]*APIError{}}
	for _, alias := range []string{AliasSecretsManager, AliasSSM} {
		s.addKey(alias, true)
	}
	return s
}

// CreateKey adds an enabled customer managed KMS key under alias
// ("alias/zk-tls") and returns its ARN.
func (s *Service) CreateKey(alias string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addKey(alias, false).arn
}

func (s *Service) addKey(alias string, managed bool) *key {
	id := s.uuid()
	k := &key{id: id, arn: fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", s.opts.Region, AccountID, id), managed: managed}
	s.keys[id] = k
	if alias != "" {
		s.aliases[alias] = id
	}
	return k
}

// DisableKey disables a key (by ARN, id or alias): values encrypted with it
// can no longer be decrypted, nor new ones encrypted.
func (s *Service) DisableKey(ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.findKey(ref); k != nil {
		k.disabled = true
	}
}

// Allow lets principal call action ("secretsmanager:GetSecretValue",
// "ssm:GetParameter", "kms:Decrypt") on resource, an ARN in which '*'
// matches any run of characters, as in an IAM policy's Resource. The first
// Allow turns enforcement on.
func (s *Service) Allow(principal, action, resource string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enforce = true
	s.allow = append(s.allow, grant{principal, action, resource})
}

// FailNext makes the next calls of action ("GetSecretValue",
// "GetParameter", …) answer err, one call each, before anything else.
func (s *Service) FailNext(action string, errs ...*APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[action] = append(s.failNext[action], errs...)
}

// Calls reports how many calls of action were answered.
func (s *Service) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// APIError is an error as it goes on the wire.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"__type"`
	Message string `json:"message,omitempty"`
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// Errorf returns a 400 error with code, for FailNext.
func Errorf(code, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error codes of the two API references.
const (
	CodeResourceNotFound  = "ResourceNotFoundException"
	CodeResourceExists    = "ResourceExistsException"
	CodeInvalidParameter  = "InvalidParameterException"
	CodeInvalidRequest    = "InvalidRequestException"
	CodeAccessDenied      = "AccessDeniedException"
	CodeDecryptionFailure = "DecryptionFailure"
	CodeEncryptionFailure = "EncryptionFailure"
	CodeParameterNotFound = "ParameterNotFound"
	CodeVersionNotFound   = "ParameterVersionNotFound"
	CodeParameterExists   = "ParameterAlreadyExists"
	CodeInvalidKeyID      = "InvalidKeyId"
	CodeValidation        = "ValidationException"
	CodeUnknownOperation  = "UnknownOperationException"
	CodeMissingAuth       = "MissingAuthenticationTokenException"
	CodeSerialization     = "SerializationException"
)

// ServeHTTP answers one call of either service.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action, res, err := s.call(r)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", s.requestID())
	if err != nil {
		s.log.Debug("secretsim call", "action", action, "error_code", err.Code, "error", err.Message)
		w.Header().Set("X-Amzn-ErrorType", err.Code)
		w.WriteHeader(err.Status)
		_ = json.NewEncoder(w).Encode(err)
		return
	}
	s.log.Debug("secretsim call", "action", action)
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(res)
}

type handler func(s *Service, principal string, body []byte) (any, *APIError)

var handlers = map[string]handler{
	"secretsmanager.CreateSecret":   (*Service).createSecret,
	"secretsmanager.PutSecretValue": (*Service).putSecretValue,
	"secretsmanager.GetSecretValue": (*Service).getSecretValue,
	"AmazonSSM.PutParameter":        (*Service).putParameter,
	"AmazonSSM.GetParameter":        (*Service).getParameter,
}

func (s *Service) call(r *http.Request) (string, any, *APIError) {
	target := r.Header.Get("X-Amz-Target")
	_, action, _ := strings.Cut(target, ".")
	if r.Method != http.MethodPost {
		return action, nil, &APIError{Status: http.StatusMethodNotAllowed, Code: CodeUnknownOperation, Message: "only POST is supported"}
	}
	h, ok := handlers[target]
	if !ok {
		return action, nil, Errorf(CodeUnknownOperation, "unknown operation %q", target)
	}
	principal := s.caller(r)
	if principal == "" {
		return action, nil, Errorf(CodeMissingAuth, "Missing Authentication Token")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return action, nil, Errorf(CodeSerialization, "read body: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[action]++
	if q := s.failNext[action]; len(q) > 0 {
		s.failNext[action] = q[1:]
		return action, nil, q[0]
	}
	res, apiErr := h(s, principal, body)
	return action, res, apiErr
}

// caller is the principal of the access key id in the SigV4 Authorization
// header ("AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, …").
func (s *Service) caller(r *http.Request) string {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(cred, "/")
	if p, ok := s.opts.Principals[id]; ok {
		return p
	}
	return id
}

// allowed applies the allow-list (callers hold s.mu).
func (s *Service) allowed(principal, action, resource string) bool {
	if !s.enforce {
		return true
	}
	return slices.ContainsFunc(s.allow, func(g grant) bool {
		return g.principal == principal && g.action == action && wildcard(g.resource, resource)
	})
}

// denied is AWS's answer to a call no policy allows.
func denied(principal, action, resource string) *APIError {
	return Errorf(CodeAccessDenied, "User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action", principal, action, resource, action)
}

// wildcard matches s against pattern, in which '*' is any run of
// characters and '?' any one (IAM's Resource matching).
func wildcard(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if wildcard(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && wildcard(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && wildcard(pattern[1:], s[1:])
}

// findKey resolves a KeyId as KMS does: a key id, a key ARN, an alias name
// or an alias ARN.
func (s *Service) findKey(ref string) *key {
	aliasPrefix := fmt.Sprintf("arn:aws:kms:%s:%s:", s.opts.Region, AccountID)
	ref = strings.TrimPrefix(ref, aliasPrefix+"key/")
	if a, ok := strings.CutPrefix(ref, aliasPrefix); ok && strings.HasPrefix(a, "alias/") {
		ref = a
	}
	if id, ok := s.aliases[ref]; ok {
		ref = id
	}
	return s.keys[ref]
}

// decryptable reports why principal cannot decrypt with k, or "" if it can.
func (s *Service) decryptable(principal string, k *key) (disabled, deniedKMS bool) {
	if k.disabled {
		return true, false
	}
	if k.managed {
		return false, false
	}
	return false, !s.allowed(principal, ActionDecrypt, k.arn)
}

// seal stands in for KMS encryption: opaque, keyed, reversible by the
// simulator only. What matters to tests is that a SecureString read
// without decryption is not the plaintext.
func seal(k *key, plain string) string {
	ks := sha256.Sum256([]byte(k.arn))
	b := []byte(plain)
	for i := range b {
		b[i] ^= ks[i%len(ks)]
	}
	return base64.StdEncoding.EncodeToString(append([]byte("sim:"+k.id+":"), b...))
}

func (s *Service) uuid() string {
	a, b := s.rng.Uint64(), s.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, uint16(b>>48)&0x3fff|0x8000, b&(1<<48-1))
}

// requestID does not come from the seeded stream: ids must not depend on
// how many calls were made.
func (s *Service) requestID() string {
	a, b := rand.Uint64(), rand.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, uint16(b>>48)&0x3fff|0x8000, b&(1<<48-1))
}

// epoch is the JSON 1.1 timestamp: seconds since the epoch, a number.
func epoch(t time.Time) json.Number {
	return json.Number(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64))
}

func decode(body []byte, v any) *APIError {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return Errorf(CodeSerialization, "%v", err)
	}
	return nil
}

var (
	// Secret names: 1-512 of ASCII letters, digits and /_+=.@-
	// (CreateSecret, Name).
	secretNameRe = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
	// Parameter names: letters, digits and _.-/ (PutParameter, Name); at
	// most 2048 characters including the ARN-less form.
	paramNameRe = regexp.MustCompile(`^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
	// Version ids are ClientRequestTokens: 32-64 characters.
	tokenRe = regexp.MustCompile(`^[A-Za-z0-9-]{32,64}$`)
)

const randomChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func (s *Service) suffix() string {
	b := make([]byte, 6)
	for i := range b {
		b[i] = randomChars[s.rng.IntN(len(randomChars))]
	}
	return string(b)
}

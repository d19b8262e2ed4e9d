// Package secrets fetches the secret material a node needs at boot — TLS
// keystores and truststores, SASL passwords — from where the config's
// ensemble.Secret references point: AWS Secrets Manager (GetSecretValue,
// AWSCURRENT), SSM Parameter Store (GetParameter with decryption) or a file
// baked into the image.
//
// The AWS calls go through narrow interfaces with the SDK's own method
// signatures, satisfied by the real clients New builds from the standard
// configuration (so AWS_ENDPOINT_URL_SECRETS_MANAGER and
// AWS_ENDPOINT_URL_SSM point them elsewhere). Throttling and 5xx answers are
// retried by the SDK's standard retryer, bounded in attempts and with a
// capped, jittered exponential backoff. An access denial (of the secret or
// of its KMS key) is retried for a bounded while (Options.DeniedFor, 45 s)
// because IAM is eventually consistent: right after zkaas up or roll
// changes the role, a node may be denied what its policy grants. An answer
// no retry can change (the secret is missing, KMS refuses to decrypt it, a
// denial that outlasts the bound) fails with one line naming the config
// field, the reference and AWS's error code, and wraps ErrUnusable: every
// replacement instance would meet the same answer, so the boot treats it as
// a refusal.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/zkaas/zkaas/ensemble"
)

// SecretsManagerAPI is the one Secrets Manager call the boot makes
// (*secretsmanager.Client).
type SecretsManagerAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SSMAPI is the one Parameter Store call the boot makes (*ssm.Client).
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// ErrUnusable marks a reference whose answer no retry or replacement
// changes: not found, access denied, undecryptable, or material of the
// wrong shape (a json_key that is not there, a file anyone may read).
var ErrUnusable = errors.New("secret unusable")

// unusableError is an error that Is ErrUnusable without saying so in its
// text, which stays one line.
type unusableError struct {
	msg  string
	code string // AWS's error code, when AWS answered
}

func (e unusableError) Error() string        { return e.msg }
func (e unusableError) Is(target error) bool { return target == ErrUnusable }

func unusable(format string, args ...any) error {
	return unusableError{msg: fmt.Sprintf(format, args...)}
}

// MaxFileSize bounds a file source. Secrets Manager's own quota is 64 KiB
// (SecretString or SecretBinary); a baked file has no business being much
// larger.
const MaxFileSize = 1 << 20

// Options tunes a Fetcher built by New.
type Options struct {
	// MaxAttempts bounds the calls of one fetch, the first included
	// (default 5).
	MaxAttempts int
	// MaxBackoff caps the pause between attempts (default 5s); the pause
	// is the SDK's exponential backoff with full jitter.
	MaxBackoff time.Duration
	// DeniedFor is how long an AccessDeniedException is retried before
	// the fetch is refused (default 45 s; negative: not retried). IAM
	// changes "take time to become visible" to the services that check
	// them (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency),
	// and zkaas up and roll change the instances' role just before they
	// boot. 45 s outlasts the propagation seen in practice (seconds); a
	// denial beyond it is a policy that does not grant the secret, whose
	// refusal it delays by as much.
	DeniedFor time.Duration
	// DeniedPause is the first pause between denied attempts (default 1
	// s), doubled up to 8 s, each drawn from [pause/2, pause].
	DeniedPause time.Duration
	Log         *slog.Logger
}

// Fetcher fetches secret references.
type Fetcher struct {
	SecretsManager SecretsManagerAPI
	SSM            SSMAPI
	Log            *slog.Logger
	// Now is the clock the certificate's validity is checked against
	// (time.Now when nil).
	Now func() time.Time
	// DeniedFor and DeniedPause: Options'; DeniedFor 0 retries no
	// denial.
	DeniedFor, DeniedPause time.Duration
}

// New builds a Fetcher on the real clients, from the standard
// configuration in awsCfg (its Region is the ensemble's).
func New(awsCfg aws.Config, opts Options) *Fetcher {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	switch {
	case opts.DeniedFor == 0:
		opts.DeniedFor = 45 * time.Second
	case opts.DeniedFor < 0:
		opts.DeniedFor = 0
	}
	if opts.DeniedPause <= 0 {
		opts.DeniedPause = time.Second
	}
	// The standard retryer retries throttling error codes
	// (ThrottlingException, …), 5xx status codes and transport errors;
	// nothing else. Its token bucket also stops a retry storm.
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = opts.MaxAttempts
			o.MaxBackoff = opts.MaxBackoff
		})
	}
	return &Fetcher{
		SecretsManager: secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) { o.Retryer = retryer() }),
		SSM:            ssm.NewFromConfig(awsCfg, func(o *ssm.Options) { o.Retryer = retryer() }),
		Log:            opts.Log,
		DeniedFor:      opts.DeniedFor,
		DeniedPause:    opts.DeniedPause,
	}
}

// Private says whether material is private (a key, a password) or public
// (a CA certificate): a file holding private material must not be
// readable by others.
type Private bool

// Fetch returns the material of s (ForNode already applied), from the
// config field field. The error is one line: "<field>: <reference>: <why>".
func (f *Fetcher) Fetch(ctx context.Context, field string, s ensemble.Secret, private Private) ([]byte, error) {
	if strings.Contains(s.Name(), ensemble.NodePlaceholder) {
		return nil, unusable("%s: %s: %s not replaced by the node id", field, s, ensemble.NodePlaceholder)
	}
	var data []byte
	var err error
	switch s.Source() {
	case "secretsmanager":
		data, err = f.untilAllowed(ctx, field, s, func() ([]byte, error) { return f.secretsManager(ctx, s) })
	case "ssm":
		data, err = f.untilAllowed(ctx, field, s, func() ([]byte, error) { return f.ssm(ctx, s, private) })
	case "file":
		data, err = readFile(s.File, private)
	default:
		return nil, unusable("%s: no source named", field)
	}
	if err == nil && s.JSONKey != "" {
		data, err = jsonKey(data, s.JSONKey)
	}
	if err == nil && len(data) == 0 {
		err = unusable("empty value")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, s, err)
	}
	return data, nil
}

// codeAccessDenied is both services' answer when the caller's policy does
// not allow the call, or (Secrets Manager's "Access to KMS is not
// allowed", Parameter Store's "... kms:Decrypt ...") the secret's key.
const codeAccessDenied = "AccessDeniedException"

// untilAllowed calls get until it is not denied, or for f.DeniedFor, with
// a capped, jittered backoff: a denial may be IAM's eventual consistency.
// Any other answer returns at once.
func (f *Fetcher) untilAllowed(ctx context.Context, field string, s ensemble.Secret, get func() ([]byte, error)) ([]byte, error) {
	start := time.Now()
	deadline, pause := start.Add(f.DeniedFor), f.DeniedPause
	for attempt := 1; ; attempt++ {
		data, err := get()
		var ue unusableError
		if !errors.As(err, &ue) || ue.code != codeAccessDenied {
			return data, err
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			if s.Source() == "secretsmanager" && s.KMSKey == "" && strings.Contains(ue.msg, "KMS") {
				// The policy grants kms:Decrypt only on the keys the
				// config names.
				ue.msg += " (a customer managed key? name it in kms_key so the instance policy grants kms:Decrypt)"
			}
			switch {
			case left > 0:
				// The boot stopped waiting before the bound.
				ue.msg += fmt.Sprintf(" (still denied when the wait ended after %s, %d attempts: %v)",
					time.Since(start).Round(time.Millisecond), attempt, context.Cause(ctx))
			case f.DeniedFor > 0:
				ue.msg += fmt.Sprintf(" (still denied after %s, %d attempts)", f.DeniedFor, attempt)
			}
			return nil, ue
		}
		wait := min(pause/2+rand.N(pause/2+1), left)
		f.log().Warn("access denied: retrying, IAM changes take a while to reach the services", "step", "secrets",
			"field", field, "ref", s.String(), "attempt", attempt, "wait", wait.Round(time.Millisecond).String(), "error", ue.msg)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		pause = min(2*pause, 8*time.Second)
	}
}

// log is f.Log, or slog's default when the Fetcher was built without New.
func (f *Fetcher) log() *slog.Logger {
	if f.Log == nil {
		return slog.Default()
	}
	return f.Log
}

func (f *Fetcher) secretsManager(ctx context.Context, s ensemble.Secret) ([]byte, error) {
	if f.SecretsManager == nil {
		return nil, errors.New("no Secrets Manager client")
	}
	out, err := f.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(s.SecretsManager), VersionStage: aws.String("AWSCURRENT"),
	})
	if err != nil {
		return nil, apiError("GetSecretValue", err)
	}
	// Exactly one of the two is set (GetSecretValue's Response
	// Elements); SecretBinary arrives base64-decoded.
	if out.SecretString != nil {
		return []byte(*out.SecretString), nil
	}
	return out.SecretBinary, nil
}

func (f *Fetcher) ssm(ctx context.Context, s ensemble.Secret, private Private) ([]byte, error) {
	if f.SSM == nil {
		return nil, errors.New("no SSM client")
	}
	out, err := f.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(s.SSM), WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil, apiError("GetParameter", err)
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return nil, errors.New("GetParameter answered no value")
	}
	if private && out.Parameter.Type != "SecureString" {
		// Readable, so usable; but anyone with ssm:GetParameter reads a
		// String in the clear, and the console shows it.
		f.log().Warn("private material stored as a plain parameter: make it a SecureString", "step", "secrets",
			"parameter", s.SSM, "type", string(out.Parameter.Type))
	}
	return []byte(*out.Parameter.Value), nil
}

// apiError is AWS's answer in one line: the call, the error code and its
// message. Codes no retry can change wrap ErrUnusable.
func apiError(call string, err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		// Transport errors (possibly after retries): the SDK's message
		// says which.
		return fmt.Errorf("%s: %w", call, err)
	}
	line := call + ": " + ae.ErrorCode()
	if msg := strings.Join(strings.Fields(ae.ErrorMessage()), " "); msg != "" {
		line += ": " + msg
	}
	if ae.ErrorFault() == smithy.FaultServer || retryableCode(ae.ErrorCode()) {
		var max *retry.MaxAttemptsError
		if errors.As(err, &max) {
			line += fmt.Sprintf(" (gave up after %d attempts)", max.Attempt)
		}
		return &transientError{line, err}
	}
	return unusableError{msg: line, code: ae.ErrorCode()}
}

// transientError is an answer a later boot may not get (throttling, a
// server error): one line, the SDK's error underneath.
type transientError struct {
	line string
	err  error
}

func (e *transientError) Error() string { return e.line }
func (e *transientError) Unwrap() error { return e.err }

// retryableCode: the throttling codes the SDK retries (retry.DefaultThrottleErrorCodes)
// and the services' internal errors — answers that are not about the
// secret.
func retryableCode(code string) bool {
	if _, ok := retry.DefaultThrottleErrorCodes[code]; ok {
		return true
	}
	return code == "InternalServiceError" || code == "InternalServerError"
}

// jsonKey picks one string of a JSON object (Secrets Manager's key/value
// secrets).
func jsonKey(data []byte, key string) ([]byte, error) {
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, unusable("json_key %q: the value is not a JSON object", key)
	}
	v, ok := obj[key]
	if !ok {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		return nil, unusable("json_key %q: no such key (the object has %d: %s)", key, len(keys), strings.Join(slices.Sorted(slices.Values(keys)), ", "))
	}
	str, ok := v.(string)
	if !ok {
		return nil, unusable("json_key %q: the value is a %T, not a string", key, v)
	}
	return []byte(str), nil
}

// readFile reads a file source. The file was baked into the image, so it
// must be root's and not writable by anyone else (whoever could write it
// could hand the node a key of their choosing), and private material must
// not be readable by others (mode bits for "other" all clear; group read
// is allowed, for images that give a group access). A symlink is followed:
// the rules apply to the file it names.
func readFile(path string, private Private) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, unusable("no such file")
		}
		return nil, unusable("open: %v", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, unusable("not a regular file (%s)", fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
		return nil, unusable("owned by uid %d, not root", st.Uid)
	}
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 {
		return nil, unusable("mode %04o: writable by group or others (chmod go-w)", perm)
	}
	if private && perm&0o007 != 0 {
		return nil, unusable("mode %04o: private material readable by others (chmod o-rwx)", perm)
	}
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, unusable("larger than %d bytes", MaxFileSize)
	}
	return data, nil
}

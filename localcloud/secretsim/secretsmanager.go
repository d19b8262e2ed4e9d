package secretsim

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Staging labels Secrets Manager moves itself.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
)

// maxSecretSize is the quota on SecretString and SecretBinary: 65,536
// bytes (https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html).
const maxSecretSize = 65536

type secretValueInput struct {
	ClientRequestToken *string  `json:"ClientRequestToken"`
	SecretString       *string  `json:"SecretString"`
	SecretBinary       []byte   `json:"SecretBinary"`
	VersionStages      []string `json:"VersionStages"`
}

// value checks "exactly one of SecretString and SecretBinary" and the size.
func (in *secretValueInput) value() *APIError {
	switch {
	case in.SecretString == nil && in.SecretBinary == nil:
		return Errorf(CodeInvalidParameter, "You must provide either SecretString or SecretBinary.")
	case in.SecretString != nil && in.SecretBinary != nil:
		return Errorf(CodeInvalidParameter, "You can't specify both a binary secret value and a string secret value in the same secret.")
	case in.SecretString != nil && len(*in.SecretString) > maxSecretSize, len(in.SecretBinary) > maxSecretSize:
		return Errorf(CodeInvalidParameter, "The secret value is larger than the maximum of %d bytes.", maxSecretSize)
	}
	if in.ClientRequestToken != nil && !tokenRe.MatchString(*in.ClientRequestToken) {
		return Errorf(CodeInvalidParameter, "ClientRequestToken must be 32-64 characters.")
	}
	return nil
}

func (v *secretVersion) same(in *secretValueInput) bool {
	if in.SecretString != nil {
		return v.str != nil && *v.str == *in.SecretString
	}
	return v.str == nil && bytes.Equal(v.bin, in.SecretBinary)
}

// CreateSecret: https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html
func (s *Service) createSecret(_ string, body []byte) (any, *APIError) {
	var in struct {
		secretValueInput
		Name        string `json:"Name"`
		KmsKeyID    string `json:"KmsKeyId"`
		Description string `json:"Description"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if !secretNameRe.MatchString(in.Name) {
		return nil, Errorf(CodeInvalidParameter, "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	if err := in.value(); err != nil {
		return nil, err
	}
	keyRef := in.KmsKeyID
	if keyRef == "" {
		keyRef = AliasSecretsManager
	}
	k := s.findKey(keyRef)
	if k == nil || k.disabled {
		return nil, Errorf(CodeEncryptionFailure, "Secrets Manager can't encrypt the protected secret text using the provided KMS key %s. Check that the KMS key is available, enabled, and not in an invalid state.", keyRef)
	}
	if old, ok := s.secrets[in.Name]; ok {
		// The same token and value again is the SDK retrying: idempotent.
		if in.ClientRequestToken != nil {
			if v, ok := old.versions[*in.ClientRequestToken]; ok && v.same(&in.secretValueInput) {
				return map[string]any{"ARN": old.arn, "Name": old.name, "VersionId": v.id}, nil
			}
		}
		return nil, Errorf(CodeResourceExists, "The operation failed because the secret %s already exists.", in.Name)
	}
	now := s.opts.Now()
	sec := &secret{
		name: in.Name, kmsKeyID: k.id, created: now, versions: map[string]*secretVersion{},
		arn: fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.opts.Region, AccountID, in.Name, s.suffix()),
	}
	s.secrets[in.Name] = sec
	v := sec.add(s, &in.secretValueInput, now)
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id}, nil
}

// add stores a new version and moves the staging labels: the new version
// gets AWSCURRENT unless VersionStages says otherwise; the version that
// held AWSCURRENT gets AWSPREVIOUS (PutSecretValue, VersionStages).
func (sec *secret) add(s *Service, in *secretValueInput, now time.Time) *secretVersion {
	id := ""
	if in.ClientRequestToken != nil {
		id = *in.ClientRequestToken
	} else {
		id = s.uuid()
	}
	stages := in.VersionStages
	if len(stages) == 0 {
		stages = []string{StageCurrent}
	}
	v := &secretVersion{id: id, str: in.SecretString, bin: in.SecretBinary, created: now}
	if v.str != nil {
		str := *v.str
		v.str = &str
	}
	for _, stage := range stages {
		holder := sec.staged(stage)
		if holder != nil {
			holder.stages = slices.DeleteFunc(holder.stages, func(l string) bool { return l == stage })
			if stage == StageCurrent {
				if prev := sec.staged(StagePrevious); prev != nil {
					prev.stages = slices.DeleteFunc(prev.stages, func(l string) bool { return l == StagePrevious })
				}
				holder.stages = append(holder.stages, StagePrevious)
			}
		}
		v.stages = append(v.stages, stage)
	}
	sec.versions[id] = v
	sec.order = append(sec.order, id)
	return v
}

func (sec *secret) staged(stage string) *secretVersion {
	for _, id := range sec.order {
		if v := sec.versions[id]; slices.Contains(v.stages, stage) {
			return v
		}
	}
	return nil
}

// find resolves a SecretId: the name, the full ARN, or the partial ARN
// (the ARN without the six random characters).
func (s *Service) findSecret(id string) *secret {
	if sec, ok := s.secrets[id]; ok {
		return sec
	}
	prefix := fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:", s.opts.Region, AccountID)
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok {
		return nil
	}
	for _, sec := range s.secrets {
		if sec.arn == id || sec.name == rest {
			return sec
		}
	}
	return nil
}

func notFoundSecret() *APIError {
	return Errorf(CodeResourceNotFound, "Secrets Manager can't find the specified secret.")
}

// PutSecretValue: https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
func (s *Service) putSecretValue(_ string, body []byte) (any, *APIError) {
	var in struct {
		secretValueInput
		SecretID string `json:"SecretId"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	sec := s.findSecret(in.SecretID)
	if sec == nil {
		return nil, notFoundSecret()
	}
	if err := in.value(); err != nil {
		return nil, err
	}
	if k := s.keys[sec.kmsKeyID]; k == nil || k.disabled {
		return nil, Errorf(CodeEncryptionFailure, "Secrets Manager can't encrypt the protected secret text using the secret's KMS key. Check that the KMS key is available, enabled, and not in an invalid state.")
	}
	if in.ClientRequestToken != nil {
		if v, ok := sec.versions[*in.ClientRequestToken]; ok {
			if !v.same(&in.secretValueInput) {
				return nil, Errorf(CodeResourceExists, "You can't modify an existing version, you can only create a new version.")
			}
			return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id, "VersionStages": v.stages}, nil
		}
	}
	v := sec.add(s, &in.secretValueInput, s.opts.Now())
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id, "VersionStages": v.stages}, nil
}

// GetSecretValue: https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
func (s *Service) getSecretValue(principal string, body []byte) (any, *APIError) {
	var in struct {
		SecretID     string `json:"SecretId"`
		VersionID    string `json:"VersionId"`
		VersionStage string `json:"VersionStage"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.SecretID == "" {
		return nil, Errorf(CodeInvalidParameter, "SecretId is required.")
	}
	sec := s.findSecret(in.SecretID)
	// A caller that may not read a secret learns nothing of it, not even
	// whether it exists: the policy is checked against the ARN it asked
	// for (for a name, the name's ARN pattern without the suffix).
	resource := in.SecretID
	if sec != nil {
		resource = sec.arn
	} else if !strings.HasPrefix(resource, "arn:") {
		resource = fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s", s.opts.Region, AccountID, in.SecretID)
	}
	if !s.allowed(principal, ActionGetSecretValue, resource) {
		return nil, denied(principal, ActionGetSecretValue, resource)
	}
	if sec == nil {
		return nil, notFoundSecret()
	}
	var v *secretVersion
	switch {
	case in.VersionID != "":
		v = sec.versions[in.VersionID]
		if v != nil && in.VersionStage != "" && !slices.Contains(v.stages, in.VersionStage) {
			v = nil
		}
	default:
		stage := in.VersionStage
		if stage == "" {
			stage = StageCurrent
		}
		v = sec.staged(stage)
	}
	if v == nil {
		return nil, Errorf(CodeResourceNotFound, "Secrets Manager can't find the specified secret value for VersionId: %s, VersionStage: %s", in.VersionID, in.VersionStage)
	}
	if disabled, deniedKMS := s.decryptable(principal, s.keys[sec.kmsKeyID]); disabled {
		return nil, Errorf(CodeDecryptionFailure, "Secrets Manager can't decrypt the protected secret text using the provided KMS key.")
	} else if deniedKMS {
		return nil, Errorf(CodeAccessDenied, "Access to KMS is not allowed")
	}
	out := map[string]any{
		"ARN": sec.arn, "Name": sec.name, "VersionId": v.id, "VersionStages": v.stages,
		"CreatedDate": epoch(v.created),
	}
	if v.str != nil {
		out["SecretString"] = *v.str
	} else {
		out["SecretBinary"] = v.bin // base64, as encoding/json writes []byte
	}
	return out, nil
}

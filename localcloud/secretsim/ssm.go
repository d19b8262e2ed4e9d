package secretsim

import (
	"fmt"
	"strconv"
	"strings"
)

// Parameter types and tiers (PutParameter).
const (
	TypeString       = "String"
	TypeStringList   = "StringList"
	TypeSecureString = "SecureString"

	TierStandard     = "Standard"
	TierAdvanced     = "Advanced"
	TierIntelligent  = "Intelligent-Tiering"
	maxStandardValue = 4096 // characters (PutParameter, Value)
	maxAdvancedValue = 8192
	maxParamName     = 1011 // the name with its ARN (PutParameter, Name)
	maxHierarchy     = 15   // levels (PutParameter, Name)
	maxParamVersions = 100  // ParameterMaxVersionLimitExceeded
)

func validation(format string, args ...any) *APIError {
	return Errorf(CodeValidation, format, args...)
}

// paramARN is a parameter's ARN: "parameter" then the name, whose leading
// slash is not doubled (arn:…:parameter/zk/tls for /zk/tls, …:parameter/x
// for x).
func (s *Service) paramARN(name string) string {
	return fmt.Sprintf("arn:aws:ssm:%s:%s:parameter/%s", s.opts.Region, AccountID, strings.TrimPrefix(name, "/"))
}

// checkParamName applies PutParameter's rules for Name.
func (s *Service) checkParamName(name string) *APIError {
	lower := strings.ToLower(strings.TrimPrefix(name, "/"))
	switch {
	case name == "" || len(s.paramARN(name)) > maxParamName:
		return validation("Parameter name must be 1 to %d characters including its ARN.", maxParamName)
	case !paramNameRe.MatchString(name):
		return validation("Parameter name: can contain only letters, numbers and the symbols .-_/ .")
	case strings.Contains(name, "/") && !strings.HasPrefix(name, "/"):
		return validation("Parameter name must be a fully qualified name.")
	case strings.HasPrefix(lower, "aws") || strings.HasPrefix(lower, "ssm"):
		return validation("Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).")
	case strings.Count(name, "/") > maxHierarchy:
		return Errorf("HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of %d levels.", maxHierarchy)
	}
	return nil
}

// PutParameter: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
func (s *Service) putParameter(_ string, body []byte) (any, *APIError) {
	var in struct {
		Name        string  `json:"Name"`
		Value       *string `json:"Value"`
		Type        string  `json:"Type"`
		KeyID       string  `json:"KeyId"`
		Overwrite   bool    `json:"Overwrite"`
		Tier        string  `json:"Tier"`
		DataType    string  `json:"DataType"`
		Description string  `json:"Description"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := s.checkParamName(in.Name); err != nil {
		return nil, err
	}
	if in.Value == nil {
		return nil, validation("1 validation error detected: Value at 'value' failed to satisfy constraint: Member must not be null")
	}
	old := s.params[in.Name]
	typ := in.Type
	if typ == "" {
		if old == nil {
			return nil, validation("A parameter type is required when you create a parameter.")
		}
		typ = old.latest().typ
	}
	switch typ {
	case TypeString, TypeStringList, TypeSecureString:
	default:
		return nil, validation("1 validation error detected: Value '%s' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]", typ)
	}
	if in.KeyID != "" && typ != TypeSecureString {
		return nil, validation("KeyId is required for SecureString type parameter only.")
	}
	tier := in.Tier
	switch tier {
	case "":
		tier = TierStandard
	case TierIntelligent:
		tier = TierStandard
		if len(*in.Value) > maxStandardValue {
			tier = TierAdvanced
		}
	case TierStandard, TierAdvanced:
	default:
		return nil, validation("1 validation error detected: Value '%s' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]", tier)
	}
	if old != nil && old.latest().tier == TierAdvanced {
		tier = TierAdvanced // an advanced parameter never goes back to standard
	}
	switch n := len(*in.Value); {
	case tier == TierStandard && n > maxStandardValue:
		return nil, validation("Standard tier parameters support a maximum parameter value of %d characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.", maxStandardValue)
	case n > maxAdvancedValue:
		return nil, validation("Advanced tier parameters support a maximum parameter value of %d characters.", maxAdvancedValue)
	}
	keyID := ""
	if typ == TypeSecureString {
		ref := in.KeyID
		if ref == "" {
			ref = AliasSSM
		}
		k := s.findKey(ref)
		if k == nil || k.disabled {
			return nil, Errorf(CodeInvalidKeyID, "The key %s is not valid: it does not exist or is disabled.", ref)
		}
		keyID = k.id
	}
	if old != nil && !in.Overwrite {
		return nil, Errorf(CodeParameterExists, "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	}
	if old != nil && len(old.versions) >= maxParamVersions {
		return nil, Errorf("ParameterMaxVersionLimitExceeded", "Parameter %s has reached the maximum of %d versions.", in.Name, maxParamVersions)
	}
	if old == nil {
		old = &param{name: in.Name, arn: s.paramARN(in.Name)}
		s.params[in.Name] = old
	}
	dataType := in.DataType
	if dataType == "" {
		dataType = "text"
	}
	old.versions = append(old.versions, &paramVersion{
		typ: typ, value: *in.Value, keyID: keyID, tier: tier, dataType: dataType,
		description: in.Description, modified: s.opts.Now(),
	})
	return map[string]any{"Version": len(old.versions), "Tier": tier}, nil
}

func (p *param) latest() *paramVersion { return p.versions[len(p.versions)-1] }

// GetParameter: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html
func (s *Service) getParameter(principal string, body []byte) (any, *APIError) {
	var in struct {
		Name           string `json:"Name"`
		WithDecryption bool   `json:"WithDecryption"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	// Name is the name or the ARN, with an optional ":version" or ":label"
	// selector (names cannot contain ':').
	name := in.Name
	if rest, ok := strings.CutPrefix(name, fmt.Sprintf("arn:aws:ssm:%s:%s:parameter/", s.opts.Region, AccountID)); ok {
		// …:parameter/zk/tls is /zk/tls; …:parameter/x is the unqualified x.
		name = rest
		if strings.Contains(rest, "/") {
			name = "/" + rest
		}
	}
	name, selector, hasSelector := strings.Cut(name, ":")
	if name == "" {
		return nil, validation("Parameter name must not be empty.")
	}
	resource := s.paramARN(name)
	if !s.allowed(principal, ActionGetParameter, resource) {
		return nil, denied(principal, ActionGetParameter, resource)
	}
	p := s.params[name]
	if p == nil {
		return nil, &APIError{Status: 400, Code: CodeParameterNotFound}
	}
	v, version := p.latest(), len(p.versions)
	if hasSelector {
		n, err := strconv.Atoi(selector)
		if err != nil || n < 1 || n > len(p.versions) {
			// No labels exist here: a label selects nothing.
			return nil, Errorf(CodeVersionNotFound, "Systems Manager could not find version %s of %s. Verify the version and try again.", selector, name)
		}
		v, version = p.versions[n-1], n
	}
	value := v.value
	if v.typ == TypeSecureString {
		k := s.keys[v.keyID]
		if in.WithDecryption {
			disabled, deniedKMS := s.decryptable(principal, k)
			switch {
			case disabled:
				return nil, Errorf(CodeInvalidKeyID, "The key %s is disabled: the parameter cannot be decrypted.", k.arn)
			case deniedKMS:
				return nil, Errorf(CodeAccessDenied, "User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action (Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException)", principal, ActionDecrypt, k.arn, ActionDecrypt)
			}
		} else {
			value = seal(k, v.value)
		}
	}
	out := map[string]any{
		"Name": p.name, "ARN": p.arn, "Type": v.typ, "Value": value, "Version": version,
		"DataType": v.dataType, "LastModifiedDate": epoch(v.modified),
	}
	if hasSelector {
		out["Selector"] = ":" + selector
	}
	return map[string]any{"Parameter": out}, nil
}

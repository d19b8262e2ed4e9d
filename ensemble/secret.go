package ensemble

// Secret references: where a node takes a piece of secret material at boot
// (a keystore, a truststore, a SASL password). The material itself is never
// in the config, which travels as user data and is readable by anything on
// the instance that can reach IMDS.

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// NodePlaceholder in a secret's name, ARN or path is replaced by the node's
// id, so that one config names one certificate per node
// (/zkaas/prod/node-{node}/keystore).
const NodePlaceholder = "{node}"

// Secret is exactly one of a Secrets Manager secret, an SSM parameter or a
// file baked into the image.
type Secret struct {
	// SecretsManager is the secret's name or ARN (GetSecretValue's SecretId;
	// AWSCURRENT is read).
	SecretsManager string `yaml:"secretsmanager"`
	// SSM is a Parameter Store parameter's name or ARN (GetParameter, with
	// decryption: a SecureString is expected).
	SSM string `yaml:"ssm"`
	// File is an absolute path on the image (baked by the bake's roles).
	File string `yaml:"file"`
	// JSONKey, when set, says the value is a JSON object and the material is
	// this key's string (Secrets Manager's key/value secrets).
	JSONKey string `yaml:"json_key"`
	// KMSKey is the ARN of the customer managed KMS key the secret or
	// SecureString is encrypted with: the instance policy then grants
	// kms:Decrypt on it (through that service only). Unset for the AWS
	// managed keys (aws/secretsmanager, aws/ssm), whose key policies let
	// every principal of the account that may read the secret decrypt it.
	KMSKey string `yaml:"kms_key"`
}

// IsSet reports whether any source is named.
func (s Secret) IsSet() bool { return s.SecretsManager != "" || s.SSM != "" || s.File != "" }

// Source is "secretsmanager", "ssm" or "file" ("" when unset).
func (s Secret) Source() string {
	switch {
	case s.SecretsManager != "":
		return "secretsmanager"
	case s.SSM != "":
		return "ssm"
	case s.File != "":
		return "file"
	}
	return ""
}

// Name is the secret's id, parameter name or path.
func (s Secret) Name() string { return s.SecretsManager + s.SSM + s.File }

// String is source:name[#json_key], for messages and the run report (never
// the material).
func (s Secret) String() string {
	out := s.Source() + ":" + s.Name()
	if s.JSONKey != "" {
		out += "#" + s.JSONKey
	}
	return out
}

// ForNode replaces NodePlaceholder with the node's id.
func (s Secret) ForNode(id int) Secret {
	r := strings.NewReplacer(NodePlaceholder, strconv.Itoa(id))
	s.SecretsManager, s.SSM, s.File = r.Replace(s.SecretsManager), r.Replace(s.SSM), r.Replace(s.File)
	return s
}

// PerNode reports whether the reference names a different secret per node.
func (s Secret) PerNode() bool { return strings.Contains(s.Name(), NodePlaceholder) }

// NamedSecret is a secret reference and the config field that holds it.
type NamedSecret struct {
	Field  string // e.g. zookeeper.tls.keystore
	Secret Secret
	// SASLUser is the SASL client user whose password this is
	// (zookeeper.sasl.clients[i]); empty for every other secret.
	SASLUser string
}

// Secrets lists every secret the config names, unexpanded (NodePlaceholder
// left in place): the instance policy grants exactly these (for every
// node), and the boot fetches them (ForNode).
func (c *Config) Secrets() []NamedSecret {
	var out []NamedSecret
	for _, s := range append(c.ZooKeeper.TLS.secrets(), c.ZooKeeper.SASL.secrets()...) {
		if s.Secret.IsSet() {
			out = append(out, s)
		}
	}
	return out
}

var (
	// Secrets Manager secret names: 1-512 of letters, digits and /_+=.@-
	// (CreateSecret's Name); {node} allowed on top.
	secretNameRe = regexp.MustCompile(`^[A-Za-z0-9/_+=.@{}-]+$`)
	secretARNRe  = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):([0-9]{12}):secret:([A-Za-z0-9/_+=.@{}-]+)$`)
	// SSM parameter names: letters, digits and _.-/ (PutParameter's Name),
	// up to 2048 characters including the ARN's prefix, at most 15 levels.
	ssmNameRe = regexp.MustCompile(`^[A-Za-z0-9_./{}-]+$`)
	ssmARNRe  = regexp.MustCompile(`^arn:aws[a-z-]*:ssm:([a-z0-9-]+):([0-9]{12}):parameter/([A-Za-z0-9_./{}-]+)$`)
	// A KMS key ARN (not an alias: IAM matches kms:Decrypt against the
	// key's ARN).
	kmsKeyARNRe = regexp.MustCompile(`^arn:aws[a-z-]*:kms:([a-z0-9-]+):([0-9]{12}):key/[A-Za-z0-9-]+$`)
)

// secret checks one reference; required says it must be set. It reports
// whether the reference is usable.
func (v *validator) secret(field string, s Secret, region string, required bool) bool {
	n := 0
	for _, x := range []string{s.SecretsManager, s.SSM, s.File} {
		if x != "" {
			n++
		}
	}
	switch {
	case n == 0 && required:
		v.errorf(field, "required: one of secretsmanager (a secret's name or ARN), ssm (a parameter's name or ARN) or file (a path on the image)")
		return false
	case n == 0:
		return true
	case n > 1:
		v.errorf(field, "name exactly one of secretsmanager, ssm and file")
		return false
	}
	if strings.Count(s.Name(), "{") != strings.Count(s.Name(), NodePlaceholder) || strings.Count(s.Name(), "}") != strings.Count(s.Name(), NodePlaceholder) {
		v.errorf(field+"."+s.Source(), "%q: the only placeholder is %s (the node's id)", s.Name(), NodePlaceholder)
		return false
	}
	if limit := map[string]int{"secretsmanager": 512, "ssm": 1011, "file": 4096}[s.Source()]; len(s.Name()) > limit {
		v.errorf(field+"."+s.Source(), "longer than %d characters", limit)
		return false
	}
	ok := true
	switch f := field + "." + s.Source(); {
	case s.File == "" && strings.HasPrefix(s.Name(), "arn:"):
		re, form := secretARNRe, "a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"
		if s.SSM != "" {
			re, form = ssmARNRe, "an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>)"
		}
		switch m := re.FindStringSubmatch(s.Name()); {
		case m == nil:
			v.errorf(f, "%q is not %s", s.Name(), form)
			ok = false
		case region != "" && m[1] != region:
			v.errorf(f, "%s is in region %s but the ensemble is in %s", s.Name(), m[1], region)
			ok = false
		}
	case s.SecretsManager != "":
		if !secretNameRe.MatchString(s.SecretsManager) {
			v.errorf(f, "%q is not a secret name: 1-512 letters, digits and /_+=.@-", s.SecretsManager)
			ok = false
		}
	case s.SSM != "":
		switch {
		case !ssmNameRe.MatchString(s.SSM):
			v.errorf(f, "%q is not a parameter name: letters, digits and _.-/", s.SSM)
			ok = false
		case strings.Count(strings.TrimPrefix(s.SSM, "/"), "/") >= 15:
			v.errorf(f, "%q has more than 15 levels (Parameter Store's limit)", s.SSM)
			ok = false
		case strings.Contains(s.SSM, "/") && !strings.HasPrefix(s.SSM, "/"):
			v.errorf(f, "%q: a hierarchical parameter name starts with /", s.SSM)
			ok = false
		}
	case s.File != "":
		if !filepath.IsAbs(s.File) || filepath.Clean(s.File) != s.File {
			v.errorf(f, "%q must be a clean absolute path on the image", s.File)
			ok = false
		}
	}
	if s.JSONKey != "" && s.File != "" {
		v.errorf(field+".json_key", "json_key picks a key of a secret's JSON value; a file is used whole")
		ok = false
	}
	if s.KMSKey != "" {
		switch m := kmsKeyARNRe.FindStringSubmatch(s.KMSKey); {
		case s.File != "":
			v.errorf(field+".kms_key", "a file is not encrypted with KMS; kms_key is for secretsmanager and ssm")
			ok = false
		case m == nil:
			v.errorf(field+".kms_key", "%q is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key-id>; an alias does not scope kms:Decrypt)", s.KMSKey)
			ok = false
		case region != "" && m[1] != region:
			v.errorf(field+".kms_key", "key %s is in region %s but the ensemble is in %s", s.KMSKey, m[1], region)
			ok = false
		}
	}
	return ok
}

package iampolicy

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/internal/golden"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/claim"
)

func TestForGolden(t *testing.T) {
	cfg := load(t, "../../ensemble/testdata/ensemble.yaml")
	got := For(cfg).JSON()
	golden.Check(t, "testdata/policy.golden.json", got)
}

func TestForScoping(t *testing.T) {
	cfg := load(t, "testdata/secrets.yaml")
	for _, st := range For(cfg).Statement {
		for _, a := range st.Action {
			if a == "ec2:*" {
				t.Errorf("%s grants %s", st.Sid, a)
			}
			if a == "ec2:CreateTags" {
				keys, _ := st.Condition["ForAllValues:StringEquals"]["aws:TagKeys"].([]string)
				if len(keys) != 1 || keys[0] != cfg.Claim.Tags.Initialized {
					t.Errorf("%s: CreateTags not limited to the initialized tag: %v", st.Sid, st.Condition)
				}
			}
			// Reading a secret needs no condition, but a named
			// resource; everything else but Describe needs both.
			read := strings.Contains(a, ":Get")
			mutating := !strings.Contains(a, ":Describe") && !read
			if mutating && (len(st.Condition) == 0 || st.Resource[0] == "*") {
				t.Errorf("%s grants %s without a resource scope and condition", st.Sid, a)
			}
			if read && slices.ContainsFunc(st.Resource, func(r string) bool { return strings.HasSuffix(r, "*") }) {
				t.Errorf("%s grants %s on a wildcard: %v", st.Sid, a, st.Resource)
			}
		}
	}
	for region, want := range map[string]string{"us-east-1": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov"} {
		if got := partition(region); got != want {
			t.Errorf("partition(%s) = %s", region, got)
		}
	}
}

func TestDocumentedKeys(t *testing.T) {
	cfg := load(t, "testdata/secrets.yaml")
	known := func(k string) bool {
		if _, ok := Documented[k]; ok {
			return true
		}
		for prefix := range Documented {
			if strings.HasSuffix(prefix, "/") && strings.HasPrefix(k, prefix) && len(k) > len(prefix) {
				return true
			}
		}
		return false
	}
	vars := regexp.MustCompile(`\$\{([^}]*)\}`)
	for _, st := range For(cfg).Statement {
		for _, kv := range st.Condition {
			for k := range kv {
				if !known(k) {
					t.Errorf("%s: condition key %s is not in Documented", st.Sid, k)
				}
			}
		}
		for _, m := range vars.FindAllStringSubmatch(string(For(cfg).JSON()), -1) {
			if !known(m[1]) {
				t.Errorf("policy variable %s is not in Documented", m[1])
			}
		}
	}
}

func TestResourceTypes(t *testing.T) {
	cfg := load(t, "testdata/secrets.yaml")
	for _, st := range For(cfg).Statement {
		for _, r := range st.Resource {
			typ := "*"
			if r != "*" {
				// arn:partition:service:region:account:type/... or type:...
				parts := strings.SplitN(r, ":", 6)
				typ = strings.FieldsFunc(parts[5], func(c rune) bool { return c == '/' || c == ':' })[0]
			}
			for _, a := range st.Action {
				if !slices.Contains(ResourceTypes[a], typ) {
					t.Errorf("%s: %s on %s, the SAR lists %v", st.Sid, a, typ, ResourceTypes[a])
				}
			}
		}
	}
}

// stringLike is IAM's StringLike: '*' any run of characters, '?' exactly one.
func stringLike(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if stringLike(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && stringLike(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && stringLike(pattern[1:], s[1:])
}

// TestInitializedTagValue: the value firstboot writes (claim.TagInitialized:
// UTC, RFC 3339, seconds) passes the policy's StringLike, and other values
// do not, so a node can only record a time.
func TestInitializedTagValue(t *testing.T) {
	cfg := load(t, "../../ensemble/testdata/ensemble.yaml")
	var pattern string
	for _, st := range For(cfg).Statement {
		if p, ok := st.Condition["StringLike"]["aws:RequestTag/"+cfg.Claim.Tags.Initialized].(string); ok {
			pattern = p
		}
	}
	if pattern == "" {
		t.Fatal("no StringLike on the initialized tag's value")
	}
	written := claim.FormatInitialized(time.Date(2026, 12, 2, 1, 2, 3, 456, time.FixedZone("x", 3600)))
	for _, tc := range []struct {
		value string
		want  bool
	}{
		{written, true},
		{"2026-12-02T01:02:03+01:00", false},
		{"2026-12-02T01:02:03.5Z", false},
		{"yes", false},
		{"", false},
	} {
		if got := stringLike(pattern, tc.value); got != tc.want {
			t.Errorf("StringLike(%q, %q) = %v, want %v", pattern, tc.value, got, tc.want)
		}
	}
}

// TestForSecretsGolden: the secret statements of a config naming secrets in
// every way, as a whole policy.
func TestForSecretsGolden(t *testing.T) {
	cfg := load(t, "testdata/secrets.yaml")
	golden.Check(t, "testdata/policy-secrets.golden.json", For(cfg).JSON())
}

// TestSecretResources: exactly the referenced secrets, every node's, and
// the wildcard only as Secrets Manager's six-character suffix.
func TestSecretResources(t *testing.T) {
	cfg := load(t, "testdata/secrets.yaml")
	got := map[string][]string{}
	for _, st := range For(cfg).Statement {
		for _, a := range st.Action {
			if strings.HasPrefix(a, "secretsmanager:") || strings.HasPrefix(a, "ssm:") || strings.HasPrefix(a, "kms:") {
				got[a] = append(got[a], st.Resource...)
			}
		}
	}
	want := map[string][]string{
		"secretsmanager:GetSecretValue": {
			// A partial ARN gets the suffix; a complete one is kept.
			"arn:aws:secretsmanager:us-east-1:*:secret:zkaas/prod/node-1/keystore-??????",
			"arn:aws:secretsmanager:us-east-1:*:secret:zkaas/prod/node-2/keystore-??????",
			"arn:aws:secretsmanager:us-east-1:*:secret:zkaas/prod/node-3/keystore-??????",
			"arn:aws:secretsmanager:us-east-1:123456789012:secret:zkaas/prod/monitor-??????",
			"arn:aws:secretsmanager:us-east-1:123456789012:secret:zkaas/prod/sasl-a1B2c3",
		},
		"ssm:GetParameter": {
			"arn:aws:ssm:us-east-1:*:parameter/zkaas/prod/truststore",
			"arn:aws:ssm:us-east-1:123456789012:parameter/zkaas/prod/kafka",
		},
		// The one key serves a secret and a parameter: granted once
		// through each service.
		"kms:Decrypt": {"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
	}
	for a, w := range want {
		if !slices.Equal(got[a], w) {
			t.Errorf("%s on\n%s\nwant\n%s", a, strings.Join(got[a], "\n"), strings.Join(w, "\n"))
		}
	}
	// Without secrets, no secret statement at all; AWS managed keys
	// (no kms_key) need no Decrypt.
	plain := load(t, "../../ensemble/testdata/ensemble.yaml")
	for _, st := range For(plain).Statement {
		if strings.Contains(st.Sid, "Secret") || strings.Contains(st.Sid, "Parameter") {
			t.Errorf("config without secrets: %s", st.Sid)
		}
	}
	cfg.ZooKeeper.TLS.Keystore.KMSKey = ""
	cfg.ZooKeeper.SASL.Clients[0].Password.KMSKey = ""
	for _, st := range For(cfg).Statement {
		if slices.Contains(st.Action, "kms:Decrypt") {
			t.Errorf("kms:Decrypt granted without a kms_key: %v", st.Resource)
		}
	}
}

// TestDecryptPerService: a key named for a Secrets Manager secret is
// usable only through Secrets Manager, and a parameter's only through
// Parameter Store: one Decrypt statement per service, holding only that
// service's keys, so neither service can be used to decrypt with the
// other's key.
func TestDecryptPerService(t *testing.T) {
	cfg := load(t, "testdata/secrets.yaml")
	const smKey, ssmKey = "arn:aws:kms:us-east-1:123456789012:key/sm", "arn:aws:kms:us-east-1:123456789012:key/ssm"
	cfg.ZooKeeper.TLS.Keystore.KMSKey = smKey
	cfg.ZooKeeper.SASL.Clients[0].Password.KMSKey = ssmKey
	got := map[string][]string{} // kms:ViaService → keys
	for _, st := range For(cfg).Statement {
		if !slices.Contains(st.Action, "kms:Decrypt") {
			continue
		}
		via, ok := st.Condition["StringEquals"]["kms:ViaService"].(string)
		if !ok {
			t.Fatalf("%s: kms:ViaService is %#v, want one service", st.Sid, st.Condition["StringEquals"]["kms:ViaService"])
		}
		got[via] = append(got[via], st.Resource...)
	}
	want := map[string][]string{"secretsmanager.us-east-1.amazonaws.com": {smKey}, "ssm.us-east-1.amazonaws.com": {ssmKey}}
	if len(got) != len(want) {
		t.Errorf("Decrypt statements by service: %v, want %v", got, want)
	}
	for via, keys := range want {
		if !slices.Equal(got[via], keys) {
			t.Errorf("via %s: keys %v, want %v", via, got[via], keys)
		}
	}
}

// load is the config at path, which must load.
func load(t *testing.T, path string) ensemble.Config {
	t.Helper()
	cfg, _, err := ensemble.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

package secretsim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/zkaas/zkaas/localcloud/secretsim"
)

// Principals of the tests: the node's instance role and someone else.
const (
	nodeKey   = "AKIDNODE"
	otherKey  = "AKIDOTHER"
	adminKey  = "AKIDADMIN"
	nodeRole  = "arn:aws:sts::123456789012:assumed-role/zkaas-prod-zk/i-0123456789abcdef0"
	otherUser = "arn:aws:iam::123456789012:user/other"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

type clients struct {
	svc          *secretsim.Service
	url          string
	sm, smOther  *secretsmanager.Client
	ssm, ssmNode *ssm.Client
	ssmOther     *ssm.Client
	smNode       *secretsmanager.Client
}

func setup(t *testing.T) clients {
	t.Helper()
	svc := secretsim.New(secretsim.Options{Seed: 1, Now: func() time.Time { return t0 },
		Principals: map[string]string{nodeKey: nodeRole, otherKey: otherUser}})
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	cfg := func(key string) aws.Config {
		return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(key, "SECRET", "")}
	}
	sm := func(key string) *secretsmanager.Client {
		return secretsmanager.NewFromConfig(cfg(key), func(o *secretsmanager.Options) {
			o.BaseEndpoint = aws.String(srv.URL)
			o.RetryMaxAttempts = 1
		})
	}
	sp := func(key string) *ssm.Client {
		return ssm.NewFromConfig(cfg(key), func(o *ssm.Options) {
			o.BaseEndpoint = aws.String(srv.URL)
			o.RetryMaxAttempts = 1
		})
	}
	return clients{svc: svc, url: srv.URL, sm: sm(adminKey), smNode: sm(nodeKey), smOther: sm(otherKey),
		ssm: sp(adminKey), ssmNode: sp(nodeKey), ssmOther: sp(otherKey)}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantError(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != http.StatusBadRequest {
		t.Fatalf("%s: HTTP %d, want 400", code, re.HTTPStatusCode())
	}
}

func TestSecretString(t *testing.T) {
	c := setup(t)
	cr, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{
		Name: aws.String("zkaas/prod-zk/sasl"), SecretString: aws.String(`{"password":"s3cret"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(cr.ARN)
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:zkaas/prod-zk/sasl-") || len(arn) != len("arn:aws:secretsmanager:us-east-1:123456789012:secret:zkaas/prod-zk/sasl-")+6 {
		t.Errorf("ARN = %s: want the name and six random characters", arn)
	}
	// By name, full ARN and partial ARN: the same secret.
	for _, id := range []string{"zkaas/prod-zk/sasl", arn, strings.TrimSuffix(arn, arn[len(arn)-7:])} {
		out, err := c.smNode.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("GetSecretValue(%s): %v", id, err)
		}
		if aws.ToString(out.SecretString) != `{"password":"s3cret"}` || out.SecretBinary != nil ||
			aws.ToString(out.VersionId) != aws.ToString(cr.VersionId) || !slicesEqual(out.VersionStages, "AWSCURRENT") ||
			!aws.ToTime(out.CreatedDate).Equal(t0) || aws.ToString(out.ARN) != arn {
			t.Errorf("GetSecretValue(%s) = %+v", id, out)
		}
	}

	// A new value becomes AWSCURRENT, the old one AWSPREVIOUS.
	pv, err := c.sm.PutSecretValue(ctx(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String("v2")})
	if err != nil {
		t.Fatal(err)
	}
	if !slicesEqual(pv.VersionStages, "AWSCURRENT") {
		t.Errorf("PutSecretValue stages = %v", pv.VersionStages)
	}
	cur, _ := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("zkaas/prod-zk/sasl")})
	prev, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("zkaas/prod-zk/sasl"), VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(cur.SecretString) != "v2" || aws.ToString(prev.SecretString) != `{"password":"s3cret"}` {
		t.Errorf("current %q, previous %v %v", aws.ToString(cur.SecretString), prev, err)
	}
	byID, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: cr.VersionId})
	if err != nil || !slicesEqual(byID.VersionStages, "AWSPREVIOUS") {
		t.Errorf("by version id: %+v, %v", byID, err)
	}
	_, err = c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String("NOPE")})
	wantError(t, err, secretsim.CodeResourceNotFound)
}

func TestSecretBinary(t *testing.T) {
	c := setup(t)
	keystore := bytes.Repeat([]byte{0xfe, 0xed, 0xfe, 0xed, 0, 1, 2}, 1000) // a JKS is binary and > 4 KB
	_, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("zk/keystore"), SecretBinary: keystore})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("zk/keystore")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.SecretBinary, keystore) || out.SecretString != nil {
		t.Errorf("SecretBinary round trip: %d bytes, string %v", len(out.SecretBinary), out.SecretString)
	}
}

func TestSecretErrors(t *testing.T) {
	c := setup(t)
	token := "11111111-2222-4333-8444-555555555555"
	if _, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("a"), SecretString: aws.String("x"), ClientRequestToken: aws.String(token)}); err != nil {
		t.Fatal(err)
	}
	// The SDK's retry of the same request is idempotent.
	if _, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("a"), SecretString: aws.String("x"), ClientRequestToken: aws.String(token)}); err != nil {
		t.Errorf("CreateSecret retried: %v", err)
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"missing secret", func() error {
			_, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")})
			var nf *smtypes.ResourceNotFoundException
			if err != nil && !errors.As(err, &nf) {
				t.Errorf("not the SDK's ResourceNotFoundException: %T", err)
			}
			return err
		}, secretsim.CodeResourceNotFound},
		{"exists", func() error {
			_, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("a"), SecretString: aws.String("y")})
			return err
		}, secretsim.CodeResourceExists},
		{"both values", func() error {
			_, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("b"), SecretString: aws.String("y"), SecretBinary: []byte{1}})
			return err
		}, secretsim.CodeInvalidParameter},
		{"no value", func() error {
			_, err := c.sm.PutSecretValue(ctx(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("a")})
			return err
		}, secretsim.CodeInvalidParameter},
		{"too large", func() error {
			_, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("c"), SecretBinary: make([]byte, 65537)})
			return err
		}, secretsim.CodeInvalidParameter},
		{"bad name", func() error {
			_, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("a b"), SecretString: aws.String("y")})
			return err
		}, secretsim.CodeInvalidParameter},
		{"version changed under the same token", func() error {
			_, err := c.sm.PutSecretValue(ctx(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("a"), SecretString: aws.String("other"), ClientRequestToken: aws.String(token)})
			return err
		}, secretsim.CodeResourceExists},
		{"unknown key", func() error {
			_, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("d"), SecretString: aws.String("y"), KmsKeyId: aws.String("alias/nope")})
			return err
		}, secretsim.CodeEncryptionFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantError(t, tt.call(), tt.code) })
	}
}

// TestSecretAccess: once a policy exists, only the principals it allows
// read a secret; a denied caller cannot tell a missing secret from one it
// may not read; a customer managed key needs kms:Decrypt as well.
func TestSecretAccess(t *testing.T) {
	c := setup(t)
	key := c.svc.CreateKey("alias/zk-tls")
	mk := func(name, kms string) string {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("pw")}
		if kms != "" {
			in.KmsKeyId = aws.String(kms)
		}
		out, err := c.sm.CreateSecret(ctx(t), in)
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ARN)
	}
	plain := mk("zkaas/prod-zk/sasl", "")
	cmk := mk("zkaas/prod-zk/keystore", "alias/zk-tls")
	mk("zkaas/other/sasl", "")

	c.svc.Allow(nodeRole, secretsim.ActionGetSecretValue, "arn:aws:secretsmanager:us-east-1:123456789012:secret:zkaas/prod-zk/*")
	get := func(cl *secretsmanager.Client, id string) error {
		_, err := cl.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		return err
	}
	if err := get(c.smNode, plain); err != nil {
		t.Errorf("allowed read: %v", err)
	}
	wantError(t, get(c.smOther, plain), secretsim.CodeAccessDenied)
	wantError(t, get(c.smNode, "zkaas/other/sasl"), secretsim.CodeAccessDenied)
	// Missing but inside the allowed pattern: not found; outside: denied.
	wantError(t, get(c.smNode, "zkaas/prod-zk/missing"), secretsim.CodeResourceNotFound)
	wantError(t, get(c.smOther, "zkaas/prod-zk/missing"), secretsim.CodeAccessDenied)

	err := get(c.smNode, cmk)
	wantError(t, err, secretsim.CodeAccessDenied)
	if !strings.Contains(err.Error(), "Access to KMS is not allowed") {
		t.Errorf("KMS denial: %v", err)
	}
	c.svc.Allow(nodeRole, secretsim.ActionDecrypt, key)
	if err := get(c.smNode, cmk); err != nil {
		t.Errorf("with kms:Decrypt: %v", err)
	}
	c.svc.DisableKey(key)
	wantError(t, get(c.smNode, cmk), secretsim.CodeDecryptionFailure)
}

func TestParameters(t *testing.T) {
	c := setup(t)
	put := func(in *ssm.PutParameterInput) *ssm.PutParameterOutput {
		t.Helper()
		out, err := c.ssm.PutParameter(ctx(t), in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := put(&ssm.PutParameterInput{Name: aws.String("/zkaas/prod-zk/heap"), Value: aws.String("2g"), Type: ssmtypes.ParameterTypeString}); out.Version != 1 || out.Tier != ssmtypes.ParameterTierStandard {
		t.Errorf("PutParameter = %+v", out)
	}
	_, err := c.ssm.PutParameter(ctx(t), &ssm.PutParameterInput{Name: aws.String("/zkaas/prod-zk/heap"), Value: aws.String("4g"), Type: ssmtypes.ParameterTypeString})
	wantError(t, err, secretsim.CodeParameterExists)
	if out := put(&ssm.PutParameterInput{Name: aws.String("/zkaas/prod-zk/heap"), Value: aws.String("4g"), Overwrite: aws.Bool(true)}); out.Version != 2 {
		t.Errorf("overwrite: version %d, want 2", out.Version)
	}
	get := func(name string, decrypt bool) (*ssmtypes.Parameter, error) {
		out, err := c.ssmNode.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(decrypt)})
		if err != nil {
			return nil, err
		}
		return out.Parameter, nil
	}
	p, err := get("/zkaas/prod-zk/heap", false)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(p.Value) != "4g" || p.Version != 2 || p.Type != ssmtypes.ParameterTypeString ||
		aws.ToString(p.ARN) != "arn:aws:ssm:us-east-1:123456789012:parameter/zkaas/prod-zk/heap" ||
		!aws.ToTime(p.LastModifiedDate).Equal(t0) || aws.ToString(p.DataType) != "text" {
		t.Errorf("GetParameter = %+v", p)
	}
	// A version selector, and the ARN as the name.
	if p, err := get("arn:aws:ssm:us-east-1:123456789012:parameter/zkaas/prod-zk/heap:1", false); err != nil || aws.ToString(p.Value) != "2g" || p.Version != 1 || aws.ToString(p.Selector) != ":1" {
		t.Errorf("version 1 by ARN: %+v, %v", p, err)
	}
	_, err = get("/zkaas/prod-zk/heap:9", false)
	wantError(t, err, secretsim.CodeVersionNotFound)
	_, err = get("/zkaas/prod-zk/missing", false)
	wantError(t, err, secretsim.CodeParameterNotFound)
	var nf *ssmtypes.ParameterNotFound
	if !errors.As(err, &nf) {
		t.Errorf("not the SDK's ParameterNotFound: %T", err)
	}

	// SecureString: ciphertext unless WithDecryption.
	put(&ssm.PutParameterInput{Name: aws.String("/zkaas/prod-zk/sasl"), Value: aws.String("s3cret"), Type: ssmtypes.ParameterTypeSecureString})
	if p, err := get("/zkaas/prod-zk/sasl", false); err != nil || aws.ToString(p.Value) == "s3cret" || strings.Contains(aws.ToString(p.Value), "s3cret") {
		t.Errorf("SecureString without decryption: %+v, %v", p, err)
	}
	if p, err := get("/zkaas/prod-zk/sasl", true); err != nil || aws.ToString(p.Value) != "s3cret" || p.Type != ssmtypes.ParameterTypeSecureString {
		t.Errorf("SecureString with decryption: %+v, %v", p, err)
	}
}

func TestParameterErrors(t *testing.T) {
	c := setup(t)
	tests := []struct {
		name string
		in   *ssm.PutParameterInput
		code string
	}{
		{"no type", &ssm.PutParameterInput{Name: aws.String("/a"), Value: aws.String("x")}, secretsim.CodeValidation},
		{"aws prefix", &ssm.PutParameterInput{Name: aws.String("/aws/x"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString}, secretsim.CodeValidation},
		{"not fully qualified", &ssm.PutParameterInput{Name: aws.String("a/b"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString}, secretsim.CodeValidation},
		{"bad character", &ssm.PutParameterInput{Name: aws.String("/a b"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString}, secretsim.CodeValidation},
		{"standard tier too large", &ssm.PutParameterInput{Name: aws.String("/ks"), Value: aws.String(strings.Repeat("k", 4097)), Type: ssmtypes.ParameterTypeSecureString}, secretsim.CodeValidation},
		{"advanced tier too large", &ssm.PutParameterInput{Name: aws.String("/ks"), Value: aws.String(strings.Repeat("k", 8193)), Type: ssmtypes.ParameterTypeSecureString, Tier: ssmtypes.ParameterTierAdvanced}, secretsim.CodeValidation},
		{"unknown key", &ssm.PutParameterInput{Name: aws.String("/s"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeSecureString, KeyId: aws.String("alias/nope")}, secretsim.CodeInvalidKeyID},
		{"key on a String", &ssm.PutParameterInput{Name: aws.String("/s"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString, KeyId: aws.String("alias/aws/ssm")}, secretsim.CodeValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ssm.PutParameter(ctx(t), tt.in)
			wantError(t, err, tt.code)
		})
	}
	// The advanced tier holds what the standard one refuses.
	if out, err := c.ssm.PutParameter(ctx(t), &ssm.PutParameterInput{Name: aws.String("/ks"), Value: aws.String(strings.Repeat("k", 8000)), Type: ssmtypes.ParameterTypeSecureString, Tier: ssmtypes.ParameterTierIntelligentTiering}); err != nil || out.Tier != ssmtypes.ParameterTierAdvanced {
		t.Errorf("intelligent tiering of 8000 characters: %+v, %v", out, err)
	}
}

// TestParameterAccess: the allow-list for ssm:GetParameter, and a
// SecureString under a customer managed key without kms:Decrypt
// (AccessDeniedException) or with the key disabled (InvalidKeyId).
func TestParameterAccess(t *testing.T) {
	c := setup(t)
	key := c.svc.CreateKey("alias/zk-tls")
	for _, in := range []*ssm.PutParameterInput{
		{Name: aws.String("/zkaas/prod-zk/truststore"), Value: aws.String("trust"), Type: ssmtypes.ParameterTypeSecureString, KeyId: aws.String(key)},
		{Name: aws.String("/zkaas/prod-zk/managed"), Value: aws.String("pw"), Type: ssmtypes.ParameterTypeSecureString},
		{Name: aws.String("/zkaas/other/x"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString},
	} {
		if _, err := c.ssm.PutParameter(ctx(t), in); err != nil {
			t.Fatal(err)
		}
	}
	c.svc.Allow(nodeRole, secretsim.ActionGetParameter, "arn:aws:ssm:us-east-1:123456789012:parameter/zkaas/prod-zk/*")
	get := func(cl *ssm.Client, name string, decrypt bool) (string, error) {
		out, err := cl.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(decrypt)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.Parameter.Value), nil
	}
	if v, err := get(c.ssmNode, "/zkaas/prod-zk/managed", true); err != nil || v != "pw" {
		t.Errorf("AWS managed key, allowed: %q, %v", v, err)
	}
	_, err := get(c.ssmOther, "/zkaas/prod-zk/managed", true)
	wantError(t, err, secretsim.CodeAccessDenied)
	_, err = get(c.ssmNode, "/zkaas/other/x", false)
	wantError(t, err, secretsim.CodeAccessDenied)
	_, err = get(c.ssmNode, "/zkaas/prod-zk/missing", false)
	wantError(t, err, secretsim.CodeParameterNotFound)

	// Without decryption the ciphertext needs no key access.
	if _, err := get(c.ssmNode, "/zkaas/prod-zk/truststore", false); err != nil {
		t.Errorf("ciphertext: %v", err)
	}
	_, err = get(c.ssmNode, "/zkaas/prod-zk/truststore", true)
	wantError(t, err, secretsim.CodeAccessDenied)
	if !strings.Contains(err.Error(), "kms:Decrypt") {
		t.Errorf("KMS denial does not name kms:Decrypt: %v", err)
	}
	c.svc.Allow(nodeRole, secretsim.ActionDecrypt, "arn:aws:kms:us-east-1:123456789012:key/*")
	if v, err := get(c.ssmNode, "/zkaas/prod-zk/truststore", true); err != nil || v != "trust" {
		t.Errorf("with kms:Decrypt: %q, %v", v, err)
	}
	c.svc.DisableKey("alias/zk-tls")
	_, err = get(c.ssmNode, "/zkaas/prod-zk/truststore", true)
	wantError(t, err, secretsim.CodeInvalidKeyID)
	var ik *ssmtypes.InvalidKeyId
	if !errors.As(err, &ik) {
		t.Errorf("not the SDK's InvalidKeyId: %T", err)
	}
}

// TestWire: the JSON 1.1 envelope as AWS sends it, for clients other than
// the Go SDK (the JVM's, curl in a boot script).
func TestWire(t *testing.T) {
	c := setup(t)
	post := func(target, body string, auth bool) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
		if auth {
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDNODE/20261201/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=00")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := post("AmazonSSM.GetParameter", `{"Name":"/missing"}`, true)
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "ParameterNotFound" ||
		resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" || !strings.Contains(body, `"__type":"ParameterNotFound"`) {
		t.Errorf("ParameterNotFound on the wire: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if resp, _ := post("AmazonSSM.GetParameter", `{"Name":"/missing"}`, false); resp.Header.Get("X-Amzn-ErrorType") != secretsim.CodeMissingAuth {
		t.Errorf("unsigned call: %v", resp.Header)
	}
	if resp, _ := post("AmazonSSM.DeleteEverything", `{}`, true); resp.Header.Get("X-Amzn-ErrorType") != secretsim.CodeUnknownOperation {
		t.Errorf("unknown operation: %v", resp.Header)
	}
	if c.svc.Calls("GetParameter") != 1 {
		t.Errorf("Calls(GetParameter) = %d, want 1 (unsigned calls are refused before counting)", c.svc.Calls("GetParameter"))
	}
	c.svc.FailNext("GetSecretValue", secretsim.Errorf("InternalServiceError", "injected"))
	_, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("x")})
	wantError(t, err, "InternalServiceError")
}

func slicesEqual(got []string, want ...string) bool { return slices.Equal(got, want) }

package secrets_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/secrets"
	"github.com/zkaas/zkaas/internal/testca"
	"github.com/zkaas/zkaas/localcloud/secretsim"
)

const (
	nodeKey  = "AKIDNODE"
	adminKey = "AKIDADMIN"
	nodeRole = "arn:aws:sts::123456789012:assumed-role/zkaas-prod-zk/i-0123456789abcdef0"
	region   = "us-east-1"
)

// rig is the simulator with the node's fetcher (the real clients, through
// the standard configuration's endpoint) and an admin's clients for set-up.
type rig struct {
	svc *secretsim.Service
	f   *secrets.Fetcher
	sm  *secretsmanager.Client
	ssm *ssm.Client
}

func awsConfig(key, url string) aws.Config {
	return aws.Config{Region: region, BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(key, "SECRET", "")}
}

func newRig(t *testing.T) rig {
	t.Helper()
	svc := secretsim.New(secretsim.Options{Region: region, Seed: 7, Principals: map[string]string{nodeKey: nodeRole}})
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return rig{
		svc: svc,
		f: secrets.New(awsConfig(nodeKey, srv.URL), secrets.Options{MaxAttempts: 4, MaxBackoff: 5 * time.Millisecond,
			DeniedFor: 30 * time.Millisecond, DeniedPause: 5 * time.Millisecond}),
		sm:  secretsmanager.NewFromConfig(awsConfig(adminKey, srv.URL)),
		ssm: ssm.NewFromConfig(awsConfig(adminKey, srv.URL)),
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestFetch: each source and each of AWS's refusals, through the real
// clients against the simulator.
func TestFetch(t *testing.T) {
	r := newRig(t)
	c := ctx(t)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.sm.CreateSecret(c, &secretsmanager.CreateSecretInput{Name: aws.String("zk/node-1/keystore"), SecretString: aws.String("PEM-1")}))
	must(r.sm.CreateSecret(c, &secretsmanager.CreateSecretInput{Name: aws.String("zk/kv"), SecretString: aws.String(`{"quorum":"s3cret","n":3}`)}))
	must(r.sm.CreateSecret(c, &secretsmanager.CreateSecretInput{Name: aws.String("zk/bin"), SecretBinary: []byte{0, 1, 2, 0xff}}))
	// A newer version is AWSCURRENT: that is what a boot reads.
	must(r.sm.PutSecretValue(c, &secretsmanager.PutSecretValueInput{SecretId: aws.String("zk/node-1/keystore"), SecretString: aws.String("PEM-1-rotated")}))
	cmk := r.svc.CreateKey("alias/zk-tls")
	must(r.sm.CreateSecret(c, &secretsmanager.CreateSecretInput{Name: aws.String("zk/cmk"), SecretString: aws.String("x"), KmsKeyId: aws.String(cmk)}))
	must(r.ssm.PutParameter(c, &ssm.PutParameterInput{Name: aws.String("/zk/truststore"), Value: aws.String("CA-PEM"), Type: ssmtypes.ParameterTypeString}))
	must(r.ssm.PutParameter(c, &ssm.PutParameterInput{Name: aws.String("/zk/quorum"), Value: aws.String("pw"), Type: ssmtypes.ParameterTypeSecureString}))
	must(r.ssm.PutParameter(c, &ssm.PutParameterInput{Name: aws.String("/zk/cmk"), Value: aws.String("pw"), Type: ssmtypes.ParameterTypeSecureString, KeyId: aws.String(cmk)}))
	must(r.ssm.PutParameter(c, &ssm.PutParameterInput{Name: aws.String("/zk/other"), Value: aws.String("pw"), Type: ssmtypes.ParameterTypeSecureString}))

	// The node may read what its policy names, and decrypt
	// with the CMK never. A missing secret is ResourceNotFound only to a
	// caller whose policy matches its name without the random suffix
	// (secretsim answers others AccessDenied, telling nothing).
	arnSM := "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
	arnSSM := "arn:aws:ssm:us-east-1:123456789012:parameter/"
	for _, res := range []string{"zk/node-1/keystore-??????", "zk/kv-??????", "zk/bin-??????", "zk/cmk-??????", "zk/missing*"} {
		r.svc.Allow(nodeRole, secretsim.ActionGetSecretValue, arnSM+res)
	}
	for _, res := range []string{"zk/truststore", "zk/quorum", "zk/cmk", "zk/missing"} {
		r.svc.Allow(nodeRole, secretsim.ActionGetParameter, arnSSM+res)
	}

	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	private := write("key.pem", "FILE-PEM", 0o600)
	groupRead := write("group.pem", "FILE-PEM", 0o640)
	worldRead := write("world.pem", "FILE-PEM", 0o644)
	worldWrite := write("ww.pem", "FILE-PEM", 0o666)
	empty := write("empty", "", 0o600)
	notRoot := write("notroot.pem", "FILE-PEM", 0o600)
	root := os.Geteuid() == 0
	if root {
		if err := os.Chown(notRoot, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name    string
		secret  ensemble.Secret
		private bool
		want    string
		// wantErr is in the one-line error; unusable says it is a
		// refusal (ErrUnusable).
		wantErr  string
		unusable bool
		rootOnly bool
	}{
		{name: "secretsmanager by name, AWSCURRENT", secret: ensemble.Secret{SecretsManager: "zk/node-{node}/keystore"}, want: "PEM-1-rotated"},
		{name: "json_key", secret: ensemble.Secret{SecretsManager: "zk/kv", JSONKey: "quorum"}, want: "s3cret"},
		{name: "json_key missing", secret: ensemble.Secret{SecretsManager: "zk/kv", JSONKey: "client"},
			wantErr: `zookeeper.tls.keystore: secretsmanager:zk/kv#client: json_key "client": no such key (the object has 2: n, quorum)`, unusable: true},
		{name: "json_key not a string", secret: ensemble.Secret{SecretsManager: "zk/kv", JSONKey: "n"}, wantErr: "the value is a float64, not a string", unusable: true},
		{name: "json_key of a value that is not JSON", secret: ensemble.Secret{SecretsManager: "zk/node-1/keystore", JSONKey: "k"}, wantErr: "not a JSON object", unusable: true},
		{name: "binary", secret: ensemble.Secret{SecretsManager: "zk/bin"}, want: "\x00\x01\x02\xff"},
		{name: "not found", secret: ensemble.Secret{SecretsManager: "zk/missing"},
			wantErr: "zookeeper.tls.keystore: secretsmanager:zk/missing: GetSecretValue: ResourceNotFoundException: Secrets Manager can't find the specified secret.", unusable: true},
		{name: "access denied", secret: ensemble.Secret{SecretsManager: "zk/node-2/keystore"},
			wantErr: "secretsmanager:zk/node-2/keystore: GetSecretValue: AccessDeniedException: User: " + nodeRole, unusable: true},
		{name: "KMS denied", secret: ensemble.Secret{SecretsManager: "zk/cmk"}, wantErr: "GetSecretValue: AccessDeniedException: Access to KMS is not allowed", unusable: true},
		{name: "ssm String", secret: ensemble.Secret{SSM: "/zk/truststore"}, want: "CA-PEM"},
		{name: "ssm SecureString decrypted", secret: ensemble.Secret{SSM: "/zk/quorum"}, private: true, want: "pw"},
		{name: "ssm by ARN", secret: ensemble.Secret{SSM: arnSSM + "zk/quorum"}, private: true, want: "pw"},
		{name: "ssm not found", secret: ensemble.Secret{SSM: "/zk/missing"}, wantErr: "ssm:/zk/missing: GetParameter: ParameterNotFound", unusable: true},
		{name: "ssm denied", secret: ensemble.Secret{SSM: "/zk/other"}, wantErr: "GetParameter: AccessDeniedException", unusable: true},
		{name: "ssm KMS denied", secret: ensemble.Secret{SSM: "/zk/cmk"}, wantErr: "GetParameter: AccessDeniedException: User: " + nodeRole + " is not authorized to perform: kms:Decrypt", unusable: true},
		{name: "file", secret: ensemble.Secret{File: private}, private: true, want: "FILE-PEM", rootOnly: true},
		{name: "file group-readable", secret: ensemble.Secret{File: groupRead}, private: true, want: "FILE-PEM", rootOnly: true},
		{name: "file world-readable public", secret: ensemble.Secret{File: worldRead}, want: "FILE-PEM", rootOnly: true},
		{name: "file world-readable private", secret: ensemble.Secret{File: worldRead}, private: true, wantErr: "mode 0644: private material readable by others", unusable: true, rootOnly: true},
		{name: "file world-writable", secret: ensemble.Secret{File: worldWrite}, wantErr: "mode 0666: writable by group or others", unusable: true, rootOnly: true},
		{name: "file not root's", secret: ensemble.Secret{File: notRoot}, wantErr: "owned by uid 65534, not root", unusable: true, rootOnly: true},
		{name: "file missing", secret: ensemble.Secret{File: filepath.Join(dir, "nope")}, wantErr: "no such file", unusable: true},
		{name: "file empty", secret: ensemble.Secret{File: empty}, wantErr: "empty value", unusable: true, rootOnly: true},
		{name: "file a directory", secret: ensemble.Secret{File: dir}, wantErr: "not a regular file", unusable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rootOnly && !root {
				t.Skip("needs root: the files must be root's")
			}
			got, err := r.f.Fetch(c, "zookeeper.tls.keystore", tc.secret.ForNode(1), secrets.Private(tc.private))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("fetched %q, want an error with %q", got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %q: want one line with %q", err, tc.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "zookeeper.tls.keystore: "+tc.secret.ForNode(1).String()+": ") {
					t.Errorf("error %q does not start with the field and the reference", err)
				}
				if errors.Is(err, secrets.ErrUnusable) != tc.unusable {
					t.Errorf("errors.Is(err, ErrUnusable) = %v, want %v", !tc.unusable, tc.unusable)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("fetched %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFetchRetries: throttling and server errors are retried, boundedly;
// a refusal is not retried at all.
func TestFetchRetries(t *testing.T) {
	r := newRig(t)
	c := ctx(t)
	if _, err := r.sm.CreateSecret(c, &secretsmanager.CreateSecretInput{Name: aws.String("zk/ks"), SecretString: aws.String("PEM")}); err != nil {
		t.Fatal(err)
	}
	throttled := secretsim.Errorf("ThrottlingException", "Rate exceeded")
	internal := &secretsim.APIError{Status: http.StatusInternalServerError, Code: "InternalServiceError", Message: "An error occurred on the server side."}
	ks := ensemble.Secret{SecretsManager: "zk/ks"}
	for _, tc := range []struct {
		name      string
		fail      []*secretsim.APIError
		wantCalls int
		wantErr   string
		unusable  bool
	}{
		{name: "throttled twice", fail: []*secretsim.APIError{throttled, throttled}, wantCalls: 3},
		{name: "server error once", fail: []*secretsim.APIError{internal}, wantCalls: 2},
		{name: "server errors past the bound", fail: []*secretsim.APIError{internal, internal, internal, internal, internal}, wantCalls: 4,
			wantErr: "GetSecretValue: InternalServiceError: An error occurred on the server side. (gave up after 4 attempts)"},
		// IAM is eventually consistent: a denial right after the role
		// changed may be followed by an allow.
		{name: "denied twice, then allowed", fail: []*secretsim.APIError{secretsim.Errorf(secretsim.CodeAccessDenied, "no"), secretsim.Errorf(secretsim.CodeAccessDenied, "no")}, wantCalls: 3},
		{name: "not found: no retry", fail: []*secretsim.APIError{secretsim.Errorf(secretsim.CodeResourceNotFound, "no"), throttled}, wantCalls: 1,
			wantErr: "GetSecretValue: ResourceNotFoundException: no", unusable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.svc.Calls("GetSecretValue")
			r.svc.FailNext("GetSecretValue", tc.fail...)
			got, err := r.f.Fetch(c, "zookeeper.tls.keystore", ks, true)
			r.svc.FailNext("GetSecretValue") // nothing
			calls := r.svc.Calls("GetSecretValue") - before
			if calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls, tc.wantCalls)
			}
			if tc.wantErr == "" {
				if err != nil || string(got) != "PEM" {
					t.Fatalf("got %q, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line with %q", err, tc.wantErr)
			}
			if errors.Is(err, secrets.ErrUnusable) != tc.unusable {
				t.Errorf("errors.Is(err, ErrUnusable) = %v, want %v", !tc.unusable, tc.unusable)
			}
			// Drain what is left of the queue for the next case.
			for range tc.fail {
				_, _ = r.f.Fetch(c, "x", ks, true)
			}
		})
	}
}

// TestMaterial: the config's references, expanded for the node, fill the
// ZooKeeper stage's Material; the report lists the references; with TLS on
// the keystore is checked against the node before anything uses it.
func TestMaterial(t *testing.T) {
	r := newRig(t)
	c := ctx(t)
	now := time.Now()
	ca := testca.New(t, "test CA", now)
	ip := func(id int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(id), 10}) }
	put := func(name, v string) {
		t.Helper()
		if _, err := r.sm.CreateSecret(c, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(v)}); err != nil {
			t.Fatal(err)
		}
	}
	put("zk/node-1/keystore", string(ca.Issue(t, testca.Cert{CN: "zk-1", IPs: []netip.Addr{ip(1)}}).KeyStore()))
	put("zk/node-2/keystore", string(ca.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip(2)}}).KeyStore()))
	// Node 3's secret holds node 1's certificate.
	put("zk/node-3/keystore", string(ca.Issue(t, testca.Cert{CN: "zk-1", IPs: []netip.Addr{ip(1)}}).KeyStore()))
	put("zk/truststore", string(ca.PEM()))
	put("zk/quorum", "q\n")
	put("zk/kafka", "k\r\n")

	cfg := ensemble.Default()
	for id := 1; id <= 4; id++ {
		cfg.Nodes = append(cfg.Nodes, ensemble.Node{ID: id, AZ: "us-east-1a", IP: ip(id)})
	}
	cfg.ZooKeeper.TLS = ensemble.TLS{Client: true, Quorum: true, Keystore: ensemble.Secret{SecretsManager: "zk/node-{node}/keystore"}, Truststore: ensemble.Secret{SecretsManager: "zk/truststore"}}
	cfg.ZooKeeper.SASL = ensemble.SASL{Quorum: true, QuorumPassword: ensemble.Secret{SecretsManager: "zk/quorum"},
		Clients: []ensemble.SASLUser{{Name: "kafka", Password: ensemble.Secret{SecretsManager: "zk/kafka"}}}}

	m, refs, err := r.f.Material(c, cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m.KeyStore), "PRIVATE KEY") || string(m.TrustStore) != string(ca.PEM()) || m.QuorumPassword != "q" || m.ClientPasswords["kafka"] != "k" || len(m.ClientPasswords) != 1 {
		t.Fatalf("material %+v", m)
	}
	want := "secretsmanager:zk/node-2/keystore secretsmanager:zk/truststore secretsmanager:zk/quorum secretsmanager:zk/kafka"
	if strings.Join(refs, " ") != want {
		t.Fatalf("refs %v, want %s", refs, want)
	}
	for _, tc := range []struct {
		node int
		want string
	}{
		{3, `zookeeper.tls: secretsmanager:zk/node-3/keystore with secretsmanager:zk/truststore: keystore: certificate "CN=zk-1" (serial `},
		{4, "zookeeper.tls.keystore: secretsmanager:zk/node-4/keystore: GetSecretValue: ResourceNotFoundException"},
	} {
		_, _, err = r.f.Material(c, cfg, tc.node)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.Is(err, secrets.ErrUnusable) {
			t.Errorf("node %d: %v, want a refusal starting %q", tc.node, err, tc.want)
		}
	}
	if _, _, err := r.f.Material(c, cfg, 3); err == nil || !strings.Contains(err.Error(), "does not cover the node's address 10.0.3.10") {
		t.Errorf("node 3: %v", err)
	}
	// A password the JAAS file cannot carry is a refusal too, naming the
	// field and the reference, never the password.
	put("zk/bad", "line1\nline2")
	cfg.ZooKeeper.SASL.Clients[0].Password = ensemble.Secret{SecretsManager: "zk/bad"}
	_, _, err = r.f.Material(c, cfg, 2)
	if err == nil || !strings.HasPrefix(err.Error(), "zookeeper.sasl.clients[0].password: secretsmanager:zk/bad: ") || !errors.Is(err, secrets.ErrUnusable) || strings.Contains(err.Error(), "line1") {
		t.Errorf("bad password: %v", err)
	}
}

// TestStandardConfigEndpoints: the clients New builds from the standard
// configuration go where AWS_ENDPOINT_URL_SECRETS_MANAGER and
// AWS_ENDPOINT_URL_SSM say (the local cloud's instances rely on it).
func TestStandardConfigEndpoints(t *testing.T) {
	svc := secretsim.New(secretsim.Options{Region: region})
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL, "AWS_ENDPOINT_URL_SSM": srv.URL,
		"AWS_REGION": region, "AWS_ACCESS_KEY_ID": nodeKey, "AWS_SECRET_ACCESS_KEY": "x",
		"AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
	} {
		t.Setenv(k, v)
	}
	c := ctx(t)
	cfg, err := awsconfig.LoadDefaultConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	admin := secretsmanager.NewFromConfig(awsConfig(adminKey, srv.URL))
	if _, err := admin.CreateSecret(c, &secretsmanager.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ssm.NewFromConfig(awsConfig(adminKey, srv.URL)).PutParameter(c, &ssm.PutParameterInput{Name: aws.String("p"), Value: aws.String("w"), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	f := secrets.New(cfg, secrets.Options{})
	for _, s := range []ensemble.Secret{{SecretsManager: "s"}, {SSM: "p"}} {
		if _, err := f.Fetch(c, "f", s, true); err != nil {
			t.Fatal(err)
		}
	}
	if svc.Calls("GetSecretValue") != 1 || svc.Calls("GetParameter") != 1 {
		t.Fatalf("calls: %d GetSecretValue, %d GetParameter", svc.Calls("GetSecretValue"), svc.Calls("GetParameter"))
	}
}

// TestFetchDeniedRetry: an AccessDenied (of the secret or of its KMS key)
// is retried for Options.DeniedFor, since IAM changes take a while to
// reach every endpoint (a role just changed by zkaas up or roll): a grant
// that lands within the bound is used; a denial that outlasts it is
// refused, unusable, with how long it was tried. A KMS denial of a
// Secrets Manager secret named without kms_key hints at the key.
func TestFetchDeniedRetry(t *testing.T) {
	svc := secretsim.New(secretsim.Options{Region: region, Seed: 7, Principals: map[string]string{nodeKey: nodeRole}})
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	admin := secretsmanager.NewFromConfig(awsConfig(adminKey, srv.URL))
	c := ctx(t)
	cmk := svc.CreateKey("alias/zk")
	for _, in := range []*secretsmanager.CreateSecretInput{
		{Name: aws.String("zk/late"), SecretString: aws.String("PEM")},
		{Name: aws.String("zk/never"), SecretString: aws.String("PEM")},
		{Name: aws.String("zk/cmk"), SecretString: aws.String("PEM"), KmsKeyId: aws.String(cmk)},
	} {
		if _, err := admin.CreateSecret(c, in); err != nil {
			t.Fatal(err)
		}
	}
	arn := func(name string) string { return "arn:aws:secretsmanager:" + region + ":*:secret:" + name + "-??????" }
	svc.Allow(nodeRole, secretsim.ActionGetSecretValue, arn("zk/cmk")) // but not its key
	f := secrets.New(awsConfig(nodeKey, srv.URL), secrets.Options{DeniedFor: 1500 * time.Millisecond, DeniedPause: 20 * time.Millisecond})

	// Allowed 300 ms after the first denial.
	time.AfterFunc(300*time.Millisecond, func() { svc.Allow(nodeRole, secretsim.ActionGetSecretValue, arn("zk/late")) })
	start, before := time.Now(), svc.Calls("GetSecretValue")
	got, err := f.Fetch(c, "zookeeper.tls.keystore", ensemble.Secret{SecretsManager: "zk/late"}, true)
	if err != nil || string(got) != "PEM" {
		t.Fatalf("granted after 300 ms: got %q, %v", got, err)
	}
	if n := svc.Calls("GetSecretValue") - before; n < 2 {
		t.Errorf("%d calls: the denial was not retried", n)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("took %s, want between the grant (300 ms) and the bound (1.5 s)", d)
	}

	for _, tc := range []struct {
		name, secret, want string
	}{
		{"never allowed", "zk/never", "GetSecretValue: AccessDeniedException: User: " + nodeRole},
		{"key never allowed", "zk/cmk", "GetSecretValue: AccessDeniedException: Access to KMS is not allowed (a customer managed key? name it in kms_key so the instance policy grants kms:Decrypt)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := f.Fetch(c, "zookeeper.tls.keystore", ensemble.Secret{SecretsManager: tc.secret}, true)
			d := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "still denied after 1.5s") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line with %q and the bound", err, tc.want)
			}
			if !errors.Is(err, secrets.ErrUnusable) {
				t.Errorf("%v is not ErrUnusable", err)
			}
			if d < time.Second || d > 3*time.Second {
				t.Errorf("refused after %s, want about the 1.5 s bound", d)
			}
		})
	}
}

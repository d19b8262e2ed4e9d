package secrets_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/iampolicy"
	"github.com/zkaas/zkaas/firstboot/secrets"
	"github.com/zkaas/zkaas/localcloud/secretsim"
)

// TestInstancePolicyAgainstTheSimulator: the secret statements of the
// instance policy zkaas generates (iampolicy.For), loaded into the
// simulator's allow-list for the node's role, let the real clients fetch
// every node's expansion of every reference — names, a partial and a
// complete ARN, parameters, customer managed keys — and nothing next to
// them: not a neighbouring secret <name>-extra (whose ARN
// <name>-extra-XXXXXX the pattern <name>-?????? does not match: '?' is
// exactly one character), not a parameter the config does not name, not
// a secret under a key the config does not name. The simulator has no
// conditions, so kms:ViaService is TestDecryptPerService's (iampolicy).
func TestInstancePolicyAgainstTheSimulator(t *testing.T) {
	svc := secretsim.New(secretsim.Options{Region: region, Seed: 11, Principals: map[string]string{nodeKey: nodeRole}})
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	c := ctx(t)
	sm := secretsmanager.NewFromConfig(awsConfig(adminKey, srv.URL))
	ps := ssm.NewFromConfig(awsConfig(adminKey, srv.URL))
	smKey, ssmKey, otherKey := svc.CreateKey("alias/zk-sm"), svc.CreateKey("alias/zk-ssm"), svc.CreateKey("alias/other")
	secret := func(name, value, key string) string {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}
		if key != "" {
			in.KmsKeyId = aws.String(key)
		}
		out, err := sm.CreateSecret(c, in)
		if err != nil {
			t.Fatal(err)
		}
		return *out.ARN
	}
	param := func(name, value, key string) {
		in := &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeSecureString}
		if key != "" {
			in.KeyId = aws.String(key)
		}
		if _, err := ps.PutParameter(c, in); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= 3; n++ {
		secret(fmt.Sprintf("zk/node-%d/keystore", n), fmt.Sprintf("KS%d", n), smKey)
	}
	secret("zk/quorum", `{"quorum": "QPW"}`, "")
	secret("zk/monitor", "MON", "")
	saslARN := secret("zk/sasl-admin", "ADM", "")
	param("/zk/truststore", "TS", "")
	param("/zk/kafka", "KPW", ssmKey)
	// Neighbours the policy must not reach.
	secret("zk/node-1/keystore-extra", "X", smKey)
	secret("zk/quorum-old", "X", "")
	secret("zk/node-4/keystore", "X", smKey)
	secret("zk/other-key", "X", otherKey)
	param("/zk/other", "X", "")
	param("/zk/truststore-old", "X", "")

	yaml := `ensemble: e1
nodes:
  - {id: 1, az: us-east-1a, ip: 10.0.1.10}
  - {id: 2, az: us-east-1b, ip: 10.0.2.10}
  - {id: 3, az: us-east-1c, ip: 10.0.3.10}
zookeeper:
  tls:
    client: true
    quorum: true
    keystore: {secretsmanager: "zk/node-{node}/keystore", kms_key: "` + smKey + `"}
    truststore: {ssm: /zk/truststore}
  sasl:
    quorum: true
    quorum_password: {secretsmanager: zk/quorum, json_key: quorum}
    clients:
      - {name: kafka, password: {ssm: /zk/kafka, kms_key: "` + ssmKey + `"}}
      - {name: monitor, password: {secretsmanager: "arn:aws:secretsmanager:us-east-1:123456789012:secret:zk/monitor"}}
      - {name: admin, password: {secretsmanager: "` + saslARN + `"}}
`
	cfg, _, err := ensemble.Parse("ensemble.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	granted := 0
	for _, st := range iampolicy.For(cfg).Statement {
		for _, a := range st.Action {
			switch a {
			case secretsim.ActionGetSecretValue, secretsim.ActionGetParameter, secretsim.ActionDecrypt:
				for _, r := range st.Resource {
					svc.Allow(nodeRole, a, r)
					granted++
				}
			}
		}
	}
	if granted == 0 {
		t.Fatal("the policy grants no secret")
	}
	f := secrets.New(awsConfig(nodeKey, srv.URL), secrets.Options{MaxAttempts: 1, DeniedFor: -1})

	want := map[string]string{"zookeeper.tls.truststore": "TS", "zookeeper.sasl.quorum_password": "QPW",
		"zookeeper.sasl.clients[0].password": "KPW", "zookeeper.sasl.clients[1].password": "MON", "zookeeper.sasl.clients[2].password": "ADM"}
	fetched := 0
	for _, n := range cfg.Nodes {
		for _, ns := range cfg.Secrets() {
			s := ns.Secret.ForNode(n.ID)
			got, err := f.Fetch(c, ns.Field, s, true)
			if err != nil {
				t.Errorf("node %d: %v", n.ID, err)
				continue
			}
			w, ok := want[ns.Field]
			if !ok {
				w = fmt.Sprintf("KS%d", n.ID)
			}
			if string(got) != w {
				t.Errorf("node %d: %s: %s = %q, want %q", n.ID, ns.Field, s, got, w)
			}
			fetched++
		}
	}
	if fetched != 3*6 {
		t.Errorf("fetched %d references, want 18 (6 per node)", fetched)
	}

	for _, s := range []ensemble.Secret{
		{SecretsManager: "zk/node-1/keystore-extra"},
		{SecretsManager: "zk/quorum-old"},
		{SecretsManager: "zk/node-4/keystore"},
		{SecretsManager: "zk/other-key"},
		{SSM: "/zk/other"},
		{SSM: "/zk/truststore-old"},
	} {
		_, err := f.Fetch(c, "neighbour", s, true)
		if err == nil || !errors.Is(err, secrets.ErrUnusable) || !strings.Contains(err.Error(), "AccessDeniedException") {
			t.Errorf("%s: %v, want AccessDeniedException", s, err)
		}
	}
	// zk/other-key is denied for its name already; a secret the policy
	// names under a key it does not is denied for the key.
	svc.Allow(nodeRole, secretsim.ActionGetSecretValue, "arn:aws:secretsmanager:us-east-1:*:secret:zk/other-key-??????")
	if _, err := f.Fetch(c, "neighbour", ensemble.Secret{SecretsManager: "zk/other-key"}, true); err == nil || !strings.Contains(err.Error(), "Access to KMS is not allowed") {
		t.Errorf("a key the policy does not name: %v, want KMS denied", err)
	}
}

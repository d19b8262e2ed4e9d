package localcloud

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// TestSecretsService: Secrets Manager and SSM answer the real SDK clients
// at 10.0.0.6 inside the VPC, from the harness (putting) and from an
// instance (getting, at the endpoints its environment names), and the
// caller is the instance's id.
func TestSecretsService(t *testing.T) {
	c := newCloud(t, Options{})
	inst := launch(t, c, "us-east-1a")
	env := map[string]string{}
	for _, kv := range inst.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] != "http://10.0.0.6" || env["AWS_ENDPOINT_URL_SSM"] != "http://10.0.0.6" {
		t.Fatalf("instance environment: Secrets Manager %q SSM %q, want http://10.0.0.6", env["AWS_ENDPOINT_URL_SECRETS_MANAGER"], env["AWS_ENDPOINT_URL_SSM"])
	}
	sm := c.SecretsManagerClient("harness")
	if _, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("zk/ks"), SecretString: aws.String("PEM")}); err != nil {
		t.Fatal(err)
	}
	ps := c.SSMClient("harness")
	if _, err := ps.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String("/zk/ca"), Value: aws.String("CA"), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	// Only the instance may read, from now on.
	c.Secrets().Allow(inst.ID, "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:*:*:secret:zk/ks-??????")
	c.Secrets().Allow(inst.ID, "ssm:GetParameter", "arn:aws:ssm:*:*:parameter/zk/ca")
	node := credentials.NewStaticCredentialsProvider(inst.ID, "localcloud", "")
	smi := secretsmanager.New(secretsmanager.Options{Region: c.Region(), BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL_SECRETS_MANAGER"]), HTTPClient: inst.HTTPClient(), Credentials: node})
	got, err := smi.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("zk/ks")})
	if err != nil || aws.ToString(got.SecretString) != "PEM" {
		t.Fatalf("GetSecretValue from %s: %v, %v", inst.ID, got, err)
	}
	psi := ssm.New(ssm.Options{Region: c.Region(), BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL_SSM"]), HTTPClient: inst.HTTPClient(), Credentials: node})
	p, err := psi.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String("/zk/ca"), WithDecryption: aws.Bool(true)})
	if err != nil || aws.ToString(p.Parameter.Value) != "CA" {
		t.Fatalf("GetParameter from %s: %v, %v", inst.ID, p, err)
	}
	if _, err := sm.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("zk/ks")}); err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("the harness read the instance's secret: %v", err)
	}
}

package localcloud

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dlm"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// TestOperatorServices: IAM and DLM answer the real SDK clients at their
// own addresses inside the VPC, from the harness and from an instance (at
// the endpoints its environment names), and the Go API sees what the wire
// made.
func TestOperatorServices(t *testing.T) {
	c := newCloud(t, Options{})
	inst := launch(t, c, "us-east-1a")
	env := map[string]string{}
	for _, kv := range inst.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if env["AWS_ENDPOINT_URL_IAM"] != c.IAMEndpoint() || env["AWS_ENDPOINT_URL_DLM"] != c.DLMEndpoint() {
		t.Fatalf("instance environment: IAM %q DLM %q, want %s and %s", env["AWS_ENDPOINT_URL_IAM"], env["AWS_ENDPOINT_URL_DLM"], c.IAMEndpoint(), c.DLMEndpoint())
	}
	creds := credentials.NewStaticCredentialsProvider("harness", "localcloud", "")
	for _, from := range []struct {
		who    string
		client *http.Client
	}{{"harness", c.HTTPClient()}, {inst.ID, inst.HTTPClient()}} {
		iamc := iam.New(iam.Options{Region: c.Region(), BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL_IAM"]), HTTPClient: from.client, Credentials: creds})
		name := "role-from-" + from.who
		if _, err := iamc.CreateRole(t.Context(), &iam.CreateRoleInput{RoleName: aws.String(name),
			AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}); err != nil {
			t.Fatalf("CreateRole from %s: %v", from.who, err)
		}
		if _, ok := c.IAM().Role(name); !ok {
			t.Errorf("role %s made over the wire from %s: not in the simulator", name, from.who)
		}
		dlmc := dlm.New(dlm.Options{Region: c.Region(), BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL_DLM"]), HTTPClient: from.client, Credentials: creds})
		if _, err := dlmc.GetLifecyclePolicies(t.Context(), &dlm.GetLifecyclePoliciesInput{}); err != nil {
			t.Errorf("GetLifecyclePolicies from %s: %v", from.who, err)
		}
	}
	if n := c.DLM().Calls()["GetLifecyclePolicies"]; n != 2 {
		t.Errorf("DLM answered GetLifecyclePolicies %d times, want 2", n)
	}
}

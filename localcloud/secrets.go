package localcloud

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/zkaas/zkaas/localcloud/secretsim"
)

// SecretsAddress is where the Secrets Manager and SSM Parameter Store
// simulator (secretsim, one endpoint for both services) answers inside the
// VPC, on port 80, next to IAMAddress and DLMAddress. Instances fetch their
// TLS stores and SASL passwords there at boot (firstboot's secrets stage),
// through AWS_ENDPOINT_URL_SECRETS_MANAGER and AWS_ENDPOINT_URL_SSM (Environ).
const SecretsAddress = "10.0.0.6"

// Secrets is the local region's Secrets Manager and Parameter Store, served
// at SecretsEndpoint: tests put the nodes' secrets in it (CreateSecret,
// PutParameter through the SDK, or its Go API) and read its call counts.
// Nothing is enforced until the test's first Allow: the simulator's
// allow-list is not IAM, and instances' callers are their instance ids.
func (c *Cloud) Secrets() *secretsim.Service { return c.secrets }

// SecretsEndpoint is the URL of both services (AWS_ENDPOINT_URL_SECRETS_MANAGER
// and AWS_ENDPOINT_URL_SSM), reachable from instances and through
// HTTPClient.
func (c *Cloud) SecretsEndpoint() string { return "http://" + SecretsAddress }

// SecretsManagerClient is the real SDK client for Secrets Manager from the
// harness (inside the VPC), signing as caller (the caller the simulator's
// allow-list and call counts name).
func (c *Cloud) SecretsManagerClient(caller string) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:       c.Region(),
		BaseEndpoint: aws.String(c.SecretsEndpoint()),
		HTTPClient:   c.HTTPClient(),
		Credentials:  credentials.NewStaticCredentialsProvider(caller, "localcloud", ""),
	})
}

// SSMClient is the real SDK client for SSM Parameter Store from the
// harness, signing as caller.
func (c *Cloud) SSMClient(caller string) *ssm.Client {
	return ssm.New(ssm.Options{
		Region:       c.Region(),
		BaseEndpoint: aws.String(c.SecretsEndpoint()),
		HTTPClient:   c.HTTPClient(),
		Credentials:  credentials.NewStaticCredentialsProvider(caller, "localcloud", ""),
	})
}

// startSecrets creates the simulator and serves it inside the VPC; its
// endpoint closes with the VPC's (stopEndpoint).
func (c *Cloud) startSecrets() error {
	c.secrets = secretsim.New(secretsim.Options{Region: c.Region(), Seed: c.opts.EC2.Seed, Logger: c.log.With("component", "secretsim")})
	return c.vpc.serve("secrets", SecretsAddress, c.secrets)
}

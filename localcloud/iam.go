package localcloud

import (
	"github.com/zkaas/zkaas/localcloud/dlmsim"
	"github.com/zkaas/zkaas/localcloud/iamsim"
)

// IAMAddress and DLMAddress are where the IAM simulator (iamsim) and the
// Data Lifecycle Manager simulator (dlmsim) answer inside the VPC, on port
// 80: addresses of their own next to EC2Address and AutoScalingAddress, as
// each AWS service has an endpoint host of its own. They are what the
// operator command (zkaas up/down) calls besides EC2 and Auto Scaling; the
// instances never call them, but Environ names them too, so that nothing
// on an instance reaches a real AWS endpoint by mistake.
const (
	IAMAddress = "10.0.0.4"
	DLMAddress = "10.0.0.5"
)

// opServices are the services only the operator calls.
type opServices struct {
	iam *iamsim.Service
	dlm *dlmsim.Service
}

// IAM is the local account's IAM (global, as IAM is): its API is served at
// IAMEndpoint. Use it for its admin methods (faults, state).
func (c *Cloud) IAM() *iamsim.Service { return c.iam }

// IAMEndpoint is the IAM API's URL (AWS_ENDPOINT_URL_IAM), reachable from
// instances and through HTTPClient.
func (c *Cloud) IAMEndpoint() string { return "http://" + IAMAddress }

// DLM is the local region's Data Lifecycle Manager, served at DLMEndpoint.
func (c *Cloud) DLM() *dlmsim.Service { return c.dlm }

// DLMEndpoint is the DLM API's URL (AWS_ENDPOINT_URL_DLM), reachable from
// instances and through HTTPClient.
func (c *Cloud) DLMEndpoint() string { return "http://" + DLMAddress }

// startOperatorServices creates IAM and DLM and serves them inside the VPC;
// their endpoints close with the VPC's (stopEndpoint).
func (c *Cloud) startOperatorServices() error {
	c.iam = iamsim.New(iamsim.Options{Seed: c.opts.EC2.Seed, Logger: c.log.With("component", "iamsim")})
	c.dlm = dlmsim.New(dlmsim.Options{Region: c.Region(), Seed: c.opts.EC2.Seed, Logger: c.log.With("component", "dlmsim")})
	if err := c.vpc.serve("iam", IAMAddress, c.iam); err != nil {
		return err
	}
	return c.vpc.serve("dlm", DLMAddress, c.dlm)
}

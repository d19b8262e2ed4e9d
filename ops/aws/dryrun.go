package aws

import (
	"context"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/ensemble"
)

// DryRun asks EC2 whether the caller may make up's EC2 calls, without
// making them: EC2 answers DryRunOperation when it would have succeeded
// and UnauthorizedOperation when not
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/CommonParameters.html).
// IAM and Auto Scaling have no DryRun. It returns, per action, "" when
// allowed or the error otherwise.
func (c *Cloud) DryRun(ctx context.Context, cfg ensemble.Config, subnet string) map[string]string {
	out := map[string]string{}
	try := func(action string, err error) {
		switch code(err) {
		case "DryRunOperation":
			out[action] = ""
		case "":
			out[action] = "answered without DryRunOperation: the endpoint ignores DryRun"
		default:
			out[action] = code(err)
		}
	}
	dry := sdk.Bool(true)
	if subnet != "" && len(cfg.Nodes) > 0 {
		_, err := c.EC2.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{DryRun: dry, SubnetId: sdk.String(subnet)})
		try("CreateNetworkInterface", err)
	}
	if len(cfg.Nodes) > 0 {
		_, err := c.EC2.CreateVolume(ctx, &ec2.CreateVolumeInput{DryRun: dry, AvailabilityZone: sdk.String(cfg.Nodes[0].AZ), Size: sdk.Int32(1), VolumeType: types.VolumeTypeGp3})
		try("CreateVolume", err)
	}
	_, err := c.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{DryRun: dry, Filters: []types.Filter{filter("tag:"+c.TagEnsemble, cfg.Ensemble)}})
	try("DescribeNetworkInterfaces", err)
	return out
}

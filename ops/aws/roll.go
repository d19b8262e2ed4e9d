package aws

import (
	"context"
	"fmt"
	"strconv"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/roll"
)

// Roller is roll.Cloud for one ensemble.
type Roller struct {
	Cloud    *Cloud
	Ensemble string
}

var _ roll.Cloud = Roller{}

// Nodes implements roll.Cloud: each node's ENI holder, and whether it was
// launched from its template's default version (the version its group
// reports for the instance, as DescribeAutoScalingGroups shows it).
func (r Roller) Nodes(ctx context.Context) ([]roll.Node, error) {
	c := r.Cloud
	enis, err := c.ENIs(ctx, r.Ensemble)
	if err != nil {
		return nil, err
	}
	groups, err := c.Groups(ctx, r.Ensemble)
	if err != nil {
		return nil, err
	}
	defaults := map[string]string{}
	p := ec2.NewDescribeLaunchTemplatesPaginator(c.EC2, &ec2.DescribeLaunchTemplatesInput{Filters: c.ownFilters(&deploy.Desired{Ensemble: r.Ensemble})})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe launch templates: %w", err)
		}
		for _, t := range page.LaunchTemplates {
			defaults[sdk.ToString(t.LaunchTemplateName)] = strconv.FormatInt(sdk.ToInt64(t.DefaultVersionNumber), 10)
		}
	}
	current := map[string]bool{}
	for _, g := range groups {
		for _, i := range g.Instances {
			current[i.ID] = i.Version != "" && i.Version == defaults[i.Template]
		}
	}
	var out []roll.Node
	for _, e := range enis {
		out = append(out, roll.Node{ID: e.Node, Instance: e.Instance, Current: e.Instance != "" && current[e.Instance]})
	}
	return out, nil
}

// Replace implements roll.Cloud: the group terminates the instance and,
// its desired capacity unchanged, launches a replacement from $Default:
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_TerminateInstanceInAutoScalingGroup.html
func (r Roller) Replace(ctx context.Context, instance string) error {
	_, err := r.Cloud.ASG.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId: sdk.String(instance), ShouldDecrementDesiredCapacity: sdk.Bool(false)})
	if err != nil {
		return fmt.Errorf("terminate %s in its group: %w", instance, err)
	}
	return nil
}

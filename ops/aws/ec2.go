package aws

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/inventory"
	"github.com/zkaas/zkaas/ops/plan"
)

// EC2API is the part of *ec2.Client the operator uses.
type EC2API interface {
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	CreateSecurityGroup(context.Context, *ec2.CreateSecurityGroupInput, ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupIngress(context.Context, *ec2.RevokeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
	DeleteSecurityGroup(context.Context, *ec2.DeleteSecurityGroupInput, ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	CreateNetworkInterface(context.Context, *ec2.CreateNetworkInterfaceInput, ...func(*ec2.Options)) (*ec2.CreateNetworkInterfaceOutput, error)
	ModifyNetworkInterfaceAttribute(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	DeleteNetworkInterface(context.Context, *ec2.DeleteNetworkInterfaceInput, ...func(*ec2.Options)) (*ec2.DeleteNetworkInterfaceOutput, error)
	DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	CreateVolume(context.Context, *ec2.CreateVolumeInput, ...func(*ec2.Options)) (*ec2.CreateVolumeOutput, error)
	ModifyVolume(context.Context, *ec2.ModifyVolumeInput, ...func(*ec2.Options)) (*ec2.ModifyVolumeOutput, error)
	DeleteVolume(context.Context, *ec2.DeleteVolumeInput, ...func(*ec2.Options)) (*ec2.DeleteVolumeOutput, error)
	DescribeLaunchTemplates(context.Context, *ec2.DescribeLaunchTemplatesInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error)
	DescribeLaunchTemplateVersions(context.Context, *ec2.DescribeLaunchTemplateVersionsInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error)
	CreateLaunchTemplate(context.Context, *ec2.CreateLaunchTemplateInput, ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateOutput, error)
	CreateLaunchTemplateVersion(context.Context, *ec2.CreateLaunchTemplateVersionInput, ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateVersionOutput, error)
	ModifyLaunchTemplate(context.Context, *ec2.ModifyLaunchTemplateInput, ...func(*ec2.Options)) (*ec2.ModifyLaunchTemplateOutput, error)
	DeleteLaunchTemplate(context.Context, *ec2.DeleteLaunchTemplateInput, ...func(*ec2.Options)) (*ec2.DeleteLaunchTemplateOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: sdk.String(name), Values: values}
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[sdk.ToString(t.Key)] = sdk.ToString(t.Value)
	}
	return m
}

func tagSpec(rt types.ResourceType, tags map[string]string) []types.TagSpecification {
	var ts []types.Tag
	for _, k := range sortedKeys(tags) {
		ts = append(ts, types.Tag{Key: sdk.String(k), Value: sdk.String(tags[k])})
	}
	return []types.TagSpecification{{ResourceType: rt, Tags: ts}}
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func toSubnet(s types.Subnet) (plan.Subnet, error) {
	p, err := netip.ParsePrefix(sdk.ToString(s.CidrBlock))
	if err != nil {
		return plan.Subnet{}, fmt.Errorf("subnet %s: cidr %q: %w", sdk.ToString(s.SubnetId), sdk.ToString(s.CidrBlock), err)
	}
	return plan.Subnet{ID: sdk.ToString(s.SubnetId), VPC: sdk.ToString(s.VpcId), AZ: sdk.ToString(s.AvailabilityZone), CIDR: p}, nil
}

// Subnet implements plan.Cloud.
func (c *Cloud) Subnet(ctx context.Context, id string) (plan.Subnet, error) {
	out, err := c.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{id}})
	if err != nil {
		return plan.Subnet{}, fmt.Errorf("describe subnet %s: %w", id, err)
	}
	if len(out.Subnets) != 1 {
		return plan.Subnet{}, fmt.Errorf("subnet %s not found", id)
	}
	return toSubnet(out.Subnets[0])
}

// SubnetFor implements plan.Cloud: the subnet of az whose CIDR holds ip.
func (c *Cloud) SubnetFor(ctx context.Context, az string, ip netip.Addr) (plan.Subnet, error) {
	out, err := c.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("availability-zone", az)}})
	if err != nil {
		return plan.Subnet{}, fmt.Errorf("describe subnets of %s: %w", az, err)
	}
	for _, s := range out.Subnets {
		sn, err := toSubnet(s)
		if err == nil && sn.CIDR.Contains(ip) {
			return sn, nil
		}
	}
	return plan.Subnet{}, fmt.Errorf("no subnet of %s holds %s: create one or name it in deploy.subnets", az, ip)
}

// ownFilters select what zkaas made for the ensemble.
func (c *Cloud) ownFilters(d *deploy.Desired) []types.Filter {
	return []types.Filter{filter("tag:"+c.TagEnsemble, d.Ensemble), filter("tag:"+deploy.TagManagedBy, deploy.ManagedBy)}
}

func (c *Cloud) listSecurityGroups(ctx context.Context, d *deploy.Desired) ([]plan.Existing, error) {
	var out []plan.Existing
	p := ec2.NewDescribeSecurityGroupsPaginator(c.EC2, &ec2.DescribeSecurityGroupsInput{Filters: c.ownFilters(d)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe security groups: %w", err)
		}
		for _, g := range page.SecurityGroups {
			tags := tagMap(g.Tags)
			id := sdk.ToString(g.GroupId)
			spec := deploy.SecurityGroupSpec{GroupName: sdk.ToString(g.GroupName), Description: sdk.ToString(g.Description)}
			for _, perm := range g.IpPermissions {
				port := int(sdk.ToInt32(perm.FromPort))
				for _, r := range perm.IpRanges {
					spec.Ingress = append(spec.Ingress, deploy.Rule{Port: port, CIDR: sdk.ToString(r.CidrIp)})
				}
				for _, pair := range perm.UserIdGroupPairs {
					if gid := sdk.ToString(pair.GroupId); gid == id {
						spec.Ingress = append(spec.Ingress, deploy.Rule{Port: port, SelfGroup: true})
					} else {
						spec.Ingress = append(spec.Ingress, deploy.Rule{Port: port, GroupID: gid})
					}
				}
			}
			out = append(out, plan.Existing{Kind: deploy.KindSecurityGroup, Name: tags[deploy.TagResource], ID: id, Spec: spec, Tags: tags, Managed: true})
		}
	}
	return out, nil
}

func (c *Cloud) createSecurityGroup(ctx context.Context, s deploy.SecurityGroupSpec, tags map[string]string) (string, error) {
	vpc := plan.VPCFrom(ctx)
	out, err := c.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: sdk.String(s.GroupName), Description: sdk.String(s.Description), VpcId: sdk.String(vpc),
		TagSpecifications: tagSpec(types.ResourceTypeSecurityGroup, tags),
	})
	if err != nil {
		return "", fmt.Errorf("create security group %s in %s: %w", s.GroupName, vpc, err)
	}
	id := sdk.ToString(out.GroupId)
	return id, c.authorize(ctx, id, s.Ingress)
}

func permissions(groupID string, rules []deploy.Rule) []types.IpPermission {
	var perms []types.IpPermission
	for _, r := range rules {
		p := types.IpPermission{IpProtocol: sdk.String("tcp"), FromPort: sdk.Int32(int32(r.Port)), ToPort: sdk.Int32(int32(r.Port))}
		var desc *string
		if r.Description != "" {
			desc = sdk.String(r.Description)
		}
		switch {
		case r.CIDR != "":
			p.IpRanges = []types.IpRange{{CidrIp: sdk.String(r.CIDR), Description: desc}}
		case r.SelfGroup:
			p.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: sdk.String(groupID), Description: desc}}
		default:
			p.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: sdk.String(r.GroupID), Description: desc}}
		}
		perms = append(perms, p)
	}
	return perms
}

func (c *Cloud) authorize(ctx context.Context, id string, rules []deploy.Rule) error {
	if len(rules) == 0 {
		return nil
	}
	_, err := c.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sdk.String(id), IpPermissions: permissions(id, rules)})
	if err != nil && code(err) != "InvalidPermission.Duplicate" {
		return fmt.Errorf("authorize ingress on %s: %w", id, err)
	}
	return nil
}

func (c *Cloud) updateSecurityGroup(ctx context.Context, s deploy.SecurityGroupSpec, ex plan.Existing) error {
	got, _ := ex.Spec.(deploy.SecurityGroupSpec)
	add, drop := plan.RuleDiff(s.Ingress, got.Ingress)
	if err := c.authorize(ctx, ex.ID, add); err != nil {
		return err
	}
	if len(drop) > 0 {
		_, err := c.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: sdk.String(ex.ID), IpPermissions: permissions(ex.ID, drop)})
		if err != nil && code(err) != "InvalidPermission.NotFound" {
			return fmt.Errorf("revoke ingress on %s: %w", ex.ID, err)
		}
	}
	return nil
}

func (c *Cloud) deleteSecurityGroup(ctx context.Context, ex plan.Existing) error {
	// A group is in use until the instances and ENIs using it are gone.
	return c.waitFor(ctx, "delete security group "+ex.ID, func() (bool, error) {
		_, err := c.EC2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sdk.String(ex.ID)})
		switch code(err) {
		case "":
			return true, nil
		case "InvalidGroup.NotFound":
			return true, nil
		case "DependencyViolation":
			return false, nil
		}
		return false, fmt.Errorf("delete security group %s: %w", ex.ID, err)
	})
}

// listENIs finds every ENI with the ensemble tag: those the operator
// tagged by hand are used (and never deleted) like zkaas's own.
func (c *Cloud) listENIs(ctx context.Context, d *deploy.Desired) ([]plan.Existing, error) {
	enis, err := c.ENIs(ctx, d.Ensemble)
	if err != nil {
		return nil, err
	}
	var out []plan.Existing
	for _, e := range enis {
		spec := deploy.ENISpec{Node: e.Node, AZ: e.AZ, IP: e.IP, Subnet: e.Subnet, SecurityGroup: strings.Join(e.Groups, ","), Description: e.Description}
		out = append(out, plan.Existing{Kind: deploy.KindENI, Name: deploy.NodeName(e.Node), ID: e.ID, Spec: spec, Tags: e.Tags, Managed: managed(e.Tags)})
	}
	return out, nil
}

// ENIs lists the ensemble's tagged ENIs (those whose node tag is not a
// node id are left out).
func (c *Cloud) ENIs(ctx context.Context, ens string) ([]inventory.ENI, error) {
	var out []inventory.ENI
	p := ec2.NewDescribeNetworkInterfacesPaginator(c.EC2, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("tag:"+c.TagEnsemble, ens)}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe network interfaces: %w", err)
		}
		for _, n := range page.NetworkInterfaces {
			tags := tagMap(n.TagSet)
			node, err := strconv.Atoi(tags[c.TagNode])
			if err != nil {
				continue
			}
			ip, _ := netip.ParseAddr(sdk.ToString(n.PrivateIpAddress))
			e := inventory.ENI{ID: sdk.ToString(n.NetworkInterfaceId), AZ: sdk.ToString(n.AvailabilityZone), Subnet: sdk.ToString(n.SubnetId),
				Description: sdk.ToString(n.Description), Status: string(n.Status), Node: node, IP: ip, Tags: tags}
			for _, g := range n.Groups {
				e.Groups = append(e.Groups, sdk.ToString(g.GroupId))
			}
			slices.Sort(e.Groups)
			if n.Attachment != nil {
				e.Instance = sdk.ToString(n.Attachment.InstanceId)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// AddressUser implements plan.AddressChecker with the documented
// private-ip-address filter of DescribeNetworkInterfaces (it matches
// instances' primary interfaces too):
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeNetworkInterfaces.html
func (c *Cloud) AddressUser(ctx context.Context, subnet string, ip netip.Addr) (string, error) {
	out, err := c.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		filter("subnet-id", subnet), filter("private-ip-address", ip.String())}})
	if err != nil {
		return "", fmt.Errorf("describe network interfaces with %s: %w", ip, err)
	}
	for _, n := range out.NetworkInterfaces {
		return sdk.ToString(n.NetworkInterfaceId), nil
	}
	return "", nil
}

func (c *Cloud) createENI(ctx context.Context, s deploy.ENISpec, tags map[string]string) (string, error) {
	out, err := c.EC2.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: sdk.String(s.Subnet), PrivateIpAddress: sdk.String(s.IP.String()), Groups: []string{s.SecurityGroup},
		Description: sdk.String(s.Description), ClientToken: sdk.String(token()),
		TagSpecifications: tagSpec(types.ResourceTypeNetworkInterface, tags),
	})
	if err != nil {
		return "", fmt.Errorf("create network interface %s in %s: %w", s.IP, s.Subnet, err)
	}
	return sdk.ToString(out.NetworkInterface.NetworkInterfaceId), nil
}

func (c *Cloud) updateENI(ctx context.Context, s deploy.ENISpec, ex plan.Existing) error {
	_, err := c.EC2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: sdk.String(ex.ID), Groups: []string{s.SecurityGroup}})
	if err != nil {
		return fmt.Errorf("set the security group of %s: %w", ex.ID, err)
	}
	return nil
}

func (c *Cloud) deleteENI(ctx context.Context, ex plan.Existing) error {
	return c.waitFor(ctx, "delete network interface "+ex.ID, func() (bool, error) {
		_, err := c.EC2.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: sdk.String(ex.ID)})
		switch code(err) {
		case "", "InvalidNetworkInterfaceID.NotFound":
			return true, nil
		case "InvalidNetworkInterface.InUse", "InvalidParameterValue":
			return false, nil // still attached while its instance terminates
		}
		return false, fmt.Errorf("delete network interface %s: %w", ex.ID, err)
	})
}

// Volumes lists the ensemble's tagged volumes.
func (c *Cloud) Volumes(ctx context.Context, ens string) ([]inventory.Volume, error) {
	var out []inventory.Volume
	p := ec2.NewDescribeVolumesPaginator(c.EC2, &ec2.DescribeVolumesInput{Filters: []types.Filter{filter("tag:"+c.TagEnsemble, ens)}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe volumes: %w", err)
		}
		for _, v := range page.Volumes {
			tags := tagMap(v.Tags)
			node, err := strconv.Atoi(tags[c.TagNode])
			if err != nil {
				continue
			}
			vol := inventory.Volume{ID: sdk.ToString(v.VolumeId), AZ: sdk.ToString(v.AvailabilityZone), State: string(v.State), Node: node, Tags: tags,
				Spec: ensemble.DeployVolume{Type: string(v.VolumeType), SizeGiB: int(sdk.ToInt32(v.Size)), IOPS: int(sdk.ToInt32(v.Iops)),
					Throughput: int(sdk.ToInt32(v.Throughput)), Encrypted: sdk.ToBool(v.Encrypted), KMSKeyID: sdk.ToString(v.KmsKeyId)}}
			for _, a := range v.Attachments {
				vol.Instance = sdk.ToString(a.InstanceId)
			}
			out = append(out, vol)
		}
	}
	return out, nil
}

func (c *Cloud) listVolumes(ctx context.Context, d *deploy.Desired) ([]plan.Existing, error) {
	vols, err := c.Volumes(ctx, d.Ensemble)
	if err != nil {
		return nil, err
	}
	var out []plan.Existing
	for _, v := range vols {
		out = append(out, plan.Existing{Kind: deploy.KindVolume, Name: deploy.NodeName(v.Node), ID: v.ID,
			Spec: deploy.VolumeSpec{Node: v.Node, AZ: v.AZ, DeployVolume: v.Spec}, Tags: v.Tags, Managed: managed(v.Tags)})
	}
	return out, nil
}

func (c *Cloud) createVolume(ctx context.Context, s deploy.VolumeSpec, tags map[string]string) (string, error) {
	in := &ec2.CreateVolumeInput{
		AvailabilityZone: sdk.String(s.AZ), Size: sdk.Int32(int32(s.SizeGiB)), VolumeType: types.VolumeType(s.Type),
		Encrypted: sdk.Bool(s.Encrypted), ClientToken: sdk.String(token()), TagSpecifications: tagSpec(types.ResourceTypeVolume, tags),
	}
	if s.IOPS > 0 {
		in.Iops = sdk.Int32(int32(s.IOPS))
	}
	if s.Throughput > 0 {
		in.Throughput = sdk.Int32(int32(s.Throughput))
	}
	if s.KMSKeyID != "" {
		in.KmsKeyId = sdk.String(s.KMSKeyID)
	}
	out, err := c.EC2.CreateVolume(ctx, in)
	if err != nil {
		return "", fmt.Errorf("create volume for node %d in %s: %w", s.Node, s.AZ, err)
	}
	return sdk.ToString(out.VolumeId), nil
}

func (c *Cloud) updateVolume(ctx context.Context, s deploy.VolumeSpec, ex plan.Existing) error {
	in := &ec2.ModifyVolumeInput{VolumeId: sdk.String(ex.ID), Size: sdk.Int32(int32(s.SizeGiB)), VolumeType: types.VolumeType(s.Type)}
	if s.IOPS > 0 {
		in.Iops = sdk.Int32(int32(s.IOPS))
	}
	if s.Throughput > 0 {
		in.Throughput = sdk.Int32(int32(s.Throughput))
	}
	if _, err := c.EC2.ModifyVolume(ctx, in); err != nil {
		return fmt.Errorf("modify volume %s: %w", ex.ID, err)
	}
	return nil
}

func (c *Cloud) deleteVolume(ctx context.Context, ex plan.Existing) error {
	return c.waitFor(ctx, "delete volume "+ex.ID, func() (bool, error) {
		_, err := c.EC2.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: sdk.String(ex.ID)})
		switch code(err) {
		case "", "InvalidVolume.NotFound":
			return true, nil
		case "VolumeInUse", "IncorrectState":
			return false, nil
		}
		return false, fmt.Errorf("delete volume %s: %w", ex.ID, err)
	})
}

func (c *Cloud) listTemplates(ctx context.Context, d *deploy.Desired) ([]plan.Existing, error) {
	var out []plan.Existing
	p := ec2.NewDescribeLaunchTemplatesPaginator(c.EC2, &ec2.DescribeLaunchTemplatesInput{Filters: c.ownFilters(d)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe launch templates: %w", err)
		}
		for _, t := range page.LaunchTemplates {
			id := sdk.ToString(t.LaunchTemplateId)
			vs, err := c.EC2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: sdk.String(id), Versions: []string{"$Default"}})
			if err != nil {
				return nil, fmt.Errorf("describe launch template %s: %w", id, err)
			}
			spec := deploy.TemplateSpec{TemplateName: sdk.ToString(t.LaunchTemplateName)}
			if len(vs.LaunchTemplateVersions) == 1 {
				spec = templateSpec(spec.TemplateName, vs.LaunchTemplateVersions[0].LaunchTemplateData)
			}
			tags := tagMap(t.Tags)
			out = append(out, plan.Existing{Kind: deploy.KindTemplate, Name: spec.TemplateName, ID: id, Spec: spec, Tags: tags, Managed: true})
		}
	}
	return out, nil
}

func templateSpec(name string, d *types.ResponseLaunchTemplateData) deploy.TemplateSpec {
	s := deploy.TemplateSpec{TemplateName: name}
	if d == nil {
		return s
	}
	s.ImageID, s.InstanceType = sdk.ToString(d.ImageId), string(d.InstanceType)
	if d.IamInstanceProfile != nil {
		s.Profile = sdk.ToString(d.IamInstanceProfile.Name)
	}
	s.SecurityGroup = strings.Join(d.SecurityGroupIds, ",")
	if ud, err := base64.StdEncoding.DecodeString(sdk.ToString(d.UserData)); err == nil {
		s.UserData = ud
	}
	if m := d.MetadataOptions; m != nil && m.HttpTokens == types.LaunchTemplateHttpTokensStateRequired {
		s.HopLimit = int(sdk.ToInt32(m.HttpPutResponseHopLimit))
	}
	return s
}

// templateData: IMDSv2 required (HttpTokens), hop limit 1 so nothing behind
// a bridge on the instance reaches the role's credentials:
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html
func templateData(s deploy.TemplateSpec) *types.RequestLaunchTemplateData {
	return &types.RequestLaunchTemplateData{
		ImageId: sdk.String(s.ImageID), InstanceType: types.InstanceType(s.InstanceType),
		IamInstanceProfile: &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: sdk.String(s.Profile)},
		SecurityGroupIds:   []string{s.SecurityGroup},
		UserData:           sdk.String(base64.StdEncoding.EncodeToString(s.UserData)),
		MetadataOptions: &types.LaunchTemplateInstanceMetadataOptionsRequest{
			HttpTokens: types.LaunchTemplateHttpTokensStateRequired, HttpPutResponseHopLimit: sdk.Int32(int32(s.HopLimit)),
			HttpEndpoint: types.LaunchTemplateInstanceMetadataEndpointStateEnabled,
		},
	}
}

func (c *Cloud) createTemplate(ctx context.Context, s deploy.TemplateSpec, tags map[string]string) (string, error) {
	out, err := c.EC2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: sdk.String(s.TemplateName), LaunchTemplateData: templateData(s), ClientToken: sdk.String(token()),
		TagSpecifications: tagSpec(types.ResourceTypeLaunchTemplate, tags),
	})
	if err != nil {
		return "", fmt.Errorf("create launch template %s: %w", s.TemplateName, err)
	}
	return sdk.ToString(out.LaunchTemplate.LaunchTemplateId), nil
}

// updateTemplate adds a version and makes it the default, which the groups
// launch ($Default); running instances keep theirs until replaced.
func (c *Cloud) updateTemplate(ctx context.Context, s deploy.TemplateSpec, ex plan.Existing) error {
	out, err := c.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateId: sdk.String(ex.ID), LaunchTemplateData: templateData(s), ClientToken: sdk.String(token())})
	if err != nil {
		return fmt.Errorf("new version of launch template %s: %w", ex.ID, err)
	}
	v := strconv.FormatInt(sdk.ToInt64(out.LaunchTemplateVersion.VersionNumber), 10)
	if _, err := c.EC2.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: sdk.String(ex.ID), DefaultVersion: sdk.String(v)}); err != nil {
		return fmt.Errorf("make version %s of launch template %s the default: %w", v, ex.ID, err)
	}
	return nil
}

func (c *Cloud) deleteTemplate(ctx context.Context, ex plan.Existing) error {
	_, err := c.EC2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: sdk.String(ex.ID)})
	if err != nil && code(err) != "InvalidLaunchTemplateId.NotFound" {
		return fmt.Errorf("delete launch template %s: %w", ex.ID, err)
	}
	return nil
}

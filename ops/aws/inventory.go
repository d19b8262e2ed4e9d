package aws

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/inventory"
)

// InventoryAPI is what Inventory needs beyond EC2API.
type InventoryAPI interface {
	DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
}

// Inventory reads everything status and doctor look at, with filtered
// Describe calls only (EC2's unfiltered Describe bucket is smaller).
// Calls the account does not serve (an old simulator, a missing
// permission) leave their part empty and are named in the error list
// rather than failing the whole read: a status is still useful without
// snapshots.
func (c *Cloud) Inventory(ctx context.Context, cfg ensemble.Config) (inventory.Snapshot, []error, error) {
	ens := cfg.Ensemble
	s := inventory.Snapshot{Instances: map[string]inventory.Instance{}, Subnets: map[string]netip.Prefix{},
		SecurityGroups: map[string]inventory.SecurityGroup{}, MaxENIs: map[string]int{}}
	var soft []error
	var err error
	if s.ENIs, err = c.ENIs(ctx, ens); err != nil {
		return s, nil, err
	}
	if s.Volumes, err = c.Volumes(ctx, ens); err != nil {
		return s, nil, err
	}
	if s.Groups, err = c.Groups(ctx, ens); err != nil {
		soft = append(soft, err)
	}
	ids := map[string]bool{}
	subnets := map[string]bool{}
	sgs := map[string]bool{}
	for _, e := range s.ENIs {
		if e.Instance != "" {
			ids[e.Instance] = true
		}
		subnets[e.Subnet] = true
		for _, g := range e.Groups {
			sgs[g] = true
		}
	}
	for _, v := range s.Volumes {
		if v.Instance != "" {
			ids[v.Instance] = true
		}
	}
	for _, g := range s.Groups {
		for _, i := range g.Instances {
			ids[i.ID] = true
		}
	}
	if len(ids) > 0 {
		p := ec2.NewDescribeInstancesPaginator(c.EC2, &ec2.DescribeInstancesInput{InstanceIds: slices.Sorted(maps.Keys(ids))})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				soft = append(soft, fmt.Errorf("describe instances: %w", err))
				break
			}
			for _, r := range page.Reservations {
				for _, i := range r.Instances {
					in := inventory.Instance{ID: sdk.ToString(i.InstanceId), Type: string(i.InstanceType), Tags: tagMap(i.Tags)}
					if i.State != nil {
						in.State = string(i.State.Name)
					}
					if i.Placement != nil {
						in.AZ = sdk.ToString(i.Placement.AvailabilityZone)
					}
					s.Instances[in.ID] = in
				}
			}
		}
	}
	if len(subnets) > 0 {
		out, err := c.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: slices.Sorted(maps.Keys(subnets))})
		if err != nil {
			soft = append(soft, fmt.Errorf("describe subnets: %w", err))
		} else {
			for _, sn := range out.Subnets {
				if p, err := netip.ParsePrefix(sdk.ToString(sn.CidrBlock)); err == nil {
					s.Subnets[sdk.ToString(sn.SubnetId)] = p
				}
			}
		}
	}
	d := &deploy.Desired{Ensemble: ens}
	tmpls, err := c.listTemplates(ctx, d)
	if err != nil {
		soft = append(soft, err)
	}
	for _, t := range tmpls {
		spec := t.Spec.(deploy.TemplateSpec)
		tokens := ""
		if spec.HopLimit > 0 {
			tokens = "required"
		}
		s.Templates = append(s.Templates, inventory.Template{ID: t.ID, Name: t.Name, InstanceType: spec.InstanceType,
			HTTPTokens: tokens, HopLimit: spec.HopLimit, Groups: strings.Split(spec.SecurityGroup, ",")})
		for _, g := range strings.Split(spec.SecurityGroup, ",") {
			if g != "" {
				sgs[g] = true
			}
		}
	}
	if len(sgs) > 0 {
		out, err := c.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: slices.Sorted(maps.Keys(sgs))})
		if err != nil {
			soft = append(soft, fmt.Errorf("describe security groups: %w", err))
		} else {
			for _, g := range out.SecurityGroups {
				id := sdk.ToString(g.GroupId)
				sg := inventory.SecurityGroup{ID: id, Name: sdk.ToString(g.GroupName)}
				for _, perm := range g.IpPermissions {
					from, to := int(sdk.ToInt32(perm.FromPort)), int(sdk.ToInt32(perm.ToPort))
					if sdk.ToString(perm.IpProtocol) == "-1" {
						from, to = 0, 65535
					}
					for _, r := range perm.IpRanges {
						sg.Ingress = append(sg.Ingress, inventory.Rule{From: from, To: to, CIDR: sdk.ToString(r.CidrIp)})
					}
					for _, pair := range perm.UserIdGroupPairs {
						sg.Ingress = append(sg.Ingress, inventory.Rule{From: from, To: to, GroupID: sdk.ToString(pair.GroupId)})
					}
				}
				s.SecurityGroups[id] = sg
			}
		}
	}
	itypes := map[string]bool{cfg.Deploy.InstanceType: cfg.Deploy.InstanceType != ""}
	for _, t := range s.Templates {
		itypes[t.InstanceType] = t.InstanceType != ""
	}
	for _, i := range s.Instances {
		itypes[i.Type] = i.Type != ""
	}
	var names []string
	for t, ok := range itypes {
		if ok {
			names = append(names, t)
		}
	}
	if len(names) > 0 {
		if ia, ok := c.EC2.(InventoryAPI); ok {
			slices.Sort(names)
			tin := &ec2.DescribeInstanceTypesInput{}
			for _, n := range names {
				tin.InstanceTypes = append(tin.InstanceTypes, ec2InstanceType(n))
			}
			out, err := ia.DescribeInstanceTypes(ctx, tin)
			if err != nil {
				soft = append(soft, fmt.Errorf("describe instance types: %w", err))
			} else {
				for _, it := range out.InstanceTypes {
					if it.NetworkInfo != nil {
						s.MaxENIs[string(it.InstanceType)] = int(sdk.ToInt32(it.NetworkInfo.MaximumNetworkInterfaces))
					}
				}
			}
		}
	}
	if ia, ok := c.EC2.(InventoryAPI); ok && len(s.Volumes) > 0 {
		var vids []string
		for _, v := range s.Volumes {
			vids = append(vids, v.ID)
		}
		out, err := ia.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []types.Filter{filter("volume-id", vids...)}})
		if err != nil {
			soft = append(soft, fmt.Errorf("describe snapshots: %w", err))
		} else {
			for i := range s.Volumes {
				for _, sn := range out.Snapshots {
					if sdk.ToString(sn.VolumeId) == s.Volumes[i].ID && sn.StartTime != nil && sn.StartTime.After(s.Volumes[i].LastSnapshot) {
						s.Volumes[i].LastSnapshot = *sn.StartTime
					}
				}
			}
		}
	}
	return s, soft, nil
}

func ec2InstanceType(n string) types.InstanceType { return types.InstanceType(n) }

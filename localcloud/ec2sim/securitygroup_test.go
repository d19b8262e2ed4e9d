package ec2sim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func (e *env) group(name string) string {
	e.t.Helper()
	out, err := e.ec2.CreateSecurityGroup(ctx(e.t), &ec2.CreateSecurityGroupInput{
		GroupName: aws.String(name), Description: aws.String(name + " group"), VpcId: aws.String(e.sim.VPCID()),
		TagSpecifications: tagSpec(types.ResourceTypeSecurityGroup, "zkaas:ensemble", "prod")})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.GroupId)
}

func tcp(port int32, cidrs []string, groups ...string) types.IpPermission {
	p := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
	for _, c := range cidrs {
		p.IpRanges = append(p.IpRanges, types.IpRange{CidrIp: aws.String(c)})
	}
	for _, g := range groups {
		p.UserIdGroupPairs = append(p.UserIdGroupPairs, types.UserIdGroupPair{GroupId: aws.String(g)})
	}
	return p
}

func TestCreateSecurityGroup(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	e.group("zk")
	vpc := aws.String(e.sim.VPCID())
	tests := []struct {
		name      string
		in        ec2.CreateSecurityGroupInput
		code, msg string
	}{
		{"new", ec2.CreateSecurityGroupInput{GroupName: aws.String("zk-client"), Description: aws.String("clients"), VpcId: vpc}, "", ""},
		{"duplicate", ec2.CreateSecurityGroupInput{GroupName: aws.String("zk"), Description: aws.String("again"), VpcId: vpc},
			"InvalidGroup.Duplicate", "The security group 'zk' already exists for VPC '" + *vpc + "'"},
		{"default is taken", ec2.CreateSecurityGroupInput{GroupName: aws.String("default"), Description: aws.String("d"), VpcId: vpc},
			"InvalidGroup.Duplicate", "The security group 'default' already exists for VPC '" + *vpc + "'"},
		{"sg- prefix", ec2.CreateSecurityGroupInput{GroupName: aws.String("sg-1"), Description: aws.String("d"), VpcId: vpc},
			"InvalidParameterValue", "Value (sg-1) for parameter GroupName is invalid. Group names may not be in the format sg-*."},
		{"no VPC", ec2.CreateSecurityGroupInput{GroupName: aws.String("x"), Description: aws.String("d")}, "VPCIdNotSpecified", ""},
		{"unknown VPC", ec2.CreateSecurityGroupInput{GroupName: aws.String("x"), Description: aws.String("d"), VpcId: aws.String("vpc-0123456789abcdef0")},
			"InvalidVpcID.NotFound", "The vpc ID 'vpc-0123456789abcdef0' does not exist"},
		{"bad character", ec2.CreateSecurityGroupInput{GroupName: aws.String("zk√"), Description: aws.String("d"), VpcId: vpc}, "InvalidParameterValue", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			out, err := e.ec2.CreateSecurityGroup(ctx(t), &in)
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.ec2.DescribeSecurityGroups(ctx(t), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{aws.ToString(out.GroupId)}})
			if err != nil {
				t.Fatal(err)
			}
			g := d.SecurityGroups[0]
			// A new group allows all outbound traffic and nothing inbound.
			if aws.ToString(g.GroupName) != *in.GroupName || len(g.IpPermissions) != 0 || len(g.IpPermissionsEgress) != 1 ||
				aws.ToString(g.IpPermissionsEgress[0].IpProtocol) != "-1" || aws.ToString(g.IpPermissionsEgress[0].IpRanges[0].CidrIp) != "0.0.0.0/0" {
				t.Fatalf("described %+v", g)
			}
		})
	}
	filters := []struct {
		name  string
		f     []types.Filter
		names []string
	}{
		{"group-name", []types.Filter{filter("group-name", "zk")}, []string{"zk"}},
		{"vpc-id and wildcard", []types.Filter{filter("vpc-id", *vpc), filter("group-name", "zk*")}, []string{"zk", "zk-client"}},
		{"tag", []types.Filter{filter("tag:zkaas:ensemble", "prod")}, []string{"zk"}},
		{"all", nil, []string{"default", "zk", "zk-client"}},
	}
	for _, tc := range filters {
		t.Run("filter "+tc.name, func(t *testing.T) {
			out, err := e.ec2.DescribeSecurityGroups(ctx(t), &ec2.DescribeSecurityGroupsInput{Filters: tc.f})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, g := range out.SecurityGroups {
				names = append(names, aws.ToString(g.GroupName))
			}
			if got := sorted(names...); len(got) != len(tc.names) || (len(got) > 0 && got[0] != tc.names[0]) {
				t.Fatalf("got %v, want %v", got, tc.names)
			}
		})
	}
	_, err := e.ec2.DescribeSecurityGroups(ctx(t), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}})
	wantError(t, err, "InvalidGroup.NotFound", "The security group 'sg-0123456789abcdef0' does not exist")
}

func TestSecurityGroupRules(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	zk, client := e.group("zk"), e.group("client")
	ingress := func(perms ...types.IpPermission) error {
		_, err := e.ec2.AuthorizeSecurityGroupIngress(ctx(t), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(zk), IpPermissions: perms})
		return err
	}
	tests := []struct {
		name      string
		call      func() error
		code, msg string
	}{
		{"client port from CIDRs", func() error { return ingress(tcp(2181, []string{"10.1.0.0/16", "192.168.0.0/24"})) }, "", ""},
		{"quorum ports from the group itself", func() error { return ingress(tcp(2888, nil, zk), tcp(3888, nil, zk)) }, "", ""},
		{"client port from a group", func() error { return ingress(tcp(2181, nil, client)) }, "", ""},
		{"duplicate CIDR", func() error { return ingress(tcp(2181, []string{"10.1.0.0/16"})) },
			"InvalidPermission.Duplicate", `the specified rule "peer: 10.1.0.0/16, TCP, from port: 2181, to port: 2181, ALLOW" already exists`},
		{"duplicate group", func() error { return ingress(tcp(2888, nil, zk)) },
			"InvalidPermission.Duplicate", `the specified rule "peer: ` + zk + `, TCP, from port: 2888, to port: 2888, ALLOW" already exists`},
		{"unknown peer group", func() error { return ingress(tcp(1, nil, "sg-0123456789abcdef0")) }, "InvalidGroup.NotFound", ""},
		{"bad CIDR", func() error { return ingress(tcp(1, []string{"10.0.0.300/8"})) }, "InvalidParameterValue", "CIDR block 10.0.0.300/8 is malformed"},
		{"bad protocol", func() error {
			return ingress(types.IpPermission{IpProtocol: aws.String("tcpx"), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}})
		}, "InvalidPermission.Malformed", ""},
		{"tcp without ports", func() error {
			return ingress(types.IpPermission{IpProtocol: aws.String("tcp"), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}})
		}, "InvalidParameterValue", ""},
		{"inverted ports", func() error {
			return ingress(types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(9), ToPort: aws.Int32(1), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}})
		}, "InvalidParameterValue", "Invalid TCP/UDP port range (9-1)."},
		{"egress duplicate of the default", func() error {
			_, err := e.ec2.AuthorizeSecurityGroupEgress(ctx(t), &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(zk),
				IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
			return err
		}, "InvalidPermission.Duplicate", `the specified rule "peer: 0.0.0.0/0, ALL, ALLOW" already exists`},
		{"unknown group", func() error {
			_, err := e.ec2.AuthorizeSecurityGroupIngress(ctx(t), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("sg-0123456789abcdef0"),
				IpPermissions: []types.IpPermission{tcp(1, []string{"10.0.0.0/8"})}})
			return err
		}, "InvalidGroup.NotFound", "The security group 'sg-0123456789abcdef0' does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	g, err := e.ec2.DescribeSecurityGroups(ctx(t), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{zk}})
	if err != nil {
		t.Fatal(err)
	}
	// 2181 (two CIDRs and a group), 2888, 3888: one IpPermission per port range.
	perms := g.SecurityGroups[0].IpPermissions
	if len(perms) != 3 || len(perms[0].IpRanges) != 2 || len(perms[0].UserIdGroupPairs) != 1 {
		t.Fatalf("ingress %+v", perms)
	}
	rules, err := e.ec2.DescribeSecurityGroupRules(ctx(t), &ec2.DescribeSecurityGroupRulesInput{Filters: []types.Filter{filter("group-id", zk)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules.SecurityGroupRules) != 6 { // 5 inbound + the default outbound
		t.Fatalf("%d rules", len(rules.SecurityGroupRules))
	}
	var peerRule string
	for _, r := range rules.SecurityGroupRules {
		if r.ReferencedGroupInfo != nil && aws.ToString(r.ReferencedGroupInfo.GroupId) == client {
			peerRule = aws.ToString(r.SecurityGroupRuleId)
		}
	}

	// Revoke: by permission (one known, one unknown), by rule id, nothing known.
	rev, err := e.ec2.RevokeSecurityGroupIngress(ctx(t), &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(zk),
		IpPermissions: []types.IpPermission{tcp(2181, []string{"192.168.0.0/24"}), tcp(9999, []string{"10.0.0.0/8"})}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rev.UnknownIpPermissions) != 1 || len(rev.RevokedSecurityGroupRules) != 1 {
		t.Fatalf("revoke: unknown %d revoked %d", len(rev.UnknownIpPermissions), len(rev.RevokedSecurityGroupRules))
	}
	if _, err := e.ec2.RevokeSecurityGroupIngress(ctx(t), &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(zk), SecurityGroupRuleIds: []string{peerRule}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.ec2.RevokeSecurityGroupIngress(ctx(t), &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(zk),
		IpPermissions: []types.IpPermission{tcp(9999, []string{"10.0.0.0/8"})}})
	wantError(t, err, "InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
	_, err = e.ec2.RevokeSecurityGroupIngress(ctx(t), &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(zk), SecurityGroupRuleIds: []string{peerRule}})
	wantError(t, err, "InvalidSecurityGroupRuleId.NotFound", "")
	if _, err := e.ec2.RevokeSecurityGroupEgress(ctx(t), &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(zk),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}); err != nil {
		t.Fatal(err)
	}
	for _, sg := range e.sim.SecurityGroups() {
		if sg.ID == zk && len(sg.Rules) != 3 {
			t.Fatalf("rules left: %+v", sg.Rules)
		}
	}
}

func TestDeleteSecurityGroup(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	used, referenced, referrer, free := e.group("used"), e.group("referenced"), e.group("referrer"), e.group("free")
	if _, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subA), Groups: []string{used}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ec2.AuthorizeSecurityGroupIngress(ctx(t), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(referrer),
		IpPermissions: []types.IpPermission{tcp(2181, nil, referenced)}}); err != nil {
		t.Fatal(err)
	}
	def := e.sim.SecurityGroups()[0]
	for _, g := range e.sim.SecurityGroups() {
		if g.Name == "default" {
			def = g
		}
	}
	tests := []struct {
		name, id, code, msg string
	}{
		{"used by an ENI", used, "DependencyViolation", "resource " + used + " has a dependent object"},
		{"referenced by a rule", referenced, "DependencyViolation", "resource " + referenced + " has a dependent object"},
		{"the default group", def.ID, "CannotDelete", ""},
		{"free", free, "", ""},
		{"gone", free, "InvalidGroup.NotFound", ""},
		{"malformed", "sg-zz", "InvalidGroupId.Malformed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ec2.DeleteSecurityGroup(ctx(t), &ec2.DeleteSecurityGroupInput{GroupId: aws.String(tc.id)})
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCreateTagsOnGroupsRulesImages(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	sg := e.group("zk")
	img, err := e.sim.RegisterImage(ec2sim.Image{Name: "zkaas-1"})
	if err != nil {
		t.Fatal(err)
	}
	vol := e.volume("us-east-1a", nil)
	var rule string // zk's egress rule
	for _, g := range e.sim.SecurityGroups() {
		if g.ID == sg {
			rule = g.Rules[0].ID
		}
	}
	tag := []types.Tag{{Key: aws.String("zkaas:ensemble"), Value: aws.String("adopted")}}
	tests := []struct {
		name      string
		ids       []string
		code, msg string
	}{
		{"unknown group changes nothing", []string{vol.ID, sg, "sg-0123456789abcdef0"}, "InvalidGroup.NotFound", ""},
		{"unknown volume changes nothing", []string{sg, "vol-0123456789abcdef0"}, "InvalidVolume.NotFound", ""},
		{"group, rule, image and volume", []string{sg, rule, img.ID, vol.ID}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ec2.CreateTags(ctx(t), &ec2.CreateTagsInput{Resources: tc.ids, Tags: tag})
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg)
				if v, _ := e.sim.Volume(vol.ID); v.Tags["zkaas:ensemble"] != "" {
					t.Fatal("volume tagged by a failed call")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	check := []struct {
		name string
		n    func() (int, error)
	}{
		{"group", func() (int, error) {
			out, err := e.ec2.DescribeSecurityGroups(ctx(t), &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("tag:zkaas:ensemble", "adopted")}})
			return len(out.SecurityGroups), err
		}},
		{"rule", func() (int, error) {
			out, err := e.ec2.DescribeSecurityGroupRules(ctx(t), &ec2.DescribeSecurityGroupRulesInput{Filters: []types.Filter{filter("tag:zkaas:ensemble", "adopted")}})
			return len(out.SecurityGroupRules), err
		}},
		{"image", func() (int, error) {
			out, err := e.ec2.DescribeImages(ctx(t), &ec2.DescribeImagesInput{Filters: []types.Filter{filter("tag:zkaas:ensemble", "adopted")}})
			return len(out.Images), err
		}},
		{"volume", func() (int, error) {
			out, err := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{Filters: []types.Filter{filter("tag:zkaas:ensemble", "adopted")}})
			return len(out.Volumes), err
		}},
	}
	for _, c := range check {
		if n, err := c.n(); err != nil || n != 1 {
			t.Errorf("%s: %d tagged, %v", c.name, n, err)
		}
	}
}

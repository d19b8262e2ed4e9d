package ec2sim_test

import (
	"net/url"
	"testing"

	"github.com/zkaas/zkaas/internal/golden"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// TestOperatorWireFormat pins the XML of the operator's calls, as
// TestWireFormat does for the claim's.
func TestOperatorWireFormat(t *testing.T) {
	e := setup(t, ec2sim.Options{Seed: 1})
	vpc := e.sim.VPCID()
	vol := e.volume("us-east-1a", map[string]string{"zkaas:node": "1"})
	if _, err := e.sim.TakeSnapshot(vol.ID, "daily", map[string]string{"zkaas:node": "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.RegisterImage(ec2sim.Image{ID: "ami-0fedcba9876543210", Name: "zkaas-1", Architecture: "arm64"}); err != nil {
		t.Fatal(err)
	}
	form := func(kv ...string) url.Values {
		f := url.Values{"Version": {"2016-11-15"}}
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	var sg string
	tests := []struct {
		name   string
		form   func() url.Values
		status int
	}{
		{"create_security_group", func() url.Values {
			return form("Action", "CreateSecurityGroup", "GroupName", "zk", "GroupDescription", "zk nodes", "VpcId", vpc,
				"TagSpecification.1.ResourceType", "security-group", "TagSpecification.1.Tag.1.Key", "zkaas:ensemble", "TagSpecification.1.Tag.1.Value", "prod")
		}, 200},
		{"authorize_security_group_ingress", func() url.Values {
			sg = e.sim.SecurityGroups()[0].ID
			for _, g := range e.sim.SecurityGroups() {
				if g.Name == "zk" {
					sg = g.ID
				}
			}
			return form("Action", "AuthorizeSecurityGroupIngress", "GroupId", sg,
				"IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "2181", "IpPermissions.1.ToPort", "2181",
				"IpPermissions.1.IpRanges.1.CidrIp", "10.1.0.0/16", "IpPermissions.1.Groups.1.GroupId", sg)
		}, 200},
		{"describe_security_groups", func() url.Values { return form("Action", "DescribeSecurityGroups", "GroupId.1", sg) }, 200},
		{"create_network_interface", func() url.Values {
			return form("Action", "CreateNetworkInterface", "SubnetId", e.subA, "PrivateIpAddress", "10.0.1.11", "SecurityGroupId.1", sg, "Description", "zk node 1")
		}, 200},
		{"create_volume", func() url.Values {
			return form("Action", "CreateVolume", "AvailabilityZone", "us-east-1b", "Size", "100", "VolumeType", "gp3", "Iops", "6000",
				"Throughput", "250", "Encrypted", "true", "KmsKeyId", "alias/zk")
		}, 200},
		{"describe_vpcs", func() url.Values { return form("Action", "DescribeVpcs") }, 200},
		{"describe_instance_types", func() url.Values { return form("Action", "DescribeInstanceTypes", "InstanceType.1", "t3.medium") }, 200},
		{"describe_images", func() url.Values { return form("Action", "DescribeImages", "ImageId.1", "ami-0fedcba9876543210") }, 200},
		{"describe_snapshots", func() url.Values { return form("Action", "DescribeSnapshots", "Owner.1", "self") }, 200},
		{"error_duplicate_rule", func() url.Values {
			return form("Action", "AuthorizeSecurityGroupIngress", "GroupId", sg,
				"IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "2181", "IpPermissions.1.ToPort", "2181",
				"IpPermissions.1.IpRanges.1.CidrIp", "10.1.0.0/16")
		}, 400},
		{"error_dry_run", func() url.Values {
			return form("Action", "CreateVolume", "AvailabilityZone", "us-east-1a", "Size", "1", "DryRun", "true")
		}, 412},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, e.url, tc.form(), true)
			if status != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", status, tc.status, body)
			}
			golden.CheckNamed(t, tc.name, normalize(t, body))
		})
	}
}

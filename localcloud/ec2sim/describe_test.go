package ec2sim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func TestDescribeVpcs(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	vpc := e.sim.VPCID()
	tests := []struct {
		name      string
		in        ec2.DescribeVpcsInput
		n         int
		code, msg string
	}{
		{"all", ec2.DescribeVpcsInput{}, 1, "", ""},
		{"by id", ec2.DescribeVpcsInput{VpcIds: []string{vpc}}, 1, "", ""},
		{"by cidr", ec2.DescribeVpcsInput{Filters: []types.Filter{filter("cidr-block-association.cidr-block", "10.0.0.0/16")}}, 1, "", ""},
		{"not default", ec2.DescribeVpcsInput{Filters: []types.Filter{filter("is-default", "true")}}, 0, "", ""},
		{"unknown", ec2.DescribeVpcsInput{VpcIds: []string{"vpc-0123456789abcdef0"}}, 0, "InvalidVpcID.NotFound", "The vpc ID 'vpc-0123456789abcdef0' does not exist"},
		{"bad filter", ec2.DescribeVpcsInput{Filters: []types.Filter{filter("nope", "x")}}, 0, "InvalidParameterValue", "The filter 'nope' is invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			out, err := e.ec2.DescribeVpcs(ctx(t), &in)
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Vpcs) != tc.n {
				t.Fatalf("%d VPCs", len(out.Vpcs))
			}
			if tc.n == 1 && (aws.ToString(out.Vpcs[0].VpcId) != vpc || aws.ToString(out.Vpcs[0].CidrBlock) != "10.0.0.0/16" || aws.ToBool(out.Vpcs[0].IsDefault)) {
				t.Fatalf("%+v", out.Vpcs[0])
			}
		})
	}
}

func TestDescribeSubnetsFilters(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	vpc := e.sim.VPCID()
	tests := []struct {
		name string
		f    []types.Filter
		want []string
	}{
		{"vpc-id", []types.Filter{filter("vpc-id", vpc)}, []string{e.subA, e.subB}},
		{"availability-zone", []types.Filter{filter("availability-zone", "us-east-1b")}, []string{e.subB}},
		{"cidr-block", []types.Filter{filter("cidr-block", "10.0.1.0/24")}, []string{e.subA}},
		{"cidr alias", []types.Filter{filter("cidr", "10.0.2.0/24")}, []string{e.subB}},
		{"subnet-id", []types.Filter{filter("subnet-id", e.subA)}, []string{e.subA}},
		{"az and vpc", []types.Filter{filter("vpc-id", vpc), filter("availability-zone", "us-east-1a")}, []string{e.subA}},
		{"other vpc", []types.Filter{filter("vpc-id", "vpc-0123456789abcdef0")}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{Filters: tc.f})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, s := range out.Subnets {
				ids = append(ids, aws.ToString(s.SubnetId))
			}
			if got, want := sorted(ids...), sorted(tc.want...); len(got) != len(want) || (len(got) > 0 && got[0] != want[0]) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestDescribeInstanceTypes(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	tests := []struct {
		name      string
		in        ec2.DescribeInstanceTypesInput
		want      []string
		code, msg string
	}{
		{"by type", ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"t3.micro", "m6g.large"}}, []string{"m6g.large", "t3.micro"}, "", ""},
		{"arm64 with 4 interfaces", ec2.DescribeInstanceTypesInput{Filters: []types.Filter{
			filter("processor-info.supported-architecture", "arm64"), filter("network-info.maximum-network-interfaces", "4")}},
			[]string{"m6g.xlarge"}, "", ""},
		{"unknown", ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"x9.huge"}}, nil,
			"InvalidInstanceType", "The following supplied instance types do not exist: [x9.huge]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			out, err := e.ec2.DescribeInstanceTypes(ctx(t), &in)
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range out.InstanceTypes {
				got = append(got, string(it.InstanceType))
			}
			if len(got) != len(tc.want) || got[0] != tc.want[0] {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	out, err := e.ec2.DescribeInstanceTypes(ctx(t), &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"t3.medium"}})
	if err != nil {
		t.Fatal(err)
	}
	it := out.InstanceTypes[0]
	if aws.ToInt32(it.NetworkInfo.MaximumNetworkInterfaces) != 3 || aws.ToInt32(it.VCpuInfo.DefaultVCpus) != 2 ||
		aws.ToInt64(it.MemoryInfo.SizeInMiB) != 4096 || it.ProcessorInfo.SupportedArchitectures[0] != types.ArchitectureTypeX8664 {
		t.Fatalf("t3.medium: %+v %+v %+v", it.NetworkInfo, it.VCpuInfo, it.MemoryInfo)
	}
	// Paginated over the whole table.
	n := 0
	p := ec2.NewDescribeInstanceTypesPaginator(e.ec2, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.InstanceTypes)
	}
	if _, ok := ec2sim.MaxNetworkInterfaces("t3.medium"); !ok || n < 40 {
		t.Fatalf("%d types", n)
	}
}

func TestDescribeImages(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	img, err := e.sim.RegisterImage(ec2sim.Image{Name: "zkaas-zookeeper-3.9-arm64", Architecture: "arm64", Tags: map[string]string{"zkaas:image": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.RegisterImage(ec2sim.Image{Name: "zkaas-zookeeper-3.9-arm64"}); err == nil {
		t.Fatal("duplicate name accepted")
	}
	tests := []struct {
		name      string
		in        ec2.DescribeImagesInput
		want      []string
		code, msg string
	}{
		{"by id", ec2.DescribeImagesInput{ImageIds: []string{img.ID}}, []string{img.ID}, "", ""},
		{"by name, self", ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{filter("name", "zkaas-*")}}, []string{img.ID}, "", ""},
		{"by tag", ec2.DescribeImagesInput{Filters: []types.Filter{filter("tag:zkaas:image", "1")}}, []string{img.ID}, "", ""},
		{"the default image", ec2.DescribeImagesInput{Filters: []types.Filter{filter("architecture", "x86_64")}}, []string{"ami-0123456789abcdef0"}, "", ""},
		{"amazon's", ec2.DescribeImagesInput{Owners: []string{"amazon"}}, nil, "", ""},
		{"unknown", ec2.DescribeImagesInput{ImageIds: []string{"ami-0000000000000000f"}}, nil,
			"InvalidAMIID.NotFound", "The image id '[ami-0000000000000000f]' does not exist"},
		{"malformed", ec2.DescribeImagesInput{ImageIds: []string{"ami-x"}}, nil, "InvalidAMIID.Malformed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			out, err := e.ec2.DescribeImages(ctx(t), &in)
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, i := range out.Images {
				got = append(got, aws.ToString(i.ImageId))
				if i.State != types.ImageStateAvailable {
					t.Fatalf("state %s", i.State)
				}
			}
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

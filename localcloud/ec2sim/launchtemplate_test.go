package ec2sim_test

import (
	"encoding/base64"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func ltData(userData string) *types.RequestLaunchTemplateData {
	return &types.RequestLaunchTemplateData{
		ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: types.InstanceTypeT3Small,
		UserData:           aws.String(base64.StdEncoding.EncodeToString([]byte(userData))),
		IamInstanceProfile: &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: aws.String("zkaas-node")},
		MetadataOptions: &types.LaunchTemplateInstanceMetadataOptionsRequest{
			HttpTokens: types.LaunchTemplateHttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2)},
		NetworkInterfaces: []types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{{
			DeviceIndex: aws.Int32(0), Groups: []string{"sg-0123456789abcdef0"}, DeleteOnTermination: aws.Bool(true)}},
		TagSpecifications: []types.LaunchTemplateTagSpecificationRequest{{
			ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("zkaas:ensemble"), Value: aws.String("prod")}}}},
	}
}

func TestLaunchTemplates(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	c := ctx(t)
	created, err := e.ec2.CreateLaunchTemplate(c, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("zk-prod"), LaunchTemplateData: ltData("ensemble: prod\n"), VersionDescription: aws.String("first"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeLaunchTemplate, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("db")}}}},
	})
	must(t, err)
	lt := created.LaunchTemplate
	id := aws.ToString(lt.LaunchTemplateId)
	if aws.ToInt64(lt.DefaultVersionNumber) != 1 || aws.ToInt64(lt.LatestVersionNumber) != 1 || aws.ToString(lt.LaunchTemplateName) != "zk-prod" || len(lt.Tags) != 1 {
		t.Fatalf("created: %+v", lt)
	}

	// A new version from version 1 inherits what it does not set.
	v2, err := e.ec2.CreateLaunchTemplateVersion(c, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(id), SourceVersion: aws.String("1"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{UserData: aws.String(base64.StdEncoding.EncodeToString([]byte("ensemble: prod\nnode: 2\n")))}})
	must(t, err)
	if n := aws.ToInt64(v2.LaunchTemplateVersion.VersionNumber); n != 2 || aws.ToBool(v2.LaunchTemplateVersion.DefaultVersion) {
		t.Fatalf("version 2: %+v", v2.LaunchTemplateVersion)
	}
	d := v2.LaunchTemplateVersion.LaunchTemplateData
	if d.InstanceType != types.InstanceTypeT3Small || aws.ToString(d.ImageId) != "ami-0123456789abcdef0" || d.MetadataOptions.HttpTokens != types.LaunchTemplateHttpTokensStateRequired ||
		aws.ToInt32(d.MetadataOptions.HttpPutResponseHopLimit) != 2 || aws.ToString(d.IamInstanceProfile.Name) != "zkaas-node" ||
		len(d.NetworkInterfaces) != 1 || len(d.NetworkInterfaces[0].Groups) != 1 || len(d.TagSpecifications) != 1 {
		t.Fatalf("inherited data: %+v", d)
	}

	versions := func(in *ec2.DescribeLaunchTemplateVersionsInput) []int64 {
		t.Helper()
		out, err := e.ec2.DescribeLaunchTemplateVersions(c, in)
		must(t, err)
		var ns []int64
		for _, v := range out.LaunchTemplateVersions {
			ns = append(ns, aws.ToInt64(v.VersionNumber))
		}
		return ns
	}
	for _, tc := range []struct {
		name string
		in   *ec2.DescribeLaunchTemplateVersionsInput
		want []int64
	}{
		{"all", &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id)}, []int64{1, 2}},
		{"$Latest", &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("zk-prod"), Versions: []string{"$Latest"}}, []int64{2}},
		{"$Default", &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), Versions: []string{"$Default"}}, []int64{1}},
		{"min", &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), MinVersion: aws.String("2")}, []int64{2}},
		{"$Latest of every template", &ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"$Latest"}}, []int64{2}},
	} {
		if got := versions(tc.in); !equal(got, tc.want) {
			t.Errorf("%s: versions %v, want %v", tc.name, got, tc.want)
		}
	}

	_, err = e.ec2.ModifyLaunchTemplate(c, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(id), DefaultVersion: aws.String("2")})
	must(t, err)
	out, err := e.ec2.DescribeLaunchTemplates(c, &ec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{filter("tag:team", "db")}})
	must(t, err)
	if len(out.LaunchTemplates) != 1 || aws.ToInt64(out.LaunchTemplates[0].DefaultVersionNumber) != 2 || aws.ToInt64(out.LaunchTemplates[0].LatestVersionNumber) != 2 {
		t.Fatalf("describe: %+v", out.LaunchTemplates)
	}
	tmpl, ver, err := e.sim.ResolveLaunchTemplate("", "zk-prod", "$Default")
	must(t, err)
	if ud, _ := ver.Data.DecodedUserData(); tmpl.ID != id || ver.Number != 2 || string(ud) != "ensemble: prod\nnode: 2\n" {
		t.Fatalf("resolve $Default: %s v%d %q", tmpl.ID, ver.Number, ud)
	}

	// Launch from it: the template's tags and the caller's (aws: allowed).
	inst, err := e.sim.RunInstanceFromTemplate(e.subA, ver.Data, map[string]string{"aws:autoscaling:groupName": "zk"})
	must(t, err)
	want := map[string]string{"zkaas:ensemble": "prod", "aws:autoscaling:groupName": "zk"}
	if got, _ := e.sim.Instance(inst.ID); !maps.Equal(got.Tags, want) || got.InstanceType != "t3.small" {
		t.Fatalf("instance %s tags %v", got.InstanceType, got.Tags)
	}
	if got := e.describeInstance(inst.ID); len(got.Tags) != 2 {
		t.Fatalf("DescribeInstances tags: %+v", got.Tags)
	}
	if d, ok := e.sim.InstanceLaunchData(inst.ID); !ok || d.UserData != ver.Data.UserData {
		t.Fatalf("launch data %v %+v", ok, d)
	}

	_, err = e.ec2.DeleteLaunchTemplate(c, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String("zk-prod")})
	must(t, err)
	_, err = e.ec2.DescribeLaunchTemplates(c, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{id}})
	wantError(t, err, ec2sim.CodeInvalidLaunchTemplateIDNotFound, "The specified launch template, with template ID "+id+", does not exist.")
}

func TestLaunchTemplateErrors(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	c := ctx(t)
	created, err := e.ec2.CreateLaunchTemplate(c, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("zk-a"), LaunchTemplateData: ltData("x")})
	must(t, err)
	id := aws.ToString(created.LaunchTemplate.LaunchTemplateId)
	create := func(name string, d *types.RequestLaunchTemplateData) error {
		_, err := e.ec2.CreateLaunchTemplate(c, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name), LaunchTemplateData: d})
		return err
	}
	tests := []struct {
		name, code, msg string
		call            func() error
	}{
		{"name in use", ec2sim.CodeInvalidLaunchTemplateNameExists, "Launch template name already in use.", func() error { return create("zk-a", ltData("")) }},
		{"name malformed", ec2sim.CodeInvalidLaunchTemplateNameMalformed, "", func() error { return create("z k", ltData("")) }},
		{"name too short", ec2sim.CodeInvalidLaunchTemplateNameMalformed, "", func() error { return create("zk", ltData("")) }},
		{"no data", ec2sim.CodeMissingParameter, "The request must contain the parameter LaunchTemplateData",
			func() error { return create("other", &types.RequestLaunchTemplateData{}) }},
		{"user data not base64", "InvalidUserData.Malformed", "Invalid BASE64 encoding of user data.",
			func() error {
				return create("other", &types.RequestLaunchTemplateData{UserData: aws.String("not base64!")})
			}},
		{"hop limit", ec2sim.CodeInvalidParameterValue, "The HttpPutResponseHopLimit must be between 1 and 64.",
			func() error {
				return create("other", &types.RequestLaunchTemplateData{MetadataOptions: &types.LaunchTemplateInstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(65)}})
			}},
		{"http tokens", ec2sim.CodeInvalidParameterValue, "Invalid value 'sometimes' for HttpTokens. Valid values are optional, required.",
			func() error {
				return create("other", &types.RequestLaunchTemplateData{MetadataOptions: &types.LaunchTemplateInstanceMetadataOptionsRequest{HttpTokens: "sometimes"}})
			}},
		{"unknown id", ec2sim.CodeInvalidLaunchTemplateIDNotFound, "The specified launch template, with template ID lt-0000000000000dead, does not exist.",
			func() error {
				_, err := e.ec2.CreateLaunchTemplateVersion(c, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String("lt-0000000000000dead"), LaunchTemplateData: ltData("")})
				return err
			}},
		{"malformed id", ec2sim.CodeInvalidLaunchTemplateIDMalformed, "",
			func() error {
				_, err := e.ec2.ModifyLaunchTemplate(c, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String("lt-1"), DefaultVersion: aws.String("1")})
				return err
			}},
		{"unknown name", ec2sim.CodeInvalidLaunchTemplateNameNotFound, "The specified launch template, with template name nope, does not exist.",
			func() error {
				_, err := e.ec2.DeleteLaunchTemplate(c, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String("nope")})
				return err
			}},
		{"describe unknown name", ec2sim.CodeInvalidLaunchTemplateNameNotFound, "At least one of the launch templates specified in the request does not exist.",
			func() error {
				_, err := e.ec2.DescribeLaunchTemplates(c, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{"zk-a", "nope"}})
				return err
			}},
		{"id and name", ec2sim.CodeInvalidParameterCombo, "",
			func() error {
				_, err := e.ec2.DeleteLaunchTemplate(c, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(id), LaunchTemplateName: aws.String("zk-a")})
				return err
			}},
		{"default version not found", ec2sim.CodeInvalidLaunchTemplateIDVersionNotFound, "",
			func() error {
				_, err := e.ec2.ModifyLaunchTemplate(c, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(id), DefaultVersion: aws.String("7")})
				return err
			}},
		{"source version not found", ec2sim.CodeInvalidLaunchTemplateIDVersionNotFound, "",
			func() error {
				_, err := e.ec2.CreateLaunchTemplateVersion(c, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(id), SourceVersion: aws.String("3"), LaunchTemplateData: ltData("")})
				return err
			}},
		{"describe version not found", ec2sim.CodeInvalidLaunchTemplateIDVersionNotFound, "",
			func() error {
				_, err := e.ec2.DescribeLaunchTemplateVersions(c, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), Versions: []string{"2"}})
				return err
			}},
		{"versions without a template", ec2sim.CodeMissingParameter, "",
			func() error {
				_, err := e.ec2.DescribeLaunchTemplateVersions(c, &ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"1"}})
				return err
			}},
		{"bad filter", ec2sim.CodeInvalidParameterValue, "The filter 'owner' is invalid",
			func() error {
				_, err := e.ec2.DescribeLaunchTemplates(c, &ec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{filter("owner", "me")}})
				return err
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantError(t, tc.call(), tc.code, tc.msg) })
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

package localcloud

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// autoScalingFrom is the real SDK client calling from inside the instance,
// at the endpoint its environment names (as the SDK's
// AWS_ENDPOINT_URL_AUTO_SCALING would resolve it).
func autoScalingFrom(t *testing.T, inst *Instance) *autoscaling.Client {
	t.Helper()
	var endpoint string
	for _, kv := range inst.Environ() {
		if v, ok := strings.CutPrefix(kv, "AWS_ENDPOINT_URL_AUTO_SCALING="); ok {
			endpoint = v
		}
	}
	if endpoint == "" {
		t.Fatalf("no AWS_ENDPOINT_URL_AUTO_SCALING in %s's environment", inst.ID)
	}
	return autoscaling.New(autoscaling.Options{
		Region: inst.Region, BaseEndpoint: aws.String(endpoint), HTTPClient: inst.HTTPClient(),
		Credentials: credentials.NewStaticCredentialsProvider(inst.ID, "localcloud", ""),
	})
}

// imdsGet reads an IMDSv2 path on the instance: its body, or "" and the
// HTTP status of an error.
func imdsGet(t *testing.T, inst *Instance, path string) (string, int) {
	t.Helper()
	api := imds.New(imds.Options{HTTPClient: inst.HTTPClient(), EnableFallback: aws.FalseTernary})
	var out io.ReadCloser
	if path == "user-data" {
		o, err := api.GetUserData(t.Context(), &imds.GetUserDataInput{})
		if err != nil {
			return "", statusOf(t, err)
		}
		out = o.Content
	} else {
		o, err := api.GetMetadata(t.Context(), &imds.GetMetadataInput{Path: path})
		if err != nil {
			return "", statusOf(t, err)
		}
		out = o.Content
	}
	defer out.Close()
	b, _ := io.ReadAll(out)
	return string(b), 200
}

func statusOf(t *testing.T, err error) int {
	t.Helper()
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) {
		t.Fatal(err)
	}
	return re.HTTPStatusCode()
}

// TestAutoScalingOutsideGroup: an instance Launch started reaches the Auto
// Scaling API at the endpoint its environment names, and is in no group:
// DescribeAutoScalingInstances of itself is empty, as AWS answers; its
// IMDS has no user data and no tags.
func TestAutoScalingOutsideGroup(t *testing.T) {
	c := newCloud(t, Options{EC2: fastSim})
	inst := launch(t, c, "us-east-1a")
	out, err := autoScalingFrom(t, inst).DescribeAutoScalingInstances(t.Context(), &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{inst.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AutoScalingInstances) != 0 {
		t.Errorf("DescribeAutoScalingInstances(%s) = %+v, want none", inst.ID, out.AutoScalingInstances)
	}
	for _, p := range []string{"user-data", "tags/instance", "autoscaling/target-lifecycle-state"} {
		if _, code := imdsGet(t, inst, p); code != 404 {
			t.Errorf("IMDS %s: status %d, want 404", p, code)
		}
	}
}

// TestGroupLaunchesInstances: a group over two AZs launches real instances
// of the cloud in the subnets it picked, whose IMDS serves the launch
// template's user data and the instance's tags (the template's, the
// group's propagated ones and aws:autoscaling:groupName), which find their
// group through the API; an instance killed -9 is seen gone and replaced
// in its AZ; deleting the group terminates its instances for real.
func TestGroupLaunchesInstances(t *testing.T) {
	c := newCloud(t, Options{EC2: fastSim, GroupInterval: 200 * time.Millisecond})
	userData := "ensemble: test\n"
	lt, err := c.Sim().CreateLaunchTemplate("zk-template", ec2sim.LaunchTemplateData{
		UserData:          base64.StdEncoding.EncodeToString([]byte(userData)),
		TagSpecifications: []ec2sim.TagSpecification{{ResourceType: "instance", Tags: map[string]string{"from": "template"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	api := c.AutoScalingClient()
	subnets := []string{c.vpc.subnets["us-east-1a"].id, c.vpc.subnets["us-east-1b"].id}
	if _, err := api.CreateAutoScalingGroup(t.Context(), &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("zk"), MinSize: aws.Int32(2), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(2),
		VPCZoneIdentifier: aws.String(strings.Join(subnets, ",")),
		LaunchTemplate:    &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt.ID)},
		Tags: []astypes.Tag{{Key: aws.String("zkaas:ensemble"), Value: aws.String("test"), PropagateAtLaunch: aws.Bool(true)},
			{Key: aws.String("kept"), Value: aws.String("on the group"), PropagateAtLaunch: aws.Bool(false)}},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = api.DeleteAutoScalingGroup(context.Background(), &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("zk"), ForceDelete: aws.Bool(true)})
	})
	inService := func(n int, without string) []astypes.AutoScalingInstanceDetails {
		t.Helper()
		var got []astypes.AutoScalingInstanceDetails
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			out, err := api.DescribeAutoScalingInstances(t.Context(), &autoscaling.DescribeAutoScalingInstancesInput{})
			if err != nil {
				t.Fatal(err)
			}
			got = got[:0]
			for _, in := range out.AutoScalingInstances {
				if aws.ToString(in.InstanceId) == without {
					got = append(got[:0], in) // not yet
					break
				}
				if aws.ToString(in.LifecycleState) == "InService" && aws.ToString(in.HealthStatus) == "HEALTHY" {
					got = append(got, in)
				}
			}
			if len(got) == n && len(out.AutoScalingInstances) == n && aws.ToString(got[0].InstanceId) != without {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("group has %d instances in service of %d, want %d", len(got), len(out.AutoScalingInstances), n)
			}
		}
	}
	first := inService(2, "")
	var azs []string
	for _, in := range first {
		inst, err := c.GroupInstance(t.Context(), aws.ToString(in.InstanceId))
		if err != nil {
			t.Fatal(err)
		}
		azs = append(azs, inst.AZ)
		if inst.AZ != aws.ToString(in.AvailabilityZone) || inst.SubnetID != c.vpc.subnets[inst.AZ].id {
			t.Errorf("%s runs in %s (%s), group says %s", inst.ID, inst.AZ, inst.SubnetID, aws.ToString(in.AvailabilityZone))
		}
		tests := []struct{ path, want string }{
			{"user-data", userData},
			{"tags/instance", "aws:autoscaling:groupName\nfrom\nzkaas:ensemble"},
			{"tags/instance/aws:autoscaling:groupName", "zk"},
			{"tags/instance/zkaas:ensemble", "test"},
			{"autoscaling/target-lifecycle-state", "InService"},
		}
		for _, tt := range tests {
			if got, code := imdsGet(t, inst, tt.path); got != tt.want {
				t.Errorf("IMDS %s on %s = %q (%d), want %q", tt.path, inst.ID, got, code, tt.want)
			}
		}
		out, err := autoScalingFrom(t, inst).DescribeAutoScalingInstances(t.Context(), &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{inst.ID}})
		if err != nil || len(out.AutoScalingInstances) != 1 || aws.ToString(out.AutoScalingInstances[0].AutoScalingGroupName) != "zk" {
			t.Errorf("%s asks for its group: %+v, %v", inst.ID, out, err)
		}
	}
	slices.Sort(azs)
	if !slices.Equal(azs, []string{"us-east-1a", "us-east-1b"}) {
		t.Errorf("instances in %v, want one per AZ", azs)
	}

	victim, _ := c.Instance(aws.ToString(first[0].InstanceId))
	if err := c.Crash(t.Context(), victim); err != nil {
		t.Fatal(err)
	}
	second := inService(2, victim.ID)
	var replacement *Instance
	for _, in := range second {
		id := aws.ToString(in.InstanceId)
		if id == victim.ID {
			t.Fatalf("crashed %s still in service", id)
		}
		if id != aws.ToString(first[1].InstanceId) {
			if replacement, err = c.GroupInstance(t.Context(), id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if replacement == nil || replacement.AZ != victim.AZ {
		t.Fatalf("replacement %+v, want one in %s", replacement, victim.AZ)
	}

	if _, err := api.DeleteAutoScalingGroup(t.Context(), &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("zk"), ForceDelete: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	for _, in := range second {
		id := aws.ToString(in.InstanceId)
		eventually(t, id+" terminated", func() bool {
			si, ok := c.Sim().Instance(id)
			_, running := c.Instance(id)
			return (!ok || si.State == ec2sim.StateTerminated) && !running
		})
	}
}

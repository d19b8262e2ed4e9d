package asgsim_test

import (
	"encoding/base64"
	"maps"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/asgsim"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// TestOverEC2Sim runs the controller against ec2sim through NewEC2Sim: a
// group from a launch template launches simulator instances with the
// template's data and the group's tags, and replaces one terminated behind
// its back.
func TestOverEC2Sim(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	t.Cleanup(sim.Close)
	subA, err := sim.CreateSubnet("us-east-1a", "10.0.1.0/24")
	must(t, err)
	subB, err := sim.CreateSubnet("us-east-1b", "10.0.2.0/24")
	must(t, err)
	userData := base64.StdEncoding.EncodeToString([]byte("ensemble: prod\n"))
	// The template is made over the wire, as the operator command would.
	ec2srv := httptest.NewServer(sim)
	t.Cleanup(ec2srv.Close)
	ec2c := ec2.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")},
		func(o *ec2.Options) { o.BaseEndpoint = aws.String(ec2srv.URL) })
	out, err := ec2c.CreateLaunchTemplate(ctx(t), &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("zk-prod"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{InstanceType: ec2types.InstanceTypeT3Small, UserData: aws.String(userData),
			TagSpecifications: []ec2types.LaunchTemplateTagSpecificationRequest{{ResourceType: ec2types.ResourceTypeInstance,
				Tags: []ec2types.Tag{{Key: aws.String("zkaas:ensemble"), Value: aws.String("prod")}}}}}})
	must(t, err)
	lt := struct{ ID string }{aws.ToString(out.LaunchTemplate.LaunchTemplateId)}

	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	svc := asgsim.New(asgsim.Options{EC2: asgsim.NewEC2Sim(sim), Now: clk.Now})
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	client := autoscaling.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")},
		func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	_, err = client.CreateAutoScalingGroup(ctx(t), &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("zk"), MinSize: aws.Int32(2), MaxSize: aws.Int32(2),
		LaunchTemplate:    &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("zk-prod"), Version: aws.String("$Default")},
		VPCZoneIdentifier: aws.String(subA + "," + subB),
	})
	must(t, err)
	_, err = client.CreateAutoScalingGroup(ctx(t), &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("bad"), MinSize: aws.Int32(0), MaxSize: aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt.ID), Version: aws.String("9")}, VPCZoneIdentifier: aws.String(subA),
	})
	wantError(t, err, "ValidationError", "You must use a valid fully-formed launch template. Could not find launch template version 9 for launch template "+lt.ID+". The specified launch template version does not exist.")

	inService := func() []string {
		out, err := client.DescribeAutoScalingGroups(ctx(t), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"zk"}})
		must(t, err)
		var ids []string
		for _, in := range out.AutoScalingGroups[0].Instances {
			if in.LifecycleState == types.LifecycleStateInService {
				ids = append(ids, aws.ToString(in.InstanceId))
			}
		}
		return ids
	}
	settle := func(want int, not string) []string {
		deadline := time.Now().Add(5 * time.Second)
		for {
			must(t, svc.Reconcile(ctx(t)))
			ids := inService()
			if len(ids) == want && (not == "" || (ids[0] != not && ids[1] != not)) {
				return ids
			}
			if time.Now().After(deadline) {
				t.Fatalf("in service: %v", ids)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ids := settle(2, "")
	azs := map[string]bool{}
	for _, id := range ids {
		inst, _ := sim.Instance(id)
		azs[inst.AZ] = true
		want := map[string]string{"zkaas:ensemble": "prod", "aws:autoscaling:groupName": "zk"}
		if !maps.Equal(inst.Tags, want) || inst.InstanceType != "t3.small" {
			t.Fatalf("instance %s: %s %v", id, inst.InstanceType, inst.Tags)
		}
		if d, ok := sim.InstanceLaunchData(id); !ok || d.UserData != userData {
			t.Fatalf("launch data of %s: %v %+v", id, ok, d)
		}
	}
	if len(azs) != 2 {
		t.Fatalf("AZs %v", azs)
	}
	must(t, sim.TerminateInstance(ids[0]))
	settle(2, ids[0])
}

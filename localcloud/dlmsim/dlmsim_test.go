package dlmsim_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dlm"
	"github.com/aws/aws-sdk-go-v2/service/dlm/types"
	"github.com/aws/smithy-go"

	"github.com/zkaas/zkaas/localcloud/dlmsim"
)

const role = "arn:aws:iam::123456789012:role/AWSDataLifecycleManagerDefaultRole"

func setup(t *testing.T) (*dlmsim.Service, *dlm.Client) {
	t.Helper()
	svc := dlmsim.New(dlmsim.Options{Seed: 1, MaxPolicies: 3})
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	c := dlm.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")},
		func(o *dlm.Options) { o.BaseEndpoint = aws.String(srv.URL); o.RetryMaxAttempts = 1 })
	return svc, c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantError(t *testing.T, err error, code string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != status {
		t.Fatalf("%s: HTTP %d, want %d", code, re.HTTPStatusCode(), status)
	}
}

// daily is the policy zkaas asks for: the ensemble's volumes, once a day,
// seven kept.
func daily(ensemble string) *types.PolicyDetails {
	return &types.PolicyDetails{
		ResourceTypes: []types.ResourceTypeValues{types.ResourceTypeValuesVolume},
		TargetTags:    []types.Tag{{Key: aws.String("zkaas:ensemble"), Value: aws.String(ensemble)}},
		Schedules: []types.Schedule{{
			Name:       aws.String("daily"),
			CopyTags:   aws.Bool(true),
			CreateRule: &types.CreateRule{Interval: aws.Int32(24), IntervalUnit: types.IntervalUnitValuesHours, Times: []string{"03:00"}},
			RetainRule: &types.RetainRule{Count: aws.Int32(7)},
		}},
	}
}

func TestCreateLifecyclePolicy(t *testing.T) {
	_, c := setup(t)
	create := func(mod func(*dlm.CreateLifecyclePolicyInput)) error {
		in := &dlm.CreateLifecyclePolicyInput{ExecutionRoleArn: aws.String(role), Description: aws.String("zkaas prod daily"),
			State: types.SettablePolicyStateValuesEnabled, PolicyDetails: daily("prod"), Tags: map[string]string{"zkaas:ensemble": "prod"}}
		if mod != nil {
			mod(in)
		}
		_, err := c.CreateLifecyclePolicy(ctx(t), in)
		return err
	}
	tests := []struct {
		name   string
		mod    func(*dlm.CreateLifecyclePolicyInput)
		code   string
		status int
	}{
		{"daily", nil, "", 200},
		{"cron", func(in *dlm.CreateLifecyclePolicyInput) {
			in.PolicyDetails.Schedules[0].CreateRule = &types.CreateRule{CronExpression: aws.String("cron(0 3 * * ? *)")}
		}, "", 200},
		{"bad role ARN", func(in *dlm.CreateLifecyclePolicyInput) { in.ExecutionRoleArn = aws.String("role/x") }, "InvalidRequestException", 400},
		{"bad description", func(in *dlm.CreateLifecyclePolicyInput) { in.Description = aws.String("zkaas: prod!") }, "InvalidRequestException", 400},
		{"no target tags", func(in *dlm.CreateLifecyclePolicyInput) { in.PolicyDetails.TargetTags = nil }, "InvalidRequestException", 400},
		{"bad interval", func(in *dlm.CreateLifecyclePolicyInput) {
			in.PolicyDetails.Schedules[0].CreateRule.Interval = aws.Int32(5)
		}, "InvalidRequestException", 400},
		{"interval and cron", func(in *dlm.CreateLifecyclePolicyInput) {
			in.PolicyDetails.Schedules[0].CreateRule.CronExpression = aws.String("cron(0 3 * * ? *)")
		}, "InvalidRequestException", 400},
		{"retain count too high", func(in *dlm.CreateLifecyclePolicyInput) {
			in.PolicyDetails.Schedules[0].RetainRule.Count = aws.Int32(1001)
		}, "InvalidRequestException", 400},
		{"no retain rule", func(in *dlm.CreateLifecyclePolicyInput) { in.PolicyDetails.Schedules[0].RetainRule = nil }, "InvalidRequestException", 400},
		{"five schedules", func(in *dlm.CreateLifecyclePolicyInput) {
			s := in.PolicyDetails.Schedules[0]
			in.PolicyDetails.Schedules = []types.Schedule{s, s, s, s, s}
		}, "InvalidRequestException", 400},
		{"aws: tag", func(in *dlm.CreateLifecyclePolicyInput) { in.Tags = map[string]string{"aws:x": "y"} }, "InvalidRequestException", 400},
		{"third policy", nil, "", 200},
		{"quota", nil, "LimitExceededException", 429},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := create(tc.mod)
			if tc.code != "" {
				wantError(t, err, tc.code, tc.status)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLifecyclePolicyLifecycle(t *testing.T) {
	svc, c := setup(t)
	var ids []string
	for _, ens := range []string{"prod", "test"} {
		out, err := c.CreateLifecyclePolicy(ctx(t), &dlm.CreateLifecyclePolicyInput{ExecutionRoleArn: aws.String(role),
			Description: aws.String("zkaas " + ens), State: types.SettablePolicyStateValuesEnabled, PolicyDetails: daily(ens)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.PolicyId))
	}
	lists := []struct {
		name string
		in   dlm.GetLifecyclePoliciesInput
		want []string
		code string
	}{
		{"all", dlm.GetLifecyclePoliciesInput{}, ids, ""},
		{"by target tag", dlm.GetLifecyclePoliciesInput{TargetTags: []string{"zkaas:ensemble=test"}}, ids[1:], ""},
		{"by state", dlm.GetLifecyclePoliciesInput{State: types.GettablePolicyStateValuesDisabled}, nil, ""},
		{"by resource type", dlm.GetLifecyclePoliciesInput{ResourceTypes: []types.ResourceTypeValues{types.ResourceTypeValuesVolume}}, ids, ""},
		{"by id", dlm.GetLifecyclePoliciesInput{PolicyIds: ids[:1]}, ids[:1], ""},
		{"unknown id", dlm.GetLifecyclePoliciesInput{PolicyIds: []string{"policy-0123456789abcdef0"}}, nil, "ResourceNotFoundException"},
	}
	for _, tc := range lists {
		t.Run("list "+tc.name, func(t *testing.T) {
			in := tc.in
			out, err := c.GetLifecyclePolicies(ctx(t), &in)
			if tc.code != "" {
				wantError(t, err, tc.code, 404)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range out.Policies {
				got = append(got, aws.ToString(p.PolicyId))
			}
			if len(got) != len(tc.want) || (len(got) > 0 && !contains(tc.want, got[0])) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}

	got, err := c.GetLifecyclePolicy(ctx(t), &dlm.GetLifecyclePolicyInput{PolicyId: aws.String(ids[0])})
	if err != nil {
		t.Fatal(err)
	}
	p := got.Policy
	if p.State != types.GettablePolicyStateValuesEnabled || aws.ToString(p.ExecutionRoleArn) != role || p.DateCreated == nil ||
		aws.ToInt32(p.PolicyDetails.Schedules[0].RetainRule.Count) != 7 || aws.ToInt32(p.PolicyDetails.Schedules[0].CreateRule.Interval) != 24 {
		t.Fatalf("policy %+v", p)
	}

	if _, err := c.UpdateLifecyclePolicy(ctx(t), &dlm.UpdateLifecyclePolicyInput{PolicyId: aws.String(ids[0]), State: types.SettablePolicyStateValuesDisabled}); err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateLifecyclePolicy(ctx(t), &dlm.UpdateLifecyclePolicyInput{PolicyId: aws.String("policy-0123456789abcdef0"), State: types.SettablePolicyStateValuesDisabled})
	wantError(t, err, "ResourceNotFoundException", 404)
	if out, err := c.GetLifecyclePolicies(ctx(t), &dlm.GetLifecyclePoliciesInput{State: types.GettablePolicyStateValuesDisabled}); err != nil || len(out.Policies) != 1 {
		t.Fatalf("disabled: %v %v", err, out)
	}

	arn := aws.ToString(p.PolicyArn)
	if _, err := c.TagResource(ctx(t), &dlm.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"zkaas:ensemble": "prod"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForResource(ctx(t), &dlm.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil || tags.Tags["zkaas:ensemble"] != "prod" {
		t.Fatalf("tags %v %v", err, tags)
	}
	if out, _ := c.GetLifecyclePolicies(ctx(t), &dlm.GetLifecyclePoliciesInput{}); out.Policies[0].Tags["zkaas:ensemble"] != "prod" && out.Policies[1].Tags["zkaas:ensemble"] != "prod" {
		t.Fatal("summary without tags")
	}

	if _, err := c.DeleteLifecyclePolicy(ctx(t), &dlm.DeleteLifecyclePolicyInput{PolicyId: aws.String(ids[0])}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetLifecyclePolicy(ctx(t), &dlm.GetLifecyclePolicyInput{PolicyId: aws.String(ids[0])})
	wantError(t, err, "ResourceNotFoundException", 404)
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) || len(rnf.ResourceIds) != 1 || rnf.ResourceIds[0] != ids[0] {
		t.Fatalf("not a ResourceNotFoundException naming the id: %v", err)
	}
	_, err = c.DeleteLifecyclePolicy(ctx(t), &dlm.DeleteLifecyclePolicyInput{PolicyId: aws.String(ids[0])})
	wantError(t, err, "ResourceNotFoundException", 404)
	if len(svc.Policies()) != 1 {
		t.Fatalf("%d policies left", len(svc.Policies()))
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestFaults(t *testing.T) {
	svc, c := setup(t) // RetryMaxAttempts 1: every answer is seen
	create := func() error {
		_, err := c.CreateLifecyclePolicy(ctx(t), &dlm.CreateLifecyclePolicyInput{ExecutionRoleArn: aws.String(role),
			Description: aws.String("zkaas prod"), State: types.SettablePolicyStateValuesEnabled, PolicyDetails: daily("prod")})
		return err
	}
	svc.FailNext("CreateLifecyclePolicy", 1, "InternalServerException")
	wantError(t, create(), "InternalServerException", 500)
	if n := len(svc.Policies()); n != 0 {
		t.Fatalf("a failed create made %d policies", n)
	}
	svc.LoseNextResponse("CreateLifecyclePolicy", 1)
	wantError(t, create(), "InternalServerException", 500)
	if n := len(svc.Policies()); n != 1 {
		t.Fatalf("a lost answer left %d policies, want 1", n)
	}
}

package iamsim_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/zkaas/zkaas/localcloud/iamsim"
)

const trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

const policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:AttachVolume","ec2:DescribeVolumes"],"Resource":"*"}]}`

func setup(t *testing.T) (*iamsim.Service, *iam.Client) {
	t.Helper()
	svc := iamsim.New(iamsim.Options{Seed: 1})
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	client := iam.NewFromConfig(aws.Config{Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")},
		func(o *iam.Options) { o.BaseEndpoint = aws.String(srv.URL); o.RetryMaxAttempts = 1 })
	return svc, client
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// wantError checks the IAM error code (and message, unless ""), the HTTP
// status, and that the SDK mapped modelled codes to their types.
func wantError(t *testing.T, err error, code, msg string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	if ae.ErrorCode() != code || (msg != "" && ae.ErrorMessage() != msg) {
		t.Fatalf("want %s %q, got %s %q", code, msg, ae.ErrorCode(), ae.ErrorMessage())
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != status {
		t.Fatalf("%s: HTTP %d, want %d", code, re.HTTPStatusCode(), status)
	}
}

func TestRoles(t *testing.T) {
	_, c := setup(t)
	tests := []struct {
		name      string
		call      func() error
		code, msg string
		status    int
	}{
		{"create", func() error {
			out, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("zkaas-prod"), AssumeRolePolicyDocument: aws.String(trust),
				Path: aws.String("/zkaas/"), Description: aws.String("zkaas nodes"), Tags: []types.Tag{{Key: aws.String("zkaas:ensemble"), Value: aws.String("prod")}}})
			if err == nil && aws.ToString(out.Role.Arn) != "arn:aws:iam::123456789012:role/zkaas/zkaas-prod" {
				t.Fatalf("arn %s", aws.ToString(out.Role.Arn))
			}
			if err == nil && !strings.HasPrefix(aws.ToString(out.Role.RoleId), "AROA") {
				t.Fatalf("id %s", aws.ToString(out.Role.RoleId))
			}
			return err
		}, "", "", 200},
		{"exists, other case", func() error {
			_, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("ZKAAS-prod"), AssumeRolePolicyDocument: aws.String(trust)})
			return err
		}, "EntityAlreadyExists", "Role with name ZKAAS-prod already exists.", 409},
		{"bad name", func() error {
			_, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("zk prod"), AssumeRolePolicyDocument: aws.String(trust)})
			return err
		}, "ValidationError", "", 400},
		{"name too long", func() error {
			_, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String(strings.Repeat("r", 65)), AssumeRolePolicyDocument: aws.String(trust)})
			return err
		}, "ValidationError", "", 400},
		{"bad path", func() error {
			_, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("r"), Path: aws.String("zkaas"), AssumeRolePolicyDocument: aws.String(trust)})
			return err
		}, "ValidationError", "", 400},
		{"trust policy not JSON", func() error {
			_, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String("{")})
			return err
		}, "MalformedPolicyDocument", "This policy contains invalid Json", 400},
		{"trust policy without Version", func() error {
			_, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(`{"Statement":[]}`)})
			return err
		}, "MalformedPolicyDocument", "Syntax errors in policy.", 400},
		{"trust policy without Principal", func() error {
			_, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(policy)})
			return err
		}, "MalformedPolicyDocument", "", 400},
		{"get", func() error {
			out, err := c.GetRole(ctx(t), &iam.GetRoleInput{RoleName: aws.String("zkaas-prod")})
			if err == nil {
				doc, _ := url.QueryUnescape(aws.ToString(out.Role.AssumeRolePolicyDocument))
				if doc != trust || len(out.Role.Tags) != 1 || aws.ToInt32(out.Role.MaxSessionDuration) != 3600 {
					t.Fatalf("role %+v, document %s", out.Role, doc)
				}
			}
			return err
		}, "", "", 200},
		{"get unknown", func() error {
			_, err := c.GetRole(ctx(t), &iam.GetRoleInput{RoleName: aws.String("nope")})
			var nse *types.NoSuchEntityException
			if err != nil && !errors.As(err, &nse) {
				t.Fatalf("not a NoSuchEntityException: %T", err)
			}
			return err
		}, "NoSuchEntity", "The role with name nope cannot be found.", 404},
		{"update trust policy", func() error {
			other := strings.Replace(trust, "ec2.amazonaws.com", "ssm.amazonaws.com", 1)
			if _, err := c.UpdateAssumeRolePolicy(ctx(t), &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("zkaas-prod"), PolicyDocument: aws.String(other)}); err != nil {
				return err
			}
			out, err := c.GetRole(ctx(t), &iam.GetRoleInput{RoleName: aws.String("zkaas-prod")})
			if doc, _ := url.QueryUnescape(aws.ToString(out.Role.AssumeRolePolicyDocument)); err == nil && doc != other {
				t.Fatalf("document %s", doc)
			}
			_, err = c.UpdateAssumeRolePolicy(ctx(t), &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("zkaas-prod"), PolicyDocument: aws.String(trust)})
			return err
		}, "", "", 200},
		{"update trust policy, malformed", func() error {
			_, err := c.UpdateAssumeRolePolicy(ctx(t), &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("zkaas-prod"), PolicyDocument: aws.String(policy)})
			return err
		}, "MalformedPolicyDocument", "Missing required field Principal", 400},
		{"tag", func() error {
			if _, err := c.TagRole(ctx(t), &iam.TagRoleInput{RoleName: aws.String("zkaas-prod"),
				Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("ops")}, {Key: aws.String("zkaas:ensemble"), Value: aws.String("prod2")}}}); err != nil {
				return err
			}
			out, err := c.ListRoleTags(ctx(t), &iam.ListRoleTagsInput{RoleName: aws.String("zkaas-prod")})
			if err == nil && (len(out.Tags) != 2 || aws.ToString(out.Tags[1].Value) != "prod2") {
				t.Fatalf("tags %+v", out.Tags)
			}
			return err
		}, "", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg, tc.status)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRolePoliciesAndProfiles(t *testing.T) {
	svc, c := setup(t)
	role := aws.String("zkaas-prod")
	if _, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: role, AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("other"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	profile := aws.String("zkaas-prod")
	tests := []struct {
		name      string
		call      func() error
		code, msg string
		status    int
	}{
		{"put policy", func() error {
			_, err := c.PutRolePolicy(ctx(t), &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String("zkaas"), PolicyDocument: aws.String(policy)})
			return err
		}, "", "", 200},
		{"policy with a principal", func() error {
			_, err := c.PutRolePolicy(ctx(t), &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String("p"), PolicyDocument: aws.String(trust)})
			return err
		}, "MalformedPolicyDocument", "Policy document should not specify a principal.", 400},
		{"policy without Statement", func() error {
			_, err := c.PutRolePolicy(ctx(t), &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String("p"), PolicyDocument: aws.String(`{"Version":"2012-10-17"}`)})
			return err
		}, "MalformedPolicyDocument", "Syntax errors in policy.", 400},
		{"policy too large", func() error {
			big := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:` + strings.Repeat("x", 10300) + `","Resource":"*"}]}`
			_, err := c.PutRolePolicy(ctx(t), &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String("big"), PolicyDocument: aws.String(big)})
			return err
		}, "LimitExceeded", "", 409},
		{"policy of unknown role", func() error {
			_, err := c.PutRolePolicy(ctx(t), &iam.PutRolePolicyInput{RoleName: aws.String("nope"), PolicyName: aws.String("p"), PolicyDocument: aws.String(policy)})
			return err
		}, "NoSuchEntity", "", 404},
		{"get policy", func() error {
			out, err := c.GetRolePolicy(ctx(t), &iam.GetRolePolicyInput{RoleName: role, PolicyName: aws.String("zkaas")})
			if err == nil {
				if doc, _ := url.QueryUnescape(aws.ToString(out.PolicyDocument)); doc != policy {
					t.Fatalf("document %s", doc)
				}
			}
			return err
		}, "", "", 200},
		{"get unknown policy", func() error {
			_, err := c.GetRolePolicy(ctx(t), &iam.GetRolePolicyInput{RoleName: role, PolicyName: aws.String("nope")})
			return err
		}, "NoSuchEntity", "The role policy with name nope cannot be found.", 404},
		{"list policies", func() error {
			out, err := c.ListRolePolicies(ctx(t), &iam.ListRolePoliciesInput{RoleName: role})
			if err == nil && (len(out.PolicyNames) != 1 || out.PolicyNames[0] != "zkaas" || out.IsTruncated) {
				t.Fatalf("%+v", out)
			}
			return err
		}, "", "", 200},
		{"create profile", func() error {
			out, err := c.CreateInstanceProfile(ctx(t), &iam.CreateInstanceProfileInput{InstanceProfileName: profile})
			if err == nil && aws.ToString(out.InstanceProfile.Arn) != "arn:aws:iam::123456789012:instance-profile/zkaas-prod" {
				t.Fatalf("arn %s", aws.ToString(out.InstanceProfile.Arn))
			}
			return err
		}, "", "", 200},
		{"profile exists", func() error {
			_, err := c.CreateInstanceProfile(ctx(t), &iam.CreateInstanceProfileInput{InstanceProfileName: profile})
			return err
		}, "EntityAlreadyExists", "Instance Profile zkaas-prod already exists.", 409},
		{"add role", func() error {
			_, err := c.AddRoleToInstanceProfile(ctx(t), &iam.AddRoleToInstanceProfileInput{InstanceProfileName: profile, RoleName: role})
			return err
		}, "", "", 200},
		{"add a second role", func() error {
			_, err := c.AddRoleToInstanceProfile(ctx(t), &iam.AddRoleToInstanceProfileInput{InstanceProfileName: profile, RoleName: aws.String("other")})
			return err
		}, "LimitExceeded", "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1", 409},
		{"get profile", func() error {
			out, err := c.GetInstanceProfile(ctx(t), &iam.GetInstanceProfileInput{InstanceProfileName: profile})
			if err == nil && (len(out.InstanceProfile.Roles) != 1 || aws.ToString(out.InstanceProfile.Roles[0].RoleName) != "zkaas-prod") {
				t.Fatalf("%+v", out.InstanceProfile)
			}
			return err
		}, "", "", 200},
		{"profiles for role", func() error {
			out, err := c.ListInstanceProfilesForRole(ctx(t), &iam.ListInstanceProfilesForRoleInput{RoleName: role})
			if err == nil && len(out.InstanceProfiles) != 1 {
				t.Fatalf("%+v", out)
			}
			return err
		}, "", "", 200},
		{"delete role with policies", func() error {
			_, err := c.DeleteRole(ctx(t), &iam.DeleteRoleInput{RoleName: role})
			return err
		}, "DeleteConflict", "Cannot delete entity, must delete policies first.", 409},
		{"delete policy", func() error {
			_, err := c.DeleteRolePolicy(ctx(t), &iam.DeleteRolePolicyInput{RoleName: role, PolicyName: aws.String("zkaas")})
			return err
		}, "", "", 200},
		{"delete role in a profile", func() error {
			_, err := c.DeleteRole(ctx(t), &iam.DeleteRoleInput{RoleName: role})
			return err
		}, "DeleteConflict", "Cannot delete entity, must remove roles from instance profile first.", 409},
		{"delete profile with a role", func() error {
			_, err := c.DeleteInstanceProfile(ctx(t), &iam.DeleteInstanceProfileInput{InstanceProfileName: profile})
			return err
		}, "DeleteConflict", "Cannot delete entity, must remove roles from instance profile first.", 409},
		{"remove role", func() error {
			_, err := c.RemoveRoleFromInstanceProfile(ctx(t), &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: profile, RoleName: role})
			return err
		}, "", "", 200},
		{"remove again", func() error {
			_, err := c.RemoveRoleFromInstanceProfile(ctx(t), &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: profile, RoleName: role})
			return err
		}, "NoSuchEntity", "", 404},
		{"delete profile", func() error {
			_, err := c.DeleteInstanceProfile(ctx(t), &iam.DeleteInstanceProfileInput{InstanceProfileName: profile})
			return err
		}, "", "", 200},
		{"delete role", func() error {
			_, err := c.DeleteRole(ctx(t), &iam.DeleteRoleInput{RoleName: role})
			return err
		}, "", "", 200},
		{"get deleted profile", func() error {
			_, err := c.GetInstanceProfile(ctx(t), &iam.GetInstanceProfileInput{InstanceProfileName: profile})
			return err
		}, "NoSuchEntity", "Instance Profile zkaas-prod cannot be found.", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg, tc.status)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, ok := svc.Role("zkaas-prod"); ok {
		t.Fatal("role still there")
	}
	if svc.Calls()["CreateRole"] != 2 {
		t.Fatalf("calls %v", svc.Calls())
	}
}

func TestFaults(t *testing.T) {
	svc, c := setup(t) // RetryMaxAttempts 1: every answer is seen
	tests := []struct {
		name   string
		setup  func()
		code   string
		status int
	}{
		{"throttled", func() { svc.FailNext("CreateRole", 1, "Throttling") }, "Throttling", 400},
		{"lost answer", func() { svc.LoseNextResponse("CreateRole", 1) }, "ServiceFailure", 500},
		{"the retry finds it made", nil, "EntityAlreadyExists", 409},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			_, err := c.CreateRole(ctx(t), &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(trust)})
			wantError(t, err, tc.code, "", tc.status)
		})
	}
	if _, ok := svc.Role("r"); !ok {
		t.Fatal("the role whose answer was lost is not there")
	}
}

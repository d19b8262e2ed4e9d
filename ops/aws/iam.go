package aws

import (
	"context"
	"fmt"
	"net/url"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/plan"
)

// IAMAPI is the part of *iam.Client the operator uses.
type IAMAPI interface {
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	CreateRole(context.Context, *iam.CreateRoleInput, ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	DeleteRole(context.Context, *iam.DeleteRoleInput, ...func(*iam.Options)) (*iam.DeleteRoleOutput, error)
	UpdateAssumeRolePolicy(context.Context, *iam.UpdateAssumeRolePolicyInput, ...func(*iam.Options)) (*iam.UpdateAssumeRolePolicyOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(context.Context, *iam.PutRolePolicyInput, ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	CreateInstanceProfile(context.Context, *iam.CreateInstanceProfileInput, ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error)
	AddRoleToInstanceProfile(context.Context, *iam.AddRoleToInstanceProfileInput, ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error)
	RemoveRoleFromInstanceProfile(context.Context, *iam.RemoveRoleFromInstanceProfileInput, ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error)
	DeleteInstanceProfile(context.Context, *iam.DeleteInstanceProfileInput, ...func(*iam.Options)) (*iam.DeleteInstanceProfileOutput, error)
}

func iamTags(tags map[string]string) []types.Tag {
	var ts []types.Tag
	for _, k := range sortedKeys(tags) {
		ts = append(ts, types.Tag{Key: sdk.String(k), Value: sdk.String(tags[k])})
	}
	return ts
}

func iamTagMap(ts []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[sdk.ToString(t.Key)] = sdk.ToString(t.Value)
	}
	return m
}

// IAM documents come back URL-encoded (RFC 3986):
// https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRolePolicy.html
func decodeDoc(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// listIAM finds the role and profile by their unique names (IAM has no
// tag filter on Get). One that exists without zkaas's tag is reported as
// not managed, which the plan refuses to take over.
func (c *Cloud) listIAM(ctx context.Context, d *deploy.Desired) ([]plan.Existing, error) {
	var out []plan.Existing
	for _, r := range d.Resources {
		switch s := r.Spec.(type) {
		case deploy.RoleSpec:
			got, err := c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: sdk.String(s.RoleName)})
			if code(err) == "NoSuchEntity" {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("get role %s: %w", s.RoleName, err)
			}
			tags := iamTagMap(got.Role.Tags)
			spec := deploy.RoleSpec{RoleName: s.RoleName, AssumePolicy: decodeDoc(sdk.ToString(got.Role.AssumeRolePolicyDocument)), PolicyName: s.PolicyName}
			pol, err := c.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: sdk.String(s.RoleName), PolicyName: sdk.String(s.PolicyName)})
			switch {
			case code(err) == "NoSuchEntity":
			case err != nil:
				return nil, fmt.Errorf("get policy %s of role %s: %w", s.PolicyName, s.RoleName, err)
			default:
				spec.Policy = decodeDoc(sdk.ToString(pol.PolicyDocument))
			}
			out = append(out, plan.Existing{Kind: deploy.KindRole, Name: r.Name, ID: sdk.ToString(got.Role.Arn), Spec: spec, Tags: tags, Managed: managed(tags) && tags[c.TagEnsemble] == d.Ensemble})
		case deploy.ProfileSpec:
			got, err := c.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: sdk.String(s.ProfileName)})
			if code(err) == "NoSuchEntity" {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("get instance profile %s: %w", s.ProfileName, err)
			}
			tags := iamTagMap(got.InstanceProfile.Tags)
			spec := deploy.ProfileSpec{ProfileName: s.ProfileName}
			for _, role := range got.InstanceProfile.Roles {
				spec.Role = sdk.ToString(role.RoleName)
			}
			out = append(out, plan.Existing{Kind: deploy.KindProfile, Name: r.Name, ID: sdk.ToString(got.InstanceProfile.Arn), Spec: spec, Tags: tags, Managed: managed(tags) && tags[c.TagEnsemble] == d.Ensemble})
		}
	}
	return out, nil
}

func (c *Cloud) createRole(ctx context.Context, s deploy.RoleSpec, tags map[string]string) (string, error) {
	out, err := c.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: sdk.String(s.RoleName), AssumeRolePolicyDocument: sdk.String(s.AssumePolicy),
		Description: sdk.String("zkaas nodes: firstboot's claim and health"), Tags: iamTags(tags)})
	if code(err) == "EntityAlreadyExists" {
		// IAM has no client token: when the answer to this create was
		// lost, the SDK's retry meets the role the first attempt made.
		// It is ours if it carries the tags just asked for.
		got, gerr := c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: sdk.String(s.RoleName)})
		if gerr == nil && sameTags(iamTagMap(got.Role.Tags), tags) {
			return sdk.ToString(got.Role.Arn), c.putRolePolicy(ctx, s)
		}
		if gerr == nil {
			return "", fmt.Errorf("create role %s: %w: %s", s.RoleName, err, notOurs)
		}
	}
	if err != nil {
		return "", fmt.Errorf("create role %s: %w", s.RoleName, err)
	}
	return sdk.ToString(out.Role.Arn), c.putRolePolicy(ctx, s)
}

// notOurs ends the error of a create that met a same-named IAM entity
// without the tags it asked for: someone else made it between plan and
// apply (plan's Conflict says the same of one it finds).
var notOurs = fmt.Sprintf("it exists but was not made by zkaas (not this ensemble's tags, %s=%s among them): remove or rename it", deploy.TagManagedBy, deploy.ManagedBy)

// sameTags reports whether have holds every tag of want, with its value.
func sameTags(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func (c *Cloud) putRolePolicy(ctx context.Context, s deploy.RoleSpec) error {
	if _, err := c.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: sdk.String(s.RoleName), PolicyDocument: sdk.String(s.AssumePolicy)}); err != nil {
		return fmt.Errorf("trust policy of role %s: %w", s.RoleName, err)
	}
	if _, err := c.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: sdk.String(s.RoleName), PolicyName: sdk.String(s.PolicyName), PolicyDocument: sdk.String(s.Policy)}); err != nil {
		return fmt.Errorf("put policy %s on role %s: %w", s.PolicyName, s.RoleName, err)
	}
	return nil
}

func (c *Cloud) createProfile(ctx context.Context, s deploy.ProfileSpec, tags map[string]string) (string, error) {
	out, err := c.IAM.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: sdk.String(s.ProfileName), Tags: iamTags(tags)})
	arn := ""
	switch {
	case code(err) == "EntityAlreadyExists":
		// A retry of a create whose answer was lost (see createRole).
		got, gerr := c.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: sdk.String(s.ProfileName)})
		if gerr != nil {
			return "", fmt.Errorf("create instance profile %s: %w", s.ProfileName, err)
		}
		if !sameTags(iamTagMap(got.InstanceProfile.Tags), tags) {
			return "", fmt.Errorf("create instance profile %s: %w: %s", s.ProfileName, err, notOurs)
		}
		arn = sdk.ToString(got.InstanceProfile.Arn)
		for _, r := range got.InstanceProfile.Roles {
			if sdk.ToString(r.RoleName) == s.Role {
				return arn, nil
			}
		}
	case err != nil:
		return "", fmt.Errorf("create instance profile %s: %w", s.ProfileName, err)
	default:
		arn = sdk.ToString(out.InstanceProfile.Arn)
	}
	if _, err := c.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: sdk.String(s.ProfileName), RoleName: sdk.String(s.Role)}); err != nil {
		return "", fmt.Errorf("add role %s to instance profile %s: %w", s.Role, s.ProfileName, err)
	}
	return arn, nil
}

func (c *Cloud) updateProfile(ctx context.Context, s deploy.ProfileSpec, ex plan.Existing) error {
	got, _ := ex.Spec.(deploy.ProfileSpec)
	if got.Role != "" {
		if _, err := c.IAM.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: sdk.String(s.ProfileName), RoleName: sdk.String(got.Role)}); err != nil {
			return fmt.Errorf("remove role %s from instance profile %s: %w", got.Role, s.ProfileName, err)
		}
	}
	if _, err := c.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: sdk.String(s.ProfileName), RoleName: sdk.String(s.Role)}); err != nil {
		return fmt.Errorf("add role %s to instance profile %s: %w", s.Role, s.ProfileName, err)
	}
	return nil
}

func (c *Cloud) deleteProfile(ctx context.Context, ex plan.Existing) error {
	s, _ := ex.Spec.(deploy.ProfileSpec)
	if s.Role != "" {
		_, err := c.IAM.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: sdk.String(s.ProfileName), RoleName: sdk.String(s.Role)})
		if err != nil && code(err) != "NoSuchEntity" {
			return fmt.Errorf("remove role %s from instance profile %s: %w", s.Role, s.ProfileName, err)
		}
	}
	_, err := c.IAM.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: sdk.String(s.ProfileName)})
	if err != nil && code(err) != "NoSuchEntity" {
		return fmt.Errorf("delete instance profile %s: %w", s.ProfileName, err)
	}
	return nil
}

func (c *Cloud) deleteRole(ctx context.Context, ex plan.Existing) error {
	s, _ := ex.Spec.(deploy.RoleSpec)
	_, err := c.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: sdk.String(s.RoleName), PolicyName: sdk.String(s.PolicyName)})
	if err != nil && code(err) != "NoSuchEntity" {
		return fmt.Errorf("delete policy %s of role %s: %w", s.PolicyName, s.RoleName, err)
	}
	_, err = c.IAM.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: sdk.String(s.RoleName)})
	if err != nil && code(err) != "NoSuchEntity" {
		return fmt.Errorf("delete role %s: %w", s.RoleName, err)
	}
	return nil
}

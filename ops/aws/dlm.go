package aws

import (
	"context"
	"fmt"
	"strings"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dlm"
	"github.com/aws/aws-sdk-go-v2/service/dlm/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/plan"
)

// DLMAPI is the part of *dlm.Client the operator uses.
type DLMAPI interface {
	GetLifecyclePolicies(context.Context, *dlm.GetLifecyclePoliciesInput, ...func(*dlm.Options)) (*dlm.GetLifecyclePoliciesOutput, error)
	GetLifecyclePolicy(context.Context, *dlm.GetLifecyclePolicyInput, ...func(*dlm.Options)) (*dlm.GetLifecyclePolicyOutput, error)
	CreateLifecyclePolicy(context.Context, *dlm.CreateLifecyclePolicyInput, ...func(*dlm.Options)) (*dlm.CreateLifecyclePolicyOutput, error)
	UpdateLifecyclePolicy(context.Context, *dlm.UpdateLifecyclePolicyInput, ...func(*dlm.Options)) (*dlm.UpdateLifecyclePolicyOutput, error)
	DeleteLifecyclePolicy(context.Context, *dlm.DeleteLifecyclePolicyInput, ...func(*dlm.Options)) (*dlm.DeleteLifecyclePolicyOutput, error)
}

// dlmDescription: DLM allows only ^[0-9A-Za-z _-]+$ in descriptions:
// https://docs.aws.amazon.com/dlm/latest/APIReference/API_CreateLifecyclePolicy.html
func dlmDescription(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == ' ' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

func (c *Cloud) listPolicies(ctx context.Context, d *deploy.Desired) ([]plan.Existing, error) {
	if !hasKind(d, deploy.KindSnapshotPolicy) && c.DLM == nil {
		return nil, nil
	}
	out, err := c.DLM.GetLifecyclePolicies(ctx, &dlm.GetLifecyclePoliciesInput{TargetTags: []string{c.TagEnsemble + "=" + d.Ensemble}})
	if err != nil {
		return nil, fmt.Errorf("get lifecycle policies: %w", err)
	}
	var found []plan.Existing
	for _, p := range out.Policies {
		if !managed(p.Tags) || p.Tags[c.TagEnsemble] != d.Ensemble {
			continue
		}
		id := sdk.ToString(p.PolicyId)
		got, err := c.DLM.GetLifecyclePolicy(ctx, &dlm.GetLifecyclePolicyInput{PolicyId: sdk.String(id)})
		if err != nil {
			return nil, fmt.Errorf("get lifecycle policy %s: %w", id, err)
		}
		spec := deploy.SnapshotPolicySpec{TargetTags: map[string]string{}}
		if lp := got.Policy; lp != nil {
			spec.Description = sdk.ToString(lp.Description)
			arn := sdk.ToString(lp.ExecutionRoleArn)
			spec.ExecutionRole = arn[strings.LastIndex(arn, "/")+1:]
			if pd := lp.PolicyDetails; pd != nil {
				for _, t := range pd.TargetTags {
					spec.TargetTags[sdk.ToString(t.Key)] = sdk.ToString(t.Value)
				}
				for _, s := range pd.Schedules {
					if s.RetainRule != nil {
						spec.Retain = int(sdk.ToInt32(s.RetainRule.Count))
					}
				}
			}
		}
		found = append(found, plan.Existing{Kind: deploy.KindSnapshotPolicy, Name: p.Tags[deploy.TagResource], ID: id, Spec: spec, Tags: p.Tags, Managed: true})
	}
	return found, nil
}

func hasKind(d *deploy.Desired, k deploy.Kind) bool {
	for _, r := range d.Resources {
		if r.Kind == k {
			return true
		}
	}
	return false
}

// policyDetails: one daily schedule at 03:00 UTC, count-based retention,
// the volumes' tags copied to the snapshots (so a restore knows its node).
func policyDetails(s deploy.SnapshotPolicySpec) *types.PolicyDetails {
	var tt []types.Tag
	for _, k := range sortedKeys(s.TargetTags) {
		tt = append(tt, types.Tag{Key: sdk.String(k), Value: sdk.String(s.TargetTags[k])})
	}
	return &types.PolicyDetails{
		PolicyType:    types.PolicyTypeValuesEbsSnapshotManagement,
		ResourceTypes: []types.ResourceTypeValues{types.ResourceTypeValuesVolume},
		TargetTags:    tt,
		Schedules: []types.Schedule{{
			Name:       sdk.String("daily"),
			CopyTags:   sdk.Bool(true),
			CreateRule: &types.CreateRule{Interval: sdk.Int32(24), IntervalUnit: types.IntervalUnitValuesHours, Times: []string{"03:00"}},
			RetainRule: &types.RetainRule{Count: sdk.Int32(int32(s.Retain))},
		}},
	}
}

func (c *Cloud) roleARN(ctx context.Context, name string) (string, error) {
	out, err := c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: sdk.String(name)})
	if err != nil {
		return "", fmt.Errorf("DLM's execution role %s (create AWS's default with `aws dlm create-default-role`): %w", name, err)
	}
	return sdk.ToString(out.Role.Arn), nil
}

func (c *Cloud) createPolicy(ctx context.Context, s deploy.SnapshotPolicySpec, tags map[string]string) (string, error) {
	arn, err := c.roleARN(ctx, s.ExecutionRole)
	if err != nil {
		return "", err
	}
	out, err := c.DLM.CreateLifecyclePolicy(ctx, &dlm.CreateLifecyclePolicyInput{
		Description: sdk.String(dlmDescription(s.Description)), ExecutionRoleArn: sdk.String(arn),
		State: types.SettablePolicyStateValuesEnabled, PolicyDetails: policyDetails(s), Tags: tags,
	})
	if err != nil {
		return "", fmt.Errorf("create lifecycle policy: %w", err)
	}
	return sdk.ToString(out.PolicyId), nil
}

func (c *Cloud) updatePolicy(ctx context.Context, s deploy.SnapshotPolicySpec, ex plan.Existing) error {
	arn, err := c.roleARN(ctx, s.ExecutionRole)
	if err != nil {
		return err
	}
	_, err = c.DLM.UpdateLifecyclePolicy(ctx, &dlm.UpdateLifecyclePolicyInput{PolicyId: sdk.String(ex.ID), ExecutionRoleArn: sdk.String(arn),
		Description: sdk.String(dlmDescription(s.Description)), PolicyDetails: policyDetails(s), State: types.SettablePolicyStateValuesEnabled})
	if err != nil {
		return fmt.Errorf("update lifecycle policy %s: %w", ex.ID, err)
	}
	return nil
}

func (c *Cloud) deletePolicy(ctx context.Context, ex plan.Existing) error {
	_, err := c.DLM.DeleteLifecyclePolicy(ctx, &dlm.DeleteLifecyclePolicyInput{PolicyId: sdk.String(ex.ID)})
	if err != nil && code(err) != "ResourceNotFoundException" {
		return fmt.Errorf("delete lifecycle policy %s: %w", ex.ID, err)
	}
	return nil
}

// Package aws is the domain Cloud of package ops/plan (and what status,
// doctor and down read) over the AWS SDK: narrow interfaces with the SDK's
// own signatures (so *ec2.Client and friends satisfy them and tests talk
// to the simulators through the real clients), behind domain methods that
// speak the deploy package's types. Nothing above this package sees an SDK
// type.
package aws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/dlm"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/plan"
)

// Cloud implements plan.Cloud.
type Cloud struct {
	EC2 EC2API
	ASG ASGAPI
	IAM IAMAPI
	DLM DLMAPI
	// TagEnsemble and TagNode are the config's identity tag keys.
	TagEnsemble, TagNode string
	Log                  *slog.Logger
	// Poll and Wait pace and bound the waits of deletes (a group's
	// instances terminating, a volume detaching); tests shorten them.
	Poll, Wait time.Duration
}

var _ plan.Cloud = (*Cloud)(nil)

// New builds the clients from the SDK's standard chain: credentials,
// region (the config's, unless AWS_REGION says otherwise), and endpoint
// overrides (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_EC2, ..._AUTO_SCALING,
// ..._IAM, ..._DLM), as firstboot does.
func New(ctx context.Context, cfg ensemble.Config, log *slog.Logger) (*Cloud, error) {
	ac, err := config.LoadDefaultConfig(ctx, config.WithDefaultRegion(cfg.Region()))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return &Cloud{
		EC2: ec2.NewFromConfig(ac), ASG: autoscaling.NewFromConfig(ac),
		IAM: iam.NewFromConfig(ac), DLM: dlm.NewFromConfig(ac),
		TagEnsemble: cfg.Claim.Tags.Ensemble, TagNode: cfg.Claim.Tags.Node, Log: log,
	}, nil
}

func (c *Cloud) poll() time.Duration {
	if c.Poll > 0 {
		return c.Poll
	}
	return 5 * time.Second
}

func (c *Cloud) wait() time.Duration {
	if c.Wait > 0 {
		return c.Wait
	}
	return 15 * time.Minute
}

// waitFor polls cond until it is true, an error, or the bound.
func (c *Cloud) waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(c.wait())
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: still not done after %s", what, c.wait())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.poll()):
		}
	}
}

// token is an idempotency token for one create: the SDK's retries of that
// call reuse it, so a timed-out create that did happen is not made twice;
// across runs, List finds the resource by its tags instead.
func token() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// code is the AWS error code of err, or "".
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// List implements plan.Cloud.
func (c *Cloud) List(ctx context.Context, d *deploy.Desired) ([]plan.Existing, error) {
	var out []plan.Existing
	for _, f := range []func(context.Context, *deploy.Desired) ([]plan.Existing, error){
		c.listSecurityGroups, c.listENIs, c.listVolumes, c.listIAM, c.listTemplates, c.listGroups, c.listPolicies,
	} {
		got, err := f(ctx, d)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// Create implements plan.Cloud.
func (c *Cloud) Create(ctx context.Context, r deploy.Resource, tags map[string]string) (string, error) {
	switch s := r.Spec.(type) {
	case deploy.SecurityGroupSpec:
		return c.createSecurityGroup(ctx, s, tags)
	case deploy.ENISpec:
		return c.createENI(ctx, s, tags)
	case deploy.VolumeSpec:
		return c.createVolume(ctx, s, tags)
	case deploy.RoleSpec:
		return c.createRole(ctx, s, tags)
	case deploy.ProfileSpec:
		return c.createProfile(ctx, s, tags)
	case deploy.TemplateSpec:
		return c.createTemplate(ctx, s, tags)
	case deploy.GroupSpec:
		return c.createGroup(ctx, s, tags)
	case deploy.SnapshotPolicySpec:
		return c.createPolicy(ctx, s, tags)
	}
	return "", fmt.Errorf("no create for %s", r)
}

// Update implements plan.Cloud.
func (c *Cloud) Update(ctx context.Context, r deploy.Resource, ex plan.Existing) error {
	switch s := r.Spec.(type) {
	case deploy.SecurityGroupSpec:
		return c.updateSecurityGroup(ctx, s, ex)
	case deploy.ENISpec:
		return c.updateENI(ctx, s, ex)
	case deploy.VolumeSpec:
		return c.updateVolume(ctx, s, ex)
	case deploy.RoleSpec:
		return c.putRolePolicy(ctx, s)
	case deploy.ProfileSpec:
		return c.updateProfile(ctx, s, ex)
	case deploy.TemplateSpec:
		return c.updateTemplate(ctx, s, ex)
	case deploy.GroupSpec:
		return c.updateGroup(ctx, s, ex)
	case deploy.SnapshotPolicySpec:
		return c.updatePolicy(ctx, s, ex)
	}
	return fmt.Errorf("no update for %s", r)
}

// Delete implements plan.Cloud. Only what carries zkaas:managed-by is
// deleted; the caller decides which kinds.
func (c *Cloud) Delete(ctx context.Context, ex plan.Existing) error {
	if !ex.Managed {
		return fmt.Errorf("%s %s was not made by zkaas (no %s=%s tag): not deleting it", ex.Kind, ex.ID, deploy.TagManagedBy, deploy.ManagedBy)
	}
	switch ex.Kind {
	case deploy.KindSecurityGroup:
		return c.deleteSecurityGroup(ctx, ex)
	case deploy.KindENI:
		return c.deleteENI(ctx, ex)
	case deploy.KindVolume:
		return c.deleteVolume(ctx, ex)
	case deploy.KindRole:
		return c.deleteRole(ctx, ex)
	case deploy.KindProfile:
		return c.deleteProfile(ctx, ex)
	case deploy.KindTemplate:
		return c.deleteTemplate(ctx, ex)
	case deploy.KindGroup:
		return c.deleteGroup(ctx, ex)
	case deploy.KindSnapshotPolicy:
		return c.deletePolicy(ctx, ex)
	}
	return fmt.Errorf("no delete for %s", ex.Kind)
}

func managed(tags map[string]string) bool { return tags[deploy.TagManagedBy] == deploy.ManagedBy }

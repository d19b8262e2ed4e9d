// Package claim takes this instance's ZooKeeper identity in AWS: one node's
// ENI (the lock) and that same node's EBS volume, with the EC2 API, waiting
// for both attachments together. Who and where the instance is comes from
// package identity.
package claim

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

// EC2API is the part of *ec2.Client the claim uses, with the SDK's own
// signatures so the real client satisfies it and tests need no adapter.
type EC2API interface {
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	AttachNetworkInterface(context.Context, *ec2.AttachNetworkInterfaceInput, ...func(*ec2.Options)) (*ec2.AttachNetworkInterfaceOutput, error)
	DetachNetworkInterface(context.Context, *ec2.DetachNetworkInterfaceInput, ...func(*ec2.Options)) (*ec2.DetachNetworkInterfaceOutput, error)
	ModifyNetworkInterfaceAttribute(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	AttachVolume(context.Context, *ec2.AttachVolumeInput, ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error)
	DetachVolume(context.Context, *ec2.DetachVolumeInput, ...func(*ec2.Options)) (*ec2.DetachVolumeOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	// CreateTags only ever adds the initialized tag to the node's own volume.
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
}

// NewEC2 builds the EC2 client for a boot. Throttling (RequestLimitExceeded)
// and transient errors are retried by the SDK with capped, jittered backoff;
// the client-side retry quota is off because a boot makes a handful of calls
// and must not give up on its own quota while the deadline still allows.
// AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL are honoured through cfg.
func NewEC2(cfg aws.Config) *ec2.Client {
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 8
			so.MaxBackoff = 4 * time.Second
			so.RateLimiter = ratelimit.None
		})
	})
}

// Counting wraps an EC2API and counts calls, so a boot can report how many
// EC2 requests it cost (a figure the account-wide throttle cares about).
type Counting struct {
	EC2API
	n atomic.Int64
}

// Calls returns the number of calls made so far.
func (c *Counting) Calls() int { return int(c.n.Load()) }

func (c *Counting) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, o ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	c.n.Add(1)
	return c.EC2API.DescribeNetworkInterfaces(ctx, in, o...)
}

func (c *Counting) AttachNetworkInterface(ctx context.Context, in *ec2.AttachNetworkInterfaceInput, o ...func(*ec2.Options)) (*ec2.AttachNetworkInterfaceOutput, error) {
	c.n.Add(1)
	return c.EC2API.AttachNetworkInterface(ctx, in, o...)
}

func (c *Counting) DetachNetworkInterface(ctx context.Context, in *ec2.DetachNetworkInterfaceInput, o ...func(*ec2.Options)) (*ec2.DetachNetworkInterfaceOutput, error) {
	c.n.Add(1)
	return c.EC2API.DetachNetworkInterface(ctx, in, o...)
}

func (c *Counting) ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, o ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	c.n.Add(1)
	return c.EC2API.ModifyNetworkInterfaceAttribute(ctx, in, o...)
}

func (c *Counting) DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, o ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	c.n.Add(1)
	return c.EC2API.DescribeVolumes(ctx, in, o...)
}

func (c *Counting) AttachVolume(ctx context.Context, in *ec2.AttachVolumeInput, o ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error) {
	c.n.Add(1)
	return c.EC2API.AttachVolume(ctx, in, o...)
}

func (c *Counting) DetachVolume(ctx context.Context, in *ec2.DetachVolumeInput, o ...func(*ec2.Options)) (*ec2.DetachVolumeOutput, error) {
	c.n.Add(1)
	return c.EC2API.DetachVolume(ctx, in, o...)
}

func (c *Counting) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	c.n.Add(1)
	return c.EC2API.DescribeInstances(ctx, in, o...)
}

func (c *Counting) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, o ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	c.n.Add(1)
	return c.EC2API.CreateTags(ctx, in, o...)
}

// errorCode returns the EC2 error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func errorMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return err.Error()
}

// lostRace reports whether an attach failed because someone else holds the
// resource: EC2's attach is the lock, and these are the loser's answers.
func lostRace(err error) bool {
	switch errorCode(err) {
	case "InvalidNetworkInterface.InUse", "VolumeInUse", "IncorrectState":
		return true
	case "InvalidParameterValue":
		m := errorMessage(err)
		return strings.Contains(m, "in use") && !strings.Contains(m, "Attachment point") && !strings.Contains(m, "device index")
	}
	return false
}

// slotTaken reports an attach refused because the instance already has
// something at the requested device index or device name.
func slotTaken(err error) bool {
	if errorCode(err) != "InvalidParameterValue" {
		return false
	}
	m := errorMessage(err)
	return strings.Contains(m, "Attachment point") || strings.Contains(m, "device index")
}

// fatal reports errors that waiting cannot fix: missing permissions or bad
// credentials. (InvalidInstanceID.NotFound is not among them: EC2 is
// eventually consistent and may not know a just-launched instance yet.)
// Everything else (throttling that outlived the SDK's retries,
// 5xx, network) is retried until the deadline.
func fatal(err error) bool {
	switch c := errorCode(err); {
	case c == "UnauthorizedOperation", c == "AuthFailure", c == "InvalidClientTokenId",
		c == "OptInRequired", c == "Blocked", c == "SignatureDoesNotMatch",
		c == "InvalidInstanceID.Malformed":
		return true
	}
	return false
}

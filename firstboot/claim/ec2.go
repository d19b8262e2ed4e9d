// Package claim takes this instance's ZooKeeper identity in AWS: one node's
// ENI (the lock) and that same node's EBS volume, with the EC2 API, waiting
// for both attachments together. Who and where the instance is comes from
// package identity.
//
// Cloud is what boot's stages see: the claim and the volume tags as domain
// methods, with typed results, over EC2API — the SDK's own signatures, so
// the real *ec2.Client satisfies it and tests substitute it without an
// adapter. CallCounter counts the client's operations as SDK middleware.
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
	"github.com/aws/smithy-go/middleware"
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
// AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL are honoured through cfg. opts
// apply after the retryer, e.g. (*CallCounter).Option.
func NewEC2(cfg aws.Config, opts ...func(*ec2.Options)) *ec2.Client {
	return ec2.NewFromConfig(cfg, append([]func(*ec2.Options){func(o *ec2.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 8
			so.MaxBackoff = 4 * time.Second
			so.RateLimiter = ratelimit.None
		})
	}}, opts...)...)
}

// CallCounter counts EC2 operations, so a boot can report how many requests
// it cost (a figure the account-wide throttle cares about). It counts each
// operation invocation once — what the claim asked EC2 for, one per
// paginator page — not each attempt: the SDK's retries of a throttled call
// run inside one invocation (the retry middleware sits in the Finalize
// step, this counter in Initialize). The EC2 simulator's own statistics
// count the attempts. The zero value is ready; a nil *CallCounter counts
// nothing and reports 0.
type CallCounter struct{ n atomic.Int64 }

// Calls returns the number of operations invoked so far.
func (c *CallCounter) Calls() int {
	if c == nil {
		return 0
	}
	return int(c.n.Load())
}

// Option adds the counter to a client's middleware stack, for NewEC2 or
// ec2.NewFromConfig.
func (c *CallCounter) Option() func(*ec2.Options) {
	return func(o *ec2.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("zkaas/CallCounter",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					c.n.Add(1)
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	}
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
// resource: EC2's attach is the lock, and these are the loser's answers
// (an ENI in use comes as InvalidNetworkInterface.InUse or as
// InvalidParameterValue "Interface: [eni-…] in use."). Check
// pendingInstance first: IncorrectState also says the instance is pending.
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

// pendingInstance reports an attach refused because the instance is not
// running yet (a just-launched one is pending for a while): ENI attaches
// answer IncorrectInstanceState, volume attaches IncorrectState "Instance
// '…' is not 'running'". Both are retried, never a lost race.
func pendingInstance(err error) bool {
	switch errorCode(err) {
	case "IncorrectInstanceState":
		return true
	case "IncorrectState":
		m := strings.ToLower(errorMessage(err))
		return strings.Contains(m, "instance") && (strings.Contains(m, "running") || strings.Contains(m, "pending"))
	}
	return false
}

// notYetKnown reports EC2's answer for an id it does not know yet: a
// resource just created (or an instance just launched) is eventually
// consistent, so a mutation on it may answer NotFound for a while ("Eventual
// consistency", EC2 API Reference).
func notYetKnown(err error) bool {
	switch errorCode(err) {
	case "InvalidInstanceID.NotFound", "InvalidNetworkInterfaceID.NotFound", "InvalidVolume.NotFound":
		return true
	}
	return false
}

// nothingAttached reports a detach that found nothing to detach: the
// attachment is already gone (or never became visible).
func nothingAttached(err error) bool {
	switch errorCode(err) {
	case "InvalidAttachment.NotFound", "IncorrectState":
		return true
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

// Package identity asks the instance metadata service (IMDSv2 only) who and
// where this instance is: the first thing every boot needs, and the only
// source firstboot trusts for it.
package identity

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// MetadataAPI is the part of *imds.Client firstboot uses.
type MetadataAPI interface {
	GetMetadata(ctx context.Context, params *imds.GetMetadataInput, optFns ...func(*imds.Options)) (*imds.GetMetadataOutput, error)
}

// Instance is who and where this instance is, from IMDSv2.
type Instance struct {
	InstanceID string `json:"instance_id"`
	AZ         string `json:"az"`
	Region     string `json:"region"`
	MAC        string `json:"mac"` // primary interface
}

// NewIMDS returns an IMDS client that only speaks IMDSv2: without a session
// token it fails instead of falling back to v1, so an instance launched
// without http-tokens=required cannot silently downgrade. The endpoint honours
// AWS_EC2_METADATA_SERVICE_ENDPOINT through cfg.
func NewIMDS(cfg aws.Config) *imds.Client {
	return imds.NewFromConfig(cfg, func(o *imds.Options) {
		o.EnableFallback = aws.FalseTernary
	})
}

// Metadata is IMDS as firstboot's stages use it: who this instance is, and
// the subnets of its interfaces.
type Metadata struct {
	API MetadataAPI
	// SubnetWait bounds how long Subnet waits for IMDS to learn of a
	// hot-plugged interface (default DefaultSubnetWait).
	SubnetWait time.Duration
	// SubnetPoll paces those reads (default DefaultSubnetPoll); tests
	// shorten it.
	SubnetPoll Backoff
}

// DefaultSubnetWait bounds the wait for a hot-attached interface's entries
// in IMDS. EC2 documents no bound for it; a minute is the same budget
// netcfg gives the link to appear (netcfg.DefaultLinkWait) and disk gives
// the volume's device, and stays far inside the run's deadline.
const DefaultSubnetWait = 60 * time.Second

// DefaultSubnetPoll re-reads quickly at first — the lag is usually well
// under a second — then backs off to 1 s, with jitter so that instances
// that booted together do not poll IMDS in step. The cap is low because
// the boot waits on this read, and an IMDS read is a local call that IMDS
// throttles per instance (EC2 User Guide, "Use instance metadata", query
// throttling), far above one read a second; a 2 s cap cost a lagging boot
// up to 2.6 s past the entry's appearance in the local cloud.
var DefaultSubnetPoll = Backoff{First: 100 * time.Millisecond, Max: time.Second, Jitter: 0.3}

// Backoff is a capped exponential pause with jitter: First doubled per
// attempt up to Max, each pause spread by ±Jitter (a fraction) of itself.
type Backoff struct {
	First, Max time.Duration
	Jitter     float64
}

// Delay is the pause before retry attempt (0-based).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.First
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter > 0 {
		d += time.Duration((rand.Float64()*2 - 1) * b.Jitter * float64(d))
	}
	return max(d, time.Millisecond)
}

// Identify is Identify on m's API.
func (m Metadata) Identify(ctx context.Context) (Instance, error) { return Identify(ctx, m.API) }

// Interface is a network interface attached to this instance, as EC2
// described it when it was attached.
type Interface struct {
	ID       string // eni-…
	MAC      net.HardwareAddr
	SubnetID string
}

// macsPath is IMDS's per-interface category: network/interfaces/macs/<mac>/…
// (EC2 User Guide, "Instance metadata categories":
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-categories.html).
const macsPath = "network/interfaces/macs/"

// Subnet returns the CIDR block of the interface's subnet. When the
// interface shares the primary interface's subnet (the usual layout) the
// primary MAC's entry answers at once; otherwise the interface's own entry
// is read (InterfaceSubnet), waiting for IMDS to learn of it.
func (m Metadata) Subnet(ctx context.Context, self Instance, nic Interface) (netip.Prefix, error) {
	if sid, err := GetMetadata(ctx, m.API, macsPath+self.MAC+"/subnet-id"); err == nil && sid == nic.SubnetID {
		return m.cidr(ctx, macsPath+self.MAC+"/subnet-ipv4-cidr-block")
	}
	return m.InterfaceSubnet(ctx, nic)
}

// InterfaceSubnet reads the interface's own subnet-ipv4-cidr-block entry.
// IMDS serves a hot-attached interface's entries only some time after
// EC2's API reports the attachment (they are 404 until then; IMDS answers
// 404 for any resource it does not have, see "Use instance metadata":
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-metadata.html,
// and AWS's own VPC CNI asks every change that reads IMDS to "handle stale
// information returned from metadata"). So a 404 — and a transient failure
// the SDK's own retries did not get past — is read again, with capped
// jittered backoff, until SubnetWait has passed; any other answer (401,
// 403: IMDS refuses us) fails at once.
func (m Metadata) InterfaceSubnet(ctx context.Context, nic Interface) (netip.Prefix, error) {
	bound := cmp.Or(m.SubnetWait, DefaultSubnetWait)
	poll := m.SubnetPoll
	if poll.First <= 0 {
		poll = DefaultSubnetPoll
	}
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	path := macsPath + nic.MAC.String() + "/subnet-ipv4-cidr-block"
	for attempt := 0; ; attempt++ {
		cidr, err := GetMetadata(ctx, m.API, path)
		if err == nil {
			return parseCIDR(path, cidr)
		}
		if ctx.Err() != nil {
			return netip.Prefix{}, fmt.Errorf("imds: subnet of ENI %s (%s): %w", nic.ID, nic.MAC, context.Cause(ctx))
		}
		if !retryable(err) {
			return netip.Prefix{}, fmt.Errorf("imds: subnet of ENI %s (%s): %w", nic.ID, nic.MAC, err)
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, fmt.Errorf("imds: subnet of ENI %s (%s): %w", nic.ID, nic.MAC, context.Cause(ctx))
		case <-deadline.C:
			return netip.Prefix{}, fmt.Errorf("imds: no entry for ENI %s (mac %s) within %s (%d reads; last: %v)",
				nic.ID, nic.MAC, bound, attempt+1, err)
		case <-time.After(poll.Delay(attempt)):
		}
	}
}

// retryable reports whether an IMDS read may succeed later: 404 (IMDS has
// not learnt of the interface yet), a server error or a transport error
// (IMDS restarting). 4xx answers other than 404 say IMDS refuses us.
func retryable(err error) bool {
	if code, ok := httpStatus(err); ok {
		return code == http.StatusNotFound || code >= 500
	}
	return true
}

// httpStatus is the HTTP status IMDS answered err with, if it answered.
func httpStatus(err error) (int, bool) {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode(), true
	}
	return 0, false
}

func (m Metadata) cidr(ctx context.Context, path string) (netip.Prefix, error) {
	cidr, err := GetMetadata(ctx, m.API, path)
	if err != nil {
		return netip.Prefix{}, err
	}
	return parseCIDR(path, cidr)
}

func parseCIDR(path, cidr string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("imds: %s: %w", path, err)
	}
	return p, nil
}

// Identify asks IMDS for the instance id, AZ, region and primary MAC.
func Identify(ctx context.Context, api MetadataAPI) (Instance, error) {
	var id Instance
	for _, f := range []struct {
		path string
		dst  *string
	}{
		{"instance-id", &id.InstanceID},
		{"placement/availability-zone", &id.AZ},
		{"placement/region", &id.Region},
		{"mac", &id.MAC},
	} {
		v, err := GetMetadata(ctx, api, f.path)
		if err != nil {
			return Instance{}, err
		}
		*f.dst = v
	}
	return id, nil
}

// GetMetadata reads one meta-data path as a trimmed string.
func GetMetadata(ctx context.Context, api MetadataAPI, path string) (string, error) {
	out, err := api.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if code, _ := httpStatus(err); code == http.StatusNotFound {
		// The session worked; IMDS just has no such entry (yet).
		return "", fmt.Errorf("imds: get %s: not found (404): %w", path, err)
	}
	if err != nil {
		return "", fmt.Errorf("imds: get %s (IMDSv2 only: needs a session token from PUT /latest/api/token): %w", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, 64<<10))
	if err != nil {
		return "", fmt.Errorf("imds: read %s: %w", path, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", errors.New("imds: " + path + " is empty")
	}
	return v, nil
}

// UserDataAPI is the part of *imds.Client that reads the instance's user
// data.
type UserDataAPI interface {
	GetUserData(ctx context.Context, params *imds.GetUserDataInput, optFns ...func(*imds.Options)) (*imds.GetUserDataOutput, error)
}

// MaxUserData is what EC2 accepts as user data: 16 KB before base64
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html).
// More is read and refused, never cut short silently.
const MaxUserData = 16 << 10

// UserData reads the instance's user data: nil when the instance was
// launched without any (IMDS answers 404).
func UserData(ctx context.Context, api UserDataAPI) ([]byte, error) {
	out, err := api.GetUserData(ctx, &imds.GetUserDataInput{})
	if code, _ := httpStatus(err); code == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("imds: get user-data (IMDSv2 only: needs a session token from PUT /latest/api/token): %w", err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, MaxUserData+1))
	if err != nil {
		return nil, fmt.Errorf("imds: read user-data: %w", err)
	}
	if len(b) > MaxUserData {
		return nil, fmt.Errorf("imds: user-data is larger than EC2's %d bytes", MaxUserData)
	}
	return b, nil
}

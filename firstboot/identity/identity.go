// Package identity asks the instance metadata service (IMDSv2 only) who and
// where this instance is: the first thing every boot needs, and the only
// source firstboot trusts for it.
package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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
	// hot-plugged interface (default 60s).
	SubnetWait time.Duration
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

// Subnet returns the CIDR block of the interface's subnet. When the
// interface shares the primary interface's subnet (the usual layout) the
// primary MAC's entry answers at once; otherwise the interface's own MAC
// entry is polled, with a bound, since IMDS learns of a hot-plugged
// interface with a lag.
func (m Metadata) Subnet(ctx context.Context, self Instance, nic Interface) (netip.Prefix, error) {
	const base = "network/interfaces/macs/"
	if sid, err := GetMetadata(ctx, m.API, base+self.MAC+"/subnet-id"); err == nil && sid == nic.SubnetID {
		return m.cidr(ctx, base+self.MAC+"/subnet-ipv4-cidr-block")
	}
	bound := m.SubnetWait
	if bound <= 0 {
		bound = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	path := base + nic.MAC.String() + "/subnet-ipv4-cidr-block"
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 4*time.Second) {
		cidr, err := GetMetadata(ctx, m.API, path)
		if err == nil {
			return parseCIDR(path, cidr)
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, fmt.Errorf("IMDS has no subnet for ENI %s (%s) after %s: %w", nic.ID, nic.MAC, bound, err)
		case <-time.After(wait):
		}
	}
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

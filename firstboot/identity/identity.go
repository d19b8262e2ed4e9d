// Package identity asks the instance metadata service (IMDSv2 only) who and
// where this instance is: the first thing every boot needs, and the only
// source firstboot trusts for it.
package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

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

package claim

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/identity"
)

// Cloud is the ensemble's EC2 resources as firstboot's stages use them: the
// claim, and the volume tags the disk and ZooKeeper stages read and write.
// It keeps the SDK behind domain methods, so its callers import no SDK
// types (as aws-ebs-csi-driver's pkg/cloud does for its driver).
type Cloud struct {
	EC2    EC2API
	Config ensemble.Config
	Log    *slog.Logger
	// Counter, when set, is the one counting EC2's client (see
	// CallCounter.Option); the claim reports its figure.
	Counter *CallCounter
	// Devices, when set, tells the claim when the instance sees its
	// attachments (package hotplug); nil polls EC2 (see Claimer.Devices).
	Devices Devices
}

// NewCloud returns the production Cloud: NewEC2's client for cfg, counting
// its calls.
func NewCloud(cfg aws.Config, ens ensemble.Config, log *slog.Logger) *Cloud {
	c := &Cloud{Config: ens, Log: log, Counter: new(CallCounter)}
	c.EC2 = NewEC2(cfg, c.Counter.Option())
	return c
}

// Claim takes a node's ENI and volume for the instance (see Claimer).
func (c *Cloud) Claim(ctx context.Context, id identity.Instance) (Result, error) {
	cl := NewClaimer(c.EC2, c.Config, id, c.Log)
	cl.Counter, cl.Devices = c.Counter, c.Devices
	return cl.Claim(ctx)
}

// InitializedTag reads the volume's initialized tag fresh from EC2: zero
// when the volume has none.
func (c *Cloud) InitializedTag(ctx context.Context, vol string) (time.Time, error) {
	out, err := c.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}})
	if err != nil {
		return time.Time{}, fmt.Errorf("describe volume %s: %w", vol, err)
	}
	for _, v := range out.Volumes {
		if aws.ToString(v.VolumeId) == vol {
			return initializedAt(v.Tags, c.Config.Claim.Tags.Initialized), nil
		}
	}
	return time.Time{}, nil
}

// AdoptTag reads the volume's adopt tag fresh from EC2: its value (the node
// id the operator adopts the volume's existing data for), "" when the
// volume has none. The disk stage asks only after the volume was refused as
// an unmarked filesystem with data, so a normal boot never pays this call.
func (c *Cloud) AdoptTag(ctx context.Context, vol string) (string, error) {
	out, err := c.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}})
	if err != nil {
		return "", fmt.Errorf("describe volume %s: %w", vol, err)
	}
	for _, v := range out.Volumes {
		if aws.ToString(v.VolumeId) == vol {
			value, _ := tagValue(v.Tags, c.Config.Claim.Tags.Adopt)
			return value, nil
		}
	}
	return "", fmt.Errorf("describe volume %s: not found", vol)
}

// FormatInitialized is the initialized tag's value for when: RFC 3339 in
// UTC, to the second (the instance policy admits only that shape).
func FormatInitialized(when time.Time) string {
	return when.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// TagInitialized records on the volume that it holds a filesystem since
// when (RFC 3339, seconds), so that it is never formatted again.
func (c *Cloud) TagInitialized(ctx context.Context, vol string, when time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err := c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: []string{vol},
		Tags:      []types.Tag{{Key: aws.String(c.Config.Claim.Tags.Initialized), Value: aws.String(FormatInitialized(when))}},
	})
	if err != nil {
		return fmt.Errorf("tag %s %s: %w", vol, c.Config.Claim.Tags.Initialized, err)
	}
	return nil
}

// PeerVolumes lists the ensemble's volumes other than node self's, fresh
// from EC2 and ordered by node: the empty-data-tree decision must not rest
// on a listing taken before this boot formatted anything.
func (c *Cloud) PeerVolumes(ctx context.Context, self int) ([]Peer, error) {
	vols, err := describeEnsembleVolumes(ctx, c.EC2, c.Config)
	if err != nil {
		return nil, err
	}
	return peers(vols, c.Config.Claim.Tags, self), nil
}

// describeEnsembleVolumes lists every volume tagged with the ensemble, in
// all AZs.
func describeEnsembleVolumes(ctx context.Context, api EC2API, cfg ensemble.Config) ([]types.Volume, error) {
	p := ec2.NewDescribeVolumesPaginator(api, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + cfg.Claim.Tags.Ensemble), Values: []string{cfg.Ensemble}},
	}})
	var vols []types.Volume
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe volumes of ensemble %s: %w", cfg.Ensemble, err)
		}
		vols = append(vols, out.Volumes...)
	}
	return vols, nil
}

// peers lists the other nodes' volumes, ordered by node.
func peers(vols []types.Volume, tags ensemble.Tags, self int) []Peer {
	var ps []Peer
	for _, v := range vols {
		if n := tagNode(v.Tags, tags.Node); n != self {
			ps = append(ps, Peer{Node: n, Volume: aws.ToString(v.VolumeId), InitializedAt: peerInitializedAt(v, tags.Initialized)})
		}
	}
	slices.SortFunc(ps, func(a, b Peer) int { return a.Node - b.Node })
	return ps
}

func tagValue(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

// tagNode is the node id a resource is tagged with, 0 if none.
func tagNode(tags []types.Tag, key string) int {
	v, ok := tagValue(tags, key)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return n
}

// unknownAge stands for "holds data of unknown age": a time before any
// bootstrap window, so a volume carrying it counts as initialized long ago.
var unknownAge = time.Unix(1, 0).UTC()

// initializedAt reads a volume's own initialized tag: its time, zero when
// the tag is absent. A tag that is present but not an RFC 3339 time (not
// ours, or mangled) still says the volume was formatted: it reads as
// unknownAge, so the disk stage never formats the volume again.
func initializedAt(tags []types.Tag, key string) time.Time {
	v, ok := tagValue(tags, key)
	if !ok {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t
	}
	return unknownAge
}

// peerInitializedAt reads a peer volume's initialized time for the
// empty-data-tree decision: the tag's time; for a volume restored from a
// snapshot without the tag (EC2 does not copy tags onto restored volumes),
// unknownAge, since it holds the ensemble's data; otherwise zero (never
// formatted). Unlike initializedAt, an unreadable tag on a peer counts as
// absent: the behaviour this decision has always had.
func peerInitializedAt(v types.Volume, key string) time.Time {
	tag, _ := tagValue(v.Tags, key)
	if t, err := time.Parse(time.RFC3339, tag); err == nil {
		return t
	}
	if aws.ToString(v.SnapshotId) != "" {
		return unknownAge
	}
	return time.Time{}
}

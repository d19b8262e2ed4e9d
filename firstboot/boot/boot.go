// Package boot runs firstboot's stages in order — identify, claim, secrets
// (when the config names any), network, disk, ZooKeeper — on a config the caller has loaded; each idempotent, each
// logged as started, finished or failed with its duration, so that
// `zkaas-firstboot run` does on every boot what is missing and nothing else.
// Boot only orders the stages and hands each one what the earlier ones
// found; the work is done behind the interfaces below (IMDS in package
// identity, EC2 in package claim, the link in netcfg, the volume in disk,
// ZooKeeper's files and the empty-tree decision in zookeeper), so the order
// and its failure paths are tested without AWS or root.
package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/claim"
	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/firstboot/identity"
	"github.com/zkaas/zkaas/firstboot/netcfg"
	"github.com/zkaas/zkaas/firstboot/zookeeper"
	"github.com/zkaas/zkaas/internal/steplog"
)

// Metadata answers who and where this instance is (identity.Metadata).
type Metadata interface {
	Identify(ctx context.Context) (identity.Instance, error)
	Subnet(ctx context.Context, self identity.Instance, nic identity.Interface) (netip.Prefix, error)
}

// Cloud is the ensemble in EC2 (*claim.Cloud): the claim, and the volume
// tags the disk and ZooKeeper stages read and write.
type Cloud interface {
	Claim(ctx context.Context, id identity.Instance) (claim.Result, error)
	InitializedTag(ctx context.Context, vol string) (time.Time, error)
	TagInitialized(ctx context.Context, vol string, when time.Time) error
	// AdoptTag is the value of the volume's adopt tag, "" if none.
	AdoptTag(ctx context.Context, vol string) (string, error)
	PeerVolumes(ctx context.Context, self int) ([]claim.Peer, error)
}

// Secrets fetches the node's secret material (*secrets.Fetcher): what
// zookeeper.tls and zookeeper.sasl name, expanded for the node, and the
// references it fetched (never the material).
type Secrets interface {
	Material(ctx context.Context, cfg ensemble.Config, node int) (zookeeper.Material, []string, error)
}

// Network configures the claimed ENI's link (Networkd).
type Network interface {
	Configure(ctx context.Context, spec netcfg.Spec) (netcfg.Result, error)
}

// Disk finds and prepares the node's volume (*disk.Preparer).
type Disk interface {
	ResolveDevice(ctx context.Context, spec disk.Spec) (string, error)
	Prepare(ctx context.Context, spec disk.Spec) (disk.Result, error)
}

// ZooKeeper writes the node's ZooKeeper files and decides about an empty
// data tree (*zookeeper.Host).
type ZooKeeper interface {
	Prepare(ctx context.Context, n zookeeper.Node) (zookeeper.Result, error)
}

// Runner holds what the stages need. Metadata and Cloud are required; the
// other zero-valued fields get the production defaults in Run.
type Runner struct {
	Config   ensemble.Config
	Metadata Metadata
	Cloud    Cloud
	Log      *slog.Logger

	// Secrets is required when the config names secrets
	// (Config.Secrets).
	Secrets Secrets
	// Network defaults to Networkd{Dir: NetworkdDir}.
	Network Network
	// Disk defaults to a disk.Preparer.
	Disk Disk
	// ZooKeeper defaults to a zookeeper.Host on ConfDir, the volume's mount
	// point and ZooKeeperUser, listing peers through Cloud.
	ZooKeeper ZooKeeper

	// NetworkdDir is where the systemd-networkd files go (/etc/systemd).
	NetworkdDir string
	// ConfDir is where zoo.cfg and java.env go (zookeeper.DefaultConfDir).
	ConfDir string
	// ZooKeeperUser owns the data directories ("zookeeper").
	ZooKeeperUser string
	// Now is the clock for the initialized tag and the empty-data-tree
	// decision.
	Now func() time.Time
}

// Report is what a run did.
type Report struct {
	// Config is where the config came from (user data or the baked
	// file); the command that loaded it fills it in.
	Config string       `json:"config,omitempty"`
	Claim  claim.Result `json:"claim"`
	// Secrets are the references the secrets stage fetched
	// (source:name[#json_key]), never the material.
	Secrets   []string         `json:"secrets,omitempty"`
	Network   netcfg.Result    `json:"network"`
	Disk      disk.Result      `json:"disk"`
	ZooKeeper zookeeper.Result `json:"zookeeper"`
	Changes   int              `json:"changes"`
	// Stages are each stage's duration in milliseconds, in run order.
	Stages   []StageTime   `json:"stages"`
	Duration time.Duration `json:"duration"`
}

// StageTime is how long one stage took.
type StageTime struct {
	Stage string  `json:"stage"`
	MS    float64 `json:"ms"`
}

func (r *Runner) defaults() {
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.NetworkdDir == "" {
		r.NetworkdDir = "/etc/systemd"
	}
	if r.ConfDir == "" {
		r.ConfDir = zookeeper.DefaultConfDir
	}
	if r.ZooKeeperUser == "" {
		r.ZooKeeperUser = "zookeeper"
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Network == nil {
		r.Network = &Networkd{Dir: r.NetworkdDir, Log: r.Log}
	}
	if r.Disk == nil {
		r.Disk = &disk.Preparer{Log: r.Log}
	}
	if r.ZooKeeper == nil {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
		layout := zookeeper.DefaultLayout(r.Config.Volume.MountPoint)
		layout.ConfDir = r.ConfDir
		r.ZooKeeper = &zookeeper.Host{
			Config: r.Config, Layout: layout, User: r.ZooKeeperUser,
			PeerVolumes: r.peerVolumes, Now: r.Now, Log: r.Log,
			Backoff: func(attempt int) time.Duration { return reprobe.Delay(attempt, rng) },
		}
	}
}

// reprobe is the pause between empty-data-tree re-probes (each lists the
// ensemble's volumes): 1s doubling to 10s, as zookeeper.DefaultBackoff
// caps it, with jitter so nodes that booted together do not poll in step.
var reprobe = claim.Backoff{First: time.Second, Factor: 2, Max: 10 * time.Second, Jitter: 0.3}

// stage runs one named stage as a logged step and adds its duration to rep.
func (r *Runner) stage(ctx context.Context, rep *Report, name string, f func() error) error {
	st := steplog.Start(ctx, r.Log, name)
	err := st.End(f())
	rep.Stages = append(rep.Stages, StageTime{name, float64(st.Elapsed().Microseconds()) / 1000})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// RunSlack is how long the stages after the claim may take beyond the claim
// deadline: the whole run stays inside zkaas-firstboot.service's
// TimeoutStartSec, so its one-line error reaches the journal.
const RunSlack = 5 * time.Minute

// Run performs every stage, all within the claim deadline plus RunSlack;
// the caller's ctx may cut it shorter. A stage runs only when every stage
// before it succeeded; the error names the stage that failed.
func (r *Runner) Run(ctx context.Context) (Report, error) {
	r.defaults()
	ctx, cancel := context.WithTimeoutCause(ctx, r.Config.Claim.Deadline.D()+RunSlack,
		fmt.Errorf("run deadline (claim.deadline %s + %s) passed", r.Config.Claim.Deadline, RunSlack))
	defer cancel()
	start := time.Now()
	var rep Report
	var id identity.Instance
	err := r.stage(ctx, &rep, "identify", func() (err error) {
		id, err = r.identify(ctx)
		return err
	})
	if err == nil {
		err = r.stage(ctx, &rep, "claim", func() (err error) {
			rep.Claim, err = r.Cloud.Claim(ctx, id)
			return err
		})
	}
	var mat zookeeper.Material
	if err == nil && len(r.Config.Secrets()) > 0 {
		// As soon as the node is known and before the link or the disk
		// is touched: a node without its material cannot serve, and
		// every replacement would fail the same way.
		err = r.stage(ctx, &rep, "secrets", func() (err error) {
			mat, rep.Secrets, err = r.secrets(ctx, rep.Claim)
			return err
		})
	}
	if err == nil {
		err = r.stage(ctx, &rep, "network", func() (err error) {
			rep.Network, err = r.network(ctx, id, rep.Claim)
			return err
		})
	}
	if err == nil {
		err = r.stage(ctx, &rep, "disk", func() (err error) {
			rep.Disk, err = r.disk(ctx, &rep.Claim)
			return err
		})
	}
	if err == nil {
		err = r.stage(ctx, &rep, "zookeeper", func() (err error) {
			// Waiting for a quorum shares the claim's budget: one deadline
			// for the whole boot.
			zctx, cancel := context.WithDeadlineCause(ctx, start.Add(r.Config.Claim.Deadline.D()),
				fmt.Errorf("claim.deadline %s passed", r.Config.Claim.Deadline))
			defer cancel()
			rep.ZooKeeper, err = r.ZooKeeper.Prepare(zctx, zookeeper.Node{
				Self: zookeeper.PeerVolume{NodeID: rep.Claim.Node, VolumeID: rep.Claim.Volume, InitializedAt: rep.Claim.Initialized},
				IP:   rep.Claim.IP, FormattedNow: rep.Disk.Formatted, Material: mat,
			})
			return err
		})
	}
	rep.Changes = len(rep.Network.Changes) + len(rep.Disk.Changes) + len(rep.ZooKeeper.Changed)
	if rep.Claim.ENI != "" && !rep.Claim.Reused {
		rep.Changes++ // the claim itself attached something
	}
	rep.Duration = time.Since(start)
	return rep, err
}

// Claim is `zkaas-firstboot claim`: the identify and claim stages alone.
func (r *Runner) Claim(ctx context.Context) (claim.Result, error) {
	r.defaults()
	id, err := r.identify(ctx)
	if err != nil {
		return claim.Result{}, err
	}
	return r.Cloud.Claim(ctx, id)
}

// identify asks IMDS who and where this instance is, with a short bound —
// without IMDS nothing else can work — and checks that the ensemble has a
// node this instance could become there.
func (r *Runner) identify(ctx context.Context) (identity.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id, err := r.Metadata.Identify(ctx)
	if err != nil {
		return id, err
	}
	r.Log.Info("identified", "step", "identify", "instance", id.InstanceID, "az", id.AZ, "region", id.Region)
	if id.Region != r.Config.Region() {
		return id, fmt.Errorf("instance %s is in region %s but ensemble %s is in %s: launch it in %s or fix the config",
			id.InstanceID, id.Region, r.Config.Ensemble, r.Config.Region(), r.Config.Region())
	}
	for _, n := range r.Config.Nodes {
		if n.AZ == id.AZ && (r.Config.Node == 0 || r.Config.Node == n.ID) {
			return id, nil
		}
	}
	what := "no node"
	if r.Config.Node != 0 {
		what = fmt.Sprintf("pinned node %d is not", r.Config.Node)
	}
	return id, fmt.Errorf("ensemble %s has %s in %s, where instance %s runs: check the ASG's subnets against the config's nodes",
		r.Config.Ensemble, what, id.AZ, id.InstanceID)
}

// secretsTimeout bounds the secrets stage: a few calls, each retried a few
// times by the SDK, not the whole boot's budget.
const secretsTimeout = 2 * time.Minute

// secrets fetches the node's material and logs which references it
// fetched.
func (r *Runner) secrets(ctx context.Context, c claim.Result) (zookeeper.Material, []string, error) {
	if r.Secrets == nil {
		return zookeeper.Material{}, nil, errors.New("the config names secrets but the runner has no secrets fetcher")
	}
	ctx, cancel := context.WithTimeoutCause(ctx, secretsTimeout, fmt.Errorf("secrets stage took longer than %s", secretsTimeout))
	defer cancel()
	m, refs, err := r.Secrets.Material(ctx, r.Config, c.Node)
	if err != nil {
		return m, refs, err
	}
	r.Log.InfoContext(ctx, "fetched secret material", "step", "secrets", "node", c.Node, "references", refs)
	return m, refs, nil
}

// network configures the ENI's link, in the subnet IMDS reports for it,
// with the config's MTU, and routes connections to the other nodes from the
// ENI's address (netcfg.Apply explains how).
func (r *Runner) network(ctx context.Context, id identity.Instance, c claim.Result) (netcfg.Result, error) {
	subnet, err := r.Metadata.Subnet(ctx, id, identity.Interface{ID: c.ENI, MAC: c.MAC, SubnetID: c.SubnetID})
	if err != nil {
		return netcfg.Result{}, err
	}
	var peers []netip.Addr
	for _, n := range r.Config.Nodes {
		if n.ID != c.Node && n.IP != c.IP {
			peers = append(peers, n.IP)
		}
	}
	return r.Network.Configure(ctx, netcfg.Spec{
		MAC: c.MAC, IP: c.IP, Subnet: subnet,
		Table: r.Config.Network.RouteTable, Priority: r.Config.Network.RulePriority,
		Peers: peers, MTU: r.Config.Network.MTU,
		Logger: r.Log,
	})
}

// disk finds, checks, formats only if provably blank, and mounts the node's
// volume, then records in EC2 that it holds a filesystem (and in c, for the
// stages after it).
func (r *Runner) disk(ctx context.Context, c *claim.Result) (disk.Result, error) {
	if c.Initialized.IsZero() {
		// The claim's listing may predate a tag another boot wrote; the
		// "blank but initialized: refuse" guard must see the tag as it is.
		tag, err := r.Cloud.InitializedTag(ctx, c.Volume)
		if err != nil {
			return disk.Result{}, err
		}
		c.Initialized = tag
	}
	spec := disk.Spec{
		VolumeID: c.Volume, Device: c.Device,
		FSType: r.Config.Volume.FSType, MountPoint: r.Config.Volume.MountPoint,
		Initialized: !c.Initialized.IsZero(),
		Ensemble:    r.Config.Ensemble, NodeID: c.Node,
		AdoptTag: r.Config.Claim.Tags.Adopt,
	}
	dev, err := r.Disk.ResolveDevice(ctx, spec)
	if err != nil {
		return disk.Result{}, err
	}
	spec.Device = dev
	res, err := r.Disk.Prepare(ctx, spec)
	if errors.Is(err, disk.ErrUnmarked) {
		// A filesystem with data and no identity marker: only the
		// operator's adopt tag can let it in. Read it now, not before:
		// a normal boot never gets here, so it never pays the call.
		adopt, terr := r.Cloud.AdoptTag(ctx, c.Volume)
		if terr != nil {
			// Not a refusal: whether the operator adopted the volume is
			// not known yet, and a retry may read it (a DescribeVolumes
			// failure is usually transient). The refusal is kept as text
			// only, so that errors.Is(err, disk.ErrRefused) is false.
			return res, fmt.Errorf("volume %s: read adopt tag %s, needed because the disk stage refused the volume without it (%v): %w",
				c.Volume, r.Config.Claim.Tags.Adopt, err, terr)
		}
		if adopt != "" {
			r.Log.InfoContext(ctx, "volume tagged for adoption: preparing it again with the tag", "step", "disk",
				"volume", c.Volume, "tag", r.Config.Claim.Tags.Adopt, "value", adopt)
			spec.Adopt = adopt
			res, err = r.Disk.Prepare(ctx, spec)
		}
	}
	// Tag whenever the volume holds our filesystem and is not tagged yet —
	// also after a failure past mkfs, and for a volume formatted by a boot
	// that died before tagging — so it is never formatted again.
	if c.Initialized.IsZero() && (res.Formatted || err == nil) {
		when := r.Now()
		if !res.Identity.FirstFormatted.IsZero() {
			when = res.Identity.FirstFormatted
		}
		// The tag holds seconds; c holds what a fresh read would say.
		when = when.UTC().Truncate(time.Second)
		if terr := r.Cloud.TagInitialized(ctx, c.Volume, when); terr != nil {
			return res, errors.Join(err, terr)
		}
		c.Initialized = when
		res.Changes = append(res.Changes, fmt.Sprintf("tagged %s %s=%s", c.Volume, r.Config.Claim.Tags.Initialized, when.Format(time.RFC3339)))
	}
	return res, err
}

// peerVolumes is the ZooKeeper stage's view of the other nodes' volumes.
func (r *Runner) peerVolumes(ctx context.Context, self int) ([]zookeeper.PeerVolume, error) {
	peers, err := r.Cloud.PeerVolumes(ctx, self)
	if err != nil {
		return nil, err
	}
	out := make([]zookeeper.PeerVolume, len(peers))
	for i, p := range peers {
		out[i] = zookeeper.PeerVolume{NodeID: p.Node, VolumeID: p.Volume, InitializedAt: p.InitializedAt}
	}
	return out, nil
}

// String summarises a report in one line for the journal.
func (rep Report) String() string {
	return "node " + strconv.Itoa(rep.Claim.Node) + " (" + rep.Claim.IP.String() + ", " + rep.Claim.Volume + "): " +
		strconv.Itoa(rep.Changes) + " change(s) in " + rep.Duration.Round(time.Millisecond).String()
}

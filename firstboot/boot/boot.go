// Package boot runs firstboot's stages in order — identify, claim, network,
// disk, ZooKeeper — on a config the caller has loaded; each idempotent, each logged as started,
// finished or failed with its duration, so that `zkaas-firstboot run` does on
// every boot what is missing and nothing else.
package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/claim"
	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/firstboot/identity"
	"github.com/zkaas/zkaas/firstboot/netcfg"
	"github.com/zkaas/zkaas/firstboot/routing"
	"github.com/zkaas/zkaas/firstboot/zookeeper"
	"github.com/zkaas/zkaas/internal/steplog"
)

// Runner holds what the stages need. Zero-valued optional fields get the
// production defaults in Run.
type Runner struct {
	Config ensemble.Config
	IMDS   identity.MetadataAPI
	EC2    claim.EC2API
	Log    *slog.Logger

	// NetworkdDir is where the systemd-networkd files go (/etc/systemd).
	NetworkdDir string
	// ConfDir is where zoo.cfg and java.env go (zookeeper.DefaultConfDir).
	ConfDir string
	// ZooKeeperUser owns the data directories ("zookeeper").
	ZooKeeperUser string
	Disk          *disk.Preparer
	// Now is the clock for the empty-data-tree decision.
	Now func() time.Time
}

// Report is what a run did.
type Report struct {
	Claim     claim.Result  `json:"claim"`
	Network   netcfg.Result `json:"network"`
	Disk      disk.Result   `json:"disk"`
	ZooKeeper ZKReport      `json:"zookeeper"`
	Changes   int           `json:"changes"`
	// Stages are each stage's duration in milliseconds, in run order.
	Stages   []StageTime   `json:"stages"`
	Duration time.Duration `json:"duration"`
}

// StageTime is how long one stage took.
type StageTime struct {
	Stage string  `json:"stage"`
	MS    float64 `json:"ms"`
}

// ZKReport is the ZooKeeper stage's outcome.
type ZKReport struct {
	Changed    []string `json:"changed"`
	HasData    bool     `json:"has_data"`
	Initialize bool     `json:"initialize"`
	Reason     string   `json:"reason,omitempty"`
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
	if r.Disk == nil {
		r.Disk = &disk.Preparer{}
	}
	if r.Disk.Log == nil {
		r.Disk.Log = r.Log
	}
	if r.Now == nil {
		r.Now = time.Now
	}
}

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
// the caller's ctx may cut it shorter.
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
			rep.Claim, err = claim.NewClaimer(r.EC2, r.Config, id, r.Log).Claim(ctx)
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
			rep.ZooKeeper, err = r.zookeeper(zctx, rep.Claim, rep.Disk.Formatted)
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
	return claim.NewClaimer(r.EC2, r.Config, id, r.Log).Claim(ctx)
}

// identify asks IMDS who and where this instance is, with a short bound —
// without IMDS nothing else can work — and checks that the ensemble has a
// node this instance could become there.
func (r *Runner) identify(ctx context.Context) (identity.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id, err := identity.Identify(ctx, r.IMDS)
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

// network configures the ENI's link. The subnet comes from IMDS: when the
// ENI shares the primary interface's subnet (the usual layout) the primary
// MAC's entry answers at once; otherwise the ENI's own MAC entry is polled,
// since IMDS learns of a hot-plugged interface with a lag.
func (r *Runner) network(ctx context.Context, id identity.Instance, c claim.Result) (netcfg.Result, error) {
	mac, err := net.ParseMAC(c.MAC)
	if err != nil {
		return netcfg.Result{}, fmt.Errorf("ENI %s MAC %q: %w", c.ENI, c.MAC, err)
	}
	ip, err := netip.ParseAddr(c.IP)
	if err != nil {
		return netcfg.Result{}, fmt.Errorf("ENI %s IP %q: %w", c.ENI, c.IP, err)
	}
	subnet, err := r.subnet(ctx, id, c)
	if err != nil {
		return netcfg.Result{}, err
	}
	changed, err := routing.WriteNetworkdFiles(r.NetworkdDir, mac)
	if err != nil {
		return netcfg.Result{}, err
	}
	if changed {
		r.reloadNetworkd(ctx)
	}
	res, err := netcfg.Apply(ctx, netcfg.Spec{
		MAC: mac, IP: ip, Subnet: subnet,
		Table: r.Config.Network.RouteTable, Priority: r.Config.Network.RulePriority,
		Logger: r.Log,
	})
	if changed {
		res.Changes = append([]string{"wrote systemd-networkd files for " + c.MAC}, res.Changes...)
	}
	return res, err
}

func (r *Runner) subnet(ctx context.Context, id identity.Instance, c claim.Result) (netip.Prefix, error) {
	base := "network/interfaces/macs/"
	if sid, err := identity.GetMetadata(ctx, r.IMDS, base+id.MAC+"/subnet-id"); err == nil && sid == c.SubnetID {
		cidr, err := identity.GetMetadata(ctx, r.IMDS, base+id.MAC+"/subnet-ipv4-cidr-block")
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.ParsePrefix(cidr)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 4*time.Second) {
		cidr, err := identity.GetMetadata(ctx, r.IMDS, base+c.MAC+"/subnet-ipv4-cidr-block")
		if err == nil {
			return netip.ParsePrefix(cidr)
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, fmt.Errorf("IMDS has no subnet for ENI %s (%s) after 60s: %w", c.ENI, c.MAC, err)
		case <-time.After(wait):
		}
	}
}

// reloadNetworkd asks a running systemd-networkd to read our files, so it
// leaves the ENI alone before we configure it. Where networkd does not run
// (its state directory is missing) there is nothing to tell.
func (r *Runner) reloadNetworkd(ctx context.Context) {
	if _, err := os.Stat("/run/systemd/netif"); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "networkctl", "reload").CombinedOutput(); err != nil {
		r.Log.Warn("networkctl reload failed", "step", "network", "err", err, "output", string(out))
	}
}

// disk finds, checks, formats only if provably blank, and mounts the node's
// volume, then records in EC2 that it holds a filesystem (and in c, for the
// stages after it).
func (r *Runner) disk(ctx context.Context, c *claim.Result) (disk.Result, error) {
	if c.Initialized == "" {
		// The claim's listing may predate a tag another boot wrote; the
		// "blank but initialized: refuse" guard must see the tag as it is.
		tag, err := r.initializedTag(ctx, c.Volume)
		if err != nil {
			return disk.Result{}, err
		}
		c.Initialized = tag
	}
	spec := disk.Spec{
		VolumeID: c.Volume, Device: c.Device,
		FSType: r.Config.Volume.FSType, MountPoint: r.Config.Volume.MountPoint,
		Initialized: c.Initialized != "",
		Ensemble:    r.Config.Ensemble, NodeID: c.Node,
	}
	dev, err := r.Disk.ResolveDevice(ctx, spec)
	if err != nil {
		return disk.Result{}, err
	}
	spec.Device = dev
	res, err := r.Disk.Prepare(ctx, spec)
	// Tag whenever the volume holds our filesystem and is not tagged yet —
	// also after a failure past mkfs, and for a volume formatted by a boot
	// that died before tagging — so it is never formatted again.
	if c.Initialized == "" && (res.Formatted || err == nil) {
		when := r.Now().UTC()
		if !res.Identity.FirstFormatted.IsZero() {
			when = res.Identity.FirstFormatted.UTC()
		}
		if terr := r.tagInitialized(ctx, c.Volume, when); terr != nil {
			return res, errors.Join(err, terr)
		}
		c.Initialized = when.Format(time.RFC3339)
		res.Changes = append(res.Changes, fmt.Sprintf("tagged %s %s=%s", c.Volume, r.Config.Claim.Tags.Initialized, c.Initialized))
	}
	return res, err
}

// initializedTag reads the volume's initialized tag fresh from EC2.
func (r *Runner) initializedTag(ctx context.Context, vol string) (string, error) {
	out, err := r.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}})
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", vol, err)
	}
	for _, v := range out.Volumes {
		for _, t := range v.Tags {
			if aws.ToString(t.Key) == r.Config.Claim.Tags.Initialized {
				return aws.ToString(t.Value), nil
			}
		}
	}
	return "", nil
}

func (r *Runner) tagInitialized(ctx context.Context, vol string, when time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err := r.EC2.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: []string{vol},
		Tags:      []types.Tag{{Key: aws.String(r.Config.Claim.Tags.Initialized), Value: aws.String(when.Format(time.RFC3339))}},
	})
	if err != nil {
		return fmt.Errorf("tag %s initialized: %w", vol, err)
	}
	return nil
}

// zookeeper renders the config and decides about an empty data tree: a
// fresh volume trusts its empty tree only while the ensemble is brand new;
// otherwise it must find a quorum to sync from, and is refused without one
// (re-probing until the deadline) — never started as an empty voter.
func (r *Runner) zookeeper(ctx context.Context, c claim.Result, formattedNow bool) (ZKReport, error) {
	var rep ZKReport
	ip, err := netip.ParseAddr(c.IP)
	if err != nil {
		return rep, err
	}
	layout := zookeeper.DefaultLayout(r.Config.Volume.MountPoint)
	layout.ConfDir = r.ConfDir
	files, err := zookeeper.Render(r.Config, c.Node, ip, layout)
	if err != nil {
		return rep, err
	}
	owner, err := zookeeper.LookupOwner(r.ZooKeeperUser)
	if err != nil {
		return rep, err
	}
	if rep.Changed, err = zookeeper.Write(files, owner); err != nil {
		return rep, err
	}
	if rep.HasData, err = zookeeper.HasData(layout); err != nil {
		return rep, err
	}
	in := zookeeper.InitInput{
		NodeID: c.Node, HasData: rep.HasData, FormattedNow: formattedNow,
		Self:            peerVolume(claim.PeerInit{Node: c.Node, Volume: c.Volume, Initialized: c.Initialized}),
		BootstrapWindow: r.Config.Claim.BootstrapWindow.D(),
	}
	var peers []netip.AddrPort
	for _, n := range r.Config.Nodes {
		if n.ID != c.Node {
			peers = append(peers, netip.AddrPortFrom(n.IP, uint16(r.Config.ZooKeeper.ClientPort)))
		}
	}
	for attempt := 0; ; attempt++ {
		in.Now = r.Now()
		if !rep.HasData {
			// An empty tree: the decision rests on the peers' volumes as
			// they are now, and on whether a quorum serves.
			others, err := claim.PeerVolumes(ctx, r.EC2, r.Config, c.Node)
			if err != nil {
				return rep, err
			}
			in.Others = in.Others[:0]
			for _, p := range others {
				in.Others = append(in.Others, peerVolume(p))
			}
			q := zookeeper.ProbeQuorum(ctx, peers, 2*time.Second)
			in.QuorumReachable = q.Reachable
			r.Log.Info("quorum probe", "step", "zookeeper", "quorum", q.String())
		}
		d, err := zookeeper.DecideInitialize(in)
		if err == nil {
			rep.Initialize, rep.Reason = d.Initialize, d.Reason
			changed, err := zookeeper.SetInitializeMarker(layout, d.Initialize, owner)
			if changed {
				rep.Changed = append(rep.Changed, layout.InitializePath())
			}
			return rep, err
		}
		if !errors.Is(err, zookeeper.ErrUnsafeEmptyTree) {
			return rep, err
		}
		r.Log.Warn("empty data tree and no quorum yet; probing again", "step", "zookeeper", "err", err)
		select {
		case <-ctx.Done():
			return rep, fmt.Errorf("%w (gave up: %v)", err, context.Cause(ctx))
		case <-time.After(min(time.Duration(attempt+1)*time.Second, 10*time.Second)):
		}
	}
}

// restoredLongAgo stands for "holds data of unknown age": a volume restored
// from a snapshot carries no initialized tag (EC2 does not copy tags onto
// restored volumes) but holds the ensemble's data, so it must count as
// initialized before any bootstrap window.
var restoredLongAgo = time.Unix(1, 0).UTC()

func peerVolume(p claim.PeerInit) zookeeper.PeerVolume {
	pv := zookeeper.PeerVolume{NodeID: p.Node, VolumeID: p.Volume}
	if t, err := time.Parse(time.RFC3339, p.Initialized); err == nil {
		pv.InitializedAt = t
	} else if p.Snapshot != "" {
		pv.InitializedAt = restoredLongAgo
	}
	return pv
}

// String summarises a report in one line for the journal.
func (rep Report) String() string {
	return "node " + strconv.Itoa(rep.Claim.Node) + " (" + rep.Claim.IP + ", " + rep.Claim.Volume + "): " +
		strconv.Itoa(rep.Changes) + " change(s) in " + rep.Duration.Round(time.Millisecond).String()
}

package claim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/identity"
)

// Claimer takes one ZooKeeper node's identity for this instance: the node's
// ENI first (AttachNetworkInterface is the lock: the loser of a race gets an
// in-use error), then the volume tagged with the same node, never another's.
type Claimer struct {
	EC2      EC2API
	Config   ensemble.Config
	Identity identity.Instance
	Log      *slog.Logger
	// Devices, when set, tells when the instance sees the ENI's NIC and the
	// volume's block device (package hotplug); nil polls EC2 instead.
	Devices Devices
	// Poll paces the attachment waits once the instance sees the devices
	// (or without Devices); Fallback paces them while it does not yet, in
	// case a signal never comes; Relist paces new rounds when no node is
	// free, and waits on a predecessor still releasing. Tests shorten them.
	Poll     Backoff
	Fallback Backoff
	Relist   Backoff
	// Spread is how long, per free ENI beyond the first, boots that see
	// several free ENIs spread their attaches over (see takeENI).
	Spread time.Duration
	Rand   *rand.Rand
	// Counter, when set, counts this Claimer's EC2 client (CallCounter);
	// the result reports its figure.
	Counter *CallCounter

	// What this claim did, remembered across rounds because EC2's Describe
	// answers lag its mutations: an ENI we attached may still be listed as
	// available, and one we detached as still ours.
	mine     *ownENI
	detached map[string]bool // ENI attachment ids we let go of
	// myVol is the volume this process attached (and has not let go of):
	// with mine, what a fatal failure gives back.
	myVol string
	// Where an attachment stuck: after a forced detach EC2 may keep an ENI
	// device index, or a volume's device name, unusable on this instance.
	badIndex  map[int32]bool
	badDevice map[string]bool
}

// ownENI is an ENI attachment this process made.
type ownENI struct {
	eni, attachment string
	deviceIndex     int32
	since           time.Time // when the attach call returned
}

// NewClaimer returns a Claimer with production pacing: once the instance
// sees the devices (or without Devices), the first attachment poll within
// 0.3 s (every poll interval overshoots the real completion by up to one
// interval), capped at 0.4 s; while it does not yet, a Describe every 4 to
// 8 s, which only matters when a signal never comes; re-listing and
// waiting on others back off to 8 s, so a storm of losers or of
// replacements waiting for predecessors stays well inside EC2's
// per-account Describe budget.
func NewClaimer(api EC2API, cfg ensemble.Config, id identity.Instance, log *slog.Logger) *Claimer {
	return &Claimer{
		EC2: api, Config: cfg, Identity: id, Log: log,
		Poll:     Backoff{First: 300 * time.Millisecond, Factor: 1.3, Max: 400 * time.Millisecond, Jitter: 0.2},
		Fallback: Backoff{First: 4 * time.Second, Factor: 1.5, Max: 8 * time.Second, Jitter: 0.2},
		Relist:   Backoff{First: 500 * time.Millisecond, Factor: 2, Max: 8 * time.Second, Jitter: 0.5},
		Spread:   100 * time.Millisecond,
		Rand:     rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0)),
	}
}

// errRetry marks a round that found nothing it could take yet; the message
// says what was missing, for the final error at the deadline.
type errRetry struct{ why string }

func (e errRetry) Error() string { return e.why }

// ErrCannotClaim marks problems waiting cannot fix: misconfiguration,
// missing permissions, an instance type that cannot hold the node's ENI.
// Every replacement would hit them too (test with errors.Is).
var ErrCannotClaim = errors.New("cannot claim")

// Claim runs rounds until this instance holds a node's ENI and volume, both
// attached, or the configured deadline passes.
func (c *Claimer) Claim(ctx context.Context) (Result, error) {
	deadline := c.Config.Claim.Deadline.D()
	ctx, cancel := context.WithTimeoutCause(ctx, deadline, fmt.Errorf("claim deadline %s passed", deadline))
	defer cancel()
	c.mine, c.myVol, c.detached, c.badIndex, c.badDevice = nil, "", map[string]bool{}, map[int32]bool{}, map[string]bool{}
	start := time.Now()
	var last error
	for round := 0; ; round++ {
		res, err := c.round(ctx)
		if err == nil {
			res.Phases.Total = time.Since(start)
			c.Log.Info("claimed", "step", "claim", "node", res.Node, "eni", res.ENI, "ip", res.IP,
				"volume", res.Volume, "reused", res.Reused, "duration", res.Phases.Total)
			return res, nil
		}
		if !errors.Is(err, ErrCannotClaim) && fatal(err) {
			err = fmt.Errorf("%w: %w", ErrCannotClaim, err)
		}
		if errors.Is(err, ErrCannotClaim) {
			c.giveBack(ctx, err)
			return Result{}, err
		}
		// The last round's own account of what was missing beats the bare
		// context error its calls return once the deadline has passed.
		var why errRetry
		if errors.As(err, &why) || last == nil {
			last = err
		}
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("%w: %v", context.Cause(ctx), last)
		}
		c.Log.Info("claim round found nothing to take yet", "step", "claim", "round", round, "why", err.Error())
		if sleep(ctx, c.Relist.Delay(round, c.Rand)) != nil {
			return Result{}, fmt.Errorf("%w: %v", context.Cause(ctx), last)
		}
	}
}

// giveBack detaches what this process attached when the claim fails for
// good: node N's ENI (and volume) must not stay on an instance that cannot
// become node N, where they would block the node's replacement for as long
// as the boot's failure path holds the instance. The attachments are
// healthy, so no force. It runs under cleanup's own bound (the claim's
// deadline may have passed); what it cannot detach it logs, and the fatal
// error stays the claim's answer. Attachments this instance already held
// before this process (a reboot) are left alone.
func (c *Claimer) giveBack(ctx context.Context, cause error) {
	why := fmt.Sprintf("the claim failed: %v", cause)
	if c.myVol != "" {
		c.release(ctx, c.myVol, why)
	}
	if c.mine == nil {
		return
	}
	m := *c.mine
	dctx, cancel := cleanup(ctx)
	defer cancel()
	_, err := c.EC2.DetachNetworkInterface(dctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(m.attachment)})
	if err != nil && errorCode(err) != "InvalidAttachmentID.NotFound" {
		c.Log.Error("could not give back ENI", "step", "claim-eni", "eni", m.eni, "attachment", m.attachment, "why", why, "err", err)
		return
	}
	c.detached[m.attachment] = true
	c.mine = nil
	c.Log.Warn("gave back ENI", "step", "claim-eni", "eni", m.eni, "attachment", m.attachment, "why", why)
}

// inventory is one round's view of the ensemble's resources.
type inventory struct {
	enis []types.NetworkInterface // this AZ
	vols []types.Volume           // all AZs: peers' initialized tags come along
}

func (c *Claimer) discover(ctx context.Context) (inventory, error) {
	var inv inventory
	var wg sync.WaitGroup
	var eniErr, volErr error
	wg.Go(func() { inv.enis, eniErr = c.listENIs(ctx) })
	wg.Go(func() { inv.vols, volErr = describeEnsembleVolumes(ctx, c.EC2, c.Config) })
	wg.Wait()
	return inv, errors.Join(eniErr, volErr)
}

// listENIs lists the ensemble's ENIs in this AZ.
func (c *Claimer) listENIs(ctx context.Context) ([]types.NetworkInterface, error) {
	tags := c.Config.Claim.Tags
	p := ec2.NewDescribeNetworkInterfacesPaginator(c.EC2, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{
			{Name: aws.String("tag:" + tags.Ensemble), Values: []string{c.Config.Ensemble}},
			{Name: aws.String("availability-zone"), Values: []string{c.Identity.AZ}},
		},
	})
	var enis []types.NetworkInterface
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe ENIs of ensemble %s in %s: %w", c.Config.Ensemble, c.Identity.AZ, err)
		}
		enis = append(enis, out.NetworkInterfaces...)
	}
	return enis, nil
}

func (c *Claimer) nodeOf(tags []types.Tag) int { return tagNode(tags, c.Config.Claim.Tags.Node) }

func (c *Claimer) heldByMe(a *types.NetworkInterfaceAttachment) bool {
	return a != nil && aws.ToString(a.InstanceId) == c.Identity.InstanceID &&
		!c.detached[aws.ToString(a.AttachmentId)] &&
		(a.Status == types.AttachmentStatusAttaching || a.Status == types.AttachmentStatusAttached)
}

func (c *Claimer) volHeldByMe(v types.Volume) bool {
	_, ok := c.myVolAttachment(v)
	return ok
}

// myVolAttachment is this instance's live entry among the volume's
// attachments, which need not be the first.
func (c *Claimer) myVolAttachment(v types.Volume) (types.VolumeAttachment, bool) {
	for _, a := range v.Attachments {
		if aws.ToString(a.InstanceId) == c.Identity.InstanceID &&
			(a.State == types.VolumeAttachmentStateAttaching || a.State == types.VolumeAttachmentStateAttached) {
			return a, true
		}
	}
	return types.VolumeAttachment{}, false
}

// heldByOther reports whether another instance holds (or is taking) the ENI.
func (c *Claimer) heldByOther(e types.NetworkInterface) bool {
	a := e.Attachment
	return a != nil && aws.ToString(a.InstanceId) != c.Identity.InstanceID &&
		(a.Status == types.AttachmentStatusAttaching || a.Status == types.AttachmentStatusAttached)
}

// round is one pass: list; settle what this instance already holds; take an
// ENI if it holds none; take its node's volume; wait for both attachments.
func (c *Claimer) round(ctx context.Context) (Result, error) {
	var res Result
	t := time.Now()
	inv, err := c.discover(ctx)
	if err != nil {
		return res, err
	}
	res.Phases.Discover = time.Since(t)

	t = time.Now()
	w := &waiter{c: c}
	held, err := c.settle(ctx, inv)
	if err != nil {
		return res, err
	}
	if held != nil {
		w.setENI(c, *held, aws.ToString(held.Attachment.AttachmentId), aws.ToInt32(held.Attachment.DeviceIndex))
		if c.mine != nil && c.mine.eni == w.eniID {
			w.eniSince = c.mine.since // the stuck bound counts from our attach call
		}
		res.Reused = true
		c.Log.Info("reusing ENI already attached to this instance", "step", "claim-eni", "eni", w.eniID, "node", w.node)
	} else if prefer := c.preferred(inv); prefer != 0 {
		// The node is known before the ENI is ours: claim both at once. If
		// the ENI is lost after all, the volume is given back.
		vol, err := c.volumeOf(inv, prefer)
		if err != nil {
			return res, err
		}
		w.volID = aws.ToString(vol.VolumeId)
		var eniErr, volErr error
		var wg sync.WaitGroup
		wg.Go(func() { eniErr = c.takeENI(ctx, inv, prefer, w) })
		wg.Go(func() { volErr = w.takeVolume(ctx, vol) })
		wg.Wait()
		if eniErr != nil {
			if w.device != "" {
				c.release(ctx, w.volID, "its ENI went to another instance")
			}
			return res, eniErr
		}
		if volErr != nil {
			return res, volErr
		}
	} else if err := c.takeENI(ctx, inv, 0, w); err != nil {
		return res, err
	}
	res.Phases.ENI = time.Since(t)

	t = time.Now()
	if w.volID == "" {
		vol, err := c.volumeOf(inv, w.node)
		if err != nil {
			return res, err
		}
		w.volID = aws.ToString(vol.VolumeId)
		// Overlap: the volume attach starts as soon as the ENI is ours.
		if err := w.takeVolume(ctx, vol); err != nil {
			return res, err
		}
	}
	res.Reused = res.Reused && w.volReused
	res.Phases.Volume = time.Since(t)

	t = time.Now()
	if err := w.wait(ctx); err != nil {
		return res, err
	}
	res.Phases.Wait = time.Since(t)
	// EC2 answers in text; here the address becomes typed, once.
	ip, err := netip.ParseAddr(w.ip)
	if err != nil {
		return res, fmt.Errorf("%w: ENI %s has IP %q: %v", ErrCannotClaim, w.eniID, w.ip, err)
	}
	mac, err := net.ParseMAC(w.mac)
	if err != nil {
		return res, fmt.Errorf("%w: ENI %s has MAC %q: %v", ErrCannotClaim, w.eniID, w.mac, err)
	}
	res.Node, res.ENI, res.IP, res.MAC, res.SubnetID = w.node, w.eniID, ip, mac, w.subnet
	res.DeviceIndex, res.Volume, res.Device = w.deviceIndex, w.volID, w.device
	for _, v := range inv.vols {
		if aws.ToString(v.VolumeId) == w.volID {
			res.Initialized = initializedAt(v.Tags, c.Config.Claim.Tags.Initialized)
		}
	}
	res.Calls = c.Counter.Calls()
	return res, nil
}

// settle reconciles what this instance holds with the one rule — at most
// one node's ENI, and only that node's volume — and returns the ENI it keeps
// (nil if none). It lets go of extra ENIs (a retried attach whose first
// response was lost, or a stale listing, can leave two) and of volumes of
// nodes whose ENI it does not hold.
func (c *Claimer) settle(ctx context.Context, inv inventory) (*types.NetworkInterface, error) {
	var held []types.NetworkInterface
	for _, e := range inv.enis {
		if c.heldByMe(e.Attachment) {
			held = append(held, e)
		} else if c.mine != nil && aws.ToString(e.NetworkInterfaceId) == c.mine.eni {
			// Our own attach succeeded and we never let go of it: the
			// listing has not caught up (it still shows the ENI available,
			// or an older attachment: views are not monotonic).
			e.Attachment = &types.NetworkInterfaceAttachment{
				AttachmentId: aws.String(c.mine.attachment), InstanceId: aws.String(c.Identity.InstanceID),
				Status: types.AttachmentStatusAttaching, DeviceIndex: aws.Int32(c.mine.deviceIndex),
			}
			held = append(held, e)
		}
	}
	var heldVols []types.Volume
	for _, v := range inv.vols {
		if c.volHeldByMe(v) {
			heldVols = append(heldVols, v)
		}
	}
	if len(held) > 1 {
		keep := c.keep(held, heldVols)
		for _, e := range held {
			if aws.ToString(e.NetworkInterfaceId) != aws.ToString(keep.NetworkInterfaceId) {
				if err := c.releaseENI(ctx, e); err != nil {
					return nil, err
				}
			}
		}
		held = []types.NetworkInterface{keep}
	}
	var kept *types.NetworkInterface
	if len(held) == 1 {
		kept = &held[0]
		if err := c.validate(*kept); err != nil {
			return nil, err
		}
	}
	for _, v := range heldVols {
		node := c.nodeOf(v.Tags)
		switch {
		case kept != nil && node != c.nodeOf(kept.TagSet):
			c.release(ctx, aws.ToString(v.VolumeId), fmt.Sprintf("this instance is node %d, not %d", c.nodeOf(kept.TagSet), node))
		case kept == nil && c.nodeHeldByOther(inv, node):
			c.release(ctx, aws.ToString(v.VolumeId), fmt.Sprintf("node %d's ENI is held by another instance", node))
		}
	}
	return kept, nil
}

// keep picks which of several held ENIs to keep: the one this process
// attached, else the one whose node's volume is held, else the lowest node.
func (c *Claimer) keep(held []types.NetworkInterface, vols []types.Volume) types.NetworkInterface {
	for _, e := range held {
		if c.mine != nil && aws.ToString(e.NetworkInterfaceId) == c.mine.eni {
			return e
		}
	}
	for _, e := range held {
		for _, v := range vols {
			if c.nodeOf(v.Tags) == c.nodeOf(e.TagSet) {
				return e
			}
		}
	}
	return slices.MinFunc(held, func(a, b types.NetworkInterface) int { return c.nodeOf(a.TagSet) - c.nodeOf(b.TagSet) })
}

// validate checks a held ENI against the config, as a fresh claim would.
func (c *Claimer) validate(e types.NetworkInterface) error {
	if m := c.mismatch(e); m != "" {
		return fmt.Errorf("%w: this instance holds %s", ErrCannotClaim, m)
	}
	return nil
}

// mismatch says how an ENI disagrees with the config, or "".
func (c *Claimer) mismatch(e types.NetworkInterface) string {
	id, node := aws.ToString(e.NetworkInterfaceId), c.nodeOf(e.TagSet)
	n, ok := c.Config.NodeByID(node)
	switch {
	case !ok:
		v, _ := tagValue(e.TagSet, c.Config.Claim.Tags.Node)
		return fmt.Sprintf("%s has %s=%q, not a node of the config", id, c.Config.Claim.Tags.Node, v)
	case n.AZ != c.Identity.AZ:
		return fmt.Sprintf("%s (node %d) is in %s but the config puts node %d in %s", id, node, c.Identity.AZ, node, n.AZ)
	case n.IP.String() != aws.ToString(e.PrivateIpAddress):
		return fmt.Sprintf("%s (node %d) has IP %s but the config says %s", id, node, aws.ToString(e.PrivateIpAddress), n.IP)
	}
	return ""
}

// preferred is the only node this instance may become before it holds an
// ENI: the pinned one, or that of a volume it still holds.
func (c *Claimer) preferred(inv inventory) int {
	if c.Config.Node != 0 {
		return c.Config.Node
	}
	for _, v := range inv.vols {
		if c.volHeldByMe(v) {
			return c.nodeOf(v.Tags)
		}
	}
	return 0
}

func (c *Claimer) nodeHeldByOther(inv inventory, node int) bool {
	for _, e := range inv.enis {
		if c.nodeOf(e.TagSet) == node && c.heldByOther(e) {
			return true
		}
	}
	return false
}

// volumeOf finds the one volume tagged with node in this AZ.
func (c *Claimer) volumeOf(inv inventory, node int) (types.Volume, error) {
	var mine []types.Volume
	for _, v := range inv.vols {
		if c.nodeOf(v.Tags) == node && aws.ToString(v.AvailabilityZone) == c.Identity.AZ {
			mine = append(mine, v)
		}
	}
	switch len(mine) {
	case 1:
		return mine[0], nil
	case 0:
		tags := c.Config.Claim.Tags
		return types.Volume{}, errRetry{fmt.Sprintf("no volume is tagged %s=%s, %s=%d in %s",
			tags.Ensemble, c.Config.Ensemble, tags.Node, node, c.Identity.AZ)}
	}
	var ids []string
	for _, v := range mine {
		ids = append(ids, aws.ToString(v.VolumeId))
	}
	return types.Volume{}, fmt.Errorf("%w: node %d has %d volumes in %s (%s): tag exactly one", ErrCannotClaim, node, len(mine), c.Identity.AZ, strings.Join(ids, ", "))
}

package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/firstboot/config"
)

// Claimer takes one ZooKeeper node's identity for this instance: the node's
// ENI first (AttachNetworkInterface is the lock: the loser of a race gets an
// in-use error), then the volume tagged with the same node, never another's.
type Claimer struct {
	EC2      EC2API
	Config   config.Config
	Identity Identity
	Log      *slog.Logger
	// Poll paces the attachment waits; Relist paces new rounds when no node
	// is free or a predecessor is still releasing. Tests shorten them.
	Poll   Backoff
	Relist Backoff
	Rand   *rand.Rand
}

// NewClaimer returns a Claimer with production pacing: the first attachment
// poll within 0.3 s (attaches usually finish in seconds, and every poll
// interval overshoots the real completion by up to one interval), capped at
// 0.4 s; re-listing backs off to 8 s so a storm of losers stays well inside
// EC2's per-account Describe budget.
func NewClaimer(api EC2API, cfg config.Config, id Identity, log *slog.Logger) *Claimer {
	return &Claimer{
		EC2: api, Config: cfg, Identity: id, Log: log,
		Poll:   Backoff{First: 300 * time.Millisecond, Factor: 1.3, Max: 400 * time.Millisecond, Jitter: 0.2},
		Relist: Backoff{First: 500 * time.Millisecond, Factor: 2, Max: 8 * time.Second, Jitter: 0.5},
		Rand:   rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0)),
	}
}

// Result is what the claim produced, printed as JSON by `zkaas-firstboot claim`.
type Result struct {
	Node        int    `json:"node"`
	ENI         string `json:"eni_id"`
	IP          string `json:"ip"`
	MAC         string `json:"mac"`
	SubnetID    string `json:"subnet_id"`
	DeviceIndex int32  `json:"device_index"`
	Volume      string `json:"volume_id"`
	Device      string `json:"device"`
	// Initialized is the value of the volume's initialized tag ("" = never
	// formatted); Peers carries the same for the other nodes' volumes, which
	// the disk and ZooKeeper steps need to decide about empty data trees.
	Initialized string     `json:"initialized,omitempty"`
	Peers       []PeerInit `json:"peers"`
	Reused      bool       `json:"reused"`
	Phases      Phases     `json:"phases"`
	Calls       int        `json:"ec2_calls"`
}

// PeerInit is another node's volume and its initialized tag.
type PeerInit struct {
	Node        int    `json:"node"`
	Volume      string `json:"volume_id"`
	Initialized string `json:"initialized,omitempty"`
}

// Phases are how long each part of the claim took.
type Phases struct {
	Discover time.Duration `json:"discover"`
	ENI      time.Duration `json:"eni"`
	Volume   time.Duration `json:"volume"`
	Wait     time.Duration `json:"wait"`
	Total    time.Duration `json:"total"`
}

// errRetry marks a round that found nothing it could take yet; the message
// says what was missing, for the final error at the deadline.
type errRetry struct{ why string }

func (e errRetry) Error() string { return e.why }

// errFatal marks problems waiting cannot fix (misconfiguration).
var errFatal = errors.New("cannot claim")

// Claim runs rounds until this instance holds a node's ENI and volume, both
// attached, or the configured deadline passes.
func (c *Claimer) Claim(ctx context.Context) (Result, error) {
	deadline := c.Config.Claim.Deadline.D()
	ctx, cancel := context.WithTimeoutCause(ctx, deadline, fmt.Errorf("claim deadline %s passed", deadline))
	defer cancel()
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
		if errors.Is(err, errFatal) || fatal(err) {
			return Result{}, err
		}
		if ctx.Err() == nil || last == nil {
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

// inventory is one round's view of the ensemble's resources.
type inventory struct {
	enis []types.NetworkInterface // this AZ
	vols []types.Volume           // all AZs: peers' initialized tags come along
}

func (c *Claimer) discover(ctx context.Context) (inventory, error) {
	tags := c.Config.Claim.Tags
	ensemble := types.Filter{Name: aws.String("tag:" + tags.Ensemble), Values: []string{c.Config.Ensemble}}
	var inv inventory
	var wg sync.WaitGroup
	var eniErr, volErr error
	wg.Go(func() {
		p := ec2.NewDescribeNetworkInterfacesPaginator(c.EC2, &ec2.DescribeNetworkInterfacesInput{
			Filters: []types.Filter{ensemble, {Name: aws.String("availability-zone"), Values: []string{c.Identity.AZ}}},
		})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				eniErr = fmt.Errorf("describe ENIs of ensemble %s in %s: %w", c.Config.Ensemble, c.Identity.AZ, err)
				return
			}
			inv.enis = append(inv.enis, out.NetworkInterfaces...)
		}
	})
	wg.Go(func() {
		p := ec2.NewDescribeVolumesPaginator(c.EC2, &ec2.DescribeVolumesInput{Filters: []types.Filter{ensemble}})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				volErr = fmt.Errorf("describe volumes of ensemble %s: %w", c.Config.Ensemble, err)
				return
			}
			inv.vols = append(inv.vols, out.Volumes...)
		}
	})
	wg.Wait()
	return inv, errors.Join(eniErr, volErr)
}

func tagValue(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

func (c *Claimer) nodeOf(tags []types.Tag) int {
	v, ok := tagValue(tags, c.Config.Claim.Tags.Node)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return n
}

func (c *Claimer) heldByMe(a *types.NetworkInterfaceAttachment) bool {
	return a != nil && aws.ToString(a.InstanceId) == c.Identity.InstanceID &&
		(a.Status == types.AttachmentStatusAttaching || a.Status == types.AttachmentStatusAttached)
}

func (c *Claimer) volHeldByMe(v types.Volume) bool {
	for _, a := range v.Attachments {
		if aws.ToString(a.InstanceId) == c.Identity.InstanceID &&
			(a.State == types.VolumeAttachmentStateAttaching || a.State == types.VolumeAttachmentStateAttached) {
			return true
		}
	}
	return false
}

// round is one pass: list, take or reuse an ENI, take or reuse its node's
// volume, and wait for both attachments.
func (c *Claimer) round(ctx context.Context) (Result, error) {
	var res Result
	t := time.Now()
	inv, err := c.discover(ctx)
	if err != nil {
		return res, err
	}
	res.Phases.Discover = time.Since(t)

	// A reboot, or a rerun after a failed step, finds what it already holds.
	var held []types.NetworkInterface
	for _, e := range inv.enis {
		if c.heldByMe(e.Attachment) {
			held = append(held, e)
		}
	}
	prefer := c.Config.Node
	for _, v := range inv.vols {
		if c.volHeldByMe(v) && prefer == 0 {
			// We hold a volume but no ENI (an interrupted claim): the only
			// node we may become is that volume's.
			prefer = c.nodeOf(v.Tags)
		}
	}
	w := &waiter{c: c}
	t = time.Now()
	switch {
	case len(held) == 1:
		e := held[0]
		w.setENI(c, e, aws.ToString(e.Attachment.AttachmentId), aws.ToInt32(e.Attachment.DeviceIndex))
		res.Reused = true
		c.Log.Info("reusing ENI already attached to this instance", "step", "claim-eni", "eni", w.eniID, "node", w.node)
	case len(held) > 1:
		var ids []string
		for _, e := range held {
			ids = append(ids, fmt.Sprintf("%s (node %d)", aws.ToString(e.NetworkInterfaceId), c.nodeOf(e.TagSet)))
		}
		return res, fmt.Errorf("%w: instance %s holds %d ensemble ENIs: %s", errFatal, c.Identity.InstanceID, len(held), strings.Join(ids, ", "))
	case prefer != 0:
		// The node is known before the ENI is ours: claim both at once. If
		// the ENI is lost after all, the volume must be given back.
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
			w.releaseVolume(ctx)
			return res, eniErr
		}
		if volErr != nil {
			return res, volErr
		}
	default:
		if err := c.takeENI(ctx, inv, 0, w); err != nil {
			return res, err
		}
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
	res.Node, res.ENI, res.IP, res.MAC, res.SubnetID = w.node, w.eniID, w.ip, w.mac, w.subnet
	res.DeviceIndex, res.Volume, res.Device = w.deviceIndex, w.volID, w.device
	for _, v := range inv.vols {
		init, _ := tagValue(v.Tags, c.Config.Claim.Tags.Initialized)
		if aws.ToString(v.VolumeId) == w.volID {
			res.Initialized = init
		} else if n := c.nodeOf(v.Tags); n != w.node {
			res.Peers = append(res.Peers, PeerInit{Node: n, Volume: aws.ToString(v.VolumeId), Initialized: init})
		}
	}
	slices.SortFunc(res.Peers, func(a, b PeerInit) int { return a.Node - b.Node })
	if cnt, ok := c.EC2.(*Counting); ok {
		res.Calls = cnt.Calls()
	}
	return res, nil
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
	return types.Volume{}, fmt.Errorf("%w: node %d has %d volumes in %s (%s): tag exactly one", errFatal, node, len(mine), c.Identity.AZ, strings.Join(ids, ", "))
}

// takeENI attaches the first free, valid ENI of this AZ (only node prefer's
// when set), in shuffled order so a storm of boots spreads over the slots.
func (c *Claimer) takeENI(ctx context.Context, inv inventory, prefer int, w *waiter) error {
	var candidates []types.NetworkInterface
	var misconfigured, others []string
	for _, e := range inv.enis {
		id, node := aws.ToString(e.NetworkInterfaceId), c.nodeOf(e.TagSet)
		if prefer != 0 && node != prefer {
			continue
		}
		if e.Status != types.NetworkInterfaceStatusAvailable {
			if e.Attachment != nil {
				others = append(others, fmt.Sprintf("%s (node %d) %s to %s", id, node, e.Attachment.Status, aws.ToString(e.Attachment.InstanceId)))
			}
			continue
		}
		n, ok := c.Config.NodeByID(node)
		switch {
		case !ok:
			v, _ := tagValue(e.TagSet, c.Config.Claim.Tags.Node)
			misconfigured = append(misconfigured, fmt.Sprintf("%s has %s=%q, not a node of the config", id, c.Config.Claim.Tags.Node, v))
		case n.AZ != c.Identity.AZ:
			misconfigured = append(misconfigured, fmt.Sprintf("%s (node %d) is in %s but the config puts node %d in %s", id, node, c.Identity.AZ, node, n.AZ))
		case n.IP.String() != aws.ToString(e.PrivateIpAddress):
			misconfigured = append(misconfigured, fmt.Sprintf("%s (node %d) has IP %s but the config says %s", id, node, aws.ToString(e.PrivateIpAddress), n.IP))
		default:
			candidates = append(candidates, e)
		}
	}
	c.Rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	for _, e := range candidates {
		id := aws.ToString(e.NetworkInterfaceId)
	indexes:
		for idx := int32(1); idx <= 15; idx++ {
			t := time.Now()
			out, err := c.EC2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
				NetworkInterfaceId: aws.String(id), InstanceId: aws.String(c.Identity.InstanceID), DeviceIndex: aws.Int32(idx),
			})
			switch {
			case err == nil:
				w.setENI(c, e, aws.ToString(out.AttachmentId), idx)
				c.Log.Info("attached ENI", "step", "claim-eni", "eni", id, "node", w.node,
					"attachment", w.attachmentID, "device_index", idx, "duration", time.Since(t))
				return nil
			case slotTaken(err):
				continue // the instance has an interface at idx already
			case lostRace(err):
				c.Log.Info("lost the race for ENI", "step", "claim-eni", "eni", id, "code", errorCode(err))
				others = append(others, fmt.Sprintf("%s (node %d) taken by a concurrent boot", id, c.nodeOf(e.TagSet)))
				break indexes
			default:
				return fmt.Errorf("attach %s to %s: %w", id, c.Identity.InstanceID, err)
			}
		}
	}
	if len(misconfigured) > 0 {
		// Waiting will not change an ENI's address or tags: fail now so the
		// operator sees it, instead of at the deadline.
		return fmt.Errorf("%w: %s", errFatal, strings.Join(misconfigured, "; "))
	}
	what := "any node"
	if prefer != 0 {
		what = fmt.Sprintf("node %d", prefer)
	}
	why := fmt.Sprintf("no free ENI for %s of ensemble %s in %s", what, c.Config.Ensemble, c.Identity.AZ)
	if len(others) > 0 {
		why += ": " + strings.Join(others, "; ")
	}
	return errRetry{why}
}

// waiter holds one round's claim and watches its attachments with one
// DescribeInstances per poll: the instance's networkInterfaceSet and
// blockDeviceMapping carry both attachment states, which halves the calls of
// polling each resource.
type waiter struct {
	c            *Claimer
	eniID        string
	attachmentID string
	deviceIndex  int32
	ip, mac      string
	subnet       string
	node         int
	eniSince     time.Time // when our ENI attach started

	volID     string
	device    string // "" until the volume is attached or attaching to us
	volReused bool
	volSince  time.Time
}

func (w *waiter) setENI(c *Claimer, e types.NetworkInterface, attachmentID string, idx int32) {
	w.eniID, w.attachmentID, w.deviceIndex = aws.ToString(e.NetworkInterfaceId), attachmentID, idx
	w.ip, w.mac, w.subnet = aws.ToString(e.PrivateIpAddress), aws.ToString(e.MacAddress), aws.ToString(e.SubnetId)
	w.node = c.nodeOf(e.TagSet)
	w.eniSince = time.Now()
}

// takeVolume attaches the node's volume. It leaves device empty when the
// volume is still held elsewhere (a predecessor releasing it): the wait loop
// then retries.
func (w *waiter) takeVolume(ctx context.Context, vol types.Volume) error {
	c := w.c
	if c.volHeldByMe(vol) {
		w.device, w.volReused, w.volSince = aws.ToString(vol.Attachments[0].Device), true, time.Now()
		return nil
	}
	if vol.State != types.VolumeStateAvailable {
		c.Log.Info("volume not available yet", "step", "claim-volume", "volume", w.volID, "state", vol.State, "holder", volHolder(vol))
		return nil
	}
	for _, dev := range deviceNames(c.Config.Volume.Device) {
		t := time.Now()
		_, err := c.EC2.AttachVolume(ctx, &ec2.AttachVolumeInput{
			VolumeId: aws.String(w.volID), InstanceId: aws.String(c.Identity.InstanceID), Device: aws.String(dev),
		})
		switch {
		case err == nil:
			c.Log.Info("attached volume", "step", "claim-volume", "volume", w.volID, "device", dev, "duration", time.Since(t))
			w.device, w.volSince = dev, time.Now()
			return nil
		case slotTaken(err):
			continue
		case lostRace(err):
			c.Log.Info("volume still held", "step", "claim-volume", "volume", w.volID, "code", errorCode(err))
			return nil
		default:
			return fmt.Errorf("attach %s to %s at %s: %w", w.volID, c.Identity.InstanceID, dev, err)
		}
	}
	return fmt.Errorf("%w: no free device name from %s for %s on %s", errFatal, c.Config.Volume.Device, w.volID, c.Identity.InstanceID)
}

// releaseVolume gives back a volume attached in a round whose ENI was lost:
// holding another node's data without its identity is never allowed.
func (w *waiter) releaseVolume(ctx context.Context) {
	if w.device == "" || w.volReused {
		return
	}
	if _, err := w.c.EC2.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(w.volID), InstanceId: aws.String(w.c.Identity.InstanceID)}); err != nil {
		w.c.Log.Error("could not give back volume", "step", "claim-volume", "volume", w.volID, "err", err)
		return
	}
	w.c.Log.Info("gave back volume: its ENI went to another instance", "step", "claim-volume", "volume", w.volID)
	w.device = ""
}

func volHolder(v types.Volume) string {
	var h []string
	for _, a := range v.Attachments {
		h = append(h, fmt.Sprintf("%s %s", aws.ToString(a.InstanceId), a.State))
	}
	return strings.Join(h, ", ")
}

// deviceNames is the requested name first, then the following letters up to
// p (EC2's recommended range ends there), in the same family.
func deviceNames(first string) []string {
	names := []string{first}
	prefix, last := first[:len(first)-1], first[len(first)-1]
	for l := last + 1; l <= 'p'; l++ {
		names = append(names, prefix+string(l))
	}
	return names
}

func (w *waiter) wait(ctx context.Context) error {
	c := w.c
	bound := c.Config.Claim.StuckAttach.D()
	for poll := 0; ; poll++ {
		if err := sleep(ctx, c.Poll.Delay(poll, c.Rand)); err != nil {
			return errRetry{w.pending()}
		}
		out, err := c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{c.Identity.InstanceID}})
		if err != nil {
			if fatal(err) {
				return fmt.Errorf("describe instance %s: %w", c.Identity.InstanceID, err)
			}
			continue // eventual consistency or throttling: the next poll may do
		}
		inst, ok := findInstance(out, c.Identity.InstanceID)
		if !ok {
			continue
		}
		eniState, volState := "", ""
		for _, ni := range inst.NetworkInterfaces {
			if aws.ToString(ni.NetworkInterfaceId) != w.eniID || ni.Attachment == nil {
				continue
			}
			if got := aws.ToString(ni.Attachment.AttachmentId); got != w.attachmentID {
				return fmt.Errorf("%w: %s is attached to %s with attachment %s, not ours (%s)", errFatal, w.eniID, c.Identity.InstanceID, got, w.attachmentID)
			}
			if ip := aws.ToString(ni.PrivateIpAddress); ip != w.ip {
				return fmt.Errorf("%w: %s has IP %s, expected %s", errFatal, w.eniID, ip, w.ip)
			}
			eniState = string(ni.Attachment.Status)
			if eniState == string(types.AttachmentStatusAttached) && aws.ToBool(ni.Attachment.DeleteOnTermination) {
				// The ENI must outlive this instance: it is the node's address.
				if _, err := c.EC2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
					NetworkInterfaceId: aws.String(w.eniID),
					Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(w.attachmentID), DeleteOnTermination: aws.Bool(false)},
				}); err != nil {
					return fmt.Errorf("clear delete-on-termination of %s: %w", w.eniID, err)
				}
				c.Log.Warn("cleared delete-on-termination on the node's ENI", "step", "claim-eni", "eni", w.eniID)
			}
		}
		for _, bd := range inst.BlockDeviceMappings {
			if bd.Ebs != nil && aws.ToString(bd.Ebs.VolumeId) == w.volID {
				volState = string(bd.Ebs.Status)
				w.device = aws.ToString(bd.DeviceName)
			}
		}
		if eniState == string(types.AttachmentStatusAttached) && volState == string(types.AttachmentStatusAttached) {
			return nil
		}
		// Stuck attachments: an ENI stuck attaching is let go (another round
		// may take it or another node); a stuck volume is force-detached and
		// attached again, since only this node may use it.
		if eniState == string(types.AttachmentStatusAttaching) && time.Since(w.eniSince) > bound {
			c.Log.Warn("ENI stuck attaching, detaching", "step", "claim-eni", "eni", w.eniID, "bound", bound)
			_, err := c.EC2.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(w.attachmentID), Force: aws.Bool(true)})
			if err != nil {
				return fmt.Errorf("detach stuck %s: %w", w.eniID, err)
			}
			return errRetry{fmt.Sprintf("%s stuck attaching for %s; detached", w.eniID, bound)}
		}
		if w.device != "" && volState == string(types.AttachmentStatusAttaching) && time.Since(w.volSince) > bound {
			c.Log.Warn("volume stuck attaching, detaching", "step", "claim-volume", "volume", w.volID, "bound", bound)
			if _, err := c.EC2.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(w.volID), Force: aws.Bool(true)}); err != nil {
				return fmt.Errorf("detach stuck %s: %w", w.volID, err)
			}
			w.device = ""
			continue
		}
		if w.device == "" && volState == "" {
			// Not ours yet: see whether the holder let go.
			vout, err := c.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{w.volID}})
			if err != nil || len(vout.Volumes) != 1 {
				continue
			}
			if err := w.takeVolume(ctx, vout.Volumes[0]); err != nil {
				return err
			}
			if w.device == "" && poll > 0 && poll%20 == 0 {
				c.Log.Info("waiting for volume", "step", "claim-volume", "volume", w.volID, "holder", volHolder(vout.Volumes[0]))
			}
		}
	}
}

func (w *waiter) pending() string {
	if w.device == "" {
		return fmt.Sprintf("holding %s (node %d, %s) but volume %s is still attached elsewhere", w.eniID, w.node, w.ip, w.volID)
	}
	return fmt.Sprintf("%s and %s (node %d) not both attached", w.eniID, w.volID, w.node)
}

func findInstance(out *ec2.DescribeInstancesOutput, id string) (types.Instance, bool) {
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if aws.ToString(i.InstanceId) == id {
				return i, true
			}
		}
	}
	return types.Instance{}, false
}

// MarshalJSON writes the phases in milliseconds, the unit operators compare.
func (p Phases) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return json.Marshal(map[string]float64{
		"discover_ms": ms(p.Discover), "eni_ms": ms(p.ENI), "volume_ms": ms(p.Volume),
		"wait_ms": ms(p.Wait), "total_ms": ms(p.Total),
	})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Phases) UnmarshalJSON(b []byte) error {
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	d := func(k string) time.Duration { return time.Duration(m[k] * float64(time.Millisecond)) }
	*p = Phases{Discover: d("discover_ms"), ENI: d("eni_ms"), Volume: d("volume_ms"), Wait: d("wait_ms"), Total: d("total_ms")}
	return nil
}

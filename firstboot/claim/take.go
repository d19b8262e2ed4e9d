package claim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// takeENI attaches a free, valid ENI of this AZ (only node prefer's when
// set), picked at random so a storm of boots spreads over the slots. When
// several are free, boots of a fresh ensemble are likely starting together:
// it first waits a random part of Spread per extra candidate and lists the
// ENIs again, so that most boots see the others' attachments instead of
// all racing on one snapshot — each lost race is a mutating call, and the
// account's mutating bucket (50, refilled at 5/s) must also hold every
// boot's two attaches. A lost race ends the round: the view it was chosen
// from is stale, and the next round re-lists after a jittered pause.
func (c *Claimer) takeENI(ctx context.Context, inv inventory, prefer int, w *waiter) error {
	candidates, misconfigured, others := c.candidates(inv, prefer)
	if prefer == 0 && len(candidates) > 1 && c.Spread > 0 {
		d := time.Duration(c.Rand.Int64N(int64(c.Spread) * int64(len(candidates)-1)))
		if err := sleep(ctx, d); err != nil {
			return errRetry{fmt.Sprintf("no ENI taken yet: %v", err)}
		}
		if enis, err := c.listENIs(ctx); err == nil {
			candidates, misconfigured, others = c.candidates(inventory{enis: enis}, prefer)
		}
	}
	c.Rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	for _, e := range candidates {
		id := aws.ToString(e.NetworkInterfaceId)
		for idx := int32(1); idx <= 15; idx++ {
			if c.badIndex[idx] {
				continue // force-detached here: EC2 may keep it unusable
			}
			t := time.Now()
			out, err := c.EC2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
				NetworkInterfaceId: aws.String(id), InstanceId: aws.String(c.Identity.InstanceID), DeviceIndex: aws.Int32(idx),
			})
			switch {
			case err == nil:
				c.took(w, e, aws.ToString(out.AttachmentId), idx)
				c.Log.Info("attached ENI", "step", "claim-eni", "eni", id, "node", w.node,
					"attachment", w.attachmentID, "device_index", idx, "duration", time.Since(t))
				return nil
			case slotTaken(err):
				continue // the instance has an interface at idx already
			case errorCode(err) == "AttachmentLimitExceeded":
				return c.cannotHold(ctx, "network interfaces", err)
			case pendingInstance(err) || notYetKnown(err):
				// A just-launched instance (or ENI) that EC2 does not
				// accept yet: the next round will do.
				return errRetry{fmt.Sprintf("attach %s to %s: %s (%s)", id, c.Identity.InstanceID, errorCode(err), errorMessage(err))}
			case lostRace(err):
				// The SDK retries an attach whose response was lost; the
				// retry then finds the ENI in use — by us.
				if a := c.attachedToMe(ctx, id); a != nil {
					c.took(w, e, aws.ToString(a.AttachmentId), aws.ToInt32(a.DeviceIndex))
					c.Log.Info("attached ENI (the first response was lost)", "step", "claim-eni", "eni", id, "node", w.node)
					return nil
				}
				c.Log.Info("lost the race for ENI", "step", "claim-eni", "eni", id, "code", errorCode(err))
				others = append(others, fmt.Sprintf("%s (node %d) taken by a concurrent boot", id, c.nodeOf(e.TagSet)))
				return errRetry{c.noFree(prefer, others)}
			default:
				return fmt.Errorf("attach %s to %s: %w", id, c.Identity.InstanceID, err)
			}
		}
	}
	if len(misconfigured) > 0 && len(candidates) == 0 {
		// Waiting will not change an ENI's address or tags: fail now so the
		// operator sees it, instead of at the deadline.
		return fmt.Errorf("%w: %s", ErrCannotClaim, strings.Join(misconfigured, "; "))
	}
	return errRetry{c.noFree(prefer, others)}
}

func (c *Claimer) noFree(prefer int, others []string) string {
	what := "any node"
	if prefer != 0 {
		what = fmt.Sprintf("node %d", prefer)
	}
	why := fmt.Sprintf("no free ENI for %s of ensemble %s in %s", what, c.Config.Ensemble, c.Identity.AZ)
	if len(others) > 0 {
		why += ": " + strings.Join(others, "; ")
	}
	return why
}

// candidates sorts the listed ENIs of this AZ (only node prefer's when
// set) into free valid ones, misconfigured ones and others' holdings.
func (c *Claimer) candidates(inv inventory, prefer int) (candidates []types.NetworkInterface, misconfigured, others []string) {
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
		if m := c.mismatch(e); m != "" {
			misconfigured = append(misconfigured, m)
			continue
		}
		candidates = append(candidates, e)
	}
	return candidates, misconfigured, others
}

func (c *Claimer) took(w *waiter, e types.NetworkInterface, attachment string, idx int32) {
	w.setENI(c, e, attachment, idx)
	c.mine = &ownENI{eni: w.eniID, attachment: attachment, deviceIndex: idx, since: w.eniSince}
}

// attachedToMe returns the ENI's attachment if it is ours, reading it fresh.
func (c *Claimer) attachedToMe(ctx context.Context, eni string) *types.NetworkInterfaceAttachment {
	out, err := c.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil || len(out.NetworkInterfaces) != 1 || !c.heldByMe(out.NetworkInterfaces[0].Attachment) {
		return nil
	}
	return out.NetworkInterfaces[0].Attachment
}

// takeVolume attaches the node's volume. It leaves device empty when the
// volume is still held elsewhere (a predecessor releasing it): the wait loop
// then retries.
func (w *waiter) takeVolume(ctx context.Context, vol types.Volume) error {
	c := w.c
	if a, ok := c.myVolAttachment(vol); ok {
		// Our own entry: a volume may list others' attachments too (a
		// previous instance's still detaching, or Multi-Attach).
		w.device, w.volReused, w.volSince = aws.ToString(a.Device), true, time.Now()
		return nil
	}
	w.holder, w.volState = volHolder(vol), vol.State
	if vol.State != types.VolumeStateAvailable {
		c.Log.Info("volume not available yet", "step", "claim-volume", "volume", w.volID, "state", vol.State, "holder", w.holder)
		return nil
	}
	for _, dev := range deviceNames(c.Config.Volume.Device) {
		if c.badDevice[dev] {
			continue // an attachment stuck under this name
		}
		t := time.Now()
		_, err := c.EC2.AttachVolume(ctx, &ec2.AttachVolumeInput{
			VolumeId: aws.String(w.volID), InstanceId: aws.String(c.Identity.InstanceID), Device: aws.String(dev),
		})
		switch {
		case err == nil:
			c.Log.Info("attached volume", "step", "claim-volume", "volume", w.volID, "device", dev, "duration", time.Since(t))
			w.device, w.volSince, c.myVol = dev, time.Now(), w.volID
			return nil
		case slotTaken(err):
			continue
		case errorCode(err) == "AttachmentLimitExceeded":
			return c.cannotHold(ctx, "volumes", err)
		case pendingInstance(err) || notYetKnown(err):
			w.holder = fmt.Sprintf("nobody yet (%s: %s)", errorCode(err), errorMessage(err))
			c.Log.Info("volume attach not accepted yet", "step", "claim-volume", "volume", w.volID, "code", errorCode(err))
			return nil
		case lostRace(err):
			if w.holder == "" {
				w.holder = fmt.Sprintf("another attacher (%s: %s)", errorCode(err), errorMessage(err))
			}
			c.Log.Info("volume still held", "step", "claim-volume", "volume", w.volID, "code", errorCode(err))
			return nil
		default:
			return fmt.Errorf("attach %s to %s at %s: %w", w.volID, c.Identity.InstanceID, dev, err)
		}
	}
	return fmt.Errorf("%w: no free device name from %s for %s on %s", ErrCannotClaim, c.Config.Volume.Device, w.volID, c.Identity.InstanceID)
}

// cannotHold is the fatal answer to EC2's AttachmentLimitExceeded: this
// instance's type cannot take another network interface (or volume), and
// no amount of waiting changes that ("Maximum network interfaces", EC2
// User Guide). It names the instance type when EC2 tells it.
func (c *Claimer) cannotHold(ctx context.Context, what string, err error) error {
	typ := "its instance type"
	if out, derr := c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{c.Identity.InstanceID}}); derr == nil {
		if inst, ok := findInstance(out, c.Identity.InstanceID); ok && inst.InstanceType != "" {
			typ = "instance type " + string(inst.InstanceType)
		}
	}
	return fmt.Errorf("%w: this instance cannot hold a node: %s %s allows no more %s (EC2: %s); launch the ensemble on a type with room for one more network interface and one more volume",
		ErrCannotClaim, c.Identity.InstanceID, typ, what, errorMessage(err))
}

// cleanup bounds a give-back call: it must happen even when the claim's own
// deadline has passed, since holding another node's volume (or a second
// ENI) would block that node.
func cleanup(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// release gives back a volume this instance must not hold: holding a node's
// data without its identity is never allowed.
func (c *Claimer) release(ctx context.Context, vol, why string) {
	ctx, cancel := cleanup(ctx)
	defer cancel()
	_, err := c.EC2.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(vol), InstanceId: aws.String(c.Identity.InstanceID)})
	if err != nil && !nothingAttached(err) {
		c.Log.Error("could not give back volume", "step", "claim-volume", "volume", vol, "why", why, "err", err)
		return
	}
	if c.myVol == vol {
		c.myVol = ""
	}
	c.Log.Warn("gave back volume", "step", "claim-volume", "volume", vol, "why", why)
}

// releaseENI lets go of an ENI this instance holds in excess.
func (c *Claimer) releaseENI(ctx context.Context, e types.NetworkInterface) error {
	ctx, cancel := cleanup(ctx)
	defer cancel()
	id, att := aws.ToString(e.NetworkInterfaceId), aws.ToString(e.Attachment.AttachmentId)
	if _, err := c.EC2.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(att)}); err != nil {
		return fmt.Errorf("let go of extra ENI %s (node %d): %w", id, c.nodeOf(e.TagSet), err)
	}
	c.detached[att] = true
	if c.mine != nil && c.mine.eni == id {
		c.mine = nil
	}
	c.Log.Warn("let go of an extra ENI: one node per instance", "step", "claim-eni", "eni", id, "node", c.nodeOf(e.TagSet))
	return nil
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

package claim

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

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
	eniSeen      time.Time // when a poll first showed our attachment

	volID     string
	device    string // "" until our AttachVolume succeeded (or we hold it)
	volReused bool
	volSeen   time.Time // when a poll first showed our volume attachment
	// volDetached: we force-detached a stuck attachment and must see the
	// volume leave before attaching again (a lagging view still shows it).
	volDetached bool
	holder      string // who held the volume when we last looked
	kept        bool   // we cleared delete-on-termination
}

func (w *waiter) setENI(c *Claimer, e types.NetworkInterface, attachmentID string, idx int32) {
	w.eniID, w.attachmentID, w.deviceIndex = aws.ToString(e.NetworkInterfaceId), attachmentID, idx
	w.ip, w.mac, w.subnet = aws.ToString(e.PrivateIpAddress), aws.ToString(e.MacAddress), aws.ToString(e.SubnetId)
	w.node = c.nodeOf(e.TagSet)
}

// view is what one poll showed of our two attachments.
type view struct {
	eni, vol string // attachment states; "" when not listed
	device   string
	// deleteOnTermination: the ENI attachment would take the node's address
	// down with this instance.
	deleteOnTermination bool
}

func (w *waiter) look(inst types.Instance) (view, error) {
	var v view
	for _, ni := range inst.NetworkInterfaces {
		if aws.ToString(ni.NetworkInterfaceId) != w.eniID || ni.Attachment == nil {
			continue
		}
		if got := aws.ToString(ni.Attachment.AttachmentId); got != w.attachmentID {
			// A lagging view of an attachment we let go of earlier.
			continue
		}
		if ip := aws.ToString(ni.PrivateIpAddress); ip != w.ip {
			return v, fmt.Errorf("%w: %s has IP %s, expected %s", errFatal, w.eniID, ip, w.ip)
		}
		v.eni = string(ni.Attachment.Status)
		v.deleteOnTermination = aws.ToBool(ni.Attachment.DeleteOnTermination)
	}
	for _, bd := range inst.BlockDeviceMappings {
		if bd.Ebs == nil || aws.ToString(bd.Ebs.VolumeId) != w.volID {
			continue
		}
		v.vol = string(bd.Ebs.Status)
		if bd.Ebs.Status == types.AttachmentStatusAttaching || bd.Ebs.Status == types.AttachmentStatusAttached {
			v.device = aws.ToString(bd.DeviceName)
		}
	}
	return v, nil
}

const (
	attaching = string(types.AttachmentStatusAttaching)
	attached  = string(types.AttachmentStatusAttached)
)

func (w *waiter) wait(ctx context.Context) error {
	c := w.c
	bound := c.Config.Claim.StuckAttach.D()
	for poll, slow := 0, 0; ; {
		// Our own attachments are polled quickly; a volume someone else
		// still holds is waited for at the re-list pace, so that replacements
		// waiting on predecessors do not drain the account's Describe budget.
		var d time.Duration
		if w.device == "" {
			d, slow = c.Relist.Delay(slow, c.Rand), slow+1
		} else {
			d, poll = c.Poll.Delay(poll, c.Rand), poll+1
		}
		if err := sleep(ctx, d); err != nil {
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
		v, err := w.look(inst)
		if err != nil {
			return err
		}
		now := time.Now()
		if v.eni == attached && v.deleteOnTermination && !w.kept {
			if err := w.keepENI(ctx); err != nil {
				return err
			}
		}
		if w.eniSeen.IsZero() && (v.eni == attaching || v.eni == attached) {
			w.eniSeen = now
		}
		if w.volSeen.IsZero() && v.device != "" && !w.volDetached {
			w.volSeen = now
		}
		if !w.volDetached && v.device != "" {
			w.device = v.device
		}
		if v.eni == attached && v.vol == attached && !w.volDetached {
			return nil
		}
		// Stuck attachments, timed from when a poll first showed them (a
		// lagging view must not make a healthy attach look stuck): an ENI
		// is let go (the next round may take it or another node); a volume
		// is force-detached and attached again, since only this node may
		// use it.
		if v.eni == attaching && now.Sub(w.eniSeen) > bound {
			return w.detachStuckENI(ctx, bound)
		}
		if !w.volDetached && v.vol == attaching && !w.volSeen.IsZero() && now.Sub(w.volSeen) > bound {
			c.Log.Warn("volume stuck attaching, detaching", "step", "claim-volume", "volume", w.volID, "bound", bound)
			dctx, cancel := cleanup(ctx)
			_, err := c.EC2.DetachVolume(dctx, &ec2.DetachVolumeInput{VolumeId: aws.String(w.volID), Force: aws.Bool(true)})
			cancel()
			if err != nil {
				return fmt.Errorf("detach stuck %s: %w", w.volID, err)
			}
			w.device, w.volDetached, w.volSeen = "", true, time.Time{}
			continue
		}
		if w.device == "" && v.vol == "" {
			// Not ours (yet, or again after a stuck attach): see whether
			// the volume is free.
			vout, err := c.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{w.volID}})
			if err != nil || len(vout.Volumes) != 1 || (w.volDetached && c.volHeldByMe(vout.Volumes[0])) {
				continue // a lagging view of the attachment we detached
			}
			w.volDetached = false
			if err := w.takeVolume(ctx, vout.Volumes[0]); err != nil {
				return err
			}
		}
	}
}

// keepENI clears delete-on-termination: the ENI is the node's address and
// must outlive this instance.
func (w *waiter) keepENI(ctx context.Context) error {
	_, err := w.c.EC2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(w.eniID),
		Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(w.attachmentID), DeleteOnTermination: aws.Bool(false)},
	})
	if err != nil {
		return fmt.Errorf("clear delete-on-termination of %s: %w", w.eniID, err)
	}
	w.c.Log.Warn("cleared delete-on-termination on the node's ENI", "step", "claim-eni", "eni", w.eniID)
	w.kept = true
	return nil
}

// detachStuckENI lets go of an ENI attachment stuck in attaching. The
// attachment id is remembered, so that a lagging view of it is never taken
// for ours again; the volume stays, and the next round either takes this
// node's ENI again or gives the volume back.
func (w *waiter) detachStuckENI(ctx context.Context, bound time.Duration) error {
	c := w.c
	c.Log.Warn("ENI stuck attaching, detaching", "step", "claim-eni", "eni", w.eniID, "bound", bound)
	ctx, cancel := cleanup(ctx)
	defer cancel()
	if _, err := c.EC2.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(w.attachmentID), Force: aws.Bool(true)}); err != nil {
		return fmt.Errorf("detach stuck %s: %w", w.eniID, err)
	}
	c.detached[w.attachmentID] = true
	c.mine = nil
	return errRetry{fmt.Sprintf("%s stuck attaching for %s; detached", w.eniID, bound)}
}

func (w *waiter) pending() string {
	if w.device == "" {
		return fmt.Sprintf("holding %s (node %d, %s) but volume %s is still held by %s", w.eniID, w.node, w.ip, w.volID, w.holder)
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

package claim

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// waiter holds one round's claim and watches its attachments. With
// Devices it waits for the instance to see the NIC and the block device,
// then confirms both with one DescribeInstances (the instance's
// networkInterfaceSet and blockDeviceMapping carry both attachment states);
// without, it polls that call.
type waiter struct {
	c            *Claimer
	eniID        string
	attachmentID string
	deviceIndex  int32
	ip, mac      string
	subnet       string
	node         int
	// eniSince is when our attachment was made (the attach call returned)
	// or, for one this instance already held, first listed: the stuck
	// bound counts from here, so an attachment Describe never shows is
	// bounded too.
	eniSince time.Time
	eniOK    bool // a Describe showed it attached (kept: views are not monotonic)

	volID     string
	device    string // "" until our AttachVolume succeeded (or we hold it)
	volReused bool
	volSince  time.Time // when our volume attach call returned
	volOK     bool
	// volDetached: we force-detached a stuck attachment and must see the
	// volume leave before attaching again (a lagging view still shows it).
	volDetached bool
	holder      string // who held the volume when we last looked
	// volState is the volume's state when we last looked (creating,
	// error, ...: a volume nobody holds may still not be attachable), and
	// volErr the last DescribeVolumes failure since, for pending.
	volState types.VolumeState
	volErr   string
	kept     bool // we cleared delete-on-termination
}

func (w *waiter) setENI(c *Claimer, e types.NetworkInterface, attachmentID string, idx int32) {
	w.eniID, w.attachmentID, w.deviceIndex = aws.ToString(e.NetworkInterfaceId), attachmentID, idx
	w.ip, w.mac, w.subnet = aws.ToString(e.PrivateIpAddress), aws.ToString(e.MacAddress), aws.ToString(e.SubnetId)
	w.node = c.nodeOf(e.TagSet)
	w.eniSince = time.Now()
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
			return v, fmt.Errorf("%w: %s has IP %s, expected %s", ErrCannotClaim, w.eniID, ip, w.ip)
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

// pace counts the polls of each schedule, for their backoff.
type pace struct{ fast, fallback, slow int }

// next is how long to wait before the next Describe:
//   - the volume is someone else's (a predecessor releasing it): the
//     re-list pace, so that replacements waiting on predecessors do not
//     drain the account's Describe budget;
//   - every attachment not yet confirmed is visible to the instance (or has
//     no signal to wait for): the fast pace, since EC2 is about to say
//     attached, if it has not already;
//   - otherwise the fallback pace, in case a signal never comes, cut short
//     at the stuck bound of the earliest unconfirmed attachment.
func (w *waiter) next(p *pace, sig *signals, bound time.Duration) time.Duration {
	c := w.c
	if w.device == "" {
		d := c.Relist.Delay(p.slow, c.Rand)
		p.slow++
		return d
	}
	if (w.eniOK || sig.ready(sigENI)) && (w.volOK || sig.ready(sigVol)) {
		d := c.Poll.Delay(p.fast, c.Rand)
		p.fast++
		return d
	}
	d := c.Fallback.Delay(p.fallback, c.Rand)
	p.fallback++
	for _, since := range []time.Time{w.unconfirmed(w.eniOK, w.eniSince), w.unconfirmed(w.volOK, w.volSince)} {
		if !since.IsZero() {
			d = min(d, max(time.Until(since.Add(bound))+time.Millisecond, 0))
		}
	}
	return d
}

func (w *waiter) unconfirmed(ok bool, since time.Time) time.Time {
	if ok {
		return time.Time{}
	}
	return since
}

func (w *waiter) wait(ctx context.Context) error {
	c := w.c
	bound := c.Config.Claim.StuckAttach.D()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the device watches
	sig := newSignals(wctx, c.Devices)
	sig.watch(sigENI, func(ctx context.Context) error { return c.Devices.WaitNIC(ctx, w.mac) })
	watchVol := func() {
		vol, dev := w.volID, w.device
		sig.watch(sigVol, func(ctx context.Context) error { return c.Devices.WaitVolume(ctx, vol, dev) })
	}
	if w.device != "" {
		watchVol()
	}
	var p pace
	due := time.Now().Add(w.next(&p, sig, bound))
	for {
		t := time.NewTimer(max(time.Until(due), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return errRetry{w.pending()}
		case s := <-sig.ch:
			t.Stop()
			news, err := sig.handle(s)
			if err != nil {
				c.Log.Warn("the instance cannot tell when the device appears; polling EC2", "step", "claim-wait",
					"eni", w.eniID, "volume", w.volID, "err", err)
			}
			if news && w.device != "" && (w.eniOK || sig.ready(sigENI)) && (w.volOK || sig.ready(sigVol)) {
				// Everything not yet confirmed is visible: ask EC2 now.
				due, p.fast = time.Now(), 0
			}
			continue
		case <-t.C:
		}
		done, err := w.poll(ctx, sig, bound, watchVol)
		if done || err != nil {
			return err
		}
		due = time.Now().Add(w.next(&p, sig, bound))
	}
}

// poll is one look at EC2: it records what is confirmed, detaches what is
// stuck and, while the volume is not ours, tries to take it.
func (w *waiter) poll(ctx context.Context, sig *signals, bound time.Duration, watchVol func()) (bool, error) {
	c := w.c
	var v view
	// While the volume is someone else's and the ENI is confirmed, only the
	// volume can change: DescribeVolumes alone says when it is free.
	if !(w.device == "" && w.eniOK && !w.volDetached) {
		out, err := c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{c.Identity.InstanceID}})
		unseen := ""
		switch {
		case err != nil && fatal(err):
			return false, fmt.Errorf("describe instance %s: %w", c.Identity.InstanceID, err)
		case err != nil:
			// Eventual consistency (a just-launched instance) or
			// throttling: the next poll may do.
			unseen = "unseen: DescribeInstances failed: " + apiReason(err)
		default:
			inst, ok := findInstance(out, c.Identity.InstanceID)
			if !ok {
				unseen = "unseen: DescribeInstances did not list " + c.Identity.InstanceID
				break
			}
			if v, err = w.look(inst); err != nil {
				return false, err
			}
		}
		if unseen != "" {
			// Nothing is confirmed, but the stuck bounds still count from
			// the attach calls: a DescribeInstances that keeps failing or
			// lagging must not hold this round until the claim's deadline.
			_, err := w.stuck(ctx, sig, bound, unseen, unseen)
			return false, err
		}
	}
	if v.eni == attached && v.deleteOnTermination && !w.kept {
		if err := w.keepENI(ctx); err != nil {
			if fatal(err) {
				return false, err
			}
			// A fresh attachment may be unknown to mutations for a while
			// (InvalidAttachmentID.NotFound): the next poll tries again.
			c.Log.Info("delete-on-termination not cleared yet", "step", "claim-eni", "eni", w.eniID, "err", err)
			return false, nil
		}
	}
	// Confirmations are kept: a later Describe may show an older state.
	if v.eni == attached {
		w.eniOK = true
	}
	if w.device == "" && !w.volDetached && v.device != "" {
		// Ours after all (an attach whose answer said in use was our own).
		w.device, w.volSince, c.myVol = v.device, time.Now(), w.volID
		watchVol()
	}
	if w.device != "" && v.vol == attached && v.device == w.device {
		w.volOK = true
	}
	if w.eniOK && w.volOK {
		return true, nil
	}
	if acted, err := w.stuck(ctx, sig, bound, v.eni, v.vol); acted || err != nil {
		return false, err
	}
	if w.device == "" && v.vol == "" {
		// Not ours (yet, or again after a stuck attach): see whether the
		// volume is free.
		vout, err := c.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{w.volID}})
		switch {
		case err != nil && fatal(err):
			return false, fmt.Errorf("describe volume %s: %w", w.volID, err)
		case err != nil:
			if ctx.Err() == nil { // not the claim's own deadline
				w.volErr = fmt.Sprintf("DescribeVolumes of %s failed: %s", w.volID, apiReason(err))
			}
			return false, nil // throttling or eventual consistency: the next poll may do
		case len(vout.Volumes) != 1:
			w.volErr = fmt.Sprintf("DescribeVolumes of %s listed %d volumes", w.volID, len(vout.Volumes))
			return false, nil
		}
		w.volErr = ""
		if w.volDetached && c.volHeldByMe(vout.Volumes[0]) {
			return false, nil // a lagging view of the attachment we detached
		}
		w.volDetached = false
		if err := w.takeVolume(ctx, vout.Volumes[0]); err != nil {
			return false, err
		}
		if w.device != "" {
			watchVol()
		}
	}
	return false, nil
}

// stuck applies the stuck bounds, counted from our attach calls (so an
// attachment Describe never shows, or a poll that cannot see the instance at
// all, is bounded too), given the attachment states this poll saw: an ENI
// not attached within the bound is let go (the next round may take it or
// another node); a volume is force-detached and attached again under
// another name, since only this node may use it. It reports whether it
// detached anything.
func (w *waiter) stuck(ctx context.Context, sig *signals, bound time.Duration, eniState, volState string) (bool, error) {
	now := time.Now()
	if !w.eniOK && now.Sub(w.eniSince) > bound {
		return true, w.detachStuckENI(ctx, bound, eniState)
	}
	if !w.volOK && w.device != "" && !w.volDetached && now.Sub(w.volSince) > bound {
		if err := w.detachStuckVolume(ctx, bound, volState); err != nil {
			return true, err
		}
		sig.forget(sigVol)
		return true, nil
	}
	return false, nil
}

// apiReason is an EC2 error as "Code (message)", the SDK's wrapping left
// out; other errors as they are.
func apiReason(err error) string {
	if code := errorCode(err); code != "" {
		return fmt.Sprintf("%s (%s)", code, errorMessage(err))
	}
	return err.Error()
}

// keepENI clears delete-on-termination: the ENI is the node's address and
// must outlive this instance. AttachNetworkInterface has no
// DeleteOnTermination parameter, and true is only possible "if creating a
// new network interface when launching an instance"
// (InstanceNetworkInterfaceSpecification, EC2 API Reference): the
// attachments the claim makes are never deleted with the instance, so
// this call is not part of a boot's budget. It runs only for an attachment
// the claim reuses and finds marked (made some other way), one call then.
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

// detachStuckENI lets go of an ENI attachment that did not become attached
// within the bound. The attachment id is remembered, so that a lagging view
// of it is never taken for ours again, and so is its device index: after a
// forced detach EC2 may keep the index unusable until the instance is
// stopped and started (DetachNetworkInterface, "Force"). The volume stays;
// the next round either takes this node's ENI again or gives it back.
func (w *waiter) detachStuckENI(ctx context.Context, bound time.Duration, state string) error {
	c := w.c
	c.Log.Warn("ENI not attached within the bound, detaching", "step", "claim-eni", "eni", w.eniID,
		"attachment", w.attachmentID, "state", cmp.Or(state, "not listed"), "bound", bound)
	ctx, cancel := cleanup(ctx)
	defer cancel()
	_, err := c.EC2.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(w.attachmentID), Force: aws.Bool(true)})
	if err != nil && errorCode(err) != "InvalidAttachmentID.NotFound" {
		return fmt.Errorf("detach stuck %s (%s): %w", w.eniID, w.attachmentID, err)
	}
	c.detached[w.attachmentID] = true
	c.badIndex[w.deviceIndex] = true
	c.mine = nil
	return errRetry{fmt.Sprintf("%s not attached within %s (%s); detached", w.eniID, bound, cmp.Or(state, "never listed"))}
}

// detachStuckVolume force-detaches our volume attachment that did not
// become attached within the bound. Its device name is not used again: a
// name whose attachment stuck may stay unusable, and EBS's troubleshooting
// guide advises attaching under a different device name.
func (w *waiter) detachStuckVolume(ctx context.Context, bound time.Duration, state string) error {
	c := w.c
	c.Log.Warn("volume not attached within the bound, detaching", "step", "claim-volume", "volume", w.volID,
		"device", w.device, "state", cmp.Or(state, "not listed"), "bound", bound)
	dctx, cancel := cleanup(ctx)
	defer cancel()
	_, err := c.EC2.DetachVolume(dctx, &ec2.DetachVolumeInput{VolumeId: aws.String(w.volID), InstanceId: aws.String(c.Identity.InstanceID), Force: aws.Bool(true)})
	if err != nil && !nothingAttached(err) {
		return fmt.Errorf("detach stuck %s: %w", w.volID, err)
	}
	c.badDevice[w.device] = true
	if c.myVol == w.volID {
		c.myVol = ""
	}
	w.device, w.volDetached, w.volSince = "", true, time.Time{}
	return nil
}

// pending says what the round was still waiting for at the deadline.
func (w *waiter) pending() string {
	if w.device != "" {
		return fmt.Sprintf("%s and %s (node %d) not both attached", w.eniID, w.volID, w.node)
	}
	why := fmt.Sprintf("holding %s (node %d, %s) but volume %s ", w.eniID, w.node, w.ip, w.volID)
	switch {
	case w.holder != "":
		why += "is still held by " + w.holder
	case w.volState != "":
		why += fmt.Sprintf("is %s, not available", w.volState)
	default:
		why += "was never seen"
	}
	if w.volErr != "" {
		why += "; last " + w.volErr
	}
	return why
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

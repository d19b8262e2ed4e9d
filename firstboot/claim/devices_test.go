package claim

import (
	"context"
	"sync"
	"time"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// simDevices is what the simulator's instances see of their hot-plugged
// devices, as the claim's Devices: an ENI's NIC or a volume's block device
// appears when the simulator completes the attachment, shifted by the
// OS-visibility delay — positive: that long after EC2 says attached;
// negative: that long before (the attach hook holds EC2's attached state
// back, as a device the kernel sees before EC2's control plane updates).
// Detaching removes the device. Present devices are keyed by instance and
// MAC or volume id.
type simDevices struct {
	mu      sync.Mutex
	delay   time.Duration
	never   bool // the instance never sees anything: the claim's fallback polling
	present map[string]bool
	changed chan struct{} // closed and replaced on every change
}

func newSimDevices() *simDevices {
	return &simDevices{present: map[string]bool{}, changed: make(chan struct{})}
}

// setDelay sets the OS-visibility delay of later attachments.
func (d *simDevices) setDelay(delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.delay = delay
}

// setNever makes the instances blind to their devices (the signal never
// comes), or not.
func (d *simDevices) setNever(never bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.never = never
}

func (d *simDevices) set(key string, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.never && on {
		return
	}
	if on {
		d.present[key] = true
	} else {
		delete(d.present, key)
	}
	close(d.changed)
	d.changed = make(chan struct{})
}

// before makes key present now if the device shows before EC2's attached
// state, holding the hook (so that state) back for -delay.
func (d *simDevices) before(key string) {
	d.mu.Lock()
	delay := d.delay
	d.mu.Unlock()
	if delay < 0 {
		d.set(key, true)
		time.Sleep(-delay)
	}
}

// after makes key present delay after EC2's attached state, if the device
// shows after it.
func (d *simDevices) after(key string) {
	d.mu.Lock()
	delay := d.delay
	d.mu.Unlock()
	if delay >= 0 {
		time.AfterFunc(delay, func() { d.set(key, true) })
	}
}

// hooks chains the device view onto the simulator's hooks.
func (d *simDevices) hooks(h ec2sim.Hooks) ec2sim.Hooks {
	return ec2sim.Hooks{
		ENIAttached: func(ev ec2sim.ENIEvent) error {
			if h.ENIAttached != nil {
				if err := h.ENIAttached(ev); err != nil {
					return err
				}
			}
			d.before(ev.InstanceID + "/" + ev.MAC)
			return nil
		},
		ENIAttachedInAPI: func(ev ec2sim.ENIEvent) {
			if h.ENIAttachedInAPI != nil {
				h.ENIAttachedInAPI(ev)
			}
			d.after(ev.InstanceID + "/" + ev.MAC)
		},
		ENIDetached: func(ev ec2sim.ENIEvent) {
			d.set(ev.InstanceID+"/"+ev.MAC, false)
			if h.ENIDetached != nil {
				h.ENIDetached(ev)
			}
		},
		VolumeAttached: func(ev ec2sim.VolumeEvent) error {
			if h.VolumeAttached != nil {
				if err := h.VolumeAttached(ev); err != nil {
					return err
				}
			}
			d.before(ev.InstanceID + "/" + ev.VolumeID)
			return nil
		},
		VolumeAttachedInAPI: func(ev ec2sim.VolumeEvent) {
			if h.VolumeAttachedInAPI != nil {
				h.VolumeAttachedInAPI(ev)
			}
			d.after(ev.InstanceID + "/" + ev.VolumeID)
		},
		VolumeDetached: func(ev ec2sim.VolumeEvent) {
			d.set(ev.InstanceID+"/"+ev.VolumeID, false)
			if h.VolumeDetached != nil {
				h.VolumeDetached(ev)
			}
		},
	}
}

// wait returns once key is present.
func (d *simDevices) wait(ctx context.Context, key string) error {
	for {
		d.mu.Lock()
		ok, changed := d.present[key], d.changed
		d.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// of is one instance's view.
func (d *simDevices) of(instance string) Devices { return instanceDevices{d, instance} }

type instanceDevices struct {
	d        *simDevices
	instance string
}

func (i instanceDevices) WaitNIC(ctx context.Context, mac string) error {
	return i.d.wait(ctx, i.instance+"/"+mac)
}

func (i instanceDevices) WaitVolume(ctx context.Context, volumeID, _ string) error {
	return i.d.wait(ctx, i.instance+"/"+volumeID)
}

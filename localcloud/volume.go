package localcloud

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// volume is a volume created through the Cloud, with its backing file.
type volume struct {
	id   string
	file string
	att  *volumeAttachment // nil while not plugged into an instance
}

// volumeAttachment is a volume's loop device, exposed to one instance.
type volumeAttachment struct {
	inst *Instance
	dev  *os.File // holds the loop device
	loop loopDev
	rdev uint64
}

// CreateVolume creates an available volume in the simulator and its sparse
// backing file in the state directory.
func (c *Cloud) CreateVolume(az string, sizeGiB int32, tags map[string]string) (_ ec2sim.Volume, err error) {
	if err := c.begin(); err != nil {
		return ec2sim.Volume{}, err
	}
	defer c.busy.Done()
	v, err := c.sim.CreateVolume(az, sizeGiB, tags)
	if err != nil {
		return ec2sim.Volume{}, err
	}
	defer c.step("create volume", "volume", v.ID, "az", az, "size_gib", sizeGiB).Defer(&err)
	file := filepath.Join(c.stateDir, v.ID+".img")
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return ec2sim.Volume{}, fmt.Errorf("backing file of %s: %w", v.ID, err)
	}
	err = errors.Join(f.Truncate(int64(sizeGiB)<<30), f.Close())
	if err != nil {
		return ec2sim.Volume{}, fmt.Errorf("backing file of %s: %w", v.ID, err)
	}
	c.mu.Lock()
	c.volumes[v.ID] = &volume{id: v.ID, file: file}
	c.mu.Unlock()
	return v, nil
}

// VolumeFile returns the backing file of a volume created through the Cloud.
func (c *Cloud) VolumeFile(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.volumes[id]
	if !ok {
		return "", false
	}
	return v.file, true
}

// volumeAttached plugs the volume into the instance (the simulator calls it
// when the attachment would become attached; an error leaves it attaching).
func (c *Cloud) volumeAttached(ev ec2sim.VolumeEvent) (err error) {
	defer c.step("volume attach", "volume", ev.VolumeID, "instance", ev.InstanceID, "device", ev.Device).Defer(&err)
	c.mu.Lock()
	defer c.mu.Unlock()
	inst, err := c.running(ev.InstanceID)
	if err != nil {
		return err
	}
	v := c.volumes[ev.VolumeID]
	if v == nil {
		return fmt.Errorf("volume %s has no backing file: create volumes with Cloud.CreateVolume", ev.VolumeID)
	}
	if v.att != nil {
		// Marked available before its detach hook ran: finish that first.
		if err := c.unplugVolume(v); err != nil {
			return err
		}
	}
	return c.plugVolume(v, inst)
}

// volumeDetached unplugs the volume, if this attachment still has it.
func (c *Cloud) volumeDetached(ev ec2sim.VolumeEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.volumes[ev.VolumeID]
	if v == nil || v.att == nil || v.att.inst.ID != ev.InstanceID {
		return
	}
	_ = c.unplugVolume(v)
}

// plugVolume attaches the backing file to a loop device and exposes it on
// the instance as a Nitro EBS device. Call with c.mu held.
func (c *Cloud) plugVolume(v *volume, inst *Instance) error {
	// A device still bound to the file (a release that could not finish:
	// a lazily unmounted filesystem still in use) would give two
	// instances one volume's blocks. EBS never does that; neither do we.
	busy, err := loopsBackedBy(func(f string) bool { return f == v.file })
	if err != nil {
		return err
	}
	if len(busy) > 0 {
		return fmt.Errorf("volume %s: its file is still on /dev/%s from an earlier attachment", v.id, busy[0].name)
	}
	dev, name, err := attachLoop(v.file)
	if err != nil {
		return fmt.Errorf("volume %s: %w", v.id, err)
	}
	att := &volumeAttachment{inst: inst, dev: dev, loop: loopDev{name: name, file: v.file}}
	var st unix.Stat_t
	err = unix.Fstat(int(dev.Fd()), &st)
	att.rdev = st.Rdev
	if err == nil {
		err = inst.exposeDevice(name, st.Rdev, v.id)
	}
	if err != nil {
		inst.hideDevice(name, v.id)
		return errors.Join(fmt.Errorf("volume %s on %s: %w", v.id, inst.ID, err), detachLoop(dev, att.loop))
	}
	v.att = att
	inst.log.Info("volume exposed", "step", "volume attach", "volume", v.id, "device", "/dev/"+name, "by_id", disk.EBSByIDName(v.id))
	return nil
}

// unplugVolume unmounts the volume on its instance, removes its device
// there and releases the loop device. Call with c.mu held.
func (c *Cloud) unplugVolume(v *volume) (err error) {
	att := v.att
	v.att = nil
	defer c.step("volume detach", "volume", v.id, "instance", att.inst.ID, "device", "/dev/"+att.loop.name).Defer(&err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uerr := att.inst.unmountDevice(ctx, att.rdev)
	att.inst.hideDevice(att.loop.name, v.id)
	if err := errors.Join(uerr, detachLoop(att.dev, att.loop)); err != nil {
		return fmt.Errorf("release volume %s from %s: %w", v.id, att.inst.ID, err)
	}
	return nil
}

// exposeDevice makes the loop device the instance's EBS device, as the disk
// resolver finds one on Nitro: the node in its /dev, the by-id link
// ../../<name>, and /sys/class/block/<name>, whose attributes are the
// device's own plus device/serial — padded to 20 characters like an NVMe
// controller's serial.
func (inst *Instance) exposeDevice(name string, rdev uint64, volumeID string) error {
	serial := disk.EBSSerial(volumeID)
	if err := mknod(inst.Path("/dev/"+name), unix.S_IFBLK|0o660, rdev); err != nil {
		return err
	}
	if err := os.Symlink("../../"+name, inst.Path("/dev/disk/by-id/"+disk.EBSByIDName(volumeID))); err != nil {
		return err
	}
	target, err := os.Readlink("/sys/class/block/" + name)
	if err != nil {
		return err
	}
	sysDir := filepath.Join("/sys/class/block", target)
	attrs, err := os.ReadDir(sysDir)
	if err != nil {
		return err
	}
	dir := inst.Path("/sys/class/block/" + name)
	if err := os.MkdirAll(filepath.Join(dir, "device"), 0o755); err != nil {
		return err
	}
	for _, a := range attrs {
		if err := os.Symlink(filepath.Join(sysDir, a.Name()), filepath.Join(dir, a.Name())); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "device", "serial"), fmt.Appendf(nil, "%-20s\n", serial), 0o444)
}

// hideDevice removes what exposeDevice made; missing parts are fine.
func (inst *Instance) hideDevice(name, volumeID string) {
	_ = os.Remove(inst.Path("/dev/disk/by-id/" + disk.EBSByIDName(volumeID)))
	_ = os.Remove(inst.Path("/dev/" + name))
	_ = os.RemoveAll(inst.Path("/sys/class/block/" + name))
}

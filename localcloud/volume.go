package localcloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/loopdev"
)

// volumes is the registry of the volumes created through the Cloud: their
// backing files in the state directory, and the loop device each has while
// attached to an instance.
type volumes struct {
	log  *slog.Logger
	dir  string   // the state directory, resolved
	temp bool     // dir is ours: Close removes it
	lock *os.File // held while the Cloud lives, see lockStateDir

	mu   sync.Mutex
	byID map[string]*volume
}

// volume is a volume created through the Cloud, with its backing file.
type volume struct {
	id   string
	file string
	att  *volumeAttachment // nil while not plugged into an instance
}

// volumeAttachment is a volume's loop device, exposed to one instance.
type volumeAttachment struct {
	inst *Instance
	loop *loopdev.Attachment
	rdev uint64
}

// open creates (or takes) the state directory, empty meaning a temporary
// one, locks it against a second live Cloud, records it in runDir for
// crash reclaim and releases loop devices a crashed run left on its files.
func (r *volumes) open(ctx context.Context, stateDir, runDir string) error {
	dir, temp := stateDir, stateDir == ""
	if temp {
		d, err := os.MkdirTemp("", "zkaas-localcloud-")
		if err != nil {
			return fmt.Errorf("create state dir: %w", err)
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	// Resolved, because loop devices report their files by real path.
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	var lock *os.File
	if err == nil {
		lock, err = lockStateDir(abs)
	}
	if err != nil {
		if temp {
			_ = os.RemoveAll(dir)
		}
		return fmt.Errorf("state dir %s: %w", dir, err)
	}
	// Only now is the directory ours to clean up.
	r.dir, r.temp, r.lock = abs, temp, lock
	if err := (stateRecord{Dir: abs, Temporary: temp}).write(runDir); err != nil {
		return err
	}
	// Held by nobody now that we hold the lock: any loop device on these
	// files is a crashed run's.
	return releaseLoopsUnder(ctx, r.log, abs)
}

// close releases what open took: loop devices a failed release left on the
// files (every attachment went with its instance), a temporary state
// directory, the lock.
func (r *volumes) close() error {
	var errs []error
	if r.dir != "" {
		errs = append(errs, releaseLoopsUnder(context.Background(), r.log, r.dir))
		if r.temp {
			errs = append(errs, os.RemoveAll(r.dir))
		}
	}
	if r.lock != nil {
		errs = append(errs, r.lock.Close())
	}
	return errors.Join(errs...)
}

// lockStateDir takes a state directory's lock, which a Cloud holds for its
// lifetime (the kernel drops it if the process dies).
func lockStateDir(dir string) (*os.File, error) {
	lock, err := os.OpenFile(filepath.Join(dir, ".localcloud.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errStateDirInUse
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	return lock, nil
}

var errStateDirInUse = errors.New("in use by another live local cloud")

// releaseLoopsUnder releases every loop device backed by a file in dir.
func releaseLoopsUnder(ctx context.Context, log *slog.Logger, dir string) error {
	loops, err := loopdev.BackedBy(func(f string) bool { return strings.HasPrefix(f, dir+"/") })
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range loops {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("releasing a leftover loop device", "step", "reclaim", "device", l.Path(), "file", l.File)
		errs = append(errs, loopdev.Release(l))
	}
	return errors.Join(errs...)
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
	if err := c.volumes.create(v.ID, sizeGiB); err != nil {
		return ec2sim.Volume{}, err
	}
	return v, nil
}

// VolumeFile returns the backing file of a volume created through the Cloud.
func (c *Cloud) VolumeFile(id string) (string, bool) { return c.volumes.file(id) }

// volumeAttached is the simulator's hook as a volume attachment would
// become attached (an error leaves it attaching): it plugs the volume into
// the instance, ordered against the API's "attached" by
// Options.DiskVisibleDelay.
func (c *Cloud) volumeAttached(ev ec2sim.VolumeEvent) error {
	if err := c.visible.attached(ev.VolumeID, ev.InstanceID, c.opts.DiskVisibleDelay, func() error { return c.plugVolume(ev) }); err != nil {
		return err
	}
	c.attachLog.attached(ev.VolumeID, ev.InstanceID)
	return nil
}

// plugVolume plugs the volume into its instance, if that still runs.
func (c *Cloud) plugVolume(ev ec2sim.VolumeEvent) (err error) {
	defer c.step("volume attach", "volume", ev.VolumeID, "instance", ev.InstanceID, "device", ev.Device).Defer(&err)
	if _, ok := c.volumes.file(ev.VolumeID); !ok {
		// Created through the API (CreateVolume, as `zkaas up` does), not
		// Cloud.CreateVolume: its backing file is made at its first
		// attach, sparse — a new EBS volume reads zero everywhere.
		v, ok := c.sim.Volume(ev.VolumeID)
		if !ok {
			return fmt.Errorf("volume %s: unknown to the simulator", ev.VolumeID)
		}
		if err := c.volumes.create(ev.VolumeID, v.SizeGiB); err != nil {
			return err
		}
	}
	return c.instances.plugInto(ev.InstanceID, func(inst *Instance) error {
		return c.volumes.plug(ev.VolumeID, inst)
	})
}

// volumeDetached unplugs the volume, if this attachment still has it, or
// drops its delayed plug.
func (c *Cloud) volumeDetached(ev ec2sim.VolumeEvent) {
	c.attachLog.detached(ev.VolumeID, ev.InstanceID)
	c.visible.detached(ev.VolumeID, ev.InstanceID)
	c.volumes.unplugFrom(ev.VolumeID, ev.InstanceID)
}

// create makes a volume's sparse backing file.
func (r *volumes) create(id string, sizeGiB int32) error {
	file := filepath.Join(r.dir, id+".img")
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backing file of %s: %w", id, err)
	}
	if err := errors.Join(f.Truncate(int64(sizeGiB)<<30), f.Close()); err != nil {
		return fmt.Errorf("backing file of %s: %w", id, err)
	}
	r.mu.Lock()
	r.byID[id] = &volume{id: id, file: file}
	r.mu.Unlock()
	return nil
}

func (r *volumes) file(id string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.byID[id]
	if !ok {
		return "", false
	}
	return v.file, true
}

// plug attaches the volume to inst, a running instance.
func (r *volumes) plug(id string, inst *Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.byID[id]
	if v == nil {
		return fmt.Errorf("volume %s has no backing file: create volumes with Cloud.CreateVolume", id)
	}
	if v.att != nil {
		// Marked available before its detach hook ran: finish that first.
		if err := r.unplug(v); err != nil {
			return err
		}
	}
	return r.attach(v, inst)
}

// unplugFrom unplugs the volume if it is attached to the instance.
func (r *volumes) unplugFrom(id, instID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.byID[id]
	if v == nil || v.att == nil || v.att.inst.ID != instID {
		return
	}
	_ = r.unplug(v)
}

// unplugAll unplugs every volume attached to the instance.
func (r *volumes) unplugAll(inst *Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, v := range r.byID {
		if v.att != nil && v.att.inst == inst {
			errs = append(errs, r.unplug(v))
		}
	}
	return errors.Join(errs...)
}

// attach binds the backing file to a loop device and exposes it on the
// instance as a Nitro EBS device. Call with r.mu held.
func (r *volumes) attach(v *volume, inst *Instance) error {
	// A device still bound to the file (a release that could not finish:
	// a lazily unmounted filesystem still in use) would give two
	// instances one volume's blocks. EBS never does that; neither do we.
	busy, err := loopdev.BackedBy(func(f string) bool { return f == v.file })
	if err != nil {
		return err
	}
	if len(busy) > 0 {
		return fmt.Errorf("volume %s: its file is still on %s from an earlier attachment", v.id, busy[0].Path())
	}
	loop, err := loopdev.Attach(v.file)
	if err != nil {
		return fmt.Errorf("volume %s: %w", v.id, err)
	}
	att := &volumeAttachment{inst: inst, loop: loop}
	att.rdev, err = loop.Rdev()
	if err == nil {
		err = inst.exposeDevice(loop.Name, att.rdev, v.id)
	}
	if err != nil {
		inst.hideDevice(loop.Name, v.id)
		return errors.Join(fmt.Errorf("volume %s on %s: %w", v.id, inst.ID, err), loop.Detach())
	}
	v.att = att
	inst.log.Info("volume exposed", "step", "volume attach", "volume", v.id, "device", loop.Path(), "by_id", disk.EBSByIDName(v.id))
	return nil
}

// unplug unmounts the volume on its instance, removes its device there and
// releases the loop device. Call with r.mu held.
func (r *volumes) unplug(v *volume) (err error) {
	att := v.att
	v.att = nil
	defer startStep(r.log, "volume detach", "volume", v.id, "instance", att.inst.ID, "device", att.loop.Path()).Defer(&err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uerr := att.inst.unmountDevice(ctx, att.rdev)
	att.inst.hideDevice(att.loop.Name, v.id)
	if err := errors.Join(uerr, att.loop.Detach()); err != nil {
		return fmt.Errorf("release volume %s from %s: %w", v.id, att.inst.ID, err)
	}
	return nil
}

// exposeDevice makes the loop device the instance's EBS device: in its
// machine, when it boots one (see machinedev.go), else in its own /dev.
func (inst *Instance) exposeDevice(name string, rdev uint64, volumeID string) error {
	if inst.machine != nil {
		return inst.machine.addDevice(name, rdev, volumeID)
	}
	return exposeDeviceAt(inst.Path, name, rdev, volumeID)
}

// hideDevice removes what exposeDevice made; missing parts are fine.
func (inst *Instance) hideDevice(name, volumeID string) {
	if inst.machine != nil {
		inst.machine.removeDevice(name, volumeID)
		return
	}
	hideDeviceAt(inst.Path, name, volumeID)
}

// exposeDeviceAt makes the loop device an EBS device, as the disk resolver
// finds one on Nitro, under the root that path maps to: the node in /dev,
// the by-id link ../../<name>, and /sys/class/block/<name>, whose
// attributes are the device's own plus device/serial — padded to 20
// characters like an NVMe controller's serial.
func exposeDeviceAt(path func(string) string, name string, rdev uint64, volumeID string) error {
	serial := disk.EBSSerial(volumeID)
	if err := mknod(path("/dev/"+name), unix.S_IFBLK|0o660, rdev); err != nil {
		return err
	}
	if err := os.Symlink("../../"+name, path("/dev/disk/by-id/"+disk.EBSByIDName(volumeID))); err != nil {
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
	dir := path("/sys/class/block/" + name)
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

// hideDeviceAt removes what exposeDeviceAt made; missing parts are fine.
func hideDeviceAt(path func(string) string, name, volumeID string) {
	_ = os.Remove(path("/dev/disk/by-id/" + disk.EBSByIDName(volumeID)))
	_ = os.Remove(path("/dev/" + name))
	_ = os.RemoveAll(path("/sys/class/block/" + name))
}

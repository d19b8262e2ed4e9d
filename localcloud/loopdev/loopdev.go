// Package loopdev attaches files to loop devices and lets them go again,
// for the local cloud's volumes and for tests that need a real block
// device.
//
// Every device is attached with LO_FLAGS_AUTOCLEAR while this process holds
// it open: should the process die, the kernel closes the holder and, once
// nothing has the device mounted any more, detaches it by itself.
package loopdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// wait bounds attaching to a free loop device (racing other users of
// loop-control) and waiting for the kernel to let one go.
const wait = 10 * time.Second

// Device is a loop device and the file bound to it.
type Device struct {
	Name string // loopN
	File string
}

// Path is the device node, /dev/loopN.
func (d Device) Path() string { return "/dev/" + d.Name }

// Attachment is a device attached by this process, held open.
type Attachment struct {
	Device
	dev *os.File // the holder that keeps the device bound
}

// Attach binds file to a free loop device with autoclear set.
func Attach(file string) (*Attachment, error) {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the loop device keeps its own reference
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
	cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], file)
	deadline := time.Now().Add(wait)
	for {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		d := Device{Name: fmt.Sprintf("loop%d", n), File: file}
		dev, err := os.OpenFile(d.Path(), os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if err == nil {
			return &Attachment{Device: d, dev: dev}, nil
		}
		dev.Close()
		// EBUSY: another process took the free device between the two
		// calls (losetup has the same race); ask for the next free one.
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return nil, fmt.Errorf("LOOP_CONFIGURE %s with %s: %w", d.Path(), file, err)
		}
	}
}

// Rdev is the device number.
func (a *Attachment) Rdev() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(a.dev.Fd()), &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", a.Path(), err)
	}
	return st.Rdev, nil
}

// Detach releases the device and waits until the kernel has let go of it.
// Unmount what is mounted from it first.
func (a *Attachment) Detach() error { return detach(a.dev, a.Device) }

// Abandon closes the holder without releasing the device, as a crash
// would: the kernel detaches it once nothing has it mounted or open. For
// tests of crash reclaim.
func (a *Attachment) Abandon() error { return a.dev.Close() }

// Release releases a loop device this process holds no descriptor of (a
// crashed run's).
func Release(d Device) error {
	dev, err := os.OpenFile(d.Path(), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", d.Path(), err)
	}
	return detach(dev, d)
}

func detach(dev *os.File, d Device) error {
	// With other users left, LOOP_CLR_FD only marks the device for
	// clearing at their last close; the wait below sees if that happens.
	cerr := unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0)
	if errors.Is(cerr, unix.ENXIO) {
		cerr = nil // already unbound
	}
	if cerr != nil {
		cerr = fmt.Errorf("LOOP_CLR_FD %s: %w", d.Path(), cerr)
	}
	return errors.Join(cerr, dev.Close(), waitUnbound(d))
}

// waitUnbound waits until the device is no longer bound to its file.
func waitUnbound(d Device) error {
	for deadline := time.Now().Add(wait); Bound(d); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still bound to %s %s after release: still mounted or open somewhere", d.Path(), d.File, wait)
		}
	}
	return nil
}

// Bound reports whether the device is bound to its file. The file is
// compared, not just the device, because once detached the number can be
// reused at once by another process.
func Bound(d Device) bool {
	file, ok := backingFile(filepath.Join("/sys/block", d.Name, "loop", "backing_file"))
	return ok && file == d.File
}

// BackedBy lists the loop devices whose backing file matches.
func BackedBy(match func(file string) bool) ([]Device, error) {
	paths, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, p := range paths {
		if file, ok := backingFile(p); ok && match(file) {
			out = append(out, Device{Name: filepath.Base(filepath.Dir(filepath.Dir(p))), File: file})
		}
	}
	return out, nil
}

// backingFile reads a sysfs backing_file attribute; false when the device
// is not bound (or was detached while we looked).
func backingFile(attr string) (string, bool) {
	b, err := os.ReadFile(attr)
	if err != nil {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)"), true
}

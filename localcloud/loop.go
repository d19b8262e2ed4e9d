package localcloud

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// loopWait bounds attaching to a free loop device (racing other users of
// loop-control) and waiting for the kernel to let one go.
const loopWait = 10 * time.Second

// loopDev is a loop device and the file behind it.
type loopDev struct {
	name string // loopN
	file string
}

// attachLoop binds file to a free loop device with autoclear set, and
// returns the open device — the holder that keeps it bound — and its name.
// Should the harness die, the kernel closes the holder and, once nothing
// has the device mounted any more, detaches it by itself.
func attachLoop(file string) (*os.File, string, error) {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return nil, "", err
	}
	defer f.Close() // the loop device keeps its own reference
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, "", err
	}
	defer ctl.Close()
	cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
	cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], file)
	deadline := time.Now().Add(loopWait)
	for {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, "", fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		name := fmt.Sprintf("loop%d", n)
		dev, err := os.OpenFile("/dev/"+name, os.O_RDWR, 0)
		if err != nil {
			return nil, "", err
		}
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if err == nil {
			return dev, name, nil
		}
		dev.Close()
		// EBUSY: another process took the free device between the two
		// calls (losetup has the same race); ask for the next free one.
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return nil, "", fmt.Errorf("LOOP_CONFIGURE /dev/%s with %s: %w", name, file, err)
		}
	}
}

// detachLoop releases a device attachLoop returned and waits until the
// kernel has let go of it. Unmount what is mounted from it first.
func detachLoop(dev *os.File, l loopDev) error {
	// With other users left, LOOP_CLR_FD only marks the device for
	// clearing at their last close; the wait below sees if that happens.
	cerr := unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0)
	if errors.Is(cerr, unix.ENXIO) {
		cerr = nil // already unbound
	}
	return errors.Join(cerr, dev.Close(), waitUnbound(l))
}

// releaseLoop releases a loop device the harness holds no descriptor of (a
// crashed run's).
func releaseLoop(l loopDev) error {
	dev, err := os.OpenFile("/dev/"+l.name, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open /dev/%s: %w", l.name, err)
	}
	return detachLoop(dev, l)
}

// waitUnbound waits until the device is no longer bound to its file. The
// file is compared, not just the device, because once detached the number
// can be reused at once by someone else.
func waitUnbound(l loopDev) error {
	for deadline := time.Now().Add(loopWait); ; time.Sleep(20 * time.Millisecond) {
		left, err := loopsBackedBy(func(f string) bool { return f == l.file })
		if err != nil {
			return err
		}
		found := false
		for _, o := range left {
			found = found || o.name == l.name
		}
		if !found {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/dev/%s still bound to %s %s after release: still mounted or open somewhere", l.name, l.file, loopWait)
		}
	}
}

// loopsBackedBy lists the loop devices whose backing file matches.
func loopsBackedBy(match func(file string) bool) ([]loopDev, error) {
	paths, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return nil, err
	}
	var out []loopDev
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // detached while we looked
		}
		file := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if match(file) {
			out = append(out, loopDev{name: filepath.Base(filepath.Dir(filepath.Dir(p))), file: file})
		}
	}
	return out, nil
}

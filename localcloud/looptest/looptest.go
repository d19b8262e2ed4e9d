// Package looptest gives tests real block devices — sparse files attached to
// loop devices — and a TestMain that runs a package's tests inside a private
// mount namespace, so that nothing a test mounts is ever visible on the host.
//
// Crash safety comes from the kernel, not from cleanup code that may never
// run: every device is attached with LO_FLAGS_AUTOCLEAR while this process
// holds it open, and every mount lives in a namespace that dies with the test
// process. If the test binary is killed, the namespace goes away, its mounts
// are released, the holder descriptor is closed and the kernel detaches the
// device by itself. Normal cleanup (t.Cleanup) does the same explicitly.
package looptest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/localcloud/loopdev"
)

// envHostMountNS carries the parent's mount namespace (the readlink of
// /proc/self/ns/mnt) into the re-executed test binary, which both marks the
// child and lets it prove it really is in a different namespace.
const envHostMountNS = "ZKAAS_LOOPTEST_HOST_MNTNS"

// nsProblem says why privileged tests cannot run (set by Main when the
// private mount namespace could not be created); empty when they can.
var nsProblem string

// Main is a TestMain for packages whose tests mount filesystems:
//
//	func TestMain(m *testing.M) { looptest.Main(m) }
//
// As root it re-executes the test binary in a new mount namespace with "/"
// made recursively private (Go's SysProcAttr.Unshareflags does both), and
// exits with the child's status. This is chosen over unix.Unshare on a
// locked OS thread because a thread-scoped namespace is not seen by other
// goroutines — t.Cleanup, t.TempDir removal and anything the code under test
// runs concurrently would operate on the host's mounts — whereas a whole
// process in its own namespace has no such gap, and the kernel tears the
// namespace down when the process exits, however it exits.
//
// Not as root it simply runs the tests; Require skips the privileged ones.
func Main(m *testing.M) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run())
	}
	if host, ok := os.LookupEnv(envHostMountNS); ok {
		own, err := os.Readlink("/proc/self/ns/mnt")
		if err != nil || own == host {
			fmt.Fprintf(os.Stderr, "looptest: not in a private mount namespace (own %q, host %q, err %v)\n", own, host, err)
			os.Exit(2)
		}
		os.Exit(m.Run())
	}
	code, err := runInMountNamespace()
	if err != nil {
		// Root without CAP_SYS_ADMIN (an unprivileged container): the
		// unprivileged tests still run, the privileged ones skip with this.
		nsProblem = "cannot create a private mount namespace: " + err.Error()
		os.Exit(m.Run())
	}
	os.Exit(code)
}

// runInMountNamespace re-executes the test binary with the same arguments in
// a new private mount namespace and returns its exit code. An error means the
// child could not be started.
func runInMountNamespace() (int, error) {
	host, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return 0, fmt.Errorf("read own mount namespace: %w", err)
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envHostMountNS+"="+host)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Unshareflags: syscall.CLONE_NEWNS,
		// Pdeathsig fires when the parent *thread* dies: stay on one.
		Pdeathsig: syscall.SIGKILL,
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	// Forward what go test sends on timeout (SIGQUIT) or the user sends, so
	// the child can print its goroutines and run its own cleanups.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode(), nil
	default:
		fmt.Fprintf(os.Stderr, "looptest: test process in mount namespace: %v\n", err)
		return 1, nil
	}
}

// Require skips the test when it cannot use loop devices and mounts (not
// root, or no private mount namespace could be made), and fails it when the
// package's TestMain did not call Main, because then mounts would leak.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loop devices and mounts")
	}
	if nsProblem != "" {
		t.Skip(nsProblem)
	}
	if _, ok := os.LookupEnv(envHostMountNS); !ok {
		t.Fatal("looptest: TestMain must call looptest.Main so mounts stay in a private mount namespace")
	}
}

// Device is a loop device backed by a sparse file.
type Device struct {
	Path string // /dev/loopN
	File string // the backing file
}

// New attaches a new sparse file of size bytes to a free loop device and
// returns it. Cleanup unmounts everything mounted from the device in this
// mount namespace, detaches exactly that device and waits until the kernel
// has let go of it; the file goes with its t.TempDir.
//
// Create mount points (with t.TempDir) before calling New: cleanups run last
// in, first out, so the device is unmounted before those directories are
// removed.
func New(t testing.TB, size int64) *Device {
	t.Helper()
	Require(t)
	file := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("create backing file: %v", err)
	}
	if err := errors.Join(f.Truncate(size), f.Close()); err != nil {
		t.Fatalf("size backing file %s: %v", file, err)
	}
	a, err := loopdev.Attach(file)
	if err != nil {
		t.Fatalf("attach %s: %v", file, err)
	}
	t.Cleanup(func() { detach(t, a) })
	return &Device{Path: a.Path(), File: file}
}

// detach unmounts what is mounted from the device, then releases it and
// waits (bounded) until the kernel has detached it.
func detach(t testing.TB, a *loopdev.Attachment) {
	t.Helper()
	targets, err := mountsOf(a.Path())
	if err != nil {
		t.Errorf("list mounts of %s: %v", a.Path(), err)
	}
	for _, target := range targets {
		if err := unix.Unmount(target, 0); err != nil {
			t.Errorf("unmount %s (from %s): %v; detaching lazily", target, a.Path(), err)
			_ = unix.Unmount(target, unix.MNT_DETACH)
		}
	}
	if err := a.Detach(); err != nil {
		t.Errorf("detach: %v", err)
	}
}

// Attached reports whether the loop device at path is bound to file. The
// file is compared, not just the device, because once detached the number
// can be reused at once by another test process.
func Attached(path, file string) bool {
	return loopdev.Bound(loopdev.Device{Name: filepath.Base(path), File: file})
}

// mountsOf lists the mount points of the device in this mount namespace,
// most recent first (the order to unmount stacked mounts in). Mounts are
// matched by device number, not by source: the source is whatever path the
// mounter used (a by-id link, /dev/loopN).
func mountsOf(dev string) ([]string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", dev, err)
	}
	rdev := st.Rdev
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return uint32(m.Major) != unix.Major(rdev) || uint32(m.Minor) != unix.Minor(rdev), false
	})
	if err != nil {
		return nil, err
	}
	targets := make([]string, 0, len(mounts))
	for _, m := range slices.Backward(mounts) {
		targets = append(targets, m.Mountpoint)
	}
	return targets, nil
}

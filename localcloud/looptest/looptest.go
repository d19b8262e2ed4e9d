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
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
	defer f.Close() // the loop device keeps its own reference
	if err := f.Truncate(size); err != nil {
		t.Fatalf("size backing file %s: %v", file, err)
	}
	dev, path, err := attach(f)
	if err != nil {
		t.Fatalf("attach %s: %v", file, err)
	}
	t.Cleanup(func() { detach(t, dev, path, file) })
	return &Device{Path: path, File: file}
}

// attach binds f to a free loop device with autoclear set and returns the
// open device (the holder that keeps it bound) and its path.
func attach(f *os.File) (*os.File, string, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, "", err
	}
	defer ctl.Close()
	cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
	cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], f.Name())

	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, "", fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		path := fmt.Sprintf("/dev/loop%d", n)
		dev, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, "", err
		}
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if err == nil {
			return dev, path, nil
		}
		dev.Close()
		// EBUSY: another process took the free device between the two
		// calls (losetup has the same race); ask for the next free one.
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return nil, "", fmt.Errorf("LOOP_CONFIGURE %s: %w", path, err)
		}
	}
}

// detach unmounts what is mounted from the device, releases the holder and
// waits (bounded) until the kernel has detached it.
func detach(t testing.TB, dev *os.File, path, file string) {
	t.Helper()
	targets, err := mountsOf(path)
	if err != nil {
		t.Errorf("list mounts of %s: %v", path, err)
	}
	for _, target := range targets {
		if err := unix.Unmount(target, 0); err != nil {
			t.Errorf("unmount %s (from %s): %v; detaching lazily", target, path, err)
			_ = unix.Unmount(target, unix.MNT_DETACH)
		}
	}
	// LOOP_CLR_FD marks the device for clearing; it happens on last close.
	if err := unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0); err != nil {
		t.Errorf("LOOP_CLR_FD %s: %v", path, err)
	}
	if err := dev.Close(); err != nil {
		t.Errorf("close %s: %v", path, err)
	}
	for deadline := time.Now().Add(5 * time.Second); Attached(path, file); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%s still attached to %s 5s after cleanup (still open or mounted elsewhere?)", path, file)
			return
		}
	}
}

// Attached reports whether the loop device at path is bound to file. The
// file is compared, not just the device, because once detached the number
// can be reused at once by another test process.
func Attached(path, file string) bool {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(path), "loop", "backing_file"))
	if err != nil {
		return false
	}
	return strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)") == file
}

// mountsOf lists the mount points of source in this mount namespace, most
// recent first (the order to unmount stacked mounts in), using findmnt so
// this helper does not carry its own mountinfo parser.
func mountsOf(source string) ([]string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("findmnt", "--noheadings", "--list", "--output", "TARGET", "--source", source)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 && stdout.Len() == 0 {
		return nil, nil // findmnt: nothing found
	}
	if err != nil {
		return nil, fmt.Errorf("findmnt: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var targets []string
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		targets = append([]string{line}, targets...)
	}
	return targets, nil
}

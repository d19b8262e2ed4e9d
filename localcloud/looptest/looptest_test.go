package looptest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { Main(m) }

// envCrashHelper turns TestCrashHelper into the process that crashes.
const envCrashHelper = "ZKAAS_LOOPTEST_CRASH_HELPER"

func TestPrivateMountNamespace(t *testing.T) {
	Require(t)
	out, err := exec.Command("findmnt", "--noheadings", "--output", "PROPAGATION", "/").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "private" {
		t.Errorf("propagation of / is %q, want private", got)
	}
}

func TestNewAndCleanup(t *testing.T) {
	const size = 8 << 20
	var dev *Device
	t.Run("use", func(t *testing.T) {
		mnts := []string{t.TempDir(), t.TempDir()}
		dev = New(t, size)
		if !Attached(dev.Path, dev.File) {
			t.Fatalf("%s is not attached to %s", dev.Path, dev.File)
		}
		f, err := os.Open(dev.Path)
		if err != nil {
			t.Fatal(err)
		}
		end, err := f.Seek(0, io.SeekEnd)
		f.Close()
		if err != nil || end != size {
			t.Fatalf("device size %d (%v), want %d", end, err, size)
		}
		if fi, err := os.Stat(dev.File); err != nil || fi.Size() != size {
			t.Fatalf("backing file %v (%v), want %d bytes", fi, err, size)
		}
		if out, err := exec.Command("mkfs.ext4", "-q", dev.Path).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v\n%s", err, out)
		}
		// Left mounted, twice: cleanup must unmount both.
		for _, mnt := range mnts {
			if err := unix.Mount(dev.Path, mnt, "ext4", 0, ""); err != nil {
				t.Fatal(err)
			}
		}
	})
	if dev == nil {
		t.Fatal("no device")
	}
	assertDetached(t, dev.Path, dev.File, 0)
	if targets, err := mountsOf(dev.Path); err != nil || len(targets) != 0 {
		t.Errorf("still mounted after cleanup: %q (%v)", targets, err)
	}
	if _, err := os.Stat(dev.File); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backing file left behind: %v", err)
	}
}

// A test process killed outright runs no cleanup; the kernel must still
// release its mounts (the namespace dies) and detach its device (autoclear).
func TestCrashLeavesNothing(t *testing.T) {
	Require(t)
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestCrashHelper$", "-test.v")
	for _, kv := range os.Environ() {
		// Without the marker the helper makes its own mount namespace,
		// as a fresh `go test` would.
		if !strings.HasPrefix(kv, envHostMountNS+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, envCrashHelper+"=1")
	out, _ := cmd.CombinedOutput()
	var path, file string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "DEVICE="); ok {
			path = v
		}
		if v, ok := strings.CutPrefix(line, "FILE="); ok {
			file = v
		}
	}
	if path == "" || file == "" {
		t.Fatalf("helper did not report its device:\n%s", out)
	}
	// go test never got to remove the helper's t.TempDir.
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(filepath.Dir(file))) })
	assertDetached(t, path, file, 5*time.Second)
}

func TestCrashHelper(t *testing.T) {
	if os.Getenv(envCrashHelper) != "1" {
		t.Skip("helper process for TestCrashLeavesNothing")
	}
	mnt := t.TempDir()
	dev := New(t, 8<<20)
	if out, err := exec.Command("mkfs.ext4", "-q", dev.Path).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	if err := unix.Mount(dev.Path, mnt, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("\nDEVICE=" + dev.Path + "\nFILE=" + dev.File + "\n")
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // not reached
}

// assertDetached waits up to wait for the kernel to unbind the device.
func assertDetached(t *testing.T, path, file string, wait time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(wait); Attached(path, file); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still attached to %s", path, file)
		}
	}
}

package disk_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/localcloud/looptest"
)

// Every test that mounts runs in a private mount namespace (see looptest.Main).
func TestMain(m *testing.M) { looptest.Main(m) }

const (
	testVolume = "vol-0123456789abcdef0"
	testSerial = "vol0123456789abcdef0"
	ext4Size   = 64 << 20
	xfsSize    = 320 << 20 // mkfs.xfs refuses devices under 300 MiB
)

// nitro presents dev as an EBS volume on a Nitro instance: a by-id link
// named after the volume and a sysfs serial for the device it points to.
// links maps by-id names to targets, serials maps block device names to
// serial file contents.
func nitro(t *testing.T, links, serials map[string]string) *disk.Preparer {
	t.Helper()
	root := t.TempDir()
	byID := filepath.Join(root, "by-id")
	if err := os.MkdirAll(byID, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(byID, name)); err != nil {
			t.Fatal(err)
		}
	}
	sysfs := filepath.Join(root, "sys")
	for name, serial := range serials {
		dir := filepath.Join(sysfs, "class", "block", name, "device")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "serial"), []byte(serial), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &disk.Preparer{
		ByIDDir:       byID,
		SysfsRoot:     sysfs,
		DeviceTimeout: 2 * time.Second,
		PollInterval:  20 * time.Millisecond,
		Log:           slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// ebsSerial is how the NVMe controller reports an EBS volume id: no dash,
// space-padded to 20 characters, newline-terminated in sysfs.
func ebsSerial(volumeID string) string {
	return fmt.Sprintf("%-20s\n", strings.Replace(volumeID, "-", "", 1))
}

func byIDName(volumeID string) string {
	return "nvme-Amazon_Elastic_Block_Store_" + strings.Replace(volumeID, "-", "", 1)
}

func mustRun(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

func mustRunStdin(t *testing.T, stdin string, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// sha256File hashes the whole backing file's content: any byte the code
// under test wrote through the loop device shows up here. Only the file's
// data extents are read (SEEK_DATA/SEEK_HOLE), so a sparse 1 GiB device
// costs what it holds, not a gigabyte of zeros; and since the host
// filesystem may report the same bytes as different extents over time
// (delayed allocation), what is hashed is each non-zero 4 KiB block with its
// offset, which depends on the content alone.
func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "size %d\n", fi.Size())
	const block = 4096
	buf, zero := make([]byte, block), make([]byte, block)
	for off := int64(0); off < fi.Size(); {
		data, err := f.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			t.Fatal(err)
		}
		hole, err := f.Seek(data, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		for b := data &^ (block - 1); b < hole; b += block {
			n, err := f.ReadAt(buf, b)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], zero[:n]) {
				fmt.Fprintf(h, "block %d\n", b)
				h.Write(buf[:n])
			}
		}
		off = hole
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// mountedFSType returns the filesystem type mounted at dir, "" if none.
func mountedFSType(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("findmnt", "--noheadings", "--output", "FSTYPE", "--mountpoint", dir).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return ""
	}
	if err != nil {
		t.Fatalf("findmnt %s: %v", dir, err)
	}
	return strings.TrimSpace(string(out))
}

// withMounted mounts dev in a scratch directory, runs fn there and
// unmounts: how a test puts data on a device before Prepare sees it.
func withMounted(t *testing.T, dev, fsType string, fn func(dir string)) {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount(dev, dir, fsType, 0, ""); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
	defer func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Fatalf("unmount %s: %v", dir, err)
		}
	}()
	fn(dir)
}

// writeAt writes data into the device at off, bypassing any filesystem.
func writeAt(t *testing.T, dev string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// flushDevice writes back the device's dirty cache: an unmount can leave
// buffers (the superblock) that reach the backing file only at the next
// last close of the device, which would then look like a write by
// whoever opened it next.
func flushDevice(t *testing.T, dev string) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func readMarker(t *testing.T, mountPoint string) disk.Identity {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mountPoint, disk.MarkerName))
	if err != nil {
		t.Fatalf("read marker: %v", err)
	}
	var id disk.Identity
	if err := json.Unmarshal(b, &id); err != nil {
		t.Fatalf("marker %s: %v", b, err)
	}
	return id
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

var garbage = bytes.Repeat([]byte("not a filesystem, maybe ciphertext "), 128)

package disk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// These tests make real filesystems with the real tools on sparse files (no
// root, no loop device), wipe their headers as wipefs or a partition tool
// would — the first and last 16 MiB zeroed, everything else left — and ask
// the blank check about what remains: it must refuse, and name the check
// that found the filesystem's own backup (ext4's backup superblock, xfs's
// AG header) at the place mkfs put it, not only a sample that happened to
// hit something.

// needTool skips the test when a tool is missing: `go tool mage test`
// installs xfsprogs and e2fsprogs.
func needTool(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s not installed (xfsprogs/e2fsprogs; go tool mage test installs them): %v", name, err)
		}
	}
}

// sparseFile is a file of size bytes that holds nothing yet.
func sparseFile(t *testing.T, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "volume.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Truncate(size), f.Close()); err != nil {
		t.Fatal(err)
	}
	return path
}

func runTool(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// wipeEnds zeroes the first and last 16 MiB of path, punching holes so a
// 5 TiB file stays cheap; the bytes read back as zeros either way.
func wipeEnds(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for _, start := range []int64{0, fi.Size() - blankEndSpan} {
		for off := start; off < start+blankEndSpan; off += int64(len(zero)) {
			if _, err := f.WriteAt(zero, off); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// refusedWiped probes the wiped file and runs the format decision on what
// the probe found, as Prepare does; it returns the refusal.
func refusedWiped(t *testing.T, path, fsType string) error {
	t.Helper()
	// blkid first: the wiped headers must really be gone, or the test
	// would pass on the signature instead of on the blank check.
	if out, err := exec.Command("blkid", "-p", "-o", "export", path).CombinedOutput(); err == nil {
		t.Fatalf("blkid still finds a signature after the wipe:\n%s", out)
	}
	p := &Preparer{}
	pr, err := p.Probe(context.Background(), path)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	spec := Spec{VolumeID: "vol-0123456789abcdef0", FSType: fsType, NodeID: 3}
	format, err := decide(spec, path, pr)
	if format || err == nil || !errors.Is(err, ErrRefused) {
		t.Fatalf("wiped %s: format=%v err=%v (probe %+v), want a refusal", fsType, format, err, pr)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "not blank") || !strings.Contains(err.Error(), spec.VolumeID) {
		t.Errorf("refusal %q: want the not-blank refusal naming the volume", err)
	}
	return err
}

// ext4 with 4 KiB blocks keeps backup superblocks in groups 1, 3, 5, 7, 9,
// ...; group 1's, at block 32768 (128 MiB), is the first past the wipe.
func TestWipedExt4IsNotBlank(t *testing.T) {
	needTool(t, "mkfs.ext4", "blkid")
	path := sparseFile(t, 2<<30)
	runTool(t, "mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "data", path)
	wipeEnds(t, path)
	err := refusedWiped(t, path, "ext4")
	// The offset is the read's first non-zero byte: the superblock's
	// first field, s_inodes_count, is little-endian with its low bytes 0.
	m := regexp.MustCompile(`non-zero data at offset (\d+) \(ext4 backup superblock \(4 KiB blocks\)`).FindStringSubmatch(err.Error())
	const group1 = 32768 * 4096
	if off, _ := strconv.ParseInt(m[min(1, len(m)-1)], 10, 64); m == nil || off < group1 || off >= group1+blankPoint {
		t.Errorf("refusal %q: want the ext4 backup superblock check to find data in group 1's superblock, at %d", err, group1)
	}
}

// xfs keeps a superblock copy at the start of every AG: the first past the
// wipe is AG 1's, at agsize blocks, whatever mkfs.xfs chose for the size —
// 4 AGs on 2 GiB, AGs of the maximum 2^28-1 blocks from 4 TiB up (not
// 1 TiB: a check at 1 TiB reads AG 1's second block, and names it wrong).
func TestWipedXFSIsNotBlank(t *testing.T) {
	needTool(t, "mkfs.xfs", "blkid")
	for _, size := range []int64{2 << 30, 4 << 40, 5 << 40} {
		t.Run(strconv.FormatInt(size>>30, 10)+"GiB", func(t *testing.T) {
			path := sparseFile(t, size)
			// -K: no discard, which on a file punches the whole of it.
			// A 64 MiB log instead of the default (2 GiB at 5 TiB), which
			// mkfs.xfs zeroes and the host may store: the AG geometry
			// does not depend on it.
			out := runTool(t, "mkfs.xfs", "-K", "-l", "size=64m", "-L", "data", path)
			agsize, bsize := mkfsXFSGeometry(t, out)
			wipeEnds(t, path)
			err := refusedWiped(t, path, "xfs")
			want := fmt.Sprintf("non-zero data at offset %d (xfs allocation group header)", agsize*bsize)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q: want %q (mkfs.xfs: agsize=%d blocks of %d)", err, want, agsize, bsize)
			}
		})
	}
}

var (
	agsizeRE = regexp.MustCompile(`agsize=(\d+) blks`)
	bsizeRE  = regexp.MustCompile(`(?m)^data\s+=\s+bsize=(\d+)`)
)

// mkfsXFSGeometry reads the AG size and block size from mkfs.xfs's report.
func mkfsXFSGeometry(t *testing.T, out string) (agsize, bsize int64) {
	t.Helper()
	a, b := agsizeRE.FindStringSubmatch(out), bsizeRE.FindStringSubmatch(out)
	if a == nil || b == nil {
		t.Fatalf("no agsize or bsize in mkfs.xfs's output:\n%s", out)
	}
	agsize, _ = strconv.ParseInt(a[1], 10, 64)
	bsize, _ = strconv.ParseInt(b[1], 10, 64)
	return agsize, bsize
}

// The AG size the blank check expects first for a size is the one mkfs.xfs
// picks: asked with -N (no write) on sparse files of each size, around the
// 128 MiB and 4 TiB thresholds and in between.
func TestXFSAGSizesMatchMkfs(t *testing.T) {
	needTool(t, "mkfs.xfs")
	for _, size := range []int64{
		300 << 20, 1<<30 + 36<<20 + 512, 2 << 30, 100<<30 + 4096, 1 << 40,
		4<<40 - 4096, 4 << 40, 5 << 40, 5<<40 + 123<<20, 15 << 40,
	} {
		path := sparseFile(t, size)
		out := runTool(t, "mkfs.xfs", "-N", "-K", path)
		agsize, bsize := mkfsXFSGeometry(t, out)
		if bsize != xfsBlock {
			t.Fatalf("size %d: mkfs.xfs chose %d-byte blocks", size, bsize)
		}
		if got := xfsAGSizes(size / xfsBlock); len(got) == 0 || got[0] != agsize {
			t.Errorf("size %d: first candidate AG size %v, mkfs.xfs chose %d", size, got[:min(len(got), 3)], agsize)
		}
		// And every AG start is a read of the xfs check.
		at := map[int64]bool{}
		for _, r := range blankReads(size) {
			for _, c := range r.checks {
				if c == "xfs allocation group header" {
					at[r.off] = true
				}
			}
		}
		for start := agsize * bsize; start < size-blankEndSpan; start += agsize * bsize {
			if start >= blankEndSpan && !at[start] {
				t.Errorf("size %d: AG start %d not read by the xfs check", size, start)
			}
		}
	}
}

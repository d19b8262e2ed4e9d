package disk_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/internal/golden"

	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/localcloud/looptest"
)

// volume is one test's EBS volume: a loop device behind a fake Nitro by-id
// link, and the mount point Prepare is asked to use.
type volume struct {
	dev  *looptest.Device
	prep *disk.Preparer
	mnt  string
}

func newVolume(t *testing.T, size int64) *volume {
	t.Helper()
	// The mount point's directory first: cleanups run last in, first out,
	// so looptest unmounts before this directory is removed.
	mnt := filepath.Join(t.TempDir(), "zookeeper")
	dev := looptest.New(t, size)
	prep := nitro(t,
		map[string]string{byIDName(testVolume): dev.Path},
		map[string]string{filepath.Base(dev.Path): ebsSerial(testVolume)})
	return &volume{dev: dev, prep: prep, mnt: mnt}
}

func (v *volume) spec(fsType string, node int, initialized bool) disk.Spec {
	return disk.Spec{
		VolumeID:    testVolume,
		FSType:      fsType,
		MountPoint:  v.mnt,
		Initialized: initialized,
		Ensemble:    "prod",
		NodeID:      node,
	}
}

func TestPrepare(t *testing.T) {
	const node = 3
	tests := []struct {
		name        string
		size        int64
		fsType      string
		initialized bool
		setup       func(t *testing.T, v *volume)
		// wantErr: substrings of the refusal; nil means success.
		wantErr []string
		// mountsFirst: the setup itself mounted the device (which writes
		// to it), so "device untouched" is not checked.
		mountsFirst bool
		check       func(t *testing.T, v *volume, res disk.Result)
	}{
		{
			name:   "blank never initialized ext4 is formatted and mounted",
			size:   ext4Size,
			fsType: "ext4",
			check: func(t *testing.T, v *volume, res disk.Result) {
				if !res.Formatted || !res.Mounted {
					t.Errorf("Formatted=%v Mounted=%v, want both", res.Formatted, res.Mounted)
				}
				if got := mustRun(t, "blkid", "-p", "-o", "value", "-s", "LABEL", v.dev.Path); strings.TrimSpace(got) != "zk-3" {
					t.Errorf("label %q, want zk-3", got)
				}
				id := readMarker(t, v.mnt)
				if id.FirstFormatted.IsZero() || time.Since(id.FirstFormatted) > time.Minute {
					t.Errorf("first_formatted %v, want about now", id.FirstFormatted)
				}
			},
		},
		{
			name:   "blank never initialized xfs is formatted and mounted",
			size:   xfsSize,
			fsType: "xfs",
			check: func(t *testing.T, v *volume, res disk.Result) {
				if !res.Formatted || !res.Mounted {
					t.Errorf("Formatted=%v Mounted=%v, want both", res.Formatted, res.Mounted)
				}
			},
		},
		{
			name:        "ext4 with data is mounted with data intact",
			size:        ext4Size,
			fsType:      "ext4",
			initialized: true,
			mountsFirst: true,
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.ext4", "-q", v.dev.Path)
				withMounted(t, v.dev.Path, "ext4", func(dir string) {
					writeFile(t, filepath.Join(dir, "version-2", "snapshot.1f"), "the data tree")
				})
			},
			check: func(t *testing.T, v *volume, res disk.Result) {
				if res.Formatted || !res.Mounted {
					t.Errorf("Formatted=%v Mounted=%v, want false, true", res.Formatted, res.Mounted)
				}
				if b, err := os.ReadFile(filepath.Join(v.mnt, "version-2", "snapshot.1f")); err != nil || string(b) != "the data tree" {
					t.Errorf("data after Prepare: %q, %v", b, err)
				}
				if !slices.ContainsFunc(res.Changes, func(c string) bool { return strings.Contains(c, "on existing filesystem") }) {
					t.Errorf("changes %q: want the marker written on the existing filesystem", res.Changes)
				}
				if id := readMarker(t, v.mnt); !id.FirstFormatted.IsZero() {
					t.Errorf("first_formatted %v on a filesystem we did not format", id.FirstFormatted)
				}
			},
		},
		{
			name:    "xfs when ext4 is configured is refused",
			size:    xfsSize,
			fsType:  "ext4",
			setup:   func(t *testing.T, v *volume) { mustRun(t, "mkfs.xfs", "-q", v.dev.Path) },
			wantErr: []string{"holds a xfs filesystem", "want ext4"},
		},
		{
			name:   "gpt partition table is refused",
			size:   ext4Size,
			fsType: "ext4",
			setup: func(t *testing.T, v *volume) {
				mustRunStdin(t, "label: gpt\n,8MiB\n", "sfdisk", "--quiet", "--no-reread", v.dev.Path)
			},
			wantErr: []string{"gpt partition table"},
		},
		{
			name:   "msdos partition table is refused",
			size:   ext4Size,
			fsType: "ext4",
			setup: func(t *testing.T, v *volume) {
				mustRunStdin(t, "label: dos\n,8MiB\n", "sfdisk", "--quiet", "--no-reread", v.dev.Path)
			},
			wantErr: []string{"dos partition table"},
		},
		{
			name:        "blank but tagged initialized is refused",
			size:        ext4Size,
			fsType:      "ext4",
			initialized: true,
			wantErr:     []string{"tagged zkaas:initialized but has no filesystem", "refusing to format", "restore from snapshot"},
		},
		{
			// The loop device keeps its size but reads past the end of
			// its (now shorter) backing file fail with EIO — and blkid
			// then exits 2, "nothing found", exactly like a blank device.
			name:   "unreadable device is refused and nothing is written",
			size:   ext4Size,
			fsType: "ext4",
			setup: func(t *testing.T, v *volume) {
				if err := os.Truncate(v.dev.File, ext4Size/2); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: []string{"cannot be probed", "input/output error"},
		},
		{
			name:    "non-zero data without a signature at the start is refused",
			size:    ext4Size,
			fsType:  "ext4",
			setup:   func(t *testing.T, v *volume) { writeAt(t, v.dev.Path, 64<<10, garbage) },
			wantErr: []string{"not blank", "refusing to format"},
		},
		{
			name:    "non-zero data without a signature at the end is refused",
			size:    ext4Size,
			fsType:  "ext4",
			setup:   func(t *testing.T, v *volume) { writeAt(t, v.dev.Path, ext4Size-(256<<10), garbage) },
			wantErr: []string{"not blank", "refusing to format"},
		},
		{
			name:        "identity marker of another node is refused and unmounted",
			size:        ext4Size,
			fsType:      "ext4",
			initialized: true,
			mountsFirst: true,
			setup: func(t *testing.T, v *volume) {
				if _, err := v.prep.Prepare(context.Background(), v.spec("ext4", 7, false)); err != nil {
					t.Fatalf("prepare as node 7: %v", err)
				}
				if err := unix.Unmount(v.mnt, 0); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: []string{`ensemble "prod" node 7`, "not ensemble \"prod\" node 3", "refusing to use another node's data"},
		},
		{
			name:        "unreadable identity marker is refused",
			size:        ext4Size,
			fsType:      "ext4",
			initialized: true,
			mountsFirst: true,
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.ext4", "-q", v.dev.Path)
				withMounted(t, v.dev.Path, "ext4", func(dir string) {
					writeFile(t, filepath.Join(dir, disk.MarkerName), "{not json")
				})
			},
			wantErr: []string{"identity marker", "unreadable"},
		},
		{
			// A volume restored from node 3's snapshot has a new id but
			// is still node 3's data: accepted, the marker updated.
			name:        "volume restored from a snapshot gets its new id in the marker",
			size:        ext4Size,
			fsType:      "ext4",
			initialized: true,
			mountsFirst: true,
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.ext4", "-q", v.dev.Path)
				withMounted(t, v.dev.Path, "ext4", func(dir string) {
					writeFile(t, filepath.Join(dir, disk.MarkerName),
						`{"ensemble":"prod","node_id":3,"volume_id":"vol-0aaaaaaaaaaaaaaaa","first_formatted":"2024-05-01T10:00:00Z"}`)
				})
			},
			check: func(t *testing.T, v *volume, res disk.Result) {
				id := readMarker(t, v.mnt)
				want := disk.Identity{Ensemble: "prod", NodeID: 3, VolumeID: testVolume,
					FirstFormatted: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}
				if id != want || res.Identity != want {
					t.Errorf("marker %+v, result %+v, want %+v", id, res.Identity, want)
				}
				if !slices.ContainsFunc(res.Changes, func(c string) bool {
					return strings.Contains(c, "vol-0aaaaaaaaaaaaaaaa -> "+testVolume)
				}) {
					t.Errorf("changes %q: want the volume id update", res.Changes)
				}
			},
		},
		{
			name:   "something else mounted at the mount point is refused",
			size:   ext4Size,
			fsType: "ext4",
			setup: func(t *testing.T, v *volume) {
				if err := os.MkdirAll(v.mnt, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := unix.Mount("tmpfs", v.mnt, "tmpfs", 0, "size=1m"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = unix.Unmount(v.mnt, 0) })
			},
			wantErr: []string{"already has tmpfs", "refusing to mount over it"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVolume(t, tc.size)
			if tc.setup != nil {
				tc.setup(t, v)
			}
			before := sha256File(t, v.dev.File)
			mountedBefore := mountedFSType(t, v.mnt)
			spec := v.spec(tc.fsType, node, tc.initialized)

			res, err := v.prep.Prepare(context.Background(), spec)

			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Prepare succeeded (%+v), want refusal %q", res, tc.wantErr)
				}
				if !errors.Is(err, disk.ErrRefused) || !containsAll(err.Error(), tc.wantErr...) || !strings.Contains(err.Error(), testVolume) {
					t.Fatalf("error %q (refused: %v), want a refusal naming %s and containing %q", err, errors.Is(err, disk.ErrRefused), testVolume, tc.wantErr)
				}
				if res.Formatted || res.Mounted {
					t.Errorf("refusal with Formatted=%v Mounted=%v", res.Formatted, res.Mounted)
				}
				if got := mountedFSType(t, v.mnt); got != mountedBefore {
					t.Errorf("mount point has %q after refusal, had %q", got, mountedBefore)
				}
				if after := sha256File(t, v.dev.File); !tc.mountsFirst && after != before {
					t.Errorf("device content changed by a refused Prepare")
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if res.Device != v.dev.Path {
				t.Errorf("device %s, want %s", res.Device, v.dev.Path)
			}
			if got := mountedFSType(t, v.mnt); got != tc.fsType {
				t.Errorf("mounted filesystem %q, want %q", got, tc.fsType)
			}
			if opts := mustRun(t, "findmnt", "--noheadings", "--output", "VFS-OPTIONS", "--mountpoint", v.mnt); !strings.Contains(opts, "noatime") {
				t.Errorf("mount options %q, want noatime", opts)
			}
			id := readMarker(t, v.mnt)
			if id.Ensemble != "prod" || id.NodeID != node || id.VolumeID != testVolume || id != res.Identity {
				t.Errorf("marker %+v, result identity %+v, want prod/%d/%s", id, res.Identity, node, testVolume)
			}
			if tc.check != nil {
				tc.check(t, v, res)
			}

			// Second run on the prepared volume: nothing to do.
			marker, err := os.Stat(filepath.Join(v.mnt, disk.MarkerName))
			if err != nil {
				t.Fatal(err)
			}
			spec.Initialized = true // the caller tagged it after the first run
			again, err := v.prep.Prepare(context.Background(), spec)
			if err != nil {
				t.Fatalf("second Prepare: %v", err)
			}
			if again.Formatted || again.Mounted || len(again.Changes) != 0 || again.Device != res.Device {
				t.Errorf("second Prepare: %+v, want no changes", again)
			}
			if marker2, err := os.Stat(filepath.Join(v.mnt, disk.MarkerName)); err != nil || !os.SameFile(marker, marker2) || marker2.ModTime() != marker.ModTime() {
				t.Errorf("marker rewritten by the second Prepare (%v)", err)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The marker is a contract with later boots (and other versions of this
// program): its exact bytes are a golden file, with the formatting time —
// which must be RFC 3339 UTC — replaced by a placeholder.
func TestMarkerGolden(t *testing.T) {
	v := newVolume(t, ext4Size)
	if _, err := v.prep.Prepare(context.Background(), v.spec("ext4", 12, false)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(v.mnt, disk.MarkerName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"first_formatted": "([^"]*)"`)
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no first_formatted in marker %s", b)
	}
	if ts, err := time.Parse(time.RFC3339, string(m[1])); err != nil || ts.Location() != time.UTC || ts.Nanosecond() != 0 {
		t.Errorf("first_formatted %q: want RFC 3339 UTC, whole seconds (%v)", m[1], err)
	}
	got := re.ReplaceAll(b, []byte(`"first_formatted": "<time>"`))
	golden.Check(t, filepath.Join("testdata", "identity.golden"), got)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("marker mode %v (%v), want 0644", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(v.mnt); slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.Contains(e.Name(), ".tmp") }) {
		t.Errorf("temporary marker file left behind: %v", entries)
	}
}

package disk_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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

// gib is the size of the volumes the blank check's cases use: large enough
// for ext4 backup superblocks past the first 16 MiB, xfs AG starts and a
// sparse sample that hits neither; sparse, so it costs no disk.
const gib = 1 << 30

// blankCaseSize is not a round number, so that xfs's candidate AG starts
// (the size divided into N) fall off ext4's 128 MiB group boundaries and
// each check has reads of its own.
const blankCaseSize = gib + 36<<20

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

// prepareCase is one row of TestPrepare.
type prepareCase struct {
	name        string
	size        int64
	fsType      string
	initialized bool
	adopt       string // the adopt tag's value
	setup       func(t *testing.T, v *volume)
	// wantErr: substrings of the refusal; nil means success.
	wantErr []string
	// wantIs: a sentinel the refusal must also be, besides ErrRefused.
	wantIs error
	// mountsFirst: Prepare may write to the device before refusing
	// (the kernel's journal replay on xfs's confirming look), so
	// "device untouched" is not checked.
	mountsFirst bool
	check       func(t *testing.T, v *volume, res disk.Result)
}

func TestPrepare(t *testing.T) {
	const node = 3
	tests := []prepareCase{
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
			name:        "ext4 with data and no marker, adopt tag for this node, is adopted with data intact",
			size:        ext4Size,
			fsType:      "ext4",
			initialized: true,
			adopt:       "3",
			setup:       ext4WithData,
			check: func(t *testing.T, v *volume, res disk.Result) {
				if res.Formatted || !res.Mounted {
					t.Errorf("Formatted=%v Mounted=%v, want false, true", res.Formatted, res.Mounted)
				}
				if b, err := os.ReadFile(filepath.Join(v.mnt, "version-2", "snapshot.1f")); err != nil || string(b) != "the data tree" {
					t.Errorf("data after Prepare: %q, %v", b, err)
				}
				if !slices.ContainsFunc(res.Changes, func(c string) bool {
					return containsAll(c, "on existing filesystem", "adopted by tag zkaas:adopt=3")
				}) {
					t.Errorf("changes %q: want the marker written on the adopted filesystem", res.Changes)
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
			// Labelled by hand, so that the marker, not the label, refuses.
			name:        "identity marker of another node is refused",
			size:        ext4Size,
			fsType:      "ext4",
			initialized: true,
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.ext4", "-q", "-L", "data", v.dev.Path)
				withMounted(t, v.dev.Path, "ext4", func(dir string) {
					writeFile(t, filepath.Join(dir, disk.MarkerName), `{"ensemble":"prod","node_id":7,"volume_id":"`+testVolume+`"}`)
				})
			},
			wantErr: []string{`ensemble "prod" node 7`, "not ensemble \"prod\" node 3", "refusing to use another node's data"},
		},
		{
			// The marker is in the filesystem proper, newer writes only
			// in the journal (its instance died): the marker is refused
			// from the look without recovery, and the journal is not
			// replayed, so not a byte of the device changes.
			name:        "identity marker of another node, journal needing recovery, is refused without a write",
			size:        ext4Size,
			fsType:      "ext4",
			initialized: true,
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.ext4", "-q", "-L", "data", v.dev.Path)
				withMounted(t, v.dev.Path, "ext4", func(dir string) {
					writeFile(t, filepath.Join(dir, disk.MarkerName), `{"ensemble":"prod","node_id":7,"volume_id":"`+testVolume+`"}`)
				})
				dirtyExt4Journal(t, v)
			},
			wantErr: []string{`ensemble "prod" node 7`, "refusing to use another node's data"},
		},
		{
			name:        "unreadable identity marker, journal needing recovery, is refused without a write",
			size:        ext4Size,
			fsType:      "ext4",
			initialized: true,
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.ext4", "-q", v.dev.Path)
				withMounted(t, v.dev.Path, "ext4", func(dir string) {
					writeFile(t, filepath.Join(dir, disk.MarkerName), "{not json")
				})
				dirtyExt4Journal(t, v)
			},
			wantErr: []string{"identity marker", "unreadable"},
		},
		{
			name:        "unreadable identity marker is refused",
			size:        ext4Size,
			fsType:      "ext4",
			initialized: true,
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
			name:   "empty ext4 without marker is adopted",
			size:   ext4Size,
			fsType: "ext4",
			setup:  func(t *testing.T, v *volume) { mustRun(t, "mkfs.ext4", "-q", v.dev.Path) },
			check:  wantChange("on existing filesystem (no marker found; empty filesystem)"),
		},
		{
			name:   "empty xfs without marker is adopted",
			size:   xfsSize,
			fsType: "xfs",
			setup:  func(t *testing.T, v *volume) { mustRun(t, "mkfs.xfs", "-q", v.dev.Path) },
			check:  wantChange("on existing filesystem (no marker found; empty filesystem)"),
		},
		{
			// What a crash between our mkfs and the marker leaves.
			name:   "empty ext4 labelled for this node, with a torn marker write, is adopted",
			size:   ext4Size,
			fsType: "ext4",
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.ext4", "-q", "-L", "zk-3", v.dev.Path)
				withMounted(t, v.dev.Path, "ext4", func(dir string) {
					writeFile(t, filepath.Join(dir, "."+disk.MarkerName+".tmp123"), "")
				})
			},
			check: wantChange("empty filesystem"),
		},
		{
			name:    "ext4 with data and no marker is refused with the adopt hint, nothing written",
			size:    ext4Size,
			fsType:  "ext4",
			setup:   ext4WithData,
			wantIs:  disk.ErrUnmarked,
			wantErr: []string{"holds a ext4 filesystem", `label "old-zk"`, "no identity marker", "top level: lost+found, myid, version-2", "aws ec2 create-tags --resources " + testVolume + " --tags Key=zkaas:adopt,Value=3"},
		},
		{
			// A plain read-only xfs mount writes its log, so the
			// confirming look may change bytes; the files must not.
			name:   "xfs with data and no marker is refused with the adopt hint",
			size:   xfsSize,
			fsType: "xfs",
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.xfs", "-q", v.dev.Path)
				withMounted(t, v.dev.Path, "xfs", func(dir string) { writeFile(t, filepath.Join(dir, "data", "myid"), "3\n") })
			},
			mountsFirst: true,
			wantIs:      disk.ErrUnmarked,
			wantErr:     []string{"holds a xfs filesystem", "top level: data", "Key=zkaas:adopt,Value=3"},
		},
		{
			name:    "ext4 with data and an adopt tag for another node is refused",
			size:    ext4Size,
			fsType:  "ext4",
			adopt:   "5",
			setup:   ext4WithData,
			wantErr: []string{"tagged zkaas:adopt=5", "attached as node 3", "Value=3"},
		},
		{
			name:   "label of another node is refused even with this node's marker",
			size:   ext4Size,
			fsType: "ext4",
			adopt:  "3",
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.ext4", "-q", "-L", "zk-7", v.dev.Path)
				withMounted(t, v.dev.Path, "ext4", func(dir string) {
					writeFile(t, filepath.Join(dir, disk.MarkerName), `{"ensemble":"prod","node_id":3,"volume_id":"`+testVolume+`"}`)
				})
			},
			wantErr: []string{`labelled "zk-7"`, "another node's", "attached as node 3"},
		},
		{
			name:   "identity marker that is a directory is refused",
			size:   ext4Size,
			fsType: "ext4",
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.ext4", "-q", v.dev.Path)
				withMounted(t, v.dev.Path, "ext4", func(dir string) {
					if err := os.Mkdir(filepath.Join(dir, disk.MarkerName), 0o755); err != nil {
						t.Fatal(err)
					}
				})
			},
			wantErr: []string{"identity marker", "not a regular file (a directory)"},
		},
		{
			// The replacement instance's case: the old one died with
			// ZooKeeper running. A read-only look without log recovery
			// sees an xfs root without the marker (checked by hand: it
			// shows nothing at all), so only the read-write view decides.
			name:        "xfs of this node left with a dirty log is mounted as is",
			size:        xfsSize,
			fsType:      "xfs",
			initialized: true,
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.xfs", "-q", "-L", "zk-3", v.dev.Path)
				withMounted(t, v.dev.Path, "xfs", func(dir string) {
					// Durable, as the real marker write is (fsutil.WriteFile).
					writeFile(t, filepath.Join(dir, disk.MarkerName), `{"ensemble":"prod","node_id":3,"volume_id":"`+testVolume+`"}`)
					mustRun(t, "sync", "-f", filepath.Join(dir, disk.MarkerName))
					writeFile(t, filepath.Join(dir, "data", "myid"), "3\n")
					mustRun(t, "sync", "-f", filepath.Join(dir, "data", "myid"))
					shutDown(t, dir)
				})
			},
			check: func(t *testing.T, v *volume, res disk.Result) {
				if b, err := os.ReadFile(filepath.Join(v.mnt, "data", "myid")); err != nil || string(b) != "3\n" {
					t.Errorf("myid after Prepare: %q, %v", b, err)
				}
				if slices.ContainsFunc(res.Changes, func(c string) bool { return strings.Contains(c, "marker") }) {
					t.Errorf("changes %q: the marker was there", res.Changes)
				}
			},
		},
		{
			name:   "xfs with data and no marker left with a dirty log is refused",
			size:   xfsSize,
			fsType: "xfs",
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.xfs", "-q", v.dev.Path)
				withMounted(t, v.dev.Path, "xfs", func(dir string) {
					writeFile(t, filepath.Join(dir, "data", "myid"), "3\n")
					shutDown(t, dir)
				})
			},
			mountsFirst: true, // the read-write view replays the log
			wantIs:      disk.ErrUnmarked,
			wantErr:     []string{"top level: data", "Key=zkaas:adopt,Value=3"},
		},
		{
			name:        "read-only mount left at the mount point by a run that died is replaced",
			size:        ext4Size,
			fsType:      "ext4",
			initialized: true,
			setup: func(t *testing.T, v *volume) {
				mustRun(t, "mkfs.ext4", "-q", "-L", "zk-3", v.dev.Path)
				withMounted(t, v.dev.Path, "ext4", func(dir string) {
					writeFile(t, filepath.Join(dir, disk.MarkerName), `{"ensemble":"prod","node_id":3,"volume_id":"`+testVolume+`"}`)
				})
				if err := os.MkdirAll(v.mnt, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := unix.Mount(v.dev.Path, v.mnt, "ext4", unix.MS_RDONLY, "norecovery"); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, v *volume, res disk.Result) {
				wantChange("unmounted the read-only mount of "+v.dev.Path)(t, v, res)
				if opts := mustRun(t, "findmnt", "--noheadings", "--output", "OPTIONS", "--mountpoint", v.mnt); !strings.HasPrefix(opts, "rw,") {
					t.Errorf("mount options %q, want read-write", opts)
				}
			},
		},
		{
			name:    "non-zero data at 5 MiB is not blank",
			size:    gib,
			fsType:  "ext4",
			setup:   func(t *testing.T, v *volume) { writeAt(t, v.dev.Path, 5<<20+17, []byte{1}) },
			wantErr: []string{"not blank", "non-zero data at offset 5242897 (first 16 MiB)"},
		},
		plantedAt("ext4 backup superblock (4 KiB blocks)", 0),
		plantedAt("ext4 backup superblock (1 KiB blocks)", 0),
		plantedAt("xfs allocation group header", 0),
		plantedAt("sparse sample", gib/2),
		{
			// The GPT backup header is the device's last LBA.
			name:    "non-zero data in the GPT backup header's sector is not blank",
			size:    gib,
			fsType:  "ext4",
			setup:   func(t *testing.T, v *volume) { writeAt(t, v.dev.Path, gib-512, []byte("EFI PART")) },
			wantErr: []string{"not blank", fmt.Sprintf("non-zero data at offset %d (last 16 MiB)", gib-512)},
		},
		{
			name:   "fully zero 1 GiB device is formatted",
			size:   gib,
			fsType: "ext4",
			check: func(t *testing.T, v *volume, res disk.Result) {
				if !res.Formatted {
					t.Errorf("Formatted=false on a zero device")
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
			// Whatever the setup left dirty in the device's cache reaches
			// the backing file now, not at Prepare's first open.
			flushDevice(t, v.dev.Path)
			before := sha256File(t, v.dev.File)
			mountedBefore := mountedFSType(t, v.mnt)
			spec := v.spec(tc.fsType, node, tc.initialized)
			spec.Adopt = tc.adopt

			res, err := v.prep.Prepare(context.Background(), spec)

			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Prepare succeeded (%+v), want refusal %q", res, tc.wantErr)
				}
				if !errors.Is(err, disk.ErrRefused) || !containsAll(err.Error(), tc.wantErr...) || !strings.Contains(err.Error(), testVolume) {
					t.Fatalf("error %q (refused: %v), want a refusal naming %s and containing %q", err, errors.Is(err, disk.ErrRefused), testVolume, tc.wantErr)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("error %q is not %v", err, tc.wantIs)
				}
				if tc.wantIs != disk.ErrUnmarked && errors.Is(err, disk.ErrUnmarked) {
					t.Errorf("error %q is ErrUnmarked: a caller would read the adopt tag for a refusal it cannot lift", err)
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

// shutDown stops the filesystem at dir as a crash would, its log flushed
// but not applied: what a volume looks like when its instance died.
func shutDown(t *testing.T, dir string) {
	t.Helper()
	mustRun(t, "xfs_io", "-x", "-c", "shutdown -f", dir)
}

// dirtyExt4Journal leaves the ext4 filesystem on v as a crash would: a
// write committed to the journal and not yet to the filesystem, the
// superblock flagged needs_recovery, so that any mount with recovery (even
// read-only) writes to the device.
func dirtyExt4Journal(t *testing.T, v *volume) {
	t.Helper()
	withMounted(t, v.dev.Path, "ext4", func(dir string) {
		writeFile(t, filepath.Join(dir, "version-2", "log.1"), "a transaction")
		mustRun(t, "sync", "-f", filepath.Join(dir, "version-2", "log.1"))
		shutDown(t, dir)
	})
	if out := mustRun(t, "dumpe2fs", "-h", v.dev.Path); !strings.Contains(out, "needs_recovery") {
		t.Fatalf("ext4 journal not left needing recovery:\n%s", out)
	}
}

// ext4WithData is a volume that held ZooKeeper data somewhere else: an
// ext4 filesystem, not labelled by us, with files and no marker.
func ext4WithData(t *testing.T, v *volume) {
	mustRun(t, "mkfs.ext4", "-q", "-L", "old-zk", v.dev.Path)
	withMounted(t, v.dev.Path, "ext4", func(dir string) {
		writeFile(t, filepath.Join(dir, "version-2", "snapshot.1f"), "the data tree")
		writeFile(t, filepath.Join(dir, "myid"), "3\n")
	})
}

func wantChange(sub string) func(t *testing.T, v *volume, res disk.Result) {
	return func(t *testing.T, v *volume, res disk.Result) {
		if !slices.ContainsFunc(res.Changes, func(c string) bool { return strings.Contains(c, sub) }) {
			t.Errorf("changes %q: want one containing %q", res.Changes, sub)
		}
	}
}

// plantedAt is the case of one non-zero byte at the first read of the blank
// check (at or after from) that only the named check makes: with that check
// gone, the device would be formatted. It takes the place from BlankReads
// itself, so it shows that the reads are made and that a byte there
// refuses, not that the places are where mkfs puts its backups: that is
// wiped_test.go's, with the real mkfs.ext4 and mkfs.xfs.
func plantedAt(check string, from int64) prepareCase {
	var off int64 = -1
	for _, r := range disk.BlankReads(blankCaseSize) {
		if r.Off >= from && slices.Equal(r.Checks, []string{check}) {
			off = r.Off + r.Len - 1
			break
		}
	}
	return prepareCase{
		name:   "non-zero data where only the " + check + " check looks is not blank",
		size:   blankCaseSize,
		fsType: "ext4",
		setup: func(t *testing.T, v *volume) {
			if off < 0 {
				t.Fatalf("no read of the blank check is the %s check's alone", check)
			}
			writeAt(t, v.dev.Path, off, []byte{0xff})
		},
		wantErr: []string{"not blank", fmt.Sprintf("non-zero data at offset %d (%s)", off, check)},
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

// A failing mkfs is reported by its first meaningful line, not its banner
// and pages of usage text; and it is not a refusal (nothing was decided
// about the data: the device was blank).
func TestMkfsFailureReportsItsFirstLine(t *testing.T) {
	v := newVolume(t, ext4Size)
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("no mkfs.ext4")
	}
	script := filepath.Join(t.TempDir(), "mkfs.ext4")
	writeFile(t, script, "#!/bin/sh\nexec "+mkfs+" -E nosuchoption \"$@\"\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	v.prep.Commands.MkfsExt4 = script
	_, err = v.prep.Prepare(context.Background(), v.spec("ext4", 3, false))
	if err == nil {
		t.Fatal("Prepare succeeded with a failing mkfs")
	}
	msg := err.Error()
	t.Log(msg)
	if !containsAll(msg, "format volume "+testVolume, "exit status 1: Bad option(s) specified: nosuchoption") ||
		strings.Contains(msg, "Extended options") || strings.Contains(msg, "mke2fs 1.") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want the first meaningful line of mkfs's output only", msg)
	}
	if errors.Is(err, disk.ErrRefused) {
		t.Errorf("error %q is a refusal", err)
	}
}

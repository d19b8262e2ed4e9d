package disk

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// The format decision on its own, every row of Prepare's table.
func TestDecide(t *testing.T) {
	spec := Spec{VolumeID: "vol-0123456789abcdef0", FSType: "ext4"}
	tagged := spec
	tagged.Initialized = true
	node3 := spec
	node3.NodeID = 3
	tests := []struct {
		name       string
		spec       Spec
		probe      Probe
		wantFormat bool
		wantErr    string // "" means no error
	}{
		{"blank, never initialized", spec, Probe{Blank: true}, true, ""},
		{"blank, tagged initialized", tagged, Probe{Blank: true}, false, "tagged zkaas:initialized but has no filesystem"},
		{"wanted filesystem", tagged, Probe{FSType: "ext4", UUID: "u"}, false, ""},
		{"wanted filesystem, untagged", spec, Probe{FSType: "ext4"}, false, ""},
		{"other filesystem", spec, Probe{FSType: "xfs", UUID: "u", Label: "l"}, false, "holds a xfs filesystem (uuid u, label \"l\"), want ext4"},
		{"encrypted", spec, Probe{FSType: "crypto_LUKS"}, false, "holds a crypto_LUKS filesystem"},
		{"partition table", spec, Probe{PTType: "gpt"}, false, "has a gpt partition table"},
		{"partition table next to the wanted filesystem", spec, Probe{PTType: "dos", FSType: "ext4"}, false, "has a dos partition table"},
		{"no signature but data", spec, Probe{}, false, "not blank"},
		{"no signature but data, tagged", tagged, Probe{}, false, "not blank"},
		{"no signature, data where", spec, Probe{NonZero: "non-zero data at offset 4096 (first 16 MiB)"}, false, "not blank (non-zero data at offset 4096 (first 16 MiB))"},
		{"wanted filesystem, this node's label", node3, Probe{FSType: "ext4", Label: "zk-3"}, false, ""},
		{"wanted filesystem, another node's label", node3, Probe{FSType: "ext4", Label: "zk-4", UUID: "u"}, false, `labelled "zk-4", the label of another node's filesystem, but is attached as node 3`},
		{"wanted filesystem, another node's label, zero-padded", node3, Probe{FSType: "ext4", Label: "zk-03"}, false, ""},
		{"wanted filesystem, a label not ours", node3, Probe{FSType: "ext4", Label: "zk-data"}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			format, err := decide(tc.spec, "/dev/nvme1n1", tc.probe)
			if format != tc.wantFormat {
				t.Errorf("format = %v, want %v", format, tc.wantFormat)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrRefused) ||
				!strings.Contains(err.Error(), "vol-0123456789abcdef0") || !strings.Contains(err.Error(), "/dev/nvme1n1") {
				t.Fatalf("error %v, want a refusal naming volume and device and containing %q", err, tc.wantErr)
			}
		})
	}
}

// No force flag may ever reach mkfs.
func TestMkfsArgsHaveNoForceFlag(t *testing.T) {
	for _, fs := range []string{"ext4", "xfs"} {
		argv := DefaultCommands.mkfsArgs(fs, "zk-1", "/dev/nvme1n1")
		if slices.Contains(argv, "-F") || slices.Contains(argv, "-f") || slices.Contains(argv, "--force") {
			t.Errorf("%s: %q has a force flag", fs, argv)
		}
		if argv[len(argv)-1] != "/dev/nvme1n1" || !strings.HasSuffix(argv[0], "mkfs."+fs) {
			t.Errorf("%s: %q", fs, argv)
		}
	}
}

func TestCommandsWithDefaults(t *testing.T) {
	got := Commands{Blkid: "/opt/blkid"}.withDefaults()
	want := Commands{Blkid: "/opt/blkid", MkfsExt4: DefaultCommands.MkfsExt4, MkfsXFS: DefaultCommands.MkfsXFS}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseBlkid(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want Probe
	}{
		{"ext4", "DEVNAME=/dev/loop0\nUUID=1665cf71-7f37\nVERSION=1.0\nBLOCK_SIZE=1024\nTYPE=ext4\nUSAGE=filesystem\n",
			Probe{FSType: "ext4", UUID: "1665cf71-7f37"}},
		{"xfs with label", "DEVNAME=/dev/loop0\nLABEL=zk-3\nUUID=40c7\nTYPE=xfs\n", Probe{FSType: "xfs", UUID: "40c7", Label: "zk-3"}},
		{"xfs and gpt", "LABEL=zk-3\nTYPE=xfs\nPTUUID=0c3f\nPTTYPE=gpt\n", Probe{FSType: "xfs", PTType: "gpt", Label: "zk-3"}},
		{"escaped label", "LABEL=my\\ data\\$\nTYPE=ext4\n", Probe{FSType: "ext4", Label: "my data$"}},
		{"nothing named", "PART_ENTRY_SCHEME=dos\n", Probe{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseBlkid([]byte(tc.out)); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestMountAt reads mountinfo as the kernel writes it: paths escaped
// (\040 for a space, ...), mounts stacked on one mount point, bind mounts
// of a subdirectory.
func TestMountAt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "zk data")
	other := filepath.Join(t.TempDir(), "plain")
	for _, d := range []string{dir, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	esc := strings.ReplaceAll(dir, " ", `\040`)
	info := writeMountInfo(t, `22 27 0:21 / /proc rw,relatime - proc proc rw
36 35 259:1 / `+esc+` rw,noatime shared:1 - ext4 /dev/nvme1n1 rw
37 35 259:1 /sub `+other+` rw master:2 shared:3 - ext4 /dev/nvme1n1 rw
38 35 0:50 / `+esc+` rw - tmpfs tmpfs rw,size=1024k
`)
	tests := []struct {
		dir  string
		want *mountinfo.Info // the fields compared: device, root, fstype, source
	}{
		// The topmost of the two mounts stacked there.
		{dir, &mountinfo.Info{Major: 0, Minor: 50, Root: "/", Mountpoint: dir, FSType: "tmpfs", Source: "tmpfs"}},
		{other, &mountinfo.Info{Major: 259, Minor: 1, Root: "/sub", Mountpoint: other, FSType: "ext4", Source: "/dev/nvme1n1"}},
		{filepath.Dir(other), nil},             // not a mount point
		{filepath.Join(other, "missing"), nil}, // does not exist
	}
	for _, tc := range tests {
		got, err := mountAt(info, tc.dir)
		if err != nil {
			t.Fatalf("%s: %v", tc.dir, err)
		}
		if (got == nil) != (tc.want == nil) || got != nil &&
			(got.Major != tc.want.Major || got.Minor != tc.want.Minor || got.Root != tc.want.Root ||
				got.Mountpoint != tc.want.Mountpoint || got.FSType != tc.want.FSType || got.Source != tc.want.Source) {
			t.Errorf("%s: got %+v, want %+v", tc.dir, got, tc.want)
		}
	}
	for _, bad := range []string{"1 2 3\n", "36 35 8:1 / /m rw ext4 /dev/a rw\n"} {
		if _, err := mountAt(writeMountInfo(t, bad), dir); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestMountAtUnescapes covers the kernel's octal escapes (space, tab,
// newline, backslash) and sequences that only look like one.
func TestMountAtUnescapes(t *testing.T) {
	for escaped, name := range map[string]string{
		`plain`:          "plain",
		`a\040b\011c`:    "a b\tc",
		`back\134slash`:  `back\slash`,
		`trailing\04`:    `trailing\04`,
		`not\09octal`:    `not\09octal`,
		`nl\012`:         "nl\n",
		`two\040\040end`: "two  end",
	} {
		parent := t.TempDir()
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		info := writeMountInfo(t, "36 35 259:1 / "+parent+"/"+escaped+" rw - ext4 /dev/nvme1n1 rw\n")
		if got, err := mountAt(info, dir); err != nil || got == nil || got.Mountpoint != dir {
			t.Errorf("%s: got %+v (%v), want the mount at %q", escaped, got, err, dir)
		}
	}
}

func writeMountInfo(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSplitMountOptions(t *testing.T) {
	tests := []struct {
		opts      []string
		wantFlags uintptr
		wantData  string
	}{
		{[]string{"noatime"}, unix.MS_NOATIME, ""},
		{[]string{"defaults"}, 0, ""},
		{[]string{"noatime", "nodev", "nosuid", "discard", "data=ordered"}, unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NOSUID, "discard,data=ordered"},
		{[]string{"ro", "logbufs=8"}, unix.MS_RDONLY, "logbufs=8"},
	}
	for _, tc := range tests {
		flags, data := splitMountOptions(tc.opts)
		if flags != tc.wantFlags || data != tc.wantData {
			t.Errorf("%q: got %#x %q, want %#x %q", tc.opts, flags, data, tc.wantFlags, tc.wantData)
		}
	}
}

func TestXenAlias(t *testing.T) {
	for in, want := range map[string]string{
		"/dev/sdf":     "/dev/xvdf",
		"/dev/xvdf":    "/dev/sdf",
		"/dev/xvdba":   "/dev/sdba",
		"/dev/nvme1n1": "",
	} {
		if got := xenAlias(in); got != want {
			t.Errorf("xenAlias(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSpecNormalized(t *testing.T) {
	good := Spec{VolumeID: "vol-0123456789abcdef0", FSType: "xfs", MountPoint: "/var/lib/zookeeper/", Ensemble: "prod", NodeID: 1}
	got, err := good.normalized()
	if err != nil {
		t.Fatal(err)
	}
	if got.MountPoint != "/var/lib/zookeeper" || !slices.Equal(got.MountOptions, []string{"noatime"}) {
		t.Errorf("normalized %+v", got)
	}
	tests := []struct {
		name   string
		mutate func(*Spec)
		want   string
	}{
		{"volume id", func(s *Spec) { s.VolumeID = "vol0123" }, "invalid volume id"},
		{"fs type", func(s *Spec) { s.FSType = "btrfs" }, "unsupported filesystem type"},
		{"relative mount point", func(s *Spec) { s.MountPoint = "data" }, "not an absolute path"},
		{"ensemble", func(s *Spec) { s.Ensemble = "" }, "empty ensemble"},
		{"node 0", func(s *Spec) { s.NodeID = 0 }, "outside 1..255"},
		{"node 256", func(s *Spec) { s.NodeID = 256 }, "outside 1..255"},
	}
	for _, tc := range tests {
		s := good
		tc.mutate(&s)
		if _, err := s.normalized(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestFirstMeaningfulLine(t *testing.T) {
	tests := []struct{ name, out, want string }{
		{"mke2fs zero size", "mke2fs 1.47.0 (5-Feb-2023)\nmkfs.ext4: Device size reported to be zero. Invalid partition specified, or\n\tpartition table wasn't reread after running fdisk, due to\n", "mkfs.ext4: Device size reported to be zero. Invalid partition specified, or"},
		{"mke2fs bad option", "mke2fs 1.47.0 (5-Feb-2023)\n\nBad option(s) specified: nosuch\n\nExtended options are separated by commas, and may take an argument which\n", "Bad option(s) specified: nosuch"},
		{"mkfs.xfs existing signature", "mkfs.xfs: /dev/loop0 appears to contain an existing filesystem (ext4).\nmkfs.xfs: Use the -f option to force overwrite.\n", "mkfs.xfs: /dev/loop0 appears to contain an existing filesystem (ext4)."},
		{"usage only", "unknown option -Z\nUsage: mkfs.xfs\n/* blocksize */\t\t[-b size=num]\n", "unknown option -Z"},
		{"empty", "\n\n", ""},
	}
	for _, tc := range tests {
		if got := firstMeaningfulLine(tc.out); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The blank check's reads: inside the device, aligned for O_DIRECT, the
// ends in full, and every place a check names.
func TestBlankReads(t *testing.T) {
	for _, size := range []int64{8 << 20, 64 << 20, 1 << 30, 1<<30 + 36<<20 + 512, 1 << 40, 5 << 40} {
		reads := blankReads(size)
		var covered int64
		at := map[int64][]string{}
		for i, r := range reads {
			if r.off < 0 || r.len <= 0 || r.off+r.len > size || r.off%4096 != 0 || (r.len%4096 != 0 && r.off+r.len != size) {
				t.Fatalf("size %d: read %+v outside the device or unaligned", size, r)
			}
			if i > 0 && r.off < reads[i-1].off+reads[i-1].len {
				t.Fatalf("size %d: read %+v overlaps %+v", size, r, reads[i-1])
			}
			covered += r.len
			at[r.off] = r.checks
		}
		ends := min(size, 2*blankEndSpan)
		if got := covered - int64(len(reads)-countEnds(reads))*blankPoint; got < ends {
			t.Errorf("size %d: the ends cover %d bytes, want %d", size, got, ends)
		}
		if reads[0].off != 0 || reads[len(reads)-1].off+reads[len(reads)-1].len != size {
			t.Errorf("size %d: first or last byte not read", size)
		}
		if size < 1<<30 {
			continue
		}
		for _, want := range []struct {
			off   int64
			check string
		}{
			{128 << 20, "ext4 backup superblock (4 KiB blocks)"}, // group 1
			{3 * 128 << 20, "ext4 backup superblock (4 KiB blocks)"},
			{7 * 128 << 20, "ext4 backup superblock (4 KiB blocks)"},
			{3 * 32 << 20, "ext4 backup superblock (2 KiB blocks)"},
			{(1 + 3*8192) * 1024 &^ 4095, "ext4 backup superblock (1 KiB blocks)"},
			{(1 + 5*5*8192) * 1024 &^ 4095, "ext4 backup superblock (1 KiB blocks)"},
			{(size / 4096 / 4) * 4096, "xfs allocation group header"}, // mkfs.xfs's 4 AGs
			{3 * ((size/4096 + 3) / 4) * 4096, "xfs allocation group header"},
		} {
			if size >= 4<<40 && want.check == "xfs allocation group header" {
				// From 4 TiB up mkfs.xfs makes AGs of the maximum size,
				// agsize=268435455 blocks (mkfs.xfs -N on a 4 and a 5 TiB
				// file), not 1 TiB: AG k starts at k*268435455*4096.
				want.off = (want.off/(1<<40) + 1) * 268435455 * 4096
				if want.off >= size {
					continue
				}
			}
			if !slices.Contains(at[want.off], want.check) {
				t.Errorf("size %d: no %s read at %d (have %q)", size, want.check, want.off, at[want.off])
			}
		}
		samples := 0
		for _, r := range reads {
			if slices.Contains(r.checks, "sparse sample") {
				samples++
			}
		}
		if samples < sampleCount*9/10 {
			t.Errorf("size %d: %d sparse samples, want about %d", size, samples, sampleCount)
		}
		if len(reads) > 4000 {
			t.Errorf("size %d: %d reads, a cost on every first boot", size, len(reads))
		}
	}
}

func countEnds(reads []blankRead) int {
	n := 0
	for _, r := range reads {
		if slices.Contains(r.checks, "first 16 MiB") || slices.Contains(r.checks, "last 16 MiB") {
			n++
		}
	}
	return n
}

func TestFirstNonZero(t *testing.T) {
	b := make([]byte, 3*4096+100)
	if got := firstNonZero(b); got != -1 {
		t.Errorf("zeros: %d", got)
	}
	for _, i := range []int{0, 4095, 4096, 3*4096 + 99} {
		clear(b)
		b[i] = 1
		if got := firstNonZero(b); got != i {
			t.Errorf("byte at %d: got %d", i, got)
		}
	}
}

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

package localcloud

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// tarEntry is one member of a test image.
type tarEntry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	data     string // content, or the target of a link
}

// writeImage writes an image directory as the bake exports one: the
// tarball (members under "./", as tar -C root . makes them) and image.json
// with its sha256.
func writeImage(t *testing.T, dir string, entries []tarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range append([]tarEntry{{name: ".", typ: tar.TypeDir, mode: 0o755}}, entries...) {
		hdr := &tar.Header{Name: "./" + e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: time.Unix(1700000000, 0)}
		switch e.typ {
		case tar.TypeSymlink:
			hdr.Linkname = e.data
		case tar.TypeReg:
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rootfs.tar"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	sha := hex.EncodeToString(sum[:])
	writeImageJSON(t, dir, sha)
	return sha
}

func writeImageJSON(t *testing.T, dir, sha string) {
	t.Helper()
	b, _ := json.Marshal(image{Rootfs: "rootfs.tar", SHA256: sha})
	if err := os.WriteFile(filepath.Join(dir, ImageFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// extractions lists what ExtractImage keeps in an image directory.
func extractions(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), extractPrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestExtractImage: the tarball is extracted once per image, with its
// owners and modes, reused while image.json names the same sha256,
// replaced when it changes, and refused — leaving nothing — when the
// tarball does not match.
func TestExtractImage(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	shaA := writeImage(t, dir, []tarEntry{
		{name: "etc", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/marker", typ: tar.TypeReg, mode: 0o640, uid: 4242, gid: 4343, data: "a\n"},
		{name: "etc/alt", typ: tar.TypeSymlink, mode: 0o777, data: "/etc/marker"},
	})
	ctx := t.Context()
	rootA, err := ExtractImage(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "rootfs-"+shaA[:16]); rootA != want {
		t.Errorf("root %s, want %s", rootA, want)
	}
	var st os.FileInfo
	if st, err = os.Stat(filepath.Join(rootA, "etc/marker")); err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 4242 || sys.Gid != 4343 || st.Mode().Perm() != 0o640 {
		t.Errorf("etc/marker: %d:%d %o, want 4242:4343 640", sys.Uid, sys.Gid, st.Mode().Perm())
	}
	if target, err := os.Readlink(filepath.Join(rootA, "etc/alt")); err != nil || target != "/etc/marker" {
		t.Errorf("etc/alt -> %q, %v", target, err)
	}

	// Reused: a file added to the extraction survives the second call.
	if err := os.WriteFile(filepath.Join(rootA, "reused"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := ExtractImage(ctx, dir); err != nil || again != rootA || !exists(filepath.Join(rootA, "reused")) {
		t.Errorf("second call: %s, %v, reused %v; want the same extraction", again, err, exists(filepath.Join(rootA, "reused")))
	}

	// A new image replaces the old extraction.
	shaB := writeImage(t, dir, []tarEntry{{name: "etc", typ: tar.TypeDir, mode: 0o755}, {name: "etc/marker", typ: tar.TypeReg, mode: 0o644, data: "b\n"}})
	rootB, err := ExtractImage(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(rootB, "etc/marker")); string(got) != "b\n" || !strings.HasSuffix(rootB, shaB[:16]) {
		t.Errorf("new image: %s holds %q", rootB, got)
	}
	if got := extractions(t, dir); !slices.Equal(got, []string{filepath.Base(rootB)}) {
		t.Errorf("extractions after the new image: %v, want only %s", got, filepath.Base(rootB))
	}

	// A tarball that is not the one image.json describes.
	writeImageJSON(t, dir, strings.Repeat("0", 64))
	if _, err := ExtractImage(ctx, dir); err == nil || !strings.Contains(err.Error(), "export the image again") {
		t.Errorf("mismatched tarball: %v", err)
	}
	if got := extractions(t, dir); !slices.Equal(got, []string{filepath.Base(rootB)}) {
		t.Errorf("after the mismatch: %v, want only %s", got, filepath.Base(rootB))
	}

	for name, desc := range map[string]string{
		"no sha256":     `{"rootfs": "rootfs.tar"}`,
		"tar elsewhere": `{"rootfs": "../rootfs.tar", "sha256": "` + shaB + `"}`,
	} {
		bad := t.TempDir()
		if err := os.WriteFile(filepath.Join(bad, ImageFile), []byte(desc), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ExtractImage(ctx, bad); err == nil || !strings.Contains(err.Error(), "needs a sha256") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// miniImage is a test image made of a few of the host's programs and the
// libraries they load, laid out /usr-merged like Debian's, with a marker
// the host does not have.
func miniImage(t *testing.T, hostResolv string) []tarEntry {
	t.Helper()
	entries := []tarEntry{
		// As on hosts with systemd-resolved: a link the harness must
		// replace, not write through — it would reach the host's file.
		{name: "etc/resolv.conf", typ: tar.TypeSymlink, mode: 0o777, data: hostResolv},
		{name: "bin", typ: tar.TypeSymlink, mode: 0o777, data: "usr/bin"},
		{name: "lib", typ: tar.TypeSymlink, mode: 0o777, data: "usr/lib"},
		{name: "lib64", typ: tar.TypeSymlink, mode: 0o777, data: "usr/lib64"},
		{name: "etc", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/zkaas-image-marker", typ: tar.TypeReg, mode: 0o644, data: "from the image\n"},
		// An absolute link, as /usr/bin/java -> /etc/alternatives/java is.
		{name: "etc/alternatives", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/alternatives/marker", typ: tar.TypeSymlink, mode: 0o777, data: "/etc/zkaas-image-marker"},
		{name: "etc/escape", typ: tar.TypeSymlink, mode: 0o777, data: "../../../../../../../etc/hostname"},
		{name: "mnt", typ: tar.TypeDir, mode: 0o755},
	}
	seen := map[string]bool{}
	add := func(p string) {
		// Stored under the directory's real path (/lib -> usr/lib), with
		// the content of the file a link names.
		dir, err := filepath.EvalSymlinks(filepath.Dir(p))
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(filepath.Join(dir, filepath.Base(p)), "/")
		if seen[name] {
			return
		}
		seen[name] = true
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, tarEntry{name: name, typ: tar.TypeReg, mode: 0o755, data: string(data)})
	}
	libRE := regexp.MustCompile(`(?m)(/\S+) \(0x`)
	for _, prog := range []string{"sh", "cat", "ls", "mount"} {
		p, err := exec.LookPath(prog)
		if err != nil {
			t.Skipf("%s missing", prog)
		}
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			t.Skipf("ldd %s: %v", p, err)
		}
		add(p)
		for _, m := range libRE.FindAllStringSubmatch(string(out), -1) {
			add(m[1])
		}
	}
	return entries
}

// TestLaunchFromImage: with RootFS, programs on an instance run inside a
// root of its own made from the image — they see the image's files and not
// the host's, their writes stay on the instance, their /dev, /sys and
// /proc are the instance's — and the harness reaches that root through
// Path and Open; attached volumes appear there.
func TestLaunchFromImage(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	hostResolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(hostResolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeImage(t, dir, miniImage(t, hostResolv))
	rootfs, err := ExtractImage(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	c := newCloud(t, Options{EC2: fastSim, RootFS: rootfs})
	if c.RootFS() != rootfs {
		t.Errorf("RootFS() = %q", c.RootFS())
	}
	a := launch(t, c, "us-east-1a")
	b := launch(t, c, "us-east-1b")

	t.Run("the image's files", func(t *testing.T) {
		tests := []struct{ script, want string }{
			{"cat /etc/zkaas-image-marker", "from the image"},
			{"echo $(ls /)", "bin dev etc lib lib64 mnt proc run sys tmp usr"},
			{"echo $PATH", imagePATH},
			{"echo $(ls /sys/class/net)", "ens5 lo"},
			{"echo $(ls /dev)", "disk fd full null ptmx pts random shm stderr stdin stdout tty urandom zero"},
			{"cat /proc/self/mountinfo", " - overlay localcloud-root "},
		}
		for _, tt := range tests {
			if got := run(t, a, tt.script); !strings.Contains(got, tt.want) {
				t.Errorf("%s: got %q, want %q", tt.script, got, tt.want)
			}
		}
		host, _ := os.Hostname()
		if got := run(t, a, "cat /etc/hosts"); !strings.Contains(got, a.PrivateIP+"\t"+host) {
			t.Errorf("/etc/hosts does not give the host name the primary IP:\n%s", got)
		}
		if got := run(t, a, "cat /etc/resolv.conf"); strings.Contains(got, "nameserver") {
			t.Errorf("/etc/resolv.conf names a server the VPC does not have:\n%s", got)
		}
		if got, _ := os.ReadFile(hostResolv); string(got) != "nameserver 192.0.2.53\n" {
			t.Errorf("the host's file behind the image's resolv.conf link changed: %q", got)
		}
		if exists("/etc/zkaas-image-marker") {
			t.Fatal("the host has the image's marker: the test proves nothing")
		}
	})

	t.Run("writes stay on the instance", func(t *testing.T) {
		run(t, a, "echo a > /etc/mine")
		if got := run(t, b, "cat /etc/mine 2>&1 || true"); !strings.Contains(got, "No such file") {
			t.Errorf("b reads a's /etc/mine: %q", got)
		}
		if exists(filepath.Join(rootfs, "etc/mine")) {
			t.Error("a's write reached the image")
		}
		if got, err := os.ReadFile(a.Path("/etc/mine")); err != nil || string(got) != "a\n" {
			t.Errorf("a's file through Path = %q, %v", got, err)
		}
		// How the harness hands an instance its config.
		if err := os.WriteFile(b.Path("/etc/config"), []byte("b\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := run(t, b, "cat /etc/config"); got != "b" || exists(filepath.Join(rootfs, "etc/config")) {
			t.Errorf("config written through Path: b reads %q", got)
		}
	})

	t.Run("open resolves links in the root", func(t *testing.T) {
		f, err := a.Open("/etc/alternatives/marker")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if got, _ := io.ReadAll(f); string(got) != "from the image\n" {
			t.Errorf("read %q", got)
		}
		// A relative link climbing out of the root stays in it, as for
		// the instance's programs; the host has /etc/hostname.
		if _, err := a.Open("/etc/escape"); !errors.Is(err, fs.ErrNotExist) || !exists("/etc/hostname") {
			t.Errorf("open a link out of the root: %v", err)
		}
		if got, err := fs.ReadFile(a.FS(), "etc/alternatives/marker"); err != nil || string(got) != "from the image\n" {
			t.Errorf("through FS: %q, %v", got, err)
		}
	})

	t.Run("volume", func(t *testing.T) {
		slot, err := c.CreateSlot("img", 1, "us-east-1a", "10.0.1.10", 1)
		if err != nil {
			t.Fatal(err)
		}
		// Formatted on the host: the image has no mkfs.
		if out, err := exec.Command("mkfs.ext4", "-q", "-F", volumeFile(t, c, slot.Volume.ID)).CombinedOutput(); err != nil {
			t.Fatalf("mkfs: %v: %s", err, out)
		}
		if _, err := ec2From(a).AttachVolume(t.Context(), &ec2.AttachVolumeInput{
			VolumeId: aws.String(slot.Volume.ID), InstanceId: aws.String(a.ID), Device: aws.String("/dev/sdf"),
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "attached", func() bool { return volumeState(c, slot.Volume.ID) == ec2sim.AttachAttached })
		byID := "/dev/disk/by-id/" + disk.EBSByIDName(slot.Volume.ID)
		run(t, a, "mount "+byID+" /mnt && echo data > /mnt/file")
		if got, err := os.ReadFile(a.Path("/mnt/file")); err != nil || string(got) != "data\n" {
			t.Errorf("the volume's file through Path = %q, %v", got, err)
		}
		// Terminate unmounts it inside the root and releases the device;
		// TestMain finds any loop device left.
		if err := c.Terminate(t.Context(), a); err != nil {
			t.Fatal(err)
		}
		eventually(t, "released", func() bool { return len(loopOf(t, volumeFile(t, c, slot.Volume.ID))) == 0 })
	})
}

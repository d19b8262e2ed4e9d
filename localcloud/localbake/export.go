package localbake

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zkaas/zkaas/internal/fsutil"

	"github.com/zkaas/zkaas/plugin/role"
)

// Image is an exported build host, the local stand-in for an AMI: a root
// file system tarball and the manifest of what the roles put in it.
type Image struct {
	Rootfs   string        `json:"rootfs"` // tarball, relative to image.json
	SHA256   string        `json:"sha256"`
	Size     int64         `json:"size"`
	Created  time.Time     `json:"created"`
	Suite    string        `json:"suite"`
	Manifest role.Manifest `json:"manifest"`
	// Inputs fingerprints what the image was made from (see Inputs).
	Inputs string `json:"inputs,omitempty"`
}

// ImageFile is the image description in an export directory.
const ImageFile = "image.json"

// buildHostOnly are paths the build host needed and the image must not
// carry: the build's SSH key and host keys (every instance makes its own),
// the apt proxy, package indexes and caches, temporary files.
var buildHostOnly = []string{
	"tmp/*",
	"var/tmp/*",
	aptProxyConf,
	"root/.ssh/authorized_keys",
	"etc/ssh/ssh_host_*",
	"var/lib/apt/lists/*_*",
	"var/cache/apt/*.bin",
	"var/cache/apt/archives/*.deb",
}

// Export turns the stopped build host's root file system into an image in
// outDir: it removes build-host-only files, empties /etc/machine-id (each
// instance gets its own at first boot), verifies every manifest entry
// against the files, and writes rootfs.tar and image.json.
func Export(ctx context.Context, h *Host, manifestPath, outDir string) (*Image, error) {
	if h.sshd != nil {
		return nil, errors.New("export: stop the build host first")
	}
	var m role.Manifest
	b, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("export: manifest %s: %w", manifestPath, err)
	}
	for _, pat := range buildHostOnly {
		paths, _ := filepath.Glob(filepath.Join(h.Root, pat))
		for _, p := range paths {
			if err := os.RemoveAll(p); err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(h.Root, "etc/machine-id"), nil, 0o444); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := Verify(h.Root, m); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	// The build root comes from MkdirTemp (0700); an image's / is 0755.
	if err := os.Chmod(h.Root, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	tarball := filepath.Join(outDir, "rootfs.tar")
	if err := run(ctx, "tar", "--numeric-owner", "--xattrs", "-C", h.Root, "-cf", tarball+".tmp", "."); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	sum, size, err := fileDigest(tarball + ".tmp")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(tarball+".tmp", tarball); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	img := &Image{Rootfs: "rootfs.tar", SHA256: sum, Size: size, Created: time.Now().UTC(), Suite: Suite, Manifest: m}
	return img, nil
}

// writeImage writes img's description next to its tarball, atomically: a
// half-written image.json would stop every later EnsureImage.
func writeImage(outDir string, img *Image) error {
	out, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := fsutil.WriteFile(filepath.Join(outDir, ImageFile), append(out, '\n'), 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// Verify checks every manifest entry against the root file system at root:
// content checksums (a tree's TreeDigest), owner, group and mode (names
// resolved through the image's own passwd and group), link targets.
func Verify(root string, m role.Manifest) error {
	users, err := idNames(filepath.Join(root, "etc/passwd"))
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	groups, err := idNames(filepath.Join(root, "etc/group"))
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var problems []string
	for _, e := range m.Entries {
		p := filepath.Join(root, e.Path)
		if err := verifyEntry(p, e, users, groups); err != nil {
			problems = append(problems, fmt.Sprintf("%s (role %s %s): %v", e.Path, e.Role, e.Step, err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("verify: %d of %d manifest entries do not match the image:\n  %s", len(problems), len(m.Entries), strings.Join(problems, "\n  "))
	}
	return nil
}

func verifyEntry(p string, e role.ManifestEntry, users, groups map[uint32]string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	var sum string
	switch e.Type {
	case "link":
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if target != e.Target {
			return fmt.Errorf("link to %s, manifest says %s", target, e.Target)
		}
		return nil
	case "file":
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("not a regular file")
		}
		sum, _, err = fileDigest(p)
	case "tree":
		sum, err = role.TreeDigest(p)
	case "dir":
		if !fi.IsDir() {
			return fmt.Errorf("not a directory")
		}
	default:
		return fmt.Errorf("unknown manifest type %q", e.Type)
	}
	if err != nil {
		return err
	}
	if sum != e.SHA256 {
		return fmt.Errorf("sha256 %s, manifest says %s", sum, e.SHA256)
	}
	st := fi.Sys().(*syscall.Stat_t)
	// The form of stat -c %U:%G:%a on the build host.
	attr := fmt.Sprintf("%s:%s:%o", users[st.Uid], groups[st.Gid], st.Mode&0o7777)
	if e.Attr != "" && attr != e.Attr {
		return fmt.Errorf("attributes %s, manifest says %s", attr, e.Attr)
	}
	return nil
}

// idNames maps ids to names from a passwd or group file.
func idNames(path string) (map[uint32]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[uint32]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 {
			continue
		}
		if id, err := strconv.ParseUint(fields[2], 10, 32); err == nil {
			names[uint32(id)] = fields[0]
		}
	}
	return names, sc.Err()
}

func fileDigest(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

package localcloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ImageFile describes an image in its directory, as the local bake exports
// it (localcloud/localbake): the root file system tarball and its sha256.
const ImageFile = "image.json"

// image is the part of image.json the harness needs.
type image struct {
	Rootfs string `json:"rootfs"` // tarball, relative to image.json
	SHA256 string `json:"sha256"`
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// extractPrefix starts the names of extracted root directories in an image
// directory: rootfs-<first 16 hex digits of the tarball's sha256>.
const extractPrefix = "rootfs-"

// ExtractImage returns the root directory of the image in imageDir (the
// bake's export: image.json and the tarball it names), for Options.RootFS.
// The tarball is extracted next to it once, checked against image.json's
// sha256 as it is read, and reused by later calls and runs as long as the
// image stays the same; a new image is extracted afresh and the older
// extractions removed — so do not bake a new image while a Cloud still
// runs from the old one. Concurrent callers wait for one another. It needs
// root: the tree keeps the image's owners and device nodes.
func ExtractImage(ctx context.Context, imageDir string) (rootfs string, err error) {
	b, err := os.ReadFile(filepath.Join(imageDir, ImageFile))
	if err != nil {
		return "", fmt.Errorf("image in %s: %w", imageDir, err)
	}
	var img image
	if err := json.Unmarshal(b, &img); err != nil {
		return "", fmt.Errorf("image in %s: %s: %w", imageDir, ImageFile, err)
	}
	if !sha256RE.MatchString(img.SHA256) || !filepath.IsLocal(img.Rootfs) {
		return "", fmt.Errorf("image in %s: %s needs a sha256 (64 hex digits) and a tarball inside the directory, has %q and %q", imageDir, ImageFile, img.SHA256, img.Rootfs)
	}
	abs, err := filepath.Abs(imageDir)
	if err != nil {
		return "", err
	}
	rootfs = filepath.Join(abs, extractPrefix+img.SHA256[:16])
	unlock, err := lockImageDir(ctx, abs)
	if err != nil {
		return "", err
	}
	defer unlock()
	if fi, err := os.Stat(rootfs); err == nil && fi.IsDir() {
		return rootfs, removeStale(abs, rootfs)
	}
	if err := extract(ctx, filepath.Join(abs, img.Rootfs), img.SHA256, rootfs); err != nil {
		return "", fmt.Errorf("image in %s: %w", imageDir, err)
	}
	return rootfs, removeStale(abs, rootfs)
}

// extract unpacks tarball into dir, hashing it on the way: a tarball that
// does not match its sha256 (a half-written export) leaves nothing behind.
// It unpacks into a temporary directory renamed at the end, so dir exists
// only complete.
func extract(ctx context.Context, tarball, sha, dir string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+extractPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	h := sha256.New()
	tee := io.TeeReader(f, h)
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, "tar", "--extract", "--file=-", "--directory="+tmp,
		"--numeric-owner", "--same-permissions", "--xattrs", "--xattrs-include=*")
	cmd.Stdin, cmd.Stderr = tee, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("extract %s: %w: %s", tarball, err, strings.TrimSpace(stderr.String()))
	}
	// tar may stop at the end-of-archive blocks: hash what it left.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("read %s: %w", tarball, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("%s has sha256 %s, %s says %s: export the image again", tarball, got, ImageFile, sha)
	}
	return os.Rename(tmp, dir)
}

// removeStale removes extractions of other images, and temporary
// directories of extractions that crashed.
func removeStale(imageDir, keep string) error {
	var errs []error
	for _, pattern := range []string{extractPrefix + "*", "." + extractPrefix + "*"} {
		paths, _ := filepath.Glob(filepath.Join(imageDir, pattern))
		for _, p := range paths {
			if p != keep {
				errs = append(errs, os.RemoveAll(p))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove stale extractions in %s: %w", imageDir, err)
	}
	return nil
}

// lockImageDir takes the image directory's extraction lock, waiting for
// another extraction to finish (bounded by ctx).
func lockImageDir(ctx context.Context, dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".extract.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock image dir: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock image dir %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another extraction in %s: %w", dir, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

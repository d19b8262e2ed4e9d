package localbake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ImageDir is where `go tool mage bake:local` exports the image:
// $ZKAAS_IMAGE_DIR, or image/ in CacheDir.
func ImageDir() (string, error) {
	if dir := os.Getenv("ZKAAS_IMAGE_DIR"); dir != "" {
		return dir, nil
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "image"), nil
}

// ReadImage reads the image exported in dir, checking that its tarball is
// there.
func ReadImage(dir string) (*Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, ImageFile))
	if err != nil {
		return nil, fmt.Errorf("image in %s: %w", dir, err)
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, fmt.Errorf("image in %s: %s: %w", dir, ImageFile, err)
	}
	if _, err := os.Stat(filepath.Join(dir, img.Rootfs)); err != nil {
		return nil, fmt.Errorf("image in %s: %w", dir, err)
	}
	return &img, nil
}

// EnsureImage returns the image exported in o.OutDir, baking it first
// (Bake, with o) when the directory holds none, or one made from other
// inputs (roles, template, plugin or firstboot source, ensemble config —
// see Inputs); baked says which. Concurrent callers — test packages run in
// parallel — wait for one bake.
func EnsureImage(ctx context.Context, o Options) (img *Image, baked bool, err error) {
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, false, fmt.Errorf("image dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(o.OutDir, ".bake.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("image dir: %w", err)
	}
	defer lock.Close()
	for {
		err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, fmt.Errorf("lock %s: %w", o.OutDir, err)
		}
		select {
		case <-ctx.Done():
			return nil, false, fmt.Errorf("waiting for another bake into %s: %w", o.OutDir, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	inputs, err := Inputs(o.Repo, o.EnsembleConfig, strings.Join(o.Vars, "\n"))
	if err != nil {
		return nil, false, err
	}
	img, err = ReadImage(o.OutDir)
	switch {
	case err == nil && img.Inputs == inputs:
		return img, false, nil
	case err == nil:
		o.Log.Info("image made from other inputs: baking again", "dir", o.OutDir)
	case errors.Is(err, fs.ErrNotExist):
		o.Log.Info("no image: baking one", "dir", o.OutDir)
	default:
		return nil, false, err
	}
	img, err = Bake(ctx, o)
	return img, err == nil, err
}

//go:build mage

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	"github.com/zkaas/zkaas/localcloud/localbake"
)

// Packer checks the Packer templates.
type Packer mg.Namespace

// Bake bakes the local image (the stand-in for the AMI).
type Bake mg.Namespace

func bakeLog() *slog.Logger { return slog.New(slog.NewTextHandler(os.Stderr, nil)) }

// repoRoot is the repository: mage runs from it.
func repoRoot() (string, error) { return os.Getwd() }

// Validate runs `packer fmt -check` and `packer validate` on packer/*.pkr.hcl
// with the plugin (the AWS template with the amazon plugin built from the
// Go module proxy, or -syntax-only where that fails).
func (Packer) Validate(ctx context.Context) error {
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	cache, err := localbake.CacheDir()
	if err != nil {
		return err
	}
	return localbake.Validate(ctx, repo, cache, bakeLog())
}

// Local bakes the local image (root): a real `packer build` of
// packer/local.pkr.hcl against a Debian 12 build host, exported to
// $ZKAAS_IMAGE_DIR (default ~/.cache/zkaas/image) as rootfs.tar and
// image.json. The ensemble config baked in is $ZKAAS_ENSEMBLE_CONFIG
// (default ensemble/testdata/ensemble.yaml).
func (Bake) Local(ctx context.Context) error {
	// localbake.Bake builds and installs the plugin itself.
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	cache, err := localbake.CacheDir()
	if err != nil {
		return err
	}
	out, err := localbake.ImageDir()
	if err != nil {
		return err
	}
	ensemble := os.Getenv("ZKAAS_ENSEMBLE_CONFIG")
	if ensemble == "" {
		ensemble = filepath.Join(repo, "ensemble/testdata/ensemble.yaml")
	}
	start := time.Now()
	img, err := localbake.Bake(ctx, localbake.Options{
		Repo: repo, CacheDir: cache, OutDir: out, PluginPath: os.Getenv("PACKER_PLUGIN_PATH"),
		EnsembleConfig: ensemble, Output: os.Stdout, Log: bakeLog(),
	})
	if err != nil {
		return err
	}
	fmt.Printf("image: %s (%d MiB, sha256 %s, %d managed paths) in %s\n",
		filepath.Join(out, localbake.ImageFile), img.Size>>20, img.SHA256[:12], len(img.Manifest.Entries), time.Since(start).Round(time.Second))
	return nil
}

// Acceptance runs the bake's acceptance test (root; about a minute with
// ~/.cache/zkaas warm): a real packer build with a verified release
// tarball, checks inside the image, a second build that changes nothing, a
// wrong sha512 that fails, the export.
func (Bake) Acceptance() error {
	return sh.RunWithV(map[string]string{"ZKAAS_ACCEPTANCE": "1"}, "go", "test", "-count=1", "-run", "TestAcceptance", "-v", "./localcloud/localbake/")
}

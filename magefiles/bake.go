//go:build mage

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/localcloud/localbake"
)

// Packer checks the Packer templates.
type Packer mg.Namespace

// Bake bakes the local image (the stand-in for the AMI).
type Bake mg.Namespace

func bakeLog() *slog.Logger { return slog.New(slog.NewTextHandler(os.Stderr, nil)) }

// repoRoot is the repository: mage runs from it.
func repoRoot() (string, error) { return os.Getwd() }

// repoAndCache is the repository and zkaas's cache directory
// (~/.cache/zkaas), which most targets need both of.
func repoAndCache() (repo, cache string, err error) {
	if repo, err = repoRoot(); err != nil {
		return "", "", err
	}
	cache, err = localbake.CacheDir()
	return repo, cache, err
}

// Validate runs `packer fmt -check` and `packer validate` on the template
// directory packer/, both builds (AWS and local), with the zkaas plugin and
// the amazon plugin built from the Go module proxy (cached in
// ~/.cache/zkaas).
func (Packer) Validate(ctx context.Context) error {
	repo, cache, err := repoAndCache()
	if err != nil {
		return err
	}
	return localbake.Validate(ctx, repo, cache, bakeLog())
}

// Local bakes the local image (root): a real `packer build
// -only=zkaas.null.local packer/` against a Debian 12 build host, exported
// to $ZKAAS_IMAGE_DIR (default ~/.cache/zkaas/image) as rootfs.tar and
// image.json. The ensemble config baked in is $ZKAAS_ENSEMBLE_CONFIG
// (default ensemble/testdata/ensemble.yaml). The zkaas plugin and the
// cached amazon plugin (Packer wants every required plugin of the
// directory) are installed into $PACKER_PLUGIN_PATH (default
// ~/.config/packer/plugins).
func (Bake) Local(ctx context.Context) error {
	// localbake.Bake builds and installs the plugin itself.
	repo, cache, err := repoAndCache()
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

// AWS bakes the AMI: a real `packer build -only=zkaas.amazon-ebs.aws
// packer/` in your AWS account (it launches a build instance and registers
// an AMI, which cost money). The ensemble config baked in is
// $ZKAAS_ENSEMBLE_CONFIG (required: an example config in an AMI would be a
// trap). Credentials and the region come from the AWS SDK's standard
// sources (AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws, SSO, the instance
// metadata service; AWS_REGION or the profile's region, passed to Packer
// as -var region) and are checked first: without them it fails at once,
// naming what is missing, before anything is built. Then dist:firstboot, the zkaas plugin and the amazon
// plugin into $PACKER_PLUGIN_PATH (default ~/.config/packer/plugins; an
// amazon plugin already there is kept). Other template variables as
// PKR_VAR_<name>, e.g. PKR_VAR_arch=amd64 (default arm64), which also picks
// dist/zkaas-firstboot-<arch>.
func (Bake) AWS(ctx context.Context) error {
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	var problems []error
	cfgPath := os.Getenv("ZKAAS_ENSEMBLE_CONFIG")
	if cfgPath == "" {
		problems = append(problems, errors.New("no ensemble config: set ZKAAS_ENSEMBLE_CONFIG to the file to bake in as /etc/zkaas/ensemble.yaml"))
	} else if cfgPath, err = filepath.Abs(cfgPath); err != nil {
		problems = append(problems, err)
	} else if _, _, err := ensemble.Load(cfgPath); err != nil {
		problems = append(problems, fmt.Errorf("ZKAAS_ENSEMBLE_CONFIG: %w", err))
	}
	access, err := localbake.CheckAWS(ctx, 5*time.Second)
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("bake:aws: nothing built:\n%w", errors.Join(problems...))
	}
	log := bakeLog()
	log.Info("AWS account found", "region", access.Region, "credentials", access.Source)
	mg.CtxDeps(ctx, Dist.Firstboot)
	cache, err := localbake.CacheDir()
	if err != nil {
		return err
	}
	packer, err := localbake.Packer(ctx, cache, log)
	if err != nil {
		return err
	}
	plugins := os.Getenv("PACKER_PLUGIN_PATH")
	// Until packer-plugin-zkaas is released, this repository's build is
	// the plugin (what plugin:install does).
	plugin := filepath.Join(cache, "bin", "packer-plugin-zkaas")
	if err := localbake.BuildPlugin(ctx, repo, plugin); err != nil {
		return err
	}
	if err := localbake.InstallPlugin(ctx, packer, plugin, plugins); err != nil {
		return err
	}
	if err := localbake.EnsureAmazonPlugin(ctx, packer, cache, plugins, log); err != nil {
		return err
	}
	return localbake.BakeAWS(ctx, localbake.AWSBake{
		Repo: repo, Packer: packer, PluginPath: plugins, Region: access.Region,
		EnsembleConfig: cfgPath, Output: os.Stdout, Log: log,
	})
}

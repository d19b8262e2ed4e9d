//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/zkaas/zkaas/localcloud/localbake"
	"github.com/zkaas/zkaas/plugin/release"
)

// Plugin builds, installs and releases the zkaas Packer plugin.
type Plugin mg.Namespace

// Install builds packer-plugin-zkaas and installs it with `packer plugins
// install --path` into $PACKER_PLUGIN_PATH (default ~/.config/packer/plugins);
// Packer is the one on PATH (>= 1.11) or one built into ~/.cache/zkaas.
// The build reports <version>-dev: Packer loads it, `packer init` never
// replaces it with a release.
func (Plugin) Install(ctx context.Context) error {
	repo, cache, err := repoAndCache()
	if err != nil {
		return err
	}
	packer, err := localbake.Packer(ctx, cache, bakeLog())
	if err != nil {
		return err
	}
	bin := filepath.Join(cache, "bin", "packer-plugin-zkaas")
	if err := localbake.BuildPlugin(ctx, repo, bin); err != nil {
		return err
	}
	if err := localbake.InstallPlugin(ctx, packer, bin, os.Getenv("PACKER_PLUGIN_PATH")); err != nil {
		return err
	}
	fmt.Printf("installed %s as %s\n", bin, localbake.PluginSource)
	return nil
}

// Release builds the release into dist/: packer-plugin-zkaas_v<version>_x5.0_<os>_<arch>.zip
// for linux, darwin and windows on amd64 and arm64, and
// packer-plugin-zkaas_v<version>_SHA256SUMS — what `packer init` fetches
// from a GitHub release of github.com/zkaas/packer-plugin-zkaas. The
// version is plugin/version's; this machine's binary is checked with
// `describe` and `packer-sdc plugin-check`. Needs only Go (no goreleaser).
func (Plugin) Release(ctx context.Context) error {
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := release.Build(ctx, release.Options{
		Repo: repo,
		Dist: filepath.Join(repo, "dist"),
		Log:  func(format string, args ...any) { fmt.Printf(format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	if res.Checked != nil {
		fmt.Printf("checked the %s binary: describe reports v%s %s, packer-sdc plugin-check passes\n", res.Checked, res.Version, release.APIVersion)
	} else {
		fmt.Println("no binary for this machine's platform: describe and plugin-check not run")
	}
	fmt.Printf("release v%s: %d archives and %s in %s (%s)\n", res.Version, len(res.Zips), filepath.Base(res.Sums), filepath.Dir(res.Sums), time.Since(start).Round(time.Second))
	return nil
}

// Version prints the version a release is built as (plugin/version's,
// without the prerelease marker); the goreleaser config checks the tag
// against it.
func (Plugin) Version() {
	fmt.Println(release.Version())
}

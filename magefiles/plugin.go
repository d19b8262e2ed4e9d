//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/magefile/mage/mg"

	"github.com/zkaas/zkaas/localcloud/localbake"
)

// Plugin builds, installs and releases the zkaas Packer plugin.
type Plugin mg.Namespace

// Install builds packer-plugin-zkaas and installs it with `packer plugins
// install --path` into $PACKER_PLUGIN_PATH (default ~/.config/packer/plugins);
// Packer is the one on PATH (>= 1.11) or one built into ~/.cache/zkaas.
func (Plugin) Install(ctx context.Context) error {
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	cache, err := localbake.CacheDir()
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


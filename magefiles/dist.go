//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/zkaas/zkaas/localcloud/localbake"
)

// Dist builds what a bake outside this machine takes from the repository.
type Dist mg.Namespace

// Firstboot builds dist/zkaas-firstboot-amd64 and dist/zkaas-firstboot-arm64
// (linux, CGO_ENABLED=0, -trimpath): the template's default
// firstboot_binary, dist/zkaas-firstboot-<arch> for its arch variable.
func (Dist) Firstboot(ctx context.Context) error {
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	start := time.Now()
	paths, err := localbake.DistFirstboot(ctx, repo)
	if err != nil {
		return err
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		fmt.Printf("%s (%d MiB)\n", p, fi.Size()>>20)
	}
	fmt.Printf("built in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

//go:build mage

// Targets for zkaas. Run `go tool mage -l` for the list.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	"github.com/zkaas/zkaas/internal/layout"
)

// Aliases keep the README's commands short.
var Aliases = map[string]any{
	"test": Test.All,
}

// Test runs the test suites.
type Test mg.Namespace

// debs are the Debian packages the tests use: real filesystems, a real
// ZooKeeper, systemd-analyze for the units, systemd-nspawn
// (systemd-container) for instances that boot the image, debootstrap for
// the local build host.
var debs = []string{"xfsprogs", "e2fsprogs", "util-linux", "fdisk", "mount", "iproute2", "zookeeper", "libslf4j-java",
	"default-jre-headless", "systemd", "systemd-container", "debootstrap"}

// All runs every test: vet, the Packer templates, the cross-compilation of
// every product (Test.Cross), unit and privileged tests
// (root-only tests skip with a reason when not root) including the bake's
// acceptance — a real packer build — installing what they need first.
// Packer, its amazon plugin and the Debian build-host tarball are cached
// under ~/.cache/zkaas.
func (Test) All(ctx context.Context) error {
	mg.SerialDeps(Deps)
	if err := sh.RunV("go", "vet", "./..."); err != nil {
		return err
	}
	mg.SerialCtxDeps(ctx, Packer.Validate, Test.Cross)
	env := map[string]string{"ZKAAS_ACCEPTANCE": "1"}
	if dir, err := cloudInit(); err != nil {
		fmt.Printf("cloud-init not unpacked (%v): the user-data test against it will skip\n", err)
	} else {
		env["ZKAAS_CLOUD_INIT"] = dir
	}
	return sh.RunWithV(env, "go", "test", "-count=1", "-timeout", "30m", "./...")
}

// cloudInitDebs are Debian's cloud-init and the Python modules its
// user-data processing imports: unpacked, not installed, so that no
// cloud-init service is enabled on the test machine. The ensemble package's
// test runs cloud-init's own UserDataProcessor on zkaas user data.
var cloudInitDebs = []string{"cloud-init", "python3-yaml", "python3-jinja2", "python3-markupsafe", "python3-configobj",
	"python3-jsonpatch", "python3-json-pointer", "python3-jsonschema", "python3-netifaces", "python3-oauthlib",
	"python3-requests", "python3-urllib3", "python3-idna", "python3-certifi", "python3-chardet", "python3-six"}

// cloudInit unpacks cloudInitDebs once under the cache and returns the
// directory to put on PYTHONPATH.
func cloudInit() (string, error) {
	home, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	root := filepath.Join(home, "zkaas", "cloud-init-bookworm")
	site := filepath.Join(root, "usr", "lib", "python3", "dist-packages")
	if _, err := os.Stat(filepath.Join(site, "cloudinit", "user_data.py")); err == nil {
		return site, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", err
	}
	dl, err := os.MkdirTemp("", "zkaas-cloud-init-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dl)
	download := exec.Command("apt-get", append([]string{"download", "-q"}, cloudInitDebs...)...)
	download.Dir = dl
	if out, err := download.CombinedOutput(); err != nil {
		// Package lists may be missing on a fresh machine.
		if uerr := sh.Run("apt-get", "update", "-q"); uerr != nil {
			return "", fmt.Errorf("apt-get download: %v: %s", err, out)
		}
		download = exec.Command("apt-get", append([]string{"download", "-q"}, cloudInitDebs...)...)
		download.Dir = dl
		if out, err := download.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get download: %v: %s", err, out)
		}
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	for _, d := range debs {
		if err := sh.Run("dpkg-deb", "-x", d, tmp); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, root); err != nil {
		return "", err
	}
	return site, nil
}

// Cross builds every product for every platform it ships on (internal/layout
// lists them): the plugin and the operator command for linux, darwin and
// windows on amd64 and arm64 — Packer users and operators run them
// everywhere — and the boot binary for linux/amd64 and linux/arm64. Nothing
// is written; a Linux-only import in a product's dependencies fails here.
// One `go build` per platform builds all its products, two platforms at a
// time. Cold, on 2 cores, that took 8m53s against 9m23s one product and
// platform after another: both cores are busy either way, so the gain is
// small; the compile of the SDK's packages for four more platforms (the
// operator command) is most of the time.
func (Test) Cross() error {
	var platforms []string
	pkgs := map[string][]string{}
	for _, p := range layout.Products {
		for _, platform := range p.Platforms {
			if pkgs[platform] == nil {
				platforms = append(platforms, platform)
			}
			pkgs[platform] = append(pkgs[platform], "./"+p.Pkg)
		}
	}
	errs := make([]error, len(platforms))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, platform := range platforms {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			goos, goarch, _ := strings.Cut(platform, "/")
			start := time.Now()
			// Several packages: go build checks them and writes nothing.
			cmd := exec.Command("go", append([]string{"build"}, pkgs[platform]...)...)
			cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("cross-compile %s for %s: %w\n%s", strings.Join(pkgs[platform], " "), platform, err, out)
				return
			}
			fmt.Printf("built %s for %s in %s\n", strings.Join(pkgs[platform], " "), platform, time.Since(start).Round(time.Millisecond))
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Unit runs the tests that need neither root nor Debian packages.
func (Test) Unit() error {
	return goTest("-short", "./...")
}

func goTest(args ...string) error {
	return sh.RunV("go", append([]string{"test", "-count=1", "-timeout", "20m"}, args...)...)
}

// Deps installs the Debian packages the tests and the demo need, when
// missing (root only; elsewhere it says what to install).
func Deps() error {
	var missing []string
	for _, d := range debs {
		out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", d).Output()
		if !strings.Contains(string(out), "install ok installed") {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		fmt.Printf("not root: root-only tests will skip; to run them install: %s\n", strings.Join(missing, " "))
		return nil
	}
	fmt.Printf("installing %s\n", strings.Join(missing, " "))
	env := map[string]string{"DEBIAN_FRONTEND": "noninteractive"}
	if err := sh.RunWithV(env, "apt-get", "update", "-q"); err != nil {
		return err
	}
	return sh.RunWithV(env, "apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)...)
}

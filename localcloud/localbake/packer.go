// Package localbake is the local stand-in for baking an AMI: a Debian 12
// root file system made with debootstrap (cached), run as a build host — a
// chroot whose sshd listens in its own network namespace — that a real
// `packer build` provisions with the zkaas plugin, then exported as an image
// (a tarball plus a manifest of role-managed files, verified).
//
// Nothing it does touches the host's network: Packer runs in a second
// namespace joined to the build host's by a veth pair (198.18.0.1/30 and
// .2/30), and the build host reaches the Debian mirror through an HTTP proxy
// whose listening socket lives in Packer's namespace.
package localbake

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// PackerVersion is the Packer built from the Go module proxy when none
// recent enough is on PATH.
const PackerVersion = "1.15.0"

// minPacker is the oldest Packer whose plugin handling the templates rely
// on (`packer plugins install --path`).
var minPacker = [2]int{1, 11}

// CacheDir is where builds of Packer, the root file system tarball and
// exported images are kept across runs: $XDG_CACHE_HOME/zkaas or
// ~/.cache/zkaas. CI caches this directory.
func CacheDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cache dir: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "zkaas"), nil
}

var packerVersionRE = regexp.MustCompile(`Packer v(\d+)\.(\d+)\.\d+`)

// Packer returns the path of a Packer binary: the one on PATH if it is at
// least 1.11, else PackerVersion built once into cacheDir from the Go module
// proxy (about two minutes), never inside the repository.
func Packer(ctx context.Context, cacheDir string, log *slog.Logger) (string, error) {
	if p, err := exec.LookPath("packer"); err == nil {
		out, err := exec.CommandContext(ctx, p, "version").Output()
		if m := packerVersionRE.FindSubmatch(out); err == nil && m != nil {
			major, _ := strconv.Atoi(string(m[1]))
			minor, _ := strconv.Atoi(string(m[2]))
			if major > minPacker[0] || major == minPacker[0] && minor >= minPacker[1] {
				return p, nil
			}
			log.Info("packer on PATH is too old, building one", "path", p, "version", strings.TrimSpace(string(out)))
		}
	}
	return buildModule(ctx, cacheDir, "github.com/hashicorp/packer", PackerVersion, "packer", log)
}

// AmazonPluginVersion is the amazon plugin built when none is installed:
// packer:validate checks the AWS build with it, and the local build needs
// it installed (see EnsureAmazonPlugin). GitHub releases, where `packer
// init` gets it, are not reachable here; the Go module proxy is.
const AmazonPluginVersion = "1.8.0"

// AmazonPlugin returns packer-plugin-amazon built once into cacheDir from
// the Go module proxy (about two minutes).
func AmazonPlugin(ctx context.Context, cacheDir string, log *slog.Logger) (string, error) {
	return buildModule(ctx, cacheDir, "github.com/hashicorp/packer-plugin-amazon", AmazonPluginVersion, "packer-plugin-amazon", log)
}

// EnsureAmazonPlugin makes the amazon plugin available in pluginPath (see
// InstallPlugin): Packer checks the required_plugins of the whole template
// directory before -only applies, so even the local build needs it. One
// already installed there (by `packer init`, say) is kept; otherwise the
// one AmazonPlugin builds is installed.
func EnsureAmazonPlugin(ctx context.Context, packer, cacheDir, pluginPath string, log *slog.Logger) error {
	cmd := exec.CommandContext(ctx, packer, "plugins", "installed")
	cmd.Env = packerEnv(pluginPath)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("packer plugins installed: %w", err)
	}
	if strings.Contains(string(out), "/github.com/hashicorp/amazon/packer-plugin-amazon_") {
		return nil
	}
	bin, err := AmazonPlugin(ctx, cacheDir, log)
	if err != nil {
		return err
	}
	cmd = exec.CommandContext(ctx, packer, "plugins", "install", "--path", bin, "github.com/hashicorp/amazon")
	cmd.Env = packerEnv(pluginPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("packer plugins install amazon: %w\n%s", err, out)
	}
	return nil
}

// buildModule builds the main package of module@version into
// cacheDir/<name>-<version>/<name> unless it is there already, in a
// throwaway module of its own, outside the repository.
func buildModule(ctx context.Context, cacheDir, module, version, name string, log *slog.Logger) (string, error) {
	dir := filepath.Join(cacheDir, name+"-"+version)
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	// Packer's modules carry this replace; a module depending on them must
	// repeat it or the build fails in go-cty.
	files := map[string]string{
		"go.mod":   "module zkaas.local/" + name + "-build\n\ngo 1.26\n\nreplace github.com/zclconf/go-cty => github.com/nywilken/go-cty v1.13.3\n",
		"tools.go": "//go:build tools\n\npackage tools\n\nimport _ \"" + module + "\"\n",
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(src, f), []byte(data), 0o644); err != nil {
			return "", fmt.Errorf("build %s: %w", name, err)
		}
	}
	start := time.Now()
	log.Info("building from the Go module proxy (about two minutes, once)", "module", module, "version", version, "dir", dir)
	for _, args := range [][]string{
		{"get", module + "@v" + version},
		{"build", "-trimpath", "-o", bin + ".tmp", module},
	} {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build %s: go %s: %w\n%s", name, strings.Join(args, " "), err, tail(out, 40))
		}
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	log.Info("built", "path", bin, "duration", time.Since(start).Round(time.Second))
	return bin, nil
}

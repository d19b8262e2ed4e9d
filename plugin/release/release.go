// Package release builds the plugin's release as Packer's installer fetches
// it from a GitHub release: one zip per platform named
// packer-plugin-zkaas_v<version>_x5.0_<os>_<arch>.zip, each holding the
// binary under the same name (.exe on Windows), and a
// packer-plugin-zkaas_v<version>_SHA256SUMS file listing the zips — the
// names packer-plugin-scaffolding's goreleaser config produces, which
// `packer init` looks for.
//
// It is build tooling (`go tool mage plugin:release`), not part of the
// plugin binary, and needs nothing but the Go toolchain.
package release

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/zkaas/zkaas/internal/fsutil"
	"github.com/zkaas/zkaas/plugin/version"
)

// Name is the plugin's binary name; Packer's installer and `packer-sdc
// plugin-check` require the packer-plugin- prefix.
const Name = "packer-plugin-zkaas"

// Package is the plugin's main package, relative to the module root.
const Package = "./plugin"

// versionPkg is the package whose VersionPrerelease a release build clears.
const versionPkg = "github.com/zkaas/zkaas/plugin/version"

// APIVersion is the plugin protocol the SDK speaks, as Packer spells it in
// file names and `describe`: x5.0.
const APIVersion = "x" + plugin.APIVersionMajor + "." + plugin.APIVersionMinor

// Platform is a GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Platforms are the platforms a release is built for: wherever Packer users
// run Packer (Linux, macOS, Windows; x86 and ARM).
var Platforms = []Platform{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
}

// Version is the version a release build reports: the plugin's version
// without its prerelease marker.
func Version() string { return version.Version }

// BinaryName is the binary's name inside its zip, which Packer's installer
// looks for: the zip's name without .zip, plus .exe on Windows.
func BinaryName(v string, p Platform) string {
	n := fmt.Sprintf("%s_v%s_%s_%s_%s", Name, v, APIVersion, p.OS, p.Arch)
	if p.OS == "windows" {
		n += ".exe"
	}
	return n
}

// ZipName is the archive of one platform.
func ZipName(v string, p Platform) string {
	return fmt.Sprintf("%s_v%s_%s_%s_%s.zip", Name, v, APIVersion, p.OS, p.Arch)
}

// SumsName is the checksum file Packer fetches first, to learn which
// archives the release has.
func SumsName(v string) string { return fmt.Sprintf("%s_v%s_SHA256SUMS", Name, v) }

// Options say what to build where.
type Options struct {
	Repo      string     // the module root
	Dist      string     // the output directory
	Platforms []Platform // default Platforms
	// Log reports progress; nil for none.
	Log func(format string, args ...any)
}

// Result is what Build wrote.
type Result struct {
	Version string
	Zips    []string // paths, in platform order
	Sums    string   // path of the SHA256SUMS file
	// Checked is the platform whose binary was run (`describe`,
	// `packer-sdc plugin-check`): the machine's own, when it is built.
	Checked *Platform
}

// Build cross-compiles the plugin for every platform, zips each binary,
// writes the SHA256SUMS file, and checks the binary this machine can run
// with `describe` and `packer-sdc plugin-check`. Earlier archives of the
// plugin in Dist are removed first, so Dist holds exactly one release.
func Build(ctx context.Context, o Options) (*Result, error) {
	if len(o.Platforms) == 0 {
		o.Platforms = Platforms
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	v := Version()
	if err := os.MkdirAll(o.Dist, 0o755); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(o.Dist, Name+"_v*"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
	}
	stage, err := os.MkdirTemp(o.Dist, ".build-")
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	defer os.RemoveAll(stage)

	res := &Result{Version: v}
	sums := map[string]string{} // zip name to sha256
	for _, p := range o.Platforms {
		start := time.Now()
		bin := filepath.Join(stage, BinaryName(v, p))
		if err := buildBinary(ctx, o.Repo, p, bin); err != nil {
			return nil, err
		}
		if p.OS == runtime.GOOS && p.Arch == runtime.GOARCH {
			if err := Check(ctx, o.Repo, bin, v); err != nil {
				return nil, err
			}
			res.Checked = &p
		}
		zipPath := filepath.Join(o.Dist, ZipName(v, p))
		sum, err := writeZip(zipPath, bin)
		if err != nil {
			return nil, err
		}
		sums[filepath.Base(zipPath)] = sum
		res.Zips = append(res.Zips, zipPath)
		logf("built %s (%s)", filepath.Base(zipPath), time.Since(start).Round(100*time.Millisecond))
	}
	// sha256sum's format, sorted by name, as goreleaser writes it and
	// Packer's installer reads it.
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(sums)) {
		fmt.Fprintf(&b, "%s  %s\n", sums[name], name)
	}
	res.Sums = filepath.Join(o.Dist, SumsName(v))
	if _, err := fsutil.WriteFile(res.Sums, []byte(b.String()), 0o644); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return res, nil
}

// buildBinary builds a static, path-free release binary for p; the
// prerelease marker is cleared so it reports the plain version.
func buildBinary(ctx context.Context, repo string, p Platform, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X "+versionPkg+".VersionPrerelease=",
		"-o", out, Package)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("release: go build %s for %s: %w\n%s", Package, p, err, b)
	}
	return nil
}

// writeZip stores bin, executable, as the zip's only entry and returns the
// zip's sha256.
func writeZip(zipPath, bin string) (string, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("release: %w", err)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("release: %w", err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h, err := zip.FileInfoHeader(fi)
	if err != nil {
		return "", fmt.Errorf("release: %w", err)
	}
	h.Method = zip.Deflate
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err == nil {
		_, err = w.Write(data)
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		// Atomic: an interrupted release never leaves a truncated zip
		// beside sums that do not match it.
		_, err = fsutil.WriteFile(zipPath, buf.Bytes(), 0o644)
	}
	if err != nil {
		return "", fmt.Errorf("release: %s: %w", filepath.Base(zipPath), err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// Description is the part of a plugin's `describe` output Packer relies on.
type Description struct {
	Version      string   `json:"version"`
	SDKVersion   string   `json:"sdk_version"`
	APIVersion   string   `json:"api_version"`
	Provisioners []string `json:"provisioners"`
}

// Describe runs bin describe.
func Describe(ctx context.Context, bin string) (Description, error) {
	var d Description
	out, err := exec.CommandContext(ctx, bin, "describe").Output()
	if err != nil {
		return d, fmt.Errorf("%s describe: %w", filepath.Base(bin), err)
	}
	if err := json.Unmarshal(out, &d); err != nil {
		return d, fmt.Errorf("%s describe: %w", filepath.Base(bin), err)
	}
	return d, nil
}

// Check runs bin (a binary this machine can run) as Packer would before
// installing it: `describe` must report version v and protocol APIVersion,
// and `packer-sdc plugin-check` must pass.
func Check(ctx context.Context, repo, bin, v string) error {
	d, err := Describe(ctx, bin)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if d.Version != v || d.APIVersion != APIVersion {
		return fmt.Errorf("release: %s describes itself as version %q, protocol %q; want %q, %q", filepath.Base(bin), d.Version, d.APIVersion, v, APIVersion)
	}
	return PluginCheck(ctx, repo, bin)
}

// PluginCheck runs `packer-sdc plugin-check` (the module's tool, built
// from repo) on bin. plugin-check judges the name it is given, which must
// start with packer-plugin-, so it runs in bin's directory on its base name.
func PluginCheck(ctx context.Context, repo, bin string) error {
	// `go tool -n` builds the tool if needed and prints its path, so it
	// can run outside the module, next to the binary.
	where := exec.CommandContext(ctx, "go", "tool", "-n", "packer-sdc")
	where.Dir = repo
	out, err := where.Output()
	if err != nil {
		return fmt.Errorf("packer-sdc: go tool -n packer-sdc: %w", err)
	}
	cmd := exec.CommandContext(ctx, strings.TrimSpace(string(out)), "plugin-check", filepath.Base(bin))
	cmd.Dir = filepath.Dir(bin)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("packer-sdc plugin-check %s: %w\n%s", filepath.Base(bin), err, b)
	}
	return nil
}

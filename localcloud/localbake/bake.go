package localbake

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// PluginSource is the plugin's address in templates' required_plugins.
const PluginSource = "github.com/zkaas/zkaas"

// BuildPlugin builds packer-plugin-zkaas from the repository at repo.
func BuildPlugin(ctx context.Context, repo, out string) error {
	return goBuild(ctx, repo, out, "./plugin", nil)
}

// BuildFirstboot builds zkaas-firstboot for linux/goarch, static, as the
// image needs it.
func BuildFirstboot(ctx context.Context, repo, goarch, out string) error {
	return goBuild(ctx, repo, out, "./firstboot/cmd/zkaas-firstboot", []string{"GOOS=linux", "GOARCH=" + goarch})
}

func goBuild(ctx context.Context, repo, out, pkg string, env []string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// InstallPlugin installs a plugin binary with `packer plugins install
// --path` into pluginPath (PACKER_PLUGIN_PATH; empty for Packer's default,
// ~/.config/packer/plugins).
func InstallPlugin(ctx context.Context, packer, binary, pluginPath string) error {
	cmd := exec.CommandContext(ctx, packer, "plugins", "install", "--path", binary, PluginSource)
	cmd.Env = packerEnv(pluginPath)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("packer plugins install: %w\n%s", err, b)
	}
	return nil
}

func packerEnv(pluginPath string) []string {
	env := append(os.Environ(), "CHECKPOINT_DISABLE=1", "PACKER_NO_COLOR=1")
	if pluginPath != "" {
		env = append(env, "PACKER_PLUGIN_PATH="+pluginPath)
	}
	return env
}

// TemplateDir is the Packer template directory, relative to the
// repository: one build, zkaas, with a source per image.
const TemplateDir = "packer"

// The builds in TemplateDir, for -only.
const (
	LocalBuild = "zkaas.null.local"     // the local image, against a build host
	AWSBuild   = "zkaas.amazon-ebs.aws" // the AMI
)

// Build is one `packer build -only=LocalBuild` of TemplateDir against the
// host.
type Build struct {
	Repo           string
	Packer         string
	PluginPath     string // see InstallPlugin; needs the amazon plugin too (EnsureAmazonPlugin)
	Firstboot      string // zkaas-firstboot for the build host's architecture
	EnsembleConfig string
	Manifest       string   // where the provisioner writes the manifest
	Vars           []string // more -var name=value
	Output         io.Writer
}

// Run runs Packer in its namespace against the build host.
func (h *Host) Run(ctx context.Context, b Build) error {
	args := []string{"build", "-color=false", "-on-error=abort", "-only=" + LocalBuild,
		"-var", "arch=" + runtime.GOARCH,
		"-var", "ssh_host=" + HostAddr,
		"-var", "ssh_private_key_file=" + h.KeyFile,
		"-var", "firstboot_binary=" + b.Firstboot,
		"-var", "ensemble_config=" + b.EnsembleConfig,
		"-var", "manifest=" + b.Manifest,
	}
	for _, v := range b.Vars {
		args = append(args, "-var", v)
	}
	args = append(args, filepath.Join(b.Repo, TemplateDir))
	cmd := h.PackerCommand(ctx, b.Packer, args...)
	cmd.Dir = b.Repo
	cmd.Env = packerEnv(b.PluginPath)
	cmd.Stdout, cmd.Stderr = b.Output, b.Output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("packer build: %w", err)
	}
	return nil
}

// Options configure Bake.
type Options struct {
	Repo           string
	CacheDir       string
	OutDir         string // the image goes here
	PluginPath     string // see InstallPlugin
	EnsembleConfig string
	Vars           []string
	Output         io.Writer
	Log            *slog.Logger
}

// Bake is `go tool mage bake:local`: Packer, the cached root file system,
// the plugin and zkaas-firstboot built and installed, a build host, a real
// `packer build`, and the export of the result as an image.
func Bake(ctx context.Context, o Options) (*Image, error) {
	start := time.Now()
	inputs, err := Inputs(o.Repo, o.EnsembleConfig, strings.Join(o.Vars, "\n"))
	if err != nil {
		return nil, err
	}
	packer, err := Packer(ctx, o.CacheDir, o.Log)
	if err != nil {
		return nil, err
	}
	tarball, err := Rootfs(ctx, o.CacheDir, o.Log)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "zkaas-bake-work-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	plugin := filepath.Join(work, "packer-plugin-zkaas")
	firstboot := filepath.Join(work, "zkaas-firstboot")
	if err := BuildPlugin(ctx, o.Repo, plugin); err != nil {
		return nil, err
	}
	if err := InstallPlugin(ctx, packer, plugin, o.PluginPath); err != nil {
		return nil, err
	}
	if err := EnsureAmazonPlugin(ctx, packer, o.CacheDir, o.PluginPath, o.Log); err != nil {
		return nil, err
	}
	if err := BuildFirstboot(ctx, o.Repo, runtime.GOARCH, firstboot); err != nil {
		return nil, err
	}
	h, err := StartHost(ctx, HostConfig{Tarball: tarball, AptCache: filepath.Join(o.CacheDir, "apt-archives")}, o.Log)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	manifest := filepath.Join(work, "manifest.json")
	t := time.Now()
	err = h.Run(ctx, Build{
		Repo: o.Repo, Packer: packer, PluginPath: o.PluginPath, Firstboot: firstboot,
		EnsembleConfig: o.EnsembleConfig, Manifest: manifest, Vars: o.Vars, Output: o.Output,
	})
	if err != nil {
		return nil, err
	}
	o.Log.Info("packer build done", "duration", time.Since(t).Round(time.Second))
	h.Stop()
	img, err := Export(ctx, h, manifest, o.OutDir)
	if err != nil {
		return nil, err
	}
	img.Inputs = inputs
	if err := writeImage(o.OutDir, img); err != nil {
		return nil, err
	}
	o.Log.Info("image exported", "dir", o.OutDir, "size_mb", img.Size>>20, "entries", len(img.Manifest.Entries), "duration", time.Since(start).Round(time.Second))
	return img, nil
}

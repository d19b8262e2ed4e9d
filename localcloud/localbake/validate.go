package localbake

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Validate checks the template directory (TemplateDir) with the real
// Packer and the real plugins: `packer fmt -check`, then one `packer
// validate` of both builds, which runs each builder's Prepare (the amazon
// plugin's for the AWS build) and the zkaas provisioner's (roles,
// variables, the ensemble config). The amazon plugin is built from the Go
// module proxy into cacheDir (EnsureAmazonPlugin); without it neither
// build can be checked, so that is an error.
func Validate(ctx context.Context, repo, cacheDir string, log *slog.Logger) error {
	packer, err := Packer(ctx, cacheDir, log)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "zkaas-validate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	plugins := filepath.Join(work, "plugins")
	plugin := filepath.Join(work, "packer-plugin-zkaas")
	firstboot := filepath.Join(work, "zkaas-firstboot")
	key := filepath.Join(work, "id_ed25519")
	if err := BuildPlugin(ctx, repo, plugin); err != nil {
		return err
	}
	if err := InstallPlugin(ctx, packer, plugin, plugins); err != nil {
		return err
	}
	if err := EnsureAmazonPlugin(ctx, packer, cacheDir, plugins, log); err != nil {
		return err
	}
	if err := BuildFirstboot(ctx, repo, runtime.GOARCH, firstboot); err != nil {
		return err
	}
	if err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key); err != nil {
		return err
	}
	ensemble := filepath.Join(repo, "ensemble/testdata/ensemble.yaml")
	packerRun := func(args ...string) error {
		cmd := exec.CommandContext(ctx, packer, args...)
		cmd.Dir = repo
		cmd.Env = packerEnv(plugins)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("packer %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		log.Info("packer "+args[0]+" ok", "args", strings.Join(args[1:], " "))
		return nil
	}
	if err := packerRun("fmt", "-check", "-diff", TemplateDir); err != nil {
		return err
	}
	// No -only: both builds, each with the variables its source needs.
	return packerRun("validate",
		"-var", "region=eu-west-1",
		"-var", "ssh_host="+HostAddr, "-var", "ssh_private_key_file="+key,
		"-var", "arch="+runtime.GOARCH, "-var", "firstboot_binary="+firstboot,
		"-var", "ensemble_config="+ensemble,
		TemplateDir)
}

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

// Validate checks the templates in repo/packer with the real Packer and the
// real plugins: `packer fmt -check`, then `packer validate`, which runs the
// zkaas provisioner's Prepare (roles, variables, the ensemble config). The
// AWS template needs the amazon plugin; it is built from the Go module
// proxy into cacheDir, and when that fails the AWS template gets
// `packer validate -syntax-only` instead, which is said in the log.
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
	if err := packerRun("fmt", "-check", "-diff", "packer"); err != nil {
		return err
	}
	if err := packerRun("validate",
		"-var", "ssh_host="+HostAddr, "-var", "ssh_private_key_file="+key,
		"-var", "firstboot_binary="+firstboot, "-var", "ensemble_config="+ensemble,
		"packer/local.pkr.hcl"); err != nil {
		return err
	}
	aws := []string{"validate", "-var", "region=eu-west-1", "-var", "firstboot_binary=" + firstboot, "-var", "ensemble_config=" + ensemble, "packer/zookeeper.pkr.hcl"}
	amazon, err := AmazonPlugin(ctx, cacheDir, log)
	if err == nil {
		cmd := exec.CommandContext(ctx, packer, "plugins", "install", "--path", amazon, "github.com/hashicorp/amazon")
		cmd.Env = packerEnv(plugins)
		if out, ierr := cmd.CombinedOutput(); ierr != nil {
			err = fmt.Errorf("packer plugins install amazon: %w\n%s", ierr, out)
		}
	}
	if err != nil {
		log.Warn("the amazon plugin is not available: checking the AWS template with -syntax-only", "err", err)
		aws = []string{"validate", "-syntax-only", "packer/zookeeper.pkr.hcl"}
	}
	return packerRun(aws...)
}

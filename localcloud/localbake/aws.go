package localbake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
)

// The real AMI is baked by Packer's amazon-ebs builder, not here; what
// follows is the little the AWS bake needs around it: the firstboot
// binaries where the template expects them, and a check that there is an
// AWS account to bake in before anything is built.

// DistDir is where DistFirstboot puts its binaries, relative to the
// repository; the template's firstboot_binary defaults to
// DistDir/zkaas-firstboot-<arch>.
const DistDir = "dist"

// FirstbootArches are the architectures an AMI can be baked for (the
// template's arch variable).
var FirstbootArches = []string{"amd64", "arm64"}

// DistFirstboot builds repo/dist/zkaas-firstboot-<arch> for every
// FirstbootArches, concurrently (linux, CGO_ENABLED=0, -trimpath, as
// BuildFirstboot does), and returns their paths.
func DistFirstboot(ctx context.Context, repo string) ([]string, error) {
	paths := make([]string, len(FirstbootArches))
	errs := make([]error, len(FirstbootArches))
	if err := os.MkdirAll(filepath.Join(repo, DistDir), 0o755); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	for i, arch := range FirstbootArches {
		paths[i] = filepath.Join(repo, DistDir, "zkaas-firstboot-"+arch)
		wg.Go(func() {
			// Built beside the target and renamed, so a failed or
			// interrupted build never leaves a truncated binary that a
			// later bake would take.
			tmp := paths[i] + ".tmp"
			if errs[i] = BuildFirstboot(ctx, repo, arch, tmp); errs[i] != nil {
				os.Remove(tmp)
				return
			}
			errs[i] = os.Rename(tmp, paths[i])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return paths, nil
}

// AWSAccess is the account the AWS SDK would use, as far as the AWS bake
// needs to know before it starts.
type AWSAccess struct {
	Region string
	Source string // the credential provider, e.g. EnvConfigCredentials or SharedConfigCredentials
}

// CheckAWS resolves credentials and the region from the AWS SDK's standard
// sources — the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_REGION,
// ...), the shared config and credentials files, SSO, the EC2 instance
// metadata service — the ones the amazon plugin uses too, within timeout.
// It fails naming what is missing, so `packer build` is not started (and
// nothing expensive built) for a bake that cannot reach an account.
func CheckAWS(ctx context.Context, timeout time.Duration) (AWSAccess, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// No retries: the check asks each source once (the SDK's default
	// retries the metadata service for seconds on a machine outside EC2,
	// where it is simply absent). No SDK log either: what it would warn
	// about ends up in the error.
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithLogger(logging.Nop{}))
	if err != nil {
		return AWSAccess{}, fmt.Errorf("aws config: %w", err)
	}
	var problems []error
	a := AWSAccess{Region: cfg.Region}
	if cfg.Credentials == nil {
		err = errors.New("no credential provider")
	} else {
		var c aws.Credentials
		c, err = cfg.Credentials.Retrieve(ctx)
		a.Source = c.Source
		if err == nil && !c.HasKeys() {
			err = errors.New("the provider returned no keys")
		}
	}
	if err != nil {
		problems = append(problems, fmt.Errorf("no AWS credentials from the SDK's sources (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; AWS_PROFILE or the default profile in ~/.aws/credentials and ~/.aws/config; SSO after `aws sso login`; the instance metadata service): %w", err))
	}
	if a.Region == "" {
		// The SDK does not take the region from the metadata service
		// unless asked, and neither does the amazon plugin: an AMI is
		// built in, and launched from, a region named on purpose.
		problems = append(problems, errors.New("no AWS region: set AWS_REGION (or region in the profile's ~/.aws/config)"))
	}
	if err := errors.Join(problems...); err != nil {
		return a, err
	}
	return a, nil
}

// AWSBake configures BakeAWS.
type AWSBake struct {
	Repo           string
	Packer         string
	PluginPath     string // see InstallPlugin; the zkaas and amazon plugins must be installed there
	Region         string // from CheckAWS
	EnsembleConfig string
	Vars           []string // more -var name=value
	Output         io.Writer
	Log            *slog.Logger
}

// BakeAWS runs the real `packer build -only=AWSBuild` of TemplateDir: an
// EC2 build instance, the roles, an AMI. The firstboot binary is the
// template's default, DistDir/zkaas-firstboot-<arch>, so var.arch (arm64
// unless -var arch=amd64 or PKR_VAR_arch says otherwise) picks it.
func BakeAWS(ctx context.Context, b AWSBake) error {
	args := []string{"build", "-color=false", "-only=" + AWSBuild,
		"-var", "region=" + b.Region,
		"-var", "ensemble_config=" + b.EnsembleConfig,
	}
	for _, v := range b.Vars {
		args = append(args, "-var", v)
	}
	args = append(args, TemplateDir)
	cmd := exec.CommandContext(ctx, b.Packer, args...)
	// packer-manifest.json and the role manifest land in the repository,
	// where the template's relative output paths point.
	cmd.Dir = b.Repo
	cmd.Env = packerEnv(b.PluginPath)
	cmd.Stdout, cmd.Stderr = b.Output, b.Output
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("packer build -only=%s: %w", AWSBuild, err)
	}
	b.Log.Info("packer build done", "build", AWSBuild, "region", b.Region, "duration", time.Since(start).Round(time.Second))
	return nil
}

//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config

package provisioner

import (
	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// Config is the zkaas provisioner's configuration. Packer's own provisioner
// settings (only, except, pause_before, max_retries, timeout) are handled by
// Packer core.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Roles to apply, in order: built-in (java, zookeeper, firstboot,
	// hardening) or found in role_paths.
	Roles []string `mapstructure:"roles" required:"true"`
	// Directories of roles (<dir>/<name>/role.yaml) searched before the
	// built-in roles, so a directory can add roles or override one.
	RolePaths []string `mapstructure:"role_paths"`
	// Role variables. "role.variable" sets one role's variable; a bare
	// "variable" sets it for every selected role that declares it (one
	// ensemble_config for firstboot and hardening). The qualified form wins.
	Variables map[string]string `mapstructure:"variables"`
	// The image's package manager: apt (Debian, Ubuntu; the default) or dnf.
	DistroFamily string `mapstructure:"distro_family"`
	// How many times a failed package manager run is retried, with a
	// doubling delay from 5s (apt's lock held by cloud-init, a flaky
	// mirror). Default 3.
	PackageRetries *int `mapstructure:"package_retries"`
	// Where to write, on the machine running Packer, a JSON manifest of
	// every path the roles manage with its checksum on the image.
	Manifest string `mapstructure:"manifest"`
	// A directory to keep a transcript of the provisioning in: every
	// command line (commands.sh) and every upload. For debugging, and for
	// replaying with Packer's shell provisioner.
	Transcript string `mapstructure:"transcript"`

	ctx interpolate.Context
}

//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config
//go:generate go run ../internal/docgen -plugin .. provisioner/config.go

package provisioner

import (
	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// The field comments below are the user documentation: go generate turns
// them into docs-partials/provisioner/Config-*.mdx, which
// docs/provisioners/zkaas.mdx includes. Write them for Packer users.

// Config is the zkaas provisioner's configuration. Packer's own provisioner
// settings (only, except, pause_before, max_retries, timeout) are handled by
// Packer core.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Roles to apply, in order: built-in (`java`, `zookeeper`, `firstboot`,
	// `hardening`) or found in `role_paths`.
	Roles []string `mapstructure:"roles" required:"true"`
	// Directories of roles (`<dir>/<name>/role.yaml`) searched before the
	// built-in roles, so a directory can add roles or override a built-in
	// one.
	RolePaths []string `mapstructure:"role_paths"`
	// Role variables. `"role.variable"` sets one role's variable; a bare
	// `"variable"` sets it for every selected role that declares it (one
	// `ensemble_config` for `firstboot` and `hardening`). The qualified form
	// wins.
	Variables map[string]string `mapstructure:"variables"`
	// The image's package manager: `apt` (Debian, Ubuntu; the default) or
	// `dnf` (the Fedora family). Package steps list packages per family.
	DistroFamily string `mapstructure:"distro_family"`
	// How many times a failed package manager run is retried, waiting 5s,
	// 10s, 20s… (apt's lock held by cloud-init or unattended-upgrades, a
	// flaky mirror). Default 3. apt also waits up to 300s for its lock.
	PackageRetries *int `mapstructure:"package_retries"`
	// Where to write, on the machine running Packer, a JSON manifest of
	// every path the roles manage, with its checksum, owner and mode as
	// found on the image after provisioning.
	Manifest string `mapstructure:"manifest"`
	// A directory to keep a transcript of the provisioning in: every
	// command line (`commands.sh`) and every upload (`uploads/`,
	// `uploads.tsv`). For debugging; Packer's file and shell provisioners
	// can replay it.
	Transcript string `mapstructure:"transcript"`

	ctx interpolate.Context
}

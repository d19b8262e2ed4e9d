// Package version is the zkaas Packer plugin's version, defined here and
// nowhere else: the plugin reports it to Packer (`describe`), and the
// release target names its archives after it.
//
// A release is cut by setting Version, building with `go tool mage
// plugin:release` (which clears VersionPrerelease) and publishing dist/ as
// the GitHub release v<Version> of github.com/zkaas/packer-plugin-zkaas.
package version

import "github.com/hashicorp/packer-plugin-sdk/version"

var (
	// Version is the release being worked towards.
	Version = "0.1.0"
	// VersionPrerelease marks builds that are not a release: "dev" for
	// every build but the release target's, which sets it to "" with
	// -ldflags -X. Packer installs and loads "dev" builds (`packer plugins
	// install --path`) but never resolves them from a release.
	VersionPrerelease = "dev"
	// VersionMetadata is free-form build metadata (+...), ignored by
	// Packer's version ordering.
	VersionMetadata = ""
)

// PluginVersion is what the plugin set reports.
var PluginVersion = version.NewPluginVersion(Version, VersionPrerelease, VersionMetadata)

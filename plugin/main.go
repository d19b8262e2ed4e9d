// Command packer-plugin-zkaas is the zkaas Packer plugin: the provisioner
// that applies zkaas roles (provisioner "zkaas" in a template). Install a
// local build with `go tool mage plugin:install`.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"
	"github.com/hashicorp/packer-plugin-sdk/version"

	"github.com/zkaas/zkaas/plugin/provisioner"
)

// Version and VersionPrerelease are the plugin's version; release builds
// set them with -ldflags -X.
var (
	Version           = "0.1.0"
	VersionPrerelease = "dev"
)

func main() {
	set := plugin.NewSet()
	set.RegisterProvisioner(plugin.DEFAULT_NAME, new(provisioner.Provisioner))
	set.SetVersion(version.NewPluginVersion(Version, VersionPrerelease, ""))
	if err := set.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

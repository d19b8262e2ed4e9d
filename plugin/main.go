// Command packer-plugin-zkaas is the zkaas Packer plugin: the provisioner
// that applies zkaas roles (provisioner "zkaas" in a template). Install a
// local build with `go tool mage plugin:install`; release archives come
// from `go tool mage plugin:release`.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/zkaas/zkaas/plugin/provisioner"
	"github.com/zkaas/zkaas/plugin/version"
)

func main() {
	set := plugin.NewSet()
	set.RegisterProvisioner(plugin.DEFAULT_NAME, new(provisioner.Provisioner))
	set.SetVersion(version.PluginVersion)
	if err := set.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Package roles embeds the built-in roles — <name>/role.yaml and the files
// their steps refer to — so the Packer plugin binary is self-contained.
package roles

import "embed"

// FS holds <name>/role.yaml and <name>/files/... for every built-in role.
//
//go:embed */role.yaml */files
var FS embed.FS

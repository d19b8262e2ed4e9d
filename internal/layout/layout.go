// Package layout records how the module is divided: what ships (the boot
// binary, the Packer plugin, later the operator command) and what is the
// test rig (the local cloud and the test helpers). Its test holds the line
// with `go list -deps`, so a shipped binary never links the simulator.
package layout

// Module is the module path.
const Module = "github.com/zkaas/zkaas"

// Product is a binary zkaas ships, and the platforms it must build for.
type Product struct {
	Pkg       string   // import path relative to the module, e.g. "plugin"
	Platforms []string // GOOS/GOARCH pairs
}

// Products are what zkaas ships. The plugin runs wherever Packer runs (many
// users run Packer on macOS or Windows); the boot binary runs on the
// instance, Linux on x86 or Graviton.
var Products = []Product{
	{"firstboot/cmd/zkaas-firstboot", []string{"linux/amd64", "linux/arm64"}},
	{"plugin", []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}},
	// The operator command runs on operators' laptops.
	{"cmd/zkaas", []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}},
}

// Rig are the packages no product may depend on: the local cloud (EC2,
// Auto Scaling, IAM, DLM and Secrets Manager/SSM simulators, IMDS mock runner, instances,
// ensemble runner, local build host, namespace and loop-device test
// helpers) and the test-only helpers in internal/.
var Rig = []string{"localcloud", "internal/commtest", "internal/golden", "internal/nsutil",
	"localcloud/iamsim", "localcloud/dlmsim", "localcloud/secretsim", "internal/testca", "internal/realzk"}

// Pure are packages every product shares that must build on every OS the
// plugin does: they may import nothing Linux-only.
var Pure = []string{"ensemble", "firstboot/routing", "firstboot/systemd"}

// LinuxOnly are dependencies that must not reach a Pure package: netlink
// and the kernel's system calls, and the boot binary's packages built on
// them (the ENI's link, the volume's device, the hot-plug signals the
// claim waits on).
var LinuxOnly = []string{"github.com/vishvananda/netlink", "github.com/vishvananda/netns", "golang.org/x/sys/unix",
	Module + "/firstboot/netcfg", Module + "/firstboot/disk", Module + "/firstboot/hotplug"}

// Orchestrators only order steps: they speak the domain interfaces of the
// packages they call, never an SDK or netlink directly.
var Orchestrators = []string{"firstboot/boot", "ops/deploy", "ops/plan", "ops/down", "ops/roll", "ops/status", "ops/doctor", "ops/inventory"}

// SDKs are the libraries an orchestrator must not import itself.
var SDKs = []string{"github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go", "github.com/vishvananda/netlink"}

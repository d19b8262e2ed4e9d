package routing

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"

	"github.com/zkaas/zkaas/internal/fsutil"
)

// Paths of the files NetworkdFiles renders, relative to /etc/systemd.
const (
	NetworkdConfPath = "networkd.conf.d/50-zkaas.conf"
	NetworkFilePath  = "network/01-zkaas-eni.network"
)

// networkdConf keeps systemd-networkd from deleting what Apply configures.
// By default networkd removes, on start and on reload, routing policy rules
// and routes it did not create itself — our rule and table included. Both
// settings are in networkd.conf's [Network] section (systemd 249+; AL2023
// ships 252).
const networkdConf = `# Written by zkaas-firstboot. The node's ENI is routed by zkaas-firstboot
# (a source rule and a dedicated route table); networkd must not remove
# routing policy rules and routes it did not create.
[Network]
ManageForeignRoutingPolicyRules=no
ManageForeignRoutes=no
`

// networkFile is the .network file that keeps networkd — and with it
// amazon-ec2-net-utils and cloud-init, which only write networkd input — off
// the ENI.
const networkFile = `# Written by zkaas-firstboot. The ENI with this MAC carries the node's
# address and is configured by zkaas-firstboot; networkd leaves it alone.
[Match]
MACAddress=%s

[Link]
Unmanaged=yes
`

// NetworkdFiles renders the systemd-networkd configuration the ENI needs,
// keyed by path relative to /etc/systemd:
//
//   - NetworkdConfPath: a networkd.conf drop-in with
//     ManageForeignRoutingPolicyRules=no and ManageForeignRoutes=no, so
//     networkd does not delete our rule and routes;
//   - NetworkFilePath: a .network file matching the ENI by MAC with
//     [Link] Unmanaged=yes, so networkd does not configure it.
//
// How this keeps amazon-ec2-net-utils off the ENI: its 2.x branch (AL2023)
// has no per-interface opt-out — the 1.x EC2SYNC=no ifcfg switch is gone, and
// its udev rule (99-vpc-policy-routes.rules) starts policy-routes@<iface> for
// every ena/ixgbevf/vif link. But all that service does is write networkd
// input: /run/systemd/network/70-<iface>.network plus drop-ins with a DHCP
// setup and rules and routes in table 10000+N. networkd applies only the
// first .network file, by file name across /etc, /run and /usr/lib, that
// matches a link, and a shadowed file's drop-ins are ignored too (see
// amazon-ec2-net-utils issue #146). Our 01- file sorts before net-utils'
// 70-/80- files and before the 10-netplan-*.network files cloud-init
// generates on Ubuntu, so both are inert for the ENI; their service still
// runs and writes to /run, harmlessly. Should net-utils have configured the
// ENI before these files were in place, its rule for the ENI address sits at
// priority 10000+N, behind ours (DefaultPriority), until networkd is
// reloaded and lets go of the link.
func NetworkdFiles(mac net.HardwareAddr) map[string][]byte {
	return map[string][]byte{
		NetworkdConfPath: []byte(networkdConf),
		NetworkFilePath:  fmt.Appendf(nil, networkFile, mac),
	}
}

// WriteNetworkdFiles writes NetworkdFiles(mac) under dir (normally
// /etc/systemd), each atomically and only when its bytes differ, and reports
// whether anything changed. After a change networkd must be reloaded
// (`networkctl reload`) for it to take effect.
func WriteNetworkdFiles(dir string, mac net.HardwareAddr) (changed bool, err error) {
	if len(mac) != 6 {
		return false, fmt.Errorf("write networkd files: mac %q: want 6 bytes", mac)
	}
	files := NetworkdFiles(mac)
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return changed, fmt.Errorf("write networkd files: %w", err)
		}
		c, err := fsutil.WriteFile(path, files[rel], 0o644)
		if err != nil {
			return changed, fmt.Errorf("write networkd files: %w", err)
		}
		changed = changed || c
	}
	return changed, nil
}

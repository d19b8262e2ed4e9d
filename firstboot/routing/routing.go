// Package routing holds what is decided about the node's policy routing
// before any netlink call: the route table and rule priority ids zkaas may
// use, and the systemd-networkd files that keep the distribution's network
// manager off the ENI. It is pure Go, so the ensemble schema and the bake —
// which run on any OS Packer runs on — share it with the boot binary.
package routing

import "fmt"

// Routing ids. The routing policy database is shared with the kernel and
// with whatever the distribution runs, so the ids are picked where nothing
// else on an EC2 image lives, and Validate refuses the crowded ranges:
//
//   - 0 is "unspecified" for tables (the kernel would pick main) and the
//     priority of the kernel's "lookup local" rule; 253, 254 and 255 are the
//     default, main and local tables; 32766 and 32767 are the priorities of
//     the main and default rules.
//   - amazon-ec2-net-utils 2.x (AL2023) gives every ENI table and rule
//     priority 10000 + 100*network-card + device-number, unbounded above.
//   - cloud-init (Ubuntu, netplan) uses table 100 + NIC index and leaves rule
//     priorities to the kernel, which counts down from 32765.
//   - Small numbers are what administrators and other agents pick first
//     (Tailscale: table 52; Kubernetes CNIs such as amazon-vpc-cni-k8s:
//     device-number+1 tables, priorities 512-1536 — not on a ZooKeeper node,
//     but the point stands), and AWS's multi-network-card scripts for
//     accelerated instances count tables up from 1001, which is why the
//     default is not 1001.
//
// So table and priority must be in MinID..MaxID. The defaults are 2181,
// ZooKeeper's client port: easy to recognise in `ip rule` output and not a
// number anybody else picks. A priority below 10000 also means our rule wins
// even if amazon-ec2-net-utils configured the ENI before we kept it off (see
// NetworkdFiles): its rule for the same source sits at 10000+.
const (
	DefaultTable    = 2181
	DefaultPriority = 2181
	MinID           = 1000
	MaxID           = 9999
)

// ValidateTable rejects route table ids that collide with the kernel's
// tables or other software's (see DefaultTable).
func ValidateTable(table int) error {
	var reason string
	switch {
	case table == 0:
		reason = "unspecified: the kernel would use main"
	case table >= 253 && table <= 255:
		reason = "the kernel's default, main and local tables"
	case table >= 100 && table < MinID:
		reason = "cloud-init uses 100 + NIC index"
	default:
		reason = outsideWindow(table)
	}
	if reason != "" {
		return fmt.Errorf("route table %d is reserved (%s): choose %d-%d", table, reason, MinID, MaxID)
	}
	return nil
}

// ValidatePriority rejects rule priorities that collide with the kernel's
// rules or other software's (see DefaultTable).
func ValidatePriority(priority int) error {
	var reason string
	switch {
	case priority == 0:
		reason = "the kernel's local rule"
	case priority == 32766 || priority == 32767:
		reason = "the kernel's main and default rules"
	default:
		reason = outsideWindow(priority)
	}
	if reason != "" {
		return fmt.Errorf("rule priority %d is reserved (%s): choose %d-%d", priority, reason, MinID, MaxID)
	}
	return nil
}

func outsideWindow(id int) string {
	switch {
	case id < 0:
		return "negative"
	case id < MinID:
		return "ids below 1000 are left to administrators and other agents"
	case id >= 10000:
		return "amazon-ec2-net-utils uses 10000 and up"
	}
	return ""
}

// MTU bounds and default for the ENI's link. EC2 supports jumbo frames,
// 9001 bytes, for traffic inside a VPC and sets 9001 on the primary
// interface by DHCP; a hot-plugged ENI gets no DHCP, so netcfg sets it.
// 576 is the smallest datagram every IPv4 host must accept (RFC 791).
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/network_mtu.html
const (
	DefaultMTU = 9001
	MinMTU     = 576
	MaxMTU     = 9001
)

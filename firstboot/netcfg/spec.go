// Package netcfg makes the instance reachable at its ENI's address: it finds
// the hot-plugged link by MAC, puts the address on it, and routes traffic
// sourced from that address through the ENI with a dedicated route table and
// a source rule (the containernetworking "sbr" pattern). Everything is
// idempotent; a second Apply changes nothing.
//
// Functions operate in the calling thread's network namespace.
package netcfg

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

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

// DefaultLinkWait bounds the wait for the ENI's link to appear after the
// attachment is reported: hot-plug normally takes well under a second.
const DefaultLinkWait = 60 * time.Second

// Spec is the network configuration of one ENI.
type Spec struct {
	MAC net.HardwareAddr
	// IP is the ENI's primary private IPv4 address.
	IP netip.Addr
	// Subnet is the ENI's subnet (IMDS subnet-ipv4-cidr-block); its first
	// host address is the VPC router, used as the default gateway.
	Subnet netip.Prefix
	// Table and Priority of the source rule; zero selects DefaultTable and
	// DefaultPriority.
	Table    int
	Priority int
	// LinkWait bounds the wait for the link to appear; zero selects
	// DefaultLinkWait.
	LinkWait time.Duration
	// Logger receives one record per step; nil uses slog.Default().
	Logger *slog.Logger
}

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

// Gateway returns the VPC router's address in subnet: its first host address.
func Gateway(subnet netip.Prefix) netip.Addr {
	return subnet.Masked().Addr().Next()
}

// Validate checks the spec as Apply would use it, defaults included.
func (s Spec) Validate() error {
	var errs []error
	if len(s.MAC) != 6 {
		errs = append(errs, fmt.Errorf("mac %q: want 6 bytes", s.MAC))
	}
	switch {
	case !s.Subnet.IsValid() || !s.Subnet.Addr().Is4():
		errs = append(errs, fmt.Errorf("subnet %s: want an IPv4 prefix", s.Subnet))
	case s.Subnet.Masked() != s.Subnet:
		errs = append(errs, fmt.Errorf("subnet %s: host bits set, want %s", s.Subnet, s.Subnet.Masked()))
	case s.Subnet.Bits() < 1 || s.Subnet.Bits() > 30:
		errs = append(errs, fmt.Errorf("subnet %s: want a prefix length of 1-30 (room for a gateway and a host)", s.Subnet))
	case !s.IP.Is4():
		errs = append(errs, fmt.Errorf("ip %s: want an IPv4 address", s.IP))
	case !s.Subnet.Contains(s.IP):
		errs = append(errs, fmt.Errorf("ip %s is not in subnet %s", s.IP, s.Subnet))
	case s.IP == s.Subnet.Addr():
		errs = append(errs, fmt.Errorf("ip %s is the network address of %s", s.IP, s.Subnet))
	case s.IP == Gateway(s.Subnet):
		errs = append(errs, fmt.Errorf("ip %s is the gateway of %s", s.IP, s.Subnet))
	case s.IP == broadcast(s.Subnet):
		errs = append(errs, fmt.Errorf("ip %s is the broadcast address of %s", s.IP, s.Subnet))
	}
	if err := ValidateTable(s.table()); err != nil {
		errs = append(errs, err)
	}
	if err := ValidatePriority(s.priority()); err != nil {
		errs = append(errs, err)
	}
	if s.LinkWait < 0 {
		errs = append(errs, fmt.Errorf("link wait %s: want a positive duration", s.LinkWait))
	}
	return errors.Join(errs...)
}

func (s Spec) table() int    { return cmp.Or(s.Table, DefaultTable) }
func (s Spec) priority() int { return cmp.Or(s.Priority, DefaultPriority) }

func (s Spec) linkWait() time.Duration { return cmp.Or(s.LinkWait, DefaultLinkWait) }

func (s Spec) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	for i := range 4 {
		a[i] |= byte(host >> (8 * (3 - i)))
	}
	return netip.AddrFrom4(a)
}

// Package netcfg makes the instance reachable at its ENI's address: it finds
// the hot-plugged link by MAC, puts the address on it, and routes traffic
// sourced from that address through the ENI with a dedicated route table and
// a source rule (the containernetworking "sbr" pattern), steers connections
// the node opens to its ensemble peers into the same table so they leave from
// the ENI's address too, and gives the link EC2's MTU. Everything is
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
	"slices"
	"time"

	"github.com/zkaas/zkaas/firstboot/routing"
)

// DefaultLinkWait bounds the wait for the ENI's link to appear after the
// attachment is reported: hot-plug normally takes well under a second.
const DefaultLinkWait = 60 * time.Second

// MTU bounds and default: see package routing, which package ensemble
// shares.
const (
	DefaultMTU = routing.DefaultMTU
	MinMTU     = routing.MinMTU
	MaxMTU     = routing.MaxMTU
)

// Spec is the network configuration of one ENI.
type Spec struct {
	MAC net.HardwareAddr
	// IP is the ENI's primary private IPv4 address.
	IP netip.Addr
	// Subnet is the ENI's subnet (IMDS subnet-ipv4-cidr-block); its first
	// host address is the VPC router, used as the default gateway.
	Subnet netip.Prefix
	// Table and Priority of the source rule; zero selects routing.DefaultTable and
	// routing.DefaultPriority.
	Table    int
	Priority int
	// Peers are the other nodes' addresses (the ensemble config's node IPs
	// without this node's). Connections the node opens to them without
	// binding a source address — ZooKeeper's quorum and election
	// connections — are routed through the ENI from its address; see
	// Apply.
	Peers []netip.Addr
	// MTU of the ENI's link; zero selects DefaultMTU.
	MTU int
	// LinkWait bounds the wait for the link to appear; zero selects
	// DefaultLinkWait.
	LinkWait time.Duration
	// Logger receives one record per step; nil uses slog.Default().
	Logger *slog.Logger
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
	if err := routing.ValidateTable(s.table()); err != nil {
		errs = append(errs, err)
	}
	if err := routing.ValidatePriority(s.priority()); err != nil {
		errs = append(errs, err)
	}
	for _, p := range s.Peers {
		switch {
		case !p.Is4():
			errs = append(errs, fmt.Errorf("peer %s: want an IPv4 address", p))
		case !p.IsGlobalUnicast():
			errs = append(errs, fmt.Errorf("peer %s: want a unicast address", p))
		case p == s.IP:
			errs = append(errs, fmt.Errorf("peer %s is the ENI's own address", p))
		}
	}
	if m := s.mtu(); m < MinMTU || m > MaxMTU {
		errs = append(errs, fmt.Errorf("mtu %d: want %d-%d (EC2's jumbo frame MTU inside a VPC is %d)", m, MinMTU, MaxMTU, MaxMTU))
	}
	if s.LinkWait < 0 {
		errs = append(errs, fmt.Errorf("link wait %s: want a positive duration", s.LinkWait))
	}
	return errors.Join(errs...)
}

func (s Spec) table() int    { return cmp.Or(s.Table, routing.DefaultTable) }
func (s Spec) priority() int { return cmp.Or(s.Priority, routing.DefaultPriority) }

func (s Spec) mtu() int { return cmp.Or(s.MTU, DefaultMTU) }

// peers returns the peers sorted and without duplicates, so the rules Apply
// wants do not depend on the config's order.
func (s Spec) peers() []netip.Addr {
	p := slices.Clone(s.Peers)
	slices.SortFunc(p, netip.Addr.Compare)
	return slices.Compact(p)
}

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

//go:build linux

package netcfg

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/zkaas/zkaas/localcloud/netnstest"
)

// ec2Node is an instance as EC2 wires it: a "node" namespace with a primary
// interface (its address and default route set up as DHCP would) and a
// hot-plugged ENI left unconfigured, both veths into a "vpc" namespace that
// plays the VPC router and holds the peer's address. The router knows which
// interface owns which address, as the VPC fabric does (a /32 route per
// address, not a shared broadcast domain where either interface could answer
// ARP for both), and both namespaces filter by strict reverse path, so a
// packet leaving through the wrong interface for its source is dropped —
// the namespace's stand-in for EC2's source/destination check.
type ec2Node struct {
	node, vpc *netnstest.NS
	primary   netip.Addr
	eth0      netlink.Link // the primary interface, in node
	eni       netlink.Link // the ENI, in node
}

var (
	primarySubnet = netip.MustParsePrefix("198.18.1.0/24")
	primaryIP     = netip.MustParseAddr("198.18.1.5")
)

func newEC2Node(t *testing.T, eniIP netip.Addr, eniSubnet netip.Prefix, peer netip.Addr) *ec2Node {
	t.Helper()
	e := &ec2Node{node: netnstest.New(t), vpc: netnstest.New(t), primary: primaryIP}
	for _, ns := range []*netnstest.NS{e.node, e.vpc} {
		must(t, ns.Do(func() error {
			// conf/all and conf/default before any link exists: the
			// kernel uses the larger of all and the link's value.
			for _, kv := range [][2]string{
				{"conf/all/rp_filter", "1"}, {"conf/default/rp_filter", "1"},
				{"conf/all/arp_ignore", "0"}, {"conf/default/arp_ignore", "0"},
			} {
				if err := os.WriteFile("/proc/sys/net/ipv4/"+kv[0], []byte(kv[1]+"\n"), 0o644); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	vpcNS, err := netns.GetFromName(e.vpc.Name)
	must(t, err)
	defer vpcNS.Close()
	n, v := e.node.Netlink(), e.vpc.Netlink()
	veth := func(name, peerName string, mac net.HardwareAddr) netlink.Link {
		must(t, n.LinkAdd(&netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac},
			PeerName:  peerName, PeerNamespace: netlink.NsFd(int(vpcNS)),
		}))
		l, err := n.LinkByName(name)
		must(t, err)
		return l
	}
	e.eth0 = veth("eth0", "to-eth0", macFor(2))
	e.eni = veth("ens6", "to-ens6", macFor(1))

	// The node: lo and the primary interface, as cloud-init leaves them.
	lo, err := n.LinkByName("lo")
	must(t, err)
	must(t, n.LinkSetUp(lo))
	must(t, n.LinkSetUp(e.eth0))
	must(t, n.AddrAdd(e.eth0, &netlink.Addr{IPNet: toIPNet(netip.PrefixFrom(primaryIP, primarySubnet.Bits()))}))
	must(t, n.RouteAdd(&netlink.Route{LinkIndex: e.eth0.Attrs().Index, Dst: mustNet("0.0.0.0/0"),
		Gw: net.IP(Gateway(primarySubnet).AsSlice())}))

	// The VPC: each subnet's router address on the interface facing it,
	// a host route per instance address, the peer on lo.
	vlo, err := v.LinkByName("lo")
	must(t, err)
	must(t, v.LinkSetUp(vlo))
	must(t, v.AddrAdd(vlo, &netlink.Addr{IPNet: toIPNet(netip.PrefixFrom(peer, 32))}))
	for _, side := range []struct {
		name   string
		gw, ip netip.Addr
	}{
		{"to-eth0", Gateway(primarySubnet), primaryIP},
		{"to-ens6", Gateway(eniSubnet), eniIP},
	} {
		l, err := v.LinkByName(side.name)
		must(t, err)
		must(t, v.LinkSetUp(l))
		must(t, v.AddrAdd(l, &netlink.Addr{IPNet: toIPNet(netip.PrefixFrom(side.gw, 32))}))
		must(t, v.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: toIPNet(netip.PrefixFrom(side.ip, 32)),
			Scope: netlink.SCOPE_LINK}))
	}
	return e
}

// seenFrom connects from the node to the peer's listener — bound to bind,
// or, when bind is the zero Addr, unbound as ZooKeeper's quorum and election
// connections are — and returns the source address the listener saw.
func (e *ec2Node) seenFrom(t *testing.T, peer, bind netip.Addr) (netip.Addr, error) {
	t.Helper()
	var ln net.Listener
	if err := e.vpc.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(peer, 0).String())
		return err
	}); err != nil {
		return netip.Addr{}, fmt.Errorf("listen on %s: %w", peer, err)
	}
	defer ln.Close()
	d := net.Dialer{Timeout: 3 * time.Second}
	if bind.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: net.IP(bind.AsSlice())}
	}
	var c net.Conn
	if err := e.node.Do(func() (err error) {
		c, err = d.Dial("tcp4", ln.Addr().String())
		return err
	}); err != nil {
		return netip.Addr{}, fmt.Errorf("connect to %s: %w", ln.Addr(), err)
	}
	defer c.Close()
	// The handshake is done, so the connection waits in the backlog.
	must(t, ln.(*net.TCPListener).SetDeadline(time.Now().Add(3*time.Second)))
	s, err := ln.Accept()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("accept on %s: %w", ln.Addr(), err)
	}
	defer s.Close()
	return s.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(), nil
}

// routeTo asks the node's kernel for the route to dst from src (zero: from
// a socket without a source) and returns the link and source it picks.
func (e *ec2Node) routeTo(t *testing.T, dst, src netip.Addr) (link int, from netip.Addr) {
	t.Helper()
	opts := &netlink.RouteGetOptions{}
	if src.IsValid() {
		opts.SrcAddr = net.IP(src.AsSlice())
	}
	rs, err := e.node.Netlink().RouteGetWithOptions(net.IP(dst.AsSlice()), opts)
	must(t, err)
	if len(rs) != 1 {
		t.Fatalf("route get %s from %v: %d routes", dst, src, len(rs))
	}
	from, _ = netip.AddrFromSlice(rs[0].Src)
	return rs[0].LinkIndex, from.Unmap()
}

// TestApplySourceAddress proves in namespaces what EC2's security groups
// and NACLs see: after Apply, a connection the node opens to a peer without
// binding comes from the ENI's address and leaves through the ENI, while one
// bound to the primary address still comes from it through the primary
// interface. Before Apply, and to an address that is not a peer, unbound
// connections come from the primary address — which is what the peer rules
// change, so the test fails without them.
func TestApplySourceAddress(t *testing.T) {
	tests := []struct {
		name      string
		eniIP     string
		eniSubnet string
		peer      string
		listed    bool // the peer is in Spec.Peers
	}{
		{"ENI in the primary's subnet, peer in another AZ", "198.18.1.10", "198.18.1.0/24", "198.18.2.10", true},
		{"ENI in another subnet, peer in another AZ", "198.18.3.10", "198.18.3.0/24", "198.18.2.10", true},
		{"peer in the ENI's subnet, shared with the primary", "198.18.1.10", "198.18.1.0/24", "198.18.1.20", true},
		{"peer in the ENI's subnet, not the primary's", "198.18.3.10", "198.18.3.0/24", "198.18.3.20", true},
		{"peer in the primary's subnet, not the ENI's", "198.18.3.10", "198.18.3.0/24", "198.18.1.20", true},
		{"address not in the peer list", "198.18.1.10", "198.18.1.0/24", "198.18.2.10", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eniIP, peer := netip.MustParseAddr(tt.eniIP), netip.MustParseAddr(tt.peer)
			e := newEC2Node(t, eniIP, netip.MustParsePrefix(tt.eniSubnet), peer)
			check := func(when string, bind, want netip.Addr) {
				t.Helper()
				got, err := e.seenFrom(t, peer, bind)
				if err != nil {
					t.Fatalf("%s: %v", when, err)
				}
				if got != want {
					t.Errorf("%s: the peer saw the connection from %s, want %s", when, got, want)
				}
			}
			var none netip.Addr
			check("before apply, unbound", none, primaryIP)

			spec := testSpec(t, tt.eniIP)
			spec.Subnet = netip.MustParsePrefix(tt.eniSubnet)
			// Another node, so that the rules exist in every case.
			spec.Peers = []netip.Addr{netip.MustParseAddr("198.18.4.10")}
			if tt.listed {
				spec.Peers = append(spec.Peers, peer)
			}
			apply(t, e.node, spec)
			if res := apply(t, e.node, spec); len(res.Changes) != 0 {
				t.Errorf("second apply: changes %q, want none", res.Changes)
			}

			wantSrc, wantLink := primaryIP, e.eth0.Attrs().Index
			if tt.listed {
				wantSrc, wantLink = eniIP, e.eni.Attrs().Index
			}
			check("after apply, unbound", none, wantSrc)
			if link, src := e.routeTo(t, peer, none); link != wantLink || src != wantSrc {
				t.Errorf("route to %s: link %d src %s, want link %d src %s", peer, link, src, wantLink, wantSrc)
			}
			// Traffic that already has a source keeps to its own
			// interface: EC2 drops the primary's address on the ENI.
			check("after apply, bound to the primary address", primaryIP, primaryIP)
			if link, _ := e.routeTo(t, peer, primaryIP); link != e.eth0.Attrs().Index {
				t.Errorf("route to %s from %s: link %d, want the primary interface %d", peer, primaryIP, link, e.eth0.Attrs().Index)
			}
			check("after apply, bound to the ENI address", eniIP, eniIP)
		})
	}
}

// TestApplyMTU: the ENI gets the spec's MTU, EC2's 9001 by default, and a
// second Apply reports nothing.
func TestApplyMTU(t *testing.T) {
	tests := []struct {
		name  string
		start int // the link's MTU before Apply
		mtu   int
		want  int
	}{
		{"default: EC2 jumbo frames", 1500, 0, 9001},
		{"explicit 9001", 1500, 9001, 9001},
		{"lowered for a VPN", 9001, 1500, 1500},
		{"lowest", 1500, MinMTU, MinMTU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := netnstest.New(t)
			must(t, ns.AddVeth(t, "ens6", macFor(1)))
			link, err := ns.Netlink().LinkByName("ens6")
			must(t, err)
			must(t, ns.Netlink().LinkSetMTU(link, tt.start))
			spec := testSpec(t, "198.18.1.10")
			spec.MTU = tt.mtu
			res := apply(t, ns, spec)
			if want := fmt.Sprintf("link ens6 mtu %d set (was %d)", tt.want, tt.start); !slices.Contains(res.Changes, want) {
				t.Errorf("changes %q, want %q among them", res.Changes, want)
			}
			link, err = ns.Netlink().LinkByIndex(link.Attrs().Index)
			must(t, err)
			if link.Attrs().MTU != tt.want {
				t.Errorf("link mtu %d, want %d", link.Attrs().MTU, tt.want)
			}
			if res := apply(t, ns, spec); len(res.Changes) != 0 {
				t.Errorf("second apply: changes %q, want none", res.Changes)
			}
			if _, err := Apply(context.Background(), Spec{MAC: spec.MAC, IP: spec.IP, Subnet: spec.Subnet, MTU: MaxMTU + 1}); err == nil {
				t.Errorf("mtu %d accepted", MaxMTU+1)
			}
		})
	}
}

package localcloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/firstboot/routing"
	"github.com/zkaas/zkaas/internal/nsutil"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// bridgeName is the VPC bridge, inside the VPC namespace.
const bridgeName = "vpc0"

// bridgeMAC is the VPC router's MAC. It is set, because a bridge left to
// itself takes the lowest MAC of its ports: plugging an ENI would then
// change the gateway's MAC under every instance's ARP cache, and their
// traffic would vanish until the entries expired (a minute and more).
var bridgeMAC = net.HardwareAddr{0x02, 0x7a, 0x6b, 0x00, 0x00, 0x01}

// vpc is the VPC's network: its namespace (the router), the bridge that
// carries every subnet's gateway and every instance's veths, and the EC2
// endpoint listening inside it. After start it changes only in the links on
// the bridge, which netlink serializes; it needs no lock of its own.
type vpc struct {
	log     *slog.Logger
	ns      string // path of the VPC network namespace
	ref     netnsRef
	nl      *netlink.Handle
	bridge  int               // ifindex of the VPC bridge
	subnets map[string]subnet // by AZ, its first: where instances launch; fixed by start
	all     []subnet          // every subnet, in Options order; fixed by start
	linkSeq atomic.Uint64
	srv     *http.Server
	extra   []*http.Server // other services' endpoints (serve)
	calls   callLog        // EC2 calls by caller
	// The other services' calls by caller, by service name (serve's).
	svcCalls map[string]*callLog
}

type subnet struct {
	id      string
	cidr    netip.Prefix
	gateway netip.Addr
}

// start creates the VPC namespace named name (bridge, gateways,
// forwarding), the subnets in the simulator, and the simulator's listener
// on EC2Address:80 inside the VPC. Whatever part ran, close undoes it.
func (v *vpc) start(ctx context.Context, t *tools, name string, sim *ec2sim.Sim, subnets []Subnet) (err error) {
	defer startStep(v.log, "vpc").Defer(&err)
	v.subnets = map[string]subnet{}
	path, h, err := t.createNetNS(ctx, name)
	if err != nil {
		return err
	}
	v.ns = path
	v.ref.set(h)
	if v.nl, err = netlink.NewHandleAt(h); err != nil {
		return fmt.Errorf("netlink in %s: %w", v.ns, err)
	}
	// A VPC carries jumbo frames (EC2's MTU inside a VPC is 9001, and
	// netcfg gives the ENI that MTU): the bridge and every port take it,
	// or frames above 1500 between nodes would be dropped here.
	// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/network_mtu.html
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName, HardwareAddr: bridgeMAC, MTU: vpcMTU}}
	if err := v.nl.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge %s: %w", bridgeName, err)
	}
	if err := v.nl.LinkSetUp(br); err != nil {
		return fmt.Errorf("set %s up: %w", bridgeName, err)
	}
	v.bridge = br.Attrs().Index
	lo, err := v.nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in the VPC: %w", err)
	}
	if err := v.nl.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up in the VPC: %w", err)
	}
	if err := v.nl.AddrAdd(lo, addr(netip.PrefixFrom(netip.MustParseAddr(EC2Address), 32))); err != nil {
		return fmt.Errorf("add %s to the VPC's lo: %w", EC2Address, err)
	}
	for _, s := range subnets {
		p := netip.MustParsePrefix(s.CIDR) // checked by checkOptions
		gw := p.Addr().Next()
		if err := v.nl.AddrAdd(br, addr(netip.PrefixFrom(gw, p.Bits()))); err != nil {
			return fmt.Errorf("add gateway %s of %s to the bridge: %w", gw, s.CIDR, err)
		}
		id, err := sim.CreateSubnet(s.AZ, s.CIDR)
		if err != nil {
			return err
		}
		sub := subnet{id: id, cidr: p, gateway: gw}
		if _, ok := v.subnets[s.AZ]; !ok {
			v.subnets[s.AZ] = sub
		}
		v.all = append(v.all, sub)
	}

	var l net.Listener
	if err := nsutil.InNetNS(h, func() error {
		// Net sysctls act on the namespace of the thread that opens them.
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("enable forwarding in the VPC: %w", err)
		}
		var err error
		l, err = net.Listen("tcp", net.JoinHostPort(EC2Address, "80"))
		return err
	}); err != nil {
		return fmt.Errorf("EC2 endpoint in the VPC: %w", err)
	}
	v.srv = &http.Server{Handler: v.calls.wrap(sim), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := v.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			v.log.Error("EC2 endpoint stopped", "step", "vpc", "err", err)
		}
	}()
	v.log.Info("VPC ready", "step", "vpc", "netns", v.ns, "ec2", "http://"+EC2Address)
	return nil
}

// subnet returns the AZ's subnet.
func (v *vpc) subnet(az string) (subnet, error) {
	s, ok := v.subnets[az]
	if !ok {
		return subnet{}, fmt.Errorf("no subnet in %s", az)
	}
	return s, nil
}

// subnetByID returns the subnet with the simulator's id.
func (v *vpc) subnetByID(id string) (subnet, bool) {
	for _, s := range v.all {
		if s.id == id {
			return s, true
		}
	}
	return subnet{}, false
}

// subnetByCIDR returns the subnet with the CIDR block.
func (v *vpc) subnetByCIDR(cidr string) (subnet, bool) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return subnet{}, false
	}
	for _, s := range v.all {
		if s.cidr == p {
			return s, true
		}
	}
	return subnet{}, false
}

// serve runs another AWS service's endpoint on address:80 inside the VPC
// (an address of the service subnet, on the VPC's lo like EC2Address): a
// service of its own address rather than a path under EC2's, because the
// SDK posts every Query API call to "/" and tells services apart by host.
func (v *vpc) serve(name, address string, h http.Handler) (err error) {
	defer startStep(v.log, "endpoint", "service", name, "address", address).Defer(&err)
	lo, err := v.nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in the VPC: %w", err)
	}
	if err := v.nl.AddrAdd(lo, addr(netip.PrefixFrom(netip.MustParseAddr(address), 32))); err != nil {
		return fmt.Errorf("add %s to the VPC's lo: %w", address, err)
	}
	l, err := v.ref.listen("tcp", net.JoinHostPort(address, "80"))
	if err != nil {
		return fmt.Errorf("%s endpoint in the VPC: %w", name, err)
	}
	calls := &callLog{}
	if v.svcCalls == nil {
		v.svcCalls = map[string]*callLog{}
	}
	v.svcCalls[name] = calls
	srv := &http.Server{Handler: calls.wrap(h), ReadHeaderTimeout: 10 * time.Second}
	v.extra = append(v.extra, srv)
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			v.log.Error("endpoint stopped", "step", "vpc", "service", name, "err", err)
		}
	}()
	return nil
}

// stopEndpoint closes the EC2 endpoint and the others: no API call comes
// in afterwards.
func (v *vpc) stopEndpoint() error {
	var errs []error
	for _, srv := range v.extra {
		errs = append(errs, srv.Close())
	}
	if v.srv != nil {
		errs = append(errs, v.srv.Close())
	}
	return errors.Join(errs...)
}

// close deletes the VPC namespace, and with it the bridge and whatever veth
// is still on it. Stop the endpoint and unplug the instances first.
func (v *vpc) close() error {
	if v.nl != nil {
		v.nl.Close()
	}
	v.ref.close()
	if v.ns == "" {
		return nil
	}
	return deleteNetNS(v.ns)
}

// dial connects from inside the VPC namespace.
func (v *vpc) dial(ctx context.Context, network, address string) (net.Conn, error) {
	return v.ref.dial(ctx, network, address)
}

// addr turns a prefix into a netlink address.
func addr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
}

// plugVeth creates a veth pair: one end on the VPC bridge (up, named
// v<n>, its alias saying what it is), the other in the instance namespace
// under the Nitro name of the device index (ens5, ens6, ...), carrying mac,
// down, and points the VPC router's neighbor entry for ip at mac. It
// returns the bridge end's name.
func (v *vpc) plugVeth(inst *Instance, deviceIndex int32, mac, ip, alias string) (string, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return "", fmt.Errorf("mac %q: %w", mac, err)
	}
	addr := net.ParseIP(ip).To4()
	if addr == nil {
		return "", fmt.Errorf("ip %q of %s: want an IPv4 address", ip, alias)
	}
	host := fmt.Sprintf("v%d", v.linkSeq.Add(1))
	peer := nitroName(deviceIndex)
	veth := &netlink.Veth{
		// Both ends: the instance's side is what EC2's DHCP would have set
		// on a primary interface (9001), and what netcfg sets on an ENI.
		LinkAttrs:        netlink.LinkAttrs{Name: host, MasterIndex: v.bridge, MTU: vpcMTU},
		PeerName:         peer,
		PeerHardwareAddr: hw,
		PeerNamespace:    netlink.NsFd(int(inst.net.h)), // open: inst is running
	}
	if err := v.nl.LinkAdd(veth); err != nil {
		return "", fmt.Errorf("add veth %s (%s in %s): %w", host, peer, inst.ID, err)
	}
	// The alias is for people reading `ip -n <vpc> link`; not fatal.
	_ = v.nl.LinkSetAlias(veth, alias)
	if err := v.nl.LinkSetUp(veth); err != nil {
		_ = v.unplugVeth(host)
		return "", fmt.Errorf("set %s up: %w", host, err)
	}
	// A VPC has no ARP cache to go stale: its mapping service knows which
	// ENI holds an address. This router has one, and the simulator reuses
	// a freed primary address, so a replacement could inherit the crashed
	// instance's IP while the router still sends to the dead MAC — about
	// 10 s of DELAY and PROBE before it asks again, long enough to fail a
	// quorum probe. Writing the entry at plug time is the mapping
	// service's part; STALE makes the kernel confirm it on first use.
	if err := v.nl.NeighSet(&netlink.Neigh{
		LinkIndex: v.bridge, Family: unix.AF_INET, State: netlink.NUD_STALE, IP: addr, HardwareAddr: hw,
	}); err != nil {
		_ = v.unplugVeth(host)
		return "", fmt.Errorf("point the VPC router's neighbor entry for %s at %s: %w", ip, mac, err)
	}
	return host, nil
}

// vpcMTU is EC2's MTU inside a VPC.
const vpcMTU = routing.DefaultMTU

// unplugVeth deletes a bridge-side veth end, which takes its peer with it.
// One already gone (its instance namespace was deleted) is fine.
func (v *vpc) unplugVeth(host string) error {
	l, err := v.nl.LinkByName(host)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find veth %s: %w", host, err)
	}
	if err := v.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete veth %s: %w", host, err)
	}
	return nil
}

// nitroName is the name a Nitro instance's udev gives the ENI at a device
// index: the PCI slot, which starts at 5 for the primary.
func nitroName(deviceIndex int32) string { return fmt.Sprintf("ens%d", 5+deviceIndex) }

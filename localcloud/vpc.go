package localcloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/zkaas/zkaas/internal/nsutil"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// bridgeName is the VPC bridge, inside the VPC namespace.
const bridgeName = "vpc0"

// bridgeMAC is the VPC router's MAC. It is set, because a bridge left to
// itself takes the lowest MAC of its ports: plugging an ENI would then
// change the gateway's MAC under every instance's ARP cache, and their
// traffic would vanish until the entries expired (a minute and more).
var bridgeMAC = net.HardwareAddr{0x02, 0x7a, 0x6b, 0x00, 0x00, 0x01}

// startVPC creates the VPC namespace (bridge, gateways, forwarding), the
// simulator with its subnets, and the simulator's listener inside the VPC.
func (c *Cloud) startVPC(ctx context.Context) (err error) {
	defer c.step("vpc").Defer(&err)
	path, h, err := c.tools.createNetNS(ctx, Prefix+c.runID+"-vpc")
	if err != nil {
		return err
	}
	c.vpcNS = path
	c.vpc.set(h)
	if c.vpcNL, err = netlink.NewHandleAt(h); err != nil {
		return fmt.Errorf("netlink in %s: %w", c.vpcNS, err)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName, HardwareAddr: bridgeMAC}}
	if err := c.vpcNL.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge %s: %w", bridgeName, err)
	}
	if err := c.vpcNL.LinkSetUp(br); err != nil {
		return fmt.Errorf("set %s up: %w", bridgeName, err)
	}
	c.bridge = br.Attrs().Index
	lo, err := c.vpcNL.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in the VPC: %w", err)
	}
	if err := c.vpcNL.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up in the VPC: %w", err)
	}
	if err := c.vpcNL.AddrAdd(lo, addr(netip.PrefixFrom(netip.MustParseAddr(EC2Address), 32))); err != nil {
		return fmt.Errorf("add %s to the VPC's lo: %w", EC2Address, err)
	}

	simOpts := c.opts.EC2
	simOpts.Hooks = ec2sim.Hooks{
		ENIAttached: c.eniAttached, ENIDetached: c.eniDetached,
		VolumeAttached: c.volumeAttached, VolumeDetached: c.volumeDetached,
	}
	if simOpts.Logger == nil {
		simOpts.Logger = c.log.With("component", "ec2sim")
	}
	c.sim = ec2sim.New(simOpts)
	c.region = simOpts.Region

	for _, s := range c.opts.Subnets {
		p := netip.MustParsePrefix(s.CIDR) // checked by checkOptions
		gw := p.Addr().Next()
		if err := c.vpcNL.AddrAdd(br, addr(netip.PrefixFrom(gw, p.Bits()))); err != nil {
			return fmt.Errorf("add gateway %s of %s to the bridge: %w", gw, s.CIDR, err)
		}
		id, err := c.sim.CreateSubnet(s.AZ, s.CIDR)
		if err != nil {
			return err
		}
		c.subnets[s.AZ] = subnet{id: id, cidr: p, gateway: gw}
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
	c.srv = &http.Server{Handler: c.sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := c.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("EC2 endpoint stopped", "step", "vpc", "err", err)
		}
	}()
	c.log.Info("VPC ready", "step", "vpc", "netns", c.vpcNS, "ec2", c.EC2Endpoint(), "region", c.region)
	return nil
}

// addr turns a prefix into a netlink address.
func addr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
}

// plugVeth creates a veth pair: one end on the VPC bridge (up, named
// v<n>, its alias saying what it is), the other in the instance namespace
// under the Nitro name of the device index (ens5, ens6, ...), carrying mac,
// down. It returns the bridge end's name.
func (c *Cloud) plugVeth(inst *Instance, deviceIndex int32, mac, alias string) (string, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return "", fmt.Errorf("mac %q: %w", mac, err)
	}
	host := fmt.Sprintf("v%d", c.linkSeq.Add(1))
	peer := nitroName(deviceIndex)
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: host, MasterIndex: c.bridge},
		PeerName:         peer,
		PeerHardwareAddr: hw,
		PeerNamespace:    netlink.NsFd(int(inst.net.h)), // open: inst is running
	}
	if err := c.vpcNL.LinkAdd(veth); err != nil {
		return "", fmt.Errorf("add veth %s (%s in %s): %w", host, peer, inst.ID, err)
	}
	// The alias is for people reading `ip -n <vpc> link`; not fatal.
	_ = c.vpcNL.LinkSetAlias(veth, alias)
	if err := c.vpcNL.LinkSetUp(veth); err != nil {
		_ = c.unplugVeth(host)
		return "", fmt.Errorf("set %s up: %w", host, err)
	}
	return host, nil
}

// unplugVeth deletes a bridge-side veth end, which takes its peer with it.
// One already gone (its instance namespace was deleted) is fine.
func (c *Cloud) unplugVeth(host string) error {
	l, err := c.vpcNL.LinkByName(host)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find veth %s: %w", host, err)
	}
	if err := c.vpcNL.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete veth %s: %w", host, err)
	}
	return nil
}

// nitroName is the name a Nitro instance's udev gives the ENI at a device
// index: the PCI slot, which starts at 5 for the primary.
func nitroName(deviceIndex int32) string { return fmt.Sprintf("ens%d", 5+deviceIndex) }

package localcloud

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/vishvananda/netlink"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// TestENIHotplug: ENIs attached through the real SDK, from the instance,
// appear there after the simulator's attach delay as veths with the ENI's
// MAC under Nitro's name for the device index, down and unconfigured; a
// detach takes them away.
func TestENIHotplug(t *testing.T) {
	const attachDelay = 300 * time.Millisecond
	opts := fastSim
	opts.Latency = ec2sim.Latency{ENIAttach: attachDelay, ENIDetach: 50 * time.Millisecond}
	c := newCloud(t, Options{EC2: opts})
	inst := launch(t, c, "us-east-1a")
	api := ec2From(inst)
	nl := netlinkIn(t, inst.NetNS)
	vpc := netlinkIn(t, c.vpc.ns)

	tests := []struct {
		deviceIndex int32
		name        string
	}{
		{1, "ens6"},
		{2, "ens7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eni, err := c.CreateNetworkInterface("us-east-1a", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			mac, _ := net.ParseMAC(eni.MAC)
			out, err := api.AttachNetworkInterface(t.Context(), &ec2.AttachNetworkInterfaceInput{
				NetworkInterfaceId: aws.String(eni.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(tt.deviceIndex),
			})
			if err != nil {
				t.Fatal(err)
			}
			attached := time.Now()
			if l := linkByMAC(t, nl, mac); l != nil {
				t.Fatalf("%s appeared as %s before the attach delay", eni.ID, l.Attrs().Name)
			}
			var link netlink.Link
			eventually(t, eni.ID+" to appear", func() bool { link = linkByMAC(t, nl, mac); return link != nil })
			if d := time.Since(attached); d < attachDelay*9/10 {
				t.Errorf("%s appeared %s after the attach, before the %s delay", eni.ID, d, attachDelay)
			}
			eventually(t, eni.ID+" attached", func() bool { return eniStatus(c, eni.ID) == ec2sim.AttachAttached })
			if got := link.Attrs().Name; got != tt.name {
				t.Errorf("%s is named %s, want %s", eni.ID, got, tt.name)
			}
			if link.Attrs().Flags&net.FlagUp != 0 {
				t.Errorf("%s is up; firstboot brings it up", tt.name)
			}
			if addrs, err := nl.AddrList(link, netlink.FAMILY_ALL); err != nil || len(addrs) != 0 {
				t.Errorf("%s has addresses %v (%v); firstboot configures it", tt.name, addrs, err)
			}
			peer, err := vpc.LinkByIndex(link.Attrs().ParentIndex)
			if err != nil || peer.Attrs().MasterIndex != c.vpc.bridge {
				t.Errorf("%s's peer %v is not on the VPC bridge (%v)", tt.name, peer, err)
			}
			// A VPC carries 9001-byte frames end to end: the hot-plugged
			// device, its bridge port and the bridge.
			br, _ := vpc.LinkByIndex(c.vpc.bridge)
			if link.Attrs().MTU != 9001 || peer == nil || peer.Attrs().MTU != 9001 || br == nil || br.Attrs().MTU != 9001 {
				t.Errorf("MTU: %s %d, its bridge port %v, the bridge %v; want 9001 everywhere", tt.name, link.Attrs().MTU, peer, br)
			}
			// The gateway keeps its MAC, so the instance's ARP cache stays
			// right and its next EC2 call goes through at once.
			if br, err := vpc.LinkByIndex(c.vpc.bridge); err != nil || br.Attrs().HardwareAddr.String() != bridgeMAC.String() {
				t.Errorf("VPC bridge MAC after plugging %s: %v (%v), want %s", tt.name, br.Attrs().HardwareAddr, err, bridgeMAC)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if _, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst.ID}}); err != nil {
				t.Errorf("EC2 from the instance after plugging %s: %v", tt.name, err)
			}

			if _, err := api.DetachNetworkInterface(t.Context(), &ec2.DetachNetworkInterfaceInput{AttachmentId: out.AttachmentId}); err != nil {
				t.Fatal(err)
			}
			eventually(t, tt.name+" to go", func() bool { return linkByMAC(t, nl, mac) == nil })
			eventually(t, eni.ID+" available", func() bool { return eniStatus(c, eni.ID) == ec2sim.StatusAvailable })
			var notFound netlink.LinkNotFoundError
			if _, err := vpc.LinkByIndex(link.Attrs().ParentIndex); !errors.As(err, &notFound) {
				t.Errorf("bridge end of %s still there after detach: %v", tt.name, err)
			}
		})
	}
}

func linkByMAC(t *testing.T, nl *netlink.Handle, mac net.HardwareAddr) netlink.Link {
	t.Helper()
	links, err := nl.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Attrs().HardwareAddr.String() == mac.String() {
			return l
		}
	}
	return nil
}

package netcfg

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSpecValidate(t *testing.T) {
	mac, _ := net.ParseMAC("02:5a:00:00:00:01")
	good := Spec{MAC: mac, IP: netip.MustParseAddr("10.0.1.10"), Subnet: netip.MustParsePrefix("10.0.1.0/24")}
	tests := []struct {
		name    string
		edit    func(*Spec)
		wantErr string
	}{
		{"defaults", func(*Spec) {}, ""},
		{"explicit ids", func(s *Spec) { s.Table, s.Priority, s.LinkWait = 1234, 4321, time.Second }, ""},
		{"no mac", func(s *Spec) { s.MAC = nil }, "want 6 bytes"},
		{"infiniband mac", func(s *Spec) { s.MAC = make(net.HardwareAddr, 20) }, "want 6 bytes"},
		{"no subnet", func(s *Spec) { s.Subnet = netip.Prefix{} }, "want an IPv4 prefix"},
		{"ipv6 subnet", func(s *Spec) { s.Subnet = netip.MustParsePrefix("2001:db8::/64") }, "want an IPv4 prefix"},
		{"host bits", func(s *Spec) { s.Subnet = netip.MustParsePrefix("10.0.1.5/24") }, "want 10.0.1.0/24"},
		{"slash 31", func(s *Spec) { s.Subnet = netip.MustParsePrefix("10.0.1.10/31") }, "prefix length"},
		{"ipv6 ip", func(s *Spec) { s.IP = netip.MustParseAddr("2001:db8::1") }, "want an IPv4 address"},
		{"mapped ip", func(s *Spec) { s.IP = netip.MustParseAddr("::ffff:10.0.1.10") }, "want an IPv4 address"},
		{"outside", func(s *Spec) { s.IP = netip.MustParseAddr("10.0.2.10") }, "not in subnet"},
		{"network", func(s *Spec) { s.IP = netip.MustParseAddr("10.0.1.0") }, "network address"},
		{"gateway", func(s *Spec) { s.IP = netip.MustParseAddr("10.0.1.1") }, "gateway"},
		{"broadcast", func(s *Spec) { s.IP = netip.MustParseAddr("10.0.1.255") }, "broadcast"},
		{"main table", func(s *Spec) { s.Table = 254 }, "route table 254"},
		{"net-utils priority", func(s *Spec) { s.Priority = 10001 }, "rule priority 10001"},
		{"negative wait", func(s *Spec) { s.LinkWait = -time.Second }, "link wait"},
		{"peers", func(s *Spec) { s.Peers = ipList("10.0.2.10", "10.0.3.10", "10.0.2.10") }, ""},
		{"ipv6 peer", func(s *Spec) { s.Peers = ipList("10.0.2.10", "2001:db8::1") }, "peer 2001:db8::1: want an IPv4"},
		{"unset peer", func(s *Spec) { s.Peers = []netip.Addr{{}} }, "want an IPv4"},
		{"multicast peer", func(s *Spec) { s.Peers = ipList("224.0.0.1") }, "want a unicast"},
		{"self as peer", func(s *Spec) { s.Peers = ipList("10.0.1.10") }, "the ENI's own address"},
		{"jumbo mtu", func(s *Spec) { s.MTU = 9001 }, ""},
		{"smallest mtu", func(s *Spec) { s.MTU = 576 }, ""},
		{"mtu too small", func(s *Spec) { s.MTU = 575 }, "mtu 575"},
		{"mtu above ec2", func(s *Spec) { s.MTU = 9216 }, "mtu 9216"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.edit(&s)
			err := s.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func ipList(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestSpecPeers(t *testing.T) {
	s := Spec{Peers: ipList("10.0.3.10", "10.0.2.10", "10.0.3.10", "10.0.1.20")}
	got := s.peers()
	if want := ipList("10.0.1.20", "10.0.2.10", "10.0.3.10"); !slices.Equal(got, want) {
		t.Errorf("peers() = %v, want %v", got, want)
	}
	if s.Peers[0] != netip.MustParseAddr("10.0.3.10") {
		t.Errorf("peers() reordered the spec's slice: %v", s.Peers)
	}
}

func TestGateway(t *testing.T) {
	tests := map[string]string{
		"10.0.1.0/24":     "10.0.1.1",
		"10.0.0.0/16":     "10.0.0.1",
		"172.31.32.0/20":  "172.31.32.1",
		"198.18.0.16/28":  "198.18.0.17",
		"198.18.7.128/25": "198.18.7.129",
	}
	for subnet, want := range tests {
		if got := Gateway(netip.MustParsePrefix(subnet)); got.String() != want {
			t.Errorf("Gateway(%s) = %s, want %s", subnet, got, want)
		}
	}
}

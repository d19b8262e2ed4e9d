//go:build linux

package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/firstboot/routing"
	"github.com/zkaas/zkaas/localcloud/netnstest"
)

var testSubnet = netip.MustParsePrefix("198.18.1.0/24")

func testSpec(t *testing.T, ip string) Spec {
	return Spec{
		MAC:      macFor(1),
		IP:       netip.MustParseAddr(ip),
		Subnet:   testSubnet,
		LinkWait: 2 * time.Second,
		Logger:   testLogger(t),
	}
}

func apply(t *testing.T, ns *netnstest.NS, spec Spec) Result {
	t.Helper()
	var res Result
	if err := ns.Do(func() (err error) {
		res, err = Apply(context.Background(), spec)
		return err
	}); err != nil {
		t.Fatalf("apply %s: %v", spec.IP, err)
	}
	return res
}

// TestApply runs Apply in sequences on a fresh namespace per case and checks
// the changes it reports and the kernel state it leaves.
func TestApply(t *testing.T) {
	type run struct {
		ip    string
		peers []string
		mtu   int
		// wantChanges must each be among the reported changes; nil means
		// nothing may change, not even the kernel's state.
		wantChanges []string
	}
	tests := []struct {
		name    string
		link    string
		prepare func(t *testing.T, ns *netnstest.NS, link netlink.Link)
		runs    []run
		check   func(t *testing.T, ns *netnstest.NS, link netlink.Link)
	}{
		{
			name: "fresh then again",
			link: "ens7",
			runs: []run{
				{"198.18.1.10", nil, 0, []string{
					"link ens7 set up",
					"link ens7 mtu 9001 set (was 1500)",
					"address 198.18.1.10/24 added to ens7",
					"route 198.18.1.0/24 dev ens7 scope link src 198.18.1.10 table 2181 set",
					"route default via 198.18.1.1 dev ens7 src 198.18.1.10 table 2181 set",
					"rule from 198.18.1.10/32 lookup 2181 priority 2181 added",
				}},
				{"198.18.1.10", nil, 0, nil},
			},
		},
		{
			name: "peers added, changed and removed",
			link: "ens6",
			runs: []run{
				// Unsorted and with a duplicate: the rules do not
				// depend on the config's order.
				{"198.18.1.10", []string{"198.18.3.10", "198.18.2.10", "198.18.3.10"}, 0, []string{
					"rule from 198.18.1.10/32 lookup 2181 priority 2181 added",
					"rule from 0.0.0.0/32 to 198.18.2.10/32 lookup 2181 priority 2181 added",
					"rule from 0.0.0.0/32 to 198.18.3.10/32 lookup 2181 priority 2181 added",
				}},
				{"198.18.1.10", []string{"198.18.2.10", "198.18.3.10"}, 0, nil},
				// A node replaced by one at another address.
				{"198.18.1.10", []string{"198.18.2.10", "198.18.4.10"}, 0, []string{
					"rule from 0.0.0.0/32 to 198.18.4.10/32 lookup 2181 priority 2181 added",
					"rule from 0.0.0.0/32 to 198.18.3.10/32 lookup 2181 priority 2181 removed",
				}},
				{"198.18.1.10", []string{"198.18.2.10", "198.18.4.10"}, 0, nil},
				{"198.18.1.10", nil, 0, []string{
					"rule from 0.0.0.0/32 to 198.18.2.10/32 lookup 2181 priority 2181 removed",
					"rule from 0.0.0.0/32 to 198.18.4.10/32 lookup 2181 priority 2181 removed",
				}},
			},
		},
		{
			name: "mtu changed",
			link: "ens6",
			runs: []run{
				{"198.18.1.10", nil, 0, []string{"link ens6 mtu 9001 set (was 1500)"}},
				{"198.18.1.10", nil, DefaultMTU, nil},
				// Peers reached over a VPN want 1500.
				{"198.18.1.10", nil, 1500, []string{"link ens6 mtu 1500 set (was 9001)"}},
				{"198.18.1.10", nil, 1500, nil},
			},
		},
		{
			name: "changed ENI address",
			link: "eth1",
			runs: []run{
				{"198.18.1.10", []string{"198.18.2.10"}, 0, []string{"address 198.18.1.10/24 added to eth1"}},
				{"198.18.1.20", []string{"198.18.2.10"}, 0, []string{
					"address 198.18.1.10/24 removed from eth1",
					"address 198.18.1.20/24 added to eth1",
					"route 198.18.1.0/24 dev eth1 scope link src 198.18.1.20 table 2181 set",
					"rule from 198.18.1.20/32 lookup 2181 priority 2181 added",
					"rule from 198.18.1.10/32 lookup 2181 priority 2181 removed",
				}},
				{"198.18.1.20", []string{"198.18.2.10"}, 0, nil},
			},
		},
		{
			// Deleting a primary address takes its secondaries along
			// (unless promote_secondaries is set): ours must survive.
			name: "ours behind a stale primary",
			link: "ens5",
			prepare: func(t *testing.T, ns *netnstest.NS, link netlink.Link) {
				must(t, ns.Netlink().AddrAdd(link, mustAddr("198.18.1.99/24")))
				must(t, ns.Netlink().AddrAdd(link, mustAddr("198.18.1.10/24")))
			},
			runs: []run{
				{"198.18.1.10", nil, 0, []string{
					"address 198.18.1.99/24 removed from ens5",
					"address 198.18.1.10/24 added to ens5",
				}},
				{"198.18.1.10", nil, 0, nil},
			},
		},
		{
			name: "stale configuration replaced, other owners untouched",
			link: "enp0s6",
			prepare: func(t *testing.T, ns *netnstest.NS, link netlink.Link) {
				h := ns.Netlink()
				must(t, h.LinkSetUp(link))
				// An earlier ENI address, added first so it is the
				// primary and ours would be its secondary.
				must(t, h.AddrAdd(link, mustAddr("198.18.1.99/24")))
				// Not in our subnet: not ours to remove.
				must(t, h.AddrAdd(link, mustAddr("10.99.0.5/16")))
				// Our table with a route of an older subnet, and
				// rules into it from an older address and at an
				// older priority.
				must(t, h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Table: routing.DefaultTable,
					Dst: mustNet("198.18.2.0/24"), Scope: netlink.SCOPE_LINK}))
				// The default route as earlier versions made it,
				// without src.
				must(t, h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Table: routing.DefaultTable,
					Dst: mustNet("0.0.0.0/0"), Gw: net.ParseIP("198.18.1.1")}))
				must(t, h.RuleAdd(rule("198.18.1.99/32", routing.DefaultTable, routing.DefaultPriority)))
				must(t, h.RuleAdd(rule("198.18.1.10/32", routing.DefaultTable, 3000)))
				// Rules into our table we never make: "to" without
				// the unspecified source (it would hijack traffic
				// already sourced from the primary address) and a
				// peer rule at the older priority.
				toOnly := rule("", routing.DefaultTable, routing.DefaultPriority)
				toOnly.Dst = mustNet("198.18.2.10/32")
				must(t, h.RuleAdd(toOnly))
				oldPeer := rule("0.0.0.0/32", routing.DefaultTable, 3000)
				oldPeer.Dst = mustNet("198.18.2.10/32")
				must(t, h.RuleAdd(oldPeer))
				// What amazon-ec2-net-utils would have set up.
				must(t, h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Table: 10001,
					Dst: mustNet("0.0.0.0/0"), Gw: net.ParseIP("198.18.1.1")}))
				must(t, h.RuleAdd(rule("198.18.1.10/32", 10001, 10001)))
			},
			runs: []run{
				{"198.18.1.10", []string{"198.18.2.10"}, 0, []string{
					"address 198.18.1.99/24 removed from enp0s6",
					"address 198.18.1.10/24 added to enp0s6",
					"route 198.18.2.0/24 dev enp0s6 scope link table 2181 removed",
					"route default via 198.18.1.1 dev enp0s6 src 198.18.1.10 table 2181 set",
					"rule from 198.18.1.99/32 lookup 2181 priority 2181 removed",
					"rule from 198.18.1.10/32 lookup 2181 priority 3000 removed",
					"rule from 198.18.1.10/32 lookup 2181 priority 2181 added",
					"rule from all to 198.18.2.10/32 lookup 2181 priority 2181 removed",
					"rule from 0.0.0.0/32 to 198.18.2.10/32 lookup 2181 priority 3000 removed",
					"rule from 0.0.0.0/32 to 198.18.2.10/32 lookup 2181 priority 2181 added",
				}},
				{"198.18.1.10", []string{"198.18.2.10"}, 0, nil},
			},
			check: func(t *testing.T, ns *netnstest.NS, link netlink.Link) {
				h := ns.Netlink()
				if got := addrs(t, h, link, netip.MustParsePrefix("10.0.0.0/8")); !slices.Equal(got, []string{"10.99.0.5/16"}) {
					t.Errorf("addresses outside our subnet = %v, want [10.99.0.5/16]", got)
				}
				if got := routes(t, h, 10001); !slices.Equal(got, []string{"0.0.0.0/0 via 198.18.1.1 dev " + link.Attrs().Name}) {
					t.Errorf("net-utils table 10001 = %v, want its default route", got)
				}
				if got := rules(t, h, 10001); !slices.Equal(got, []string{"from 198.18.1.10/32 priority 10001"}) {
					t.Errorf("rules into table 10001 = %v, want the net-utils rule", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := netnstest.New(t)
			if err := ns.AddVeth(t, tt.link, macFor(1)); err != nil {
				t.Fatal(err)
			}
			link, err := ns.Netlink().LinkByName(tt.link)
			if err != nil {
				t.Fatal(err)
			}
			if tt.prepare != nil {
				tt.prepare(t, ns, link)
			}
			var last Spec
			for i, r := range tt.runs {
				last = testSpec(t, r.ip)
				last.MTU = r.mtu
				for _, p := range r.peers {
					last.Peers = append(last.Peers, netip.MustParseAddr(p))
				}
				before := snapshot(t, ns)
				res := apply(t, ns, last)
				if res.Link != tt.link || res.Index != link.Attrs().Index {
					t.Errorf("run %d: result link %s index %d, want %s index %d", i, res.Link, res.Index, tt.link, link.Attrs().Index)
				}
				if r.wantChanges == nil {
					if len(res.Changes) != 0 {
						t.Errorf("run %d: changes %q, want none", i, res.Changes)
					}
					if after := snapshot(t, ns); after != before {
						t.Errorf("run %d reported no change but the kernel state changed:\nbefore:\n%s\nafter:\n%s", i, before, after)
					}
				}
				for _, want := range r.wantChanges {
					if !slices.Contains(res.Changes, want) {
						t.Errorf("run %d: change %q missing from %q", i, want, res.Changes)
					}
				}
			}
			checkConfigured(t, ns, link, last)
			if tt.check != nil {
				tt.check(t, ns, link)
			}
		})
	}
}

// TestApplyLinkAppearsLater starts Apply before the ENI is hot-plugged.
func TestApplyLinkAppearsLater(t *testing.T) {
	ns := netnstest.New(t)
	plugged := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		plugged <- ns.AddVeth(t, "ens6", macFor(1))
	}()
	spec := testSpec(t, "198.18.1.10")
	spec.LinkWait = 5 * time.Second
	res := apply(t, ns, spec)
	if err := <-plugged; err != nil {
		t.Fatal(err)
	}
	link, err := ns.Netlink().LinkByName("ens6")
	if err != nil {
		t.Fatal(err)
	}
	// Without udev in the namespace nothing waits for the rename that
	// AddVeth does after plugging, so the name may be the kernel's.
	if res.Index != link.Attrs().Index {
		t.Errorf("result link %s index %d, want ens6 index %d", res.Link, res.Index, link.Attrs().Index)
	}
	checkConfigured(t, ns, link, spec)
}

// TestApplyNoLink fails at the deadline and changes nothing.
func TestApplyNoLink(t *testing.T) {
	ns := netnstest.New(t)
	before := snapshot(t, ns)
	spec := testSpec(t, "198.18.1.10")
	spec.LinkWait = 300 * time.Millisecond
	var res Result
	err := ns.Do(func() (err error) {
		res, err = Apply(context.Background(), spec)
		return err
	})
	if !errors.Is(err, ErrLinkNotFound) || !strings.Contains(err.Error(), macFor(1).String()) {
		t.Errorf("error %v, want ErrLinkNotFound naming %s", err, macFor(1))
	}
	if res.Link != "" || len(res.Changes) != 0 {
		t.Errorf("result %+v, want empty", res)
	}
	if after := snapshot(t, ns); after != before {
		t.Errorf("state changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestApplyInvalid refuses a spec that collides before touching anything.
func TestApplyInvalid(t *testing.T) {
	spec := testSpec(t, "198.18.1.10")
	spec.Table = unix.RT_TABLE_MAIN
	if _, err := Apply(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "route table 254") {
		t.Errorf("error %v, want a refusal of table 254", err)
	}
}

// checkConfigured reads the namespace back: link up with the spec's MTU,
// exactly our address in the subnet, exactly our two routes in our table,
// exactly our source rule and one rule per distinct peer into it.
func checkConfigured(t *testing.T, ns *netnstest.NS, link netlink.Link, spec Spec) {
	t.Helper()
	ip := spec.IP.String()
	h := ns.Netlink()
	l, err := h.LinkByIndex(link.Attrs().Index)
	if err != nil {
		t.Fatal(err)
	}
	name := l.Attrs().Name
	if l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("link %s is down", name)
	}
	if got, want := l.Attrs().MTU, spec.mtu(); got != want {
		t.Errorf("link %s mtu %d, want %d", name, got, want)
	}
	if got, want := addrs(t, h, l, testSubnet), []string{ip + "/24"}; !slices.Equal(got, want) {
		t.Errorf("addresses in %s on %s = %v, want %v", testSubnet, name, got, want)
	}
	wantRoutes := []string{
		"0.0.0.0/0 via 198.18.1.1 dev " + name + " src " + ip,
		"198.18.1.0/24 dev " + name + " scope link src " + ip,
	}
	if got := routes(t, h, routing.DefaultTable); !slices.Equal(got, wantRoutes) {
		t.Errorf("table %d = %v, want %v", routing.DefaultTable, got, wantRoutes)
	}
	// noprefixroute: main routes nothing of the subnet through the ENI.
	var inMain []string
	for _, r := range routes(t, h, unix.RT_TABLE_MAIN) {
		dst, _, _ := strings.Cut(r, " ")
		if strings.Contains(r, " dev "+name) && netip.MustParsePrefix(dst).Overlaps(spec.Subnet) {
			inMain = append(inMain, r)
		}
	}
	if len(inMain) != 0 {
		t.Errorf("main routes %v through %s, want none in %s", inMain, name, spec.Subnet)
	}
	wantRules := []string{fmt.Sprintf("from %s/32 priority %d", ip, routing.DefaultPriority)}
	for _, p := range spec.peers() {
		wantRules = append(wantRules, fmt.Sprintf("from 0.0.0.0/32 to %s/32 priority %d", p, routing.DefaultPriority))
	}
	slices.Sort(wantRules)
	if got, want := rules(t, h, routing.DefaultTable), wantRules; !slices.Equal(got, want) {
		t.Errorf("rules into table %d = %v, want %v", routing.DefaultTable, got, want)
	}
}

func addrs(t *testing.T, h *netlink.Handle, link netlink.Link, in netip.Prefix) []string {
	t.Helper()
	list, err := h.AddrList(link, netlink.FAMILY_V4)
	must(t, err)
	var out []string
	for _, a := range list {
		if p := toPrefix(a.IPNet); in.Contains(p.Addr()) {
			out = append(out, p.String())
		}
	}
	slices.Sort(out)
	return out
}

func routes(t *testing.T, h *netlink.Handle, table int) []string {
	t.Helper()
	list, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	must(t, err)
	var out []string
	for _, r := range list {
		l, err := h.LinkByIndex(r.LinkIndex)
		must(t, err)
		s := r.Dst.String()
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		s += " dev " + l.Attrs().Name
		if r.Scope == netlink.SCOPE_LINK {
			s += " scope link"
		}
		if r.Src != nil {
			s += " src " + r.Src.String()
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func rules(t *testing.T, h *netlink.Handle, table int) []string {
	t.Helper()
	list, err := h.RuleList(netlink.FAMILY_V4)
	must(t, err)
	var out []string
	for _, r := range list {
		if r.Table != table {
			continue
		}
		s := fmt.Sprintf("from %s", r.Src)
		if r.Dst != nil {
			s += " to " + r.Dst.String()
		}
		out = append(out, s+fmt.Sprintf(" priority %d", r.Priority))
	}
	slices.Sort(out)
	return out
}

// snapshot renders the namespace's whole network state: links, addresses,
// routes of every table, rules.
func snapshot(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	h := ns.Netlink()
	var b strings.Builder
	links, err := h.LinkList()
	must(t, err)
	for _, l := range links {
		a := l.Attrs()
		fmt.Fprintf(&b, "link %d %s %s %v mtu %d\n", a.Index, a.Name, a.HardwareAddr, a.Flags, a.MTU)
	}
	as, err := h.AddrList(nil, netlink.FAMILY_ALL)
	must(t, err)
	for _, a := range as {
		fmt.Fprintf(&b, "addr %d %s flags %d scope %d lft %d/%d\n", a.LinkIndex, a.IPNet, a.Flags, a.Scope, a.ValidLft, a.PreferedLft)
	}
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	must(t, err)
	for _, r := range rs {
		fmt.Fprintf(&b, "route %s proto %d scope %d metric %d type %d\n", r, r.Protocol, r.Scope, r.Priority, r.Type)
	}
	rules, err := h.RuleList(netlink.FAMILY_ALL)
	must(t, err)
	for _, r := range rules {
		fmt.Fprintf(&b, "rule %s proto %d\n", r, r.Protocol)
	}
	return b.String()
}

// rule returns "from src lookup table" at priority; src "" is "from all".
func rule(src string, table, priority int) *netlink.Rule {
	r := netlink.NewRule()
	if src != "" {
		r.Src = mustNet(src)
	}
	r.Table = table
	r.Priority = priority
	return r
}

func mustNet(s string) *net.IPNet { return toIPNet(netip.MustParsePrefix(s)) }

func mustAddr(s string) *netlink.Addr { return &netlink.Addr{IPNet: mustNet(s)} }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

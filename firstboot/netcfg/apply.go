//go:build linux

package netcfg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/internal/steplog"
)

// Result reports what Apply did.
type Result struct {
	// Link and Index identify the ENI's link when Apply finished.
	Link  string
	Index int
	// Changes lists, in order, every change made to the kernel's state in
	// words; it is empty when everything was already in place.
	Changes []string
}

// Apply configures the ENI described by spec:
//
//  1. find its link by MAC, waiting up to spec.LinkWait, and, where udev
//     handles the link, until udev has renamed it;
//  2. set the link up;
//  3. give the link spec.MTU (EC2's 9001 by default);
//  4. put IP/subnet on it without a prefix route (noprefixroute), removing
//     other addresses of the subnet from it (an earlier ENI address);
//  5. make the dedicated table hold exactly the subnet route (scope link,
//     src IP) and a default route via the subnet's gateway (src IP);
//  6. make the rules "from IP/32 lookup table" and, per peer,
//     "from 0.0.0.0/32 to peer/32 lookup table", all at the priority, the
//     only rules pointing at the table.
//
// Why the peer rules. The source rule only catches packets whose source is
// already the ENI's address: replies to connections made to it. ZooKeeper
// does not bind the source of the connections it opens (QuorumCnxManager's
// initiateConnection and Learner's connectToLeader create a socket and
// connect it), so the kernel picks the source from the route to the peer —
// in main, the primary interface's — and the peer's security groups and
// NACLs, which admit the ensemble's static addresses, see the wrong one. For
// an unbound socket the kernel first looks the route up with source
// 0.0.0.0, takes the source from the route it finds (its prefsrc), and looks
// up again with that source (ip_route_connect). A rule matching source
// 0.0.0.0/32 exactly therefore catches precisely "the source is not chosen
// yet": it sends the first lookup to our table, whose routes carry src IP,
// and the second lookup, now from IP, takes the source rule into the same
// table. Traffic to a peer that already has a source — bound to the primary
// address, or a reply from it — still follows main and leaves through the
// primary interface: a plain "to peer" rule would push it out of the ENI
// with the primary's address, which EC2's source/destination check drops.
//
// The address gets no prefix route in main: the kernel would otherwise
// route the ENI's whole subnet out of the ENI for every source, so with the
// ENI in another subnet than the primary interface, replies from the primary
// address to hosts in that subnet (SSH to the primary address) would leave
// through the ENI and be dropped; with both in one subnet, main would hold
// two routes for it, and which one wins would depend on the order they were
// added in. Our table has the subnet route the ENI's own traffic needs.
//
// Clients need nothing: they connect to the ENI's address, and the replies
// are sourced from it. The peer rules share the configured priority: they
// and the source rule match disjoint sources, so their order is irrelevant,
// and every rule into our table stays recognisable as ours.
//
// Only the ENI's link, our table and rules that point at our table are ever
// changed; other tables and their rules are never touched, and rules into
// our table that are not wanted (an earlier address, priority or peer set)
// are removed. Running Apply again changes nothing and returns no changes;
// "already exists" on add and "not found" on delete count as success.
func Apply(ctx context.Context, spec Spec) (Result, error) {
	if err := spec.Validate(); err != nil {
		return Result{}, fmt.Errorf("network spec: %w", err)
	}
	a := &applier{
		spec:     spec,
		log:      spec.logger().With("mac", spec.MAC.String()),
		ip:       net.IP(spec.IP.AsSlice()),
		table:    spec.table(),
		priority: spec.priority(),
	}
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"find-link", a.findLink},
		{"link-up", a.linkUp},
		{"mtu", a.mtu},
		{"address", a.address},
		{"routes", a.routes},
		{"rules", a.rules},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return a.result(), fmt.Errorf("%s: %w", s.name, err)
		}
		if err := a.step(ctx, s.name, s.run); err != nil {
			return a.result(), err
		}
	}
	a.log.Info("network configured", "link", a.name(), "ip", spec.IP.String(),
		"table", a.table, "priority", a.priority, "peers", len(spec.peers()), "mtu", spec.mtu(),
		"changes", len(a.changes))
	return a.result(), nil
}

type applier struct {
	spec     Spec
	log      *slog.Logger
	ip       net.IP
	table    int
	priority int
	link     netlink.Link
	changes  []string
}

// step runs one step and logs it the way ignition does: every step ends
// with a "finished" or "failed" record carrying its duration.
func (a *applier) step(ctx context.Context, name string, run func(context.Context) error) error {
	var attrs []any
	if a.link != nil {
		attrs = append(attrs, "link", a.name())
	}
	st := steplog.Start(ctx, a.log, name, attrs...)
	before := len(a.changes)
	err := run(ctx)
	for _, c := range a.changes[before:] {
		a.log.InfoContext(ctx, "network change", steplog.KeyStep, name, "change", c)
	}
	if err := st.End(err, "changes", len(a.changes)-before); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (a *applier) changed(format string, args ...any) {
	a.changes = append(a.changes, fmt.Sprintf(format, args...))
}

func (a *applier) name() string { return a.link.Attrs().Name }

func (a *applier) result() Result {
	r := Result{Changes: a.changes}
	if a.link != nil {
		r.Link, r.Index = a.name(), a.link.Attrs().Index
	}
	return r
}

func (a *applier) findLink(ctx context.Context) error {
	link, err := findLink(ctx, a.log, a.spec.MAC, a.spec.linkWait(), true)
	if err != nil {
		return err
	}
	a.link = link
	if udevSeesLinks() {
		if err := waitUdevInitialized(ctx, udevDir, link.Attrs().Index, udevWait); err != nil {
			a.log.Warn("configuring the link before udev finished with it; its name may change", "err", err)
		}
	}
	return nil
}

func (a *applier) linkUp(context.Context) error {
	// Fetch by index: the link found may be a snapshot taken before udev
	// renamed it.
	link, err := netlink.LinkByIndex(a.link.Attrs().Index)
	if err != nil {
		return fmt.Errorf("get link index %d: %w", a.link.Attrs().Index, err)
	}
	a.link = link
	if link.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set link %s up: %w", a.name(), err)
	}
	a.changed("link %s set up", a.name())
	return nil
}

// mtu gives the link the spec's MTU. The link was fetched by index in
// linkUp, so its attributes are current.
func (a *applier) mtu(context.Context) error {
	want, have := a.spec.mtu(), a.link.Attrs().MTU
	if have == want {
		return nil
	}
	if err := netlink.LinkSetMTU(a.link, want); err != nil {
		return fmt.Errorf("set mtu of %s to %d: %w", a.name(), want, err)
	}
	a.changed("link %s mtu %d set (was %d)", a.name(), want, have)
	return nil
}

func (a *applier) address(context.Context) error {
	want := netip.PrefixFrom(a.spec.IP, a.spec.Subnet.Bits())
	list := func() ([]netlink.Addr, error) { return netlink.AddrList(a.link, netlink.FAMILY_V4) }
	addrs, err := dump("addresses of "+a.name(), list)
	if err != nil {
		return err
	}
	have := false
	var stale []netlink.Addr
	for _, ad := range addrs {
		p := toPrefix(ad.IPNet)
		switch {
		case p == want && ad.Flags&unix.IFA_F_NOPREFIXROUTE != 0:
			have = true
		case a.spec.Subnet.Contains(p.Addr()):
			// Ours with a prefix route goes too: the kernel does not
			// change an address's flags on replace.
			stale = append(stale, ad)
		}
	}
	// Stale addresses go first: if ours is added next to a stale primary
	// it becomes a secondary, and deleting the primary would take it
	// along (unless promote_secondaries is set).
	for _, ad := range stale {
		if err := netlink.AddrDel(a.link, &ad); err != nil && !gone(err) {
			return fmt.Errorf("remove address %s from %s: %w", toPrefix(ad.IPNet), a.name(), err)
		}
		a.changed("address %s removed from %s", toPrefix(ad.IPNet), a.name())
	}
	if have && len(stale) > 0 {
		if addrs, err = dump("addresses of "+a.name(), list); err != nil {
			return err
		}
		have = false
		for _, ad := range addrs {
			have = have || toPrefix(ad.IPNet) == want && ad.Flags&unix.IFA_F_NOPREFIXROUTE != 0
		}
	}
	if have {
		return nil
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.ip, Mask: net.CIDRMask(want.Bits(), 32)}, Flags: unix.IFA_F_NOPREFIXROUTE}
	if err := netlink.AddrReplace(a.link, addr); err != nil {
		return fmt.Errorf("add address %s to %s: %w", want, a.name(), err)
	}
	a.changed("address %s added to %s", want, a.name())
	return nil
}

func (a *applier) routes(context.Context) error {
	index := a.link.Attrs().Index
	subnet := a.spec.Subnet
	want := []netlink.Route{
		// The subnet route comes first: the kernel checks that the
		// default route's gateway is reachable. Both carry src IP: it
		// is where an unbound socket's source comes from when a peer
		// rule sends its lookup here (see Apply).
		{
			LinkIndex: index, Table: a.table, Dst: toIPNet(subnet), Src: a.ip,
			Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_STATIC, Type: unix.RTN_UNICAST,
		},
		{
			LinkIndex: index, Table: a.table, Dst: toIPNet(netip.PrefixFrom(netip.IPv4Unspecified(), 0)),
			Gw: net.IP(Gateway(subnet).AsSlice()), Src: a.ip, Scope: netlink.SCOPE_UNIVERSE,
			Protocol: unix.RTPROT_STATIC, Type: unix.RTN_UNICAST,
		},
	}
	routes, err := dump(fmt.Sprintf("routes of table %d", a.table), func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: a.table}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return err
	}
	present := make([]bool, len(want))
	var stale []netlink.Route
	for _, r := range routes {
		replaced := false
		for i, w := range want {
			switch {
			case sameRoute(r, w):
				present[i] = true
				replaced = true
			case sameKey(r, w):
				replaced = true // RouteReplace below overwrites it
			}
		}
		if !replaced {
			stale = append(stale, r)
		}
	}
	for i, w := range want {
		if present[i] {
			continue
		}
		if err := netlink.RouteReplace(&w); err != nil {
			return fmt.Errorf("set route %s: %w", a.describeRoute(w), err)
		}
		a.changed("route %s set", a.describeRoute(w))
	}
	for _, r := range stale {
		if err := netlink.RouteDel(&r); err != nil && !gone(err) {
			return fmt.Errorf("remove route %s: %w", a.describeRoute(r), err)
		}
		a.changed("route %s removed", a.describeRoute(r))
	}
	return nil
}

// rules makes the source rule and one rule per peer (see Apply) the only
// rules into our table.
func (a *applier) rules(context.Context) error {
	want := []*netlink.Rule{a.newRule(host(a.spec.IP), nil)}
	for _, p := range a.spec.peers() {
		want = append(want, a.newRule(host(netip.IPv4Unspecified()), host(p)))
	}
	rules, err := dump("rules", func() ([]netlink.Rule, error) { return netlink.RuleList(netlink.FAMILY_V4) })
	if err != nil {
		return err
	}
	present := make([]bool, len(want))
	var stale []netlink.Rule
	for _, r := range rules {
		if r.Table != a.table {
			continue // not ours: never touched
		}
		i := slices.IndexFunc(want, func(w *netlink.Rule) bool { return sameRule(r, *w) })
		if i < 0 {
			// Points at our table but is not wanted: left by an
			// earlier configuration (another ENI address, priority
			// or peer set).
			stale = append(stale, r)
			continue
		}
		present[i] = true
	}
	// Add before removing so a priority change leaves no gap.
	for i, w := range want {
		if present[i] {
			continue
		}
		err := netlink.RuleAdd(w)
		switch {
		case errors.Is(err, unix.EEXIST):
		case err != nil:
			return fmt.Errorf("add rule %s: %w", describeRule(*w), err)
		default:
			a.changed("rule %s added", describeRule(*w))
		}
	}
	for _, r := range stale {
		if err := netlink.RuleDel(&r); err != nil && !gone(err) {
			return fmt.Errorf("remove rule %s: %w", describeRule(r), err)
		}
		a.changed("rule %s removed", describeRule(r))
	}
	return nil
}

// newRule returns "from src [to dst] lookup table" at our priority.
func (a *applier) newRule(src, dst *net.IPNet) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = netlink.FAMILY_V4
	r.Src, r.Dst = src, dst
	r.Table = a.table
	r.Priority = a.priority
	r.Protocol = unix.RTPROT_STATIC
	return r
}

// sameRule reports whether have is want: same table, priority, source and
// destination, and no other selector.
func sameRule(have, want netlink.Rule) bool {
	return have.Table == want.Table && have.Priority == want.Priority &&
		sameNet(have.Src, want.Src) && sameNet(have.Dst, want.Dst) &&
		!have.Invert && have.Tos == 0 && have.Mark == 0 && have.Mask == nil &&
		have.IifName == "" && have.OifName == "" && have.Goto < 0 && have.Flow < 0 && have.TunID == 0 &&
		have.IPProto == 0 && have.Sport == nil && have.Dport == nil && have.UIDRange == nil &&
		have.SuppressPrefixlen < 0 && have.SuppressIfgroup < 0
}

func sameNet(a, b *net.IPNet) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.String() == b.String()
}

func host(a netip.Addr) *net.IPNet { return toIPNet(netip.PrefixFrom(a, a.BitLen())) }

// sameRoute compares what matters for forwarding; the protocol and the
// linkdown flag (a link without carrier) do not.
func sameRoute(have, want netlink.Route) bool {
	return sameKey(have, want) && have.LinkIndex == want.LinkIndex && have.Gw.Equal(want.Gw) &&
		have.Src.Equal(want.Src) && have.Scope == want.Scope && have.Type == want.Type &&
		len(have.MultiPath) == 0
}

// sameKey reports whether two routes share the kernel's identity for an IPv4
// route (table, destination, TOS, metric), so RouteReplace of one replaces
// the other.
func sameKey(a, b netlink.Route) bool {
	return a.Table == b.Table && a.Dst.String() == b.Dst.String() && a.Tos == b.Tos && a.Priority == b.Priority
}

func (a *applier) describeRoute(r netlink.Route) string {
	s := r.Dst.String()
	if ones, _ := r.Dst.Mask.Size(); ones == 0 {
		s = "default"
	}
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	dev := fmt.Sprintf("index %d", r.LinkIndex)
	if r.LinkIndex == a.link.Attrs().Index {
		dev = a.name()
	}
	s += " dev " + dev
	if r.Scope == netlink.SCOPE_LINK {
		s += " scope link"
	}
	if r.Src != nil {
		s += " src " + r.Src.String()
	}
	return fmt.Sprintf("%s table %d", s, r.Table)
}

func describeRule(r netlink.Rule) string {
	from := "all"
	if r.Src != nil {
		from = r.Src.String()
	}
	to := ""
	if r.Dst != nil {
		to = " to " + r.Dst.String()
	}
	return fmt.Sprintf("from %s%s lookup %d priority %d", from, to, r.Table, r.Priority)
}

// dumpAttempts bounds retries of a netlink dump the kernel interrupted
// because the state changed under it.
const dumpAttempts = 3

func dump[T any](what string, list func() ([]T, error)) ([]T, error) {
	for attempt := 1; ; attempt++ {
		v, err := list()
		if errors.Is(err, netlink.ErrDumpInterrupted) && attempt < dumpAttempts {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		return v, nil
	}
}

// gone reports whether a delete failed only because the object was already
// gone: ENOENT for rules, ESRCH for routes, EADDRNOTAVAIL for addresses.
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EADDRNOTAVAIL)
}

func toPrefix(n *net.IPNet) netip.Prefix {
	addr, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), ones)
}

func toIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

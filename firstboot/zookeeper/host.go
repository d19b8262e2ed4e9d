package zookeeper

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/zkaas/zkaas/ensemble"
)

// Host is the ZooKeeper stage of a boot on this instance: the node's files
// in the conf dir and on the mounted volume, and the decision about an
// empty data tree.
type Host struct {
	Config ensemble.Config
	Layout Layout
	// User owns the data directories (the zookeeper user the bake creates).
	User string
	// PeerVolumes lists the volumes of the nodes other than self, fresh
	// (boot: from EC2, through the claim package).
	PeerVolumes func(ctx context.Context, self int) ([]PeerVolume, error)
	// Probe asks peers whether they serve; default ProbeQuorum with 2s per
	// peer.
	Probe func(ctx context.Context, peers []netip.AddrPort) Quorum
	// Now, Backoff and After are the Decider's.
	Now     func() time.Time
	Backoff func(attempt int) time.Duration
	After   func(time.Duration) <-chan time.Time
	Log     *slog.Logger
}

// Node is this instance's node as the claim and disk stages left it.
type Node struct {
	// Self is the node's id, its volume and the volume's initialized time.
	Self PeerVolume
	IP   netip.Addr
	// FormattedNow: the disk stage formatted the volume in this boot.
	FormattedNow bool
	// Material is the secret material the boot fetched for zookeeper.tls
	// and zookeeper.sasl (zero when they are off).
	Material Material
}

// Result is the ZooKeeper stage's outcome.
type Result struct {
	Changed    []string `json:"changed"`
	HasData    bool     `json:"has_data"`
	Initialize bool     `json:"initialize"`
	Reason     string   `json:"reason,omitempty"`
}

// Prepare renders and writes the node's files, then decides about an empty
// data tree: a fresh volume trusts its empty tree only while the ensemble is
// brand new; otherwise it must find a quorum to sync from, and is refused
// without one (re-probing until ctx ends) — never started as an empty voter.
func (h *Host) Prepare(ctx context.Context, n Node) (Result, error) {
	var res Result
	files, err := Render(h.Config, n.Self.NodeID, n.IP, h.Layout, n.Material)
	if err != nil {
		return res, err
	}
	owner, err := LookupOwner(h.User)
	if err != nil {
		return res, err
	}
	if res.Changed, err = Write(files, owner); err != nil {
		return res, err
	}
	if res.HasData, err = HasData(h.Layout); err != nil {
		return res, err
	}
	probe := h.Probe
	if probe == nil {
		probe = func(ctx context.Context, peers []netip.AddrPort) Quorum {
			return ProbeQuorum(ctx, peers, 2*time.Second)
		}
	}
	var peers []netip.AddrPort
	for _, o := range h.Config.Nodes {
		if o.ID != n.Self.NodeID {
			peers = append(peers, netip.AddrPortFrom(o.IP, uint16(h.Config.ZooKeeper.ClientPort)))
		}
	}
	d := Decider{
		PeerVolumes: func(ctx context.Context) ([]PeerVolume, error) { return h.PeerVolumes(ctx, n.Self.NodeID) },
		Probe:       func(ctx context.Context) Quorum { return probe(ctx, peers) },
		Now:         h.Now, Backoff: h.Backoff, After: h.After, Log: h.Log,
	}
	dec, err := d.Decide(ctx, InitInput{
		NodeID: n.Self.NodeID, HasData: res.HasData, FormattedNow: n.FormattedNow,
		Self: n.Self, BootstrapWindow: h.Config.Claim.BootstrapWindow.D(),
	})
	if err != nil {
		return res, err
	}
	res.Initialize, res.Reason = dec.Initialize, dec.Reason
	changed, err := SetInitializeMarker(h.Layout, dec.Initialize, owner)
	if changed {
		res.Changed = append(res.Changed, h.Layout.InitializePath())
	}
	return res, err
}

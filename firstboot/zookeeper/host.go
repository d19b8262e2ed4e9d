package zookeeper

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/internal/zktls"
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
	// Dial opens the default probe's connections (a net.Dialer when nil;
	// tests dial inside a network namespace). With the plaintext client
	// port closed the probe speaks TLS over it (ProbeDial).
	Dial zktls.Dial
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
		dial, err := ProbeDial(h.Config.ZooKeeper.TLS, n.Material, h.Dial)
		if err != nil {
			return res, err
		}
		probe = func(ctx context.Context, peers []netip.AddrPort) Quorum {
			return Prober{PerPeerTimeout: 2 * time.Second, Dial: dial}.Probe(ctx, peers)
		}
	}
	// The peers' client ports: the secure ones when the plaintext port is
	// closed (ProbeAddr).
	var peers []netip.AddrPort
	for _, o := range h.Config.Nodes {
		if o.ID != n.Self.NodeID {
			peers = append(peers, h.Config.ZooKeeper.ProbeAddr(o.IP))
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

// ProbeDial is how this node's probes (of its peers, of itself, the
// exporter's) reach a client port: base as it is (a net.Dialer when nil),
// or, when zookeeper.tls closes the plaintext port, TLS over it with the
// node's own keystore as the client certificate (the secure port asks for
// one; CheckKeyStore made sure it allows clientAuth) and the truststore,
// the server's certificate verified against the peer's IP.
func ProbeDial(t ensemble.TLS, m Material, base zktls.Dial) (zktls.Dial, error) {
	if !t.PlaintextClosed() {
		return base, nil
	}
	conf, err := zktls.Config(m.KeyStore, m.TrustStore)
	if err != nil {
		return nil, fmt.Errorf("zookeeper.tls: the probes' client certificate: %w", err)
	}
	return zktls.Dialer(conf, base), nil
}

// ProbeDialFiles is ProbeDial for the probes that run apart from the
// boot (zkaas-firstboot ready, the exporter): the material is read from
// the files the boot wrote in secretDir (Layout.SecretDir), which only
// root and zookeeper may read.
func ProbeDialFiles(t ensemble.TLS, secretDir string, base zktls.Dial) (zktls.Dial, error) {
	if !t.PlaintextClosed() {
		return base, nil
	}
	read := func(name, what string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(secretDir, name))
		if err != nil {
			return nil, fmt.Errorf("zookeeper.tls serves clients over TLS only, and the probe needs %s, which every boot's zkaas-firstboot run writes: %w", what, err)
		}
		return b, nil
	}
	var m Material
	var err error
	if m.KeyStore, err = read(KeyStoreName, "the node's keystore"); err != nil {
		return nil, err
	}
	if m.TrustStore, err = read(TrustStoreName, "the truststore"); err != nil {
		return nil, err
	}
	return ProbeDial(t, m, base)
}

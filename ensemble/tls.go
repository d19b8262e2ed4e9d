package ensemble

// zookeeper.tls: TLS for client and quorum traffic. Owned by the TLS work of
// issue 13 (firstboot/secrets fetches the material, firstboot/zookeeper
// renders it and checks the certificate before ZooKeeper starts); this file
// holds the schema and its validation.

import (
	"net/netip"
	"strings"
)

// TLS turns on ZooKeeper's TLS (Netty) for clients and/or the quorum.
//
// The nodes are addressed by IP (nodes[].ip, the ENI's address), so each
// node's certificate must carry that IP as a subject alternative name:
// quorum peers verify each other's certificate against the address they
// connect to or are connected from (ssl.quorum.hostnameVerification), and
// the boot refuses a certificate that does not cover the node's IP before
// ZooKeeper starts.
type TLS struct {
	// Client serves secureClientPort (ZooKeeper's NettyServerCnxnFactory)
	// on the node's ENI address. The plaintext client_port is then closed
	// (no clientPort in zoo.cfg, no security group rule) unless
	// ClientPlaintext or ClientPortUnification keeps it: zkaas's own probes
	// (firstboot's quorum and ready probes, the exporter, zkaas status,
	// doctor and roll) speak TLS to the secure port with a client
	// certificate.
	Client           bool `yaml:"client"`
	SecureClientPort int  `yaml:"secure_client_port"`
	// ClientPlaintext keeps the plaintext client_port serving next to the
	// secure one (clients not yet moved to TLS). Off by default: operators
	// turn TLS on for encrypted client traffic and expect the plaintext
	// port closed.
	ClientPlaintext bool `yaml:"client_plaintext"`
	// Quorum is sslQuorum: quorum and election connections in TLS, both
	// sides presenting their certificate.
	Quorum bool `yaml:"quorum"`
	// ClientPortUnification accepts TLS and plaintext on client_port
	// (client.portUnification, Netty) while clients move to TLS; it keeps
	// the plaintext port open.
	ClientPortUnification bool `yaml:"client_port_unification"`
	// QuorumPortUnification accepts TLS and plaintext on the quorum and
	// election ports (portUnification) while the quorum migrates.
	// ZooKeeper's rolling migration to sslQuorum is three rolls:
	// quorum_port_unification on, then quorum on, then
	// quorum_port_unification off. The two sides migrate apart: a quorum
	// migration touches nothing of the clients', and the other way round.
	QuorumPortUnification bool `yaml:"quorum_port_unification"`
	// PortUnification is ZooKeeper's own name for either side's setting
	// (portUnification, client.portUnification): refused with its line,
	// naming the two zkaas has, rather than as an unknown field.
	PortUnification bool `yaml:"port_unification"`
	// Keystore is this node's certificate chain and private key (PEM:
	// the certificate first, then any intermediates, and the key as an
	// unencrypted PKCS #8 "PRIVATE KEY" block, the one form ZooKeeper's
	// PEM loader reads); usually per node with {node}. Truststore the CA
	// certificates that issued the nodes' and clients' certificates (PEM).
	Keystore   Secret `yaml:"keystore"`
	Truststore Secret `yaml:"truststore"`
}

// DefaultSecureClientPort is the port ZooKeeper's documentation uses for
// secureClientPort.
const DefaultSecureClientPort = 2281

func defaultTLS() TLS { return TLS{SecureClientPort: DefaultSecureClientPort} }

// On reports whether any part of the node speaks TLS (and so needs the
// keystore and truststore).
func (t TLS) On() bool { return t.ClientTLS() || t.QuorumTLS() }

// ClientTLS reports whether the client side speaks TLS: the secure port,
// or client_port accepting TLS as well (Netty, the ssl.* stores).
func (t TLS) ClientTLS() bool { return t.Client || t.ClientPortUnification }

// QuorumTLS reports whether the quorum side speaks TLS: sslQuorum, or the
// quorum and election ports accepting it (the ssl.quorum.* stores; the
// certificate then authenticates the node to its peers too).
func (t TLS) QuorumTLS() bool { return t.Quorum || t.QuorumPortUnification }

// PlaintextClosed reports whether the node serves clients over TLS only:
// no plaintext client port at all, so every probe speaks TLS to the secure
// client port. client_port_unification keeps the plaintext port (it exists to
// accept both while clients migrate).
func (t TLS) PlaintextClosed() bool {
	return t.Client && !t.ClientPlaintext && !t.ClientPortUnification
}

// ProbePort is the client port zkaas's probes (srvr, mntr) ask on a node:
// client_port, or secure_client_port when the plaintext port is closed.
func (z ZooKeeper) ProbePort() int {
	if z.TLS.PlaintextClosed() {
		return z.TLS.SecureClientPort
	}
	return z.ClientPort
}

// ProbeAddr is where zkaas's probes ask the node at ip: its ProbePort.
func (z ZooKeeper) ProbeAddr(ip netip.Addr) netip.AddrPort {
	return netip.AddrPortFrom(ip, uint16(z.ProbePort()))
}

// secrets lists the references this section names, none when TLS is off
// (a node fetches only what it uses, and its policy grants only that).
func (t TLS) secrets() []NamedSecret {
	if !t.On() {
		return nil
	}
	return []NamedSecret{
		{Field: "zookeeper.tls.keystore", Secret: t.Keystore},
		{Field: "zookeeper.tls.truststore", Secret: t.Truststore},
	}
}

// tls validates zookeeper.tls.
func (v *validator) tls(c *Config) {
	t := &c.ZooKeeper.TLS
	// secure_client_port is checked with the other ports (checkPorts).
	_, plaintextSet := v.lines["zookeeper.tls.client_plaintext"]
	switch {
	case t.ClientPlaintext && !t.Client:
		v.errorf("zookeeper.tls.client_plaintext", "true but zookeeper.tls.client is off: without TLS clients client_port is the only client port and serves plaintext anyway")
	case t.Client && t.ClientPortUnification && plaintextSet && !t.ClientPlaintext:
		// The explicit false is refused rather than ignored: the operator
		// expects the plaintext port closed, and it would not be.
		v.errorf("zookeeper.tls.client_plaintext", "false but zookeeper.tls.client_port_unification keeps client_port open (it accepts TLS and plaintext there while clients migrate): turn client_port_unification off to close the plaintext port, or set client_plaintext: true")
	}
	if t.PortUnification {
		v.errorf("zookeeper.tls.port_unification", "clients and the quorum migrate apart: set client_port_unification (client_port accepts TLS and plaintext while clients move to TLS) or quorum_port_unification (the quorum and election ports, while the quorum does)")
	}
	v.secret("zookeeper.tls.keystore", t.Keystore, c.Region(), t.On())
	v.secret("zookeeper.tls.truststore", t.Truststore, c.Region(), t.On())
	if !t.On() && (t.Keystore.IsSet() || t.Truststore.IsSet()) {
		v.warnf("zookeeper.tls", "a keystore or truststore is named but client, quorum, client_port_unification and quorum_port_unification are all off: nothing is fetched")
	}
	// A leader checks a learner's certificate only with clientAuth need
	// (QuorumX509Util's SSL server socket): none or want (any case, as
	// ClientAuth.fromPropertyValue reads it; anything else is refused as
	// not one of the three) would let anything that reaches the quorum
	// port join as a learner.
	if val := c.ZooKeeper.Extra["ssl.quorum.clientAuth"]; t.QuorumTLS() && (strings.EqualFold(val, "none") || strings.EqualFold(val, "want")) {
		on := "zookeeper.tls.quorum"
		if !t.Quorum {
			on = "zookeeper.tls.quorum_port_unification"
		}
		v.errorf("zookeeper.extra.ssl.quorum.clientAuth", "%q with %s on: a leader would accept learners without a certificate; leave it need (the default)", val, on)
	}
	if t.Keystore.IsSet() && !t.Keystore.PerNode() && len(c.Nodes) > 1 {
		// One certificate for every node must carry every node's IP:
		// possible, but then each node's certificate is valid for all.
		// A per-node keystore does not keep a node from reading another's
		// (the instance policy grants every node's, since any instance
		// may become any node), so the warning claims only what it gives.
		v.warnf("zookeeper.tls.keystore", "one keystore for all %d nodes: its certificate must carry every node's IP and is valid for any of them; a per-node keystore (%s in the name) gives each certificate one node's IP (every instance may still read every node's keystore, since any instance may become any node)", len(c.Nodes), NodePlaceholder)
	}
}

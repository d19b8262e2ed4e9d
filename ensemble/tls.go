package ensemble

// zookeeper.tls: TLS for client and quorum traffic. Owned by the TLS work of
// issue 13 (firstboot/secrets fetches the material, firstboot/zookeeper
// renders it); this file holds the schema and its validation.

// TLS turns on ZooKeeper's TLS (Netty) for clients and/or the quorum.
type TLS struct {
	// Client serves secureClientPort (ZooKeeper's NettyServerCnxnFactory).
	Client           bool `yaml:"client"`
	SecureClientPort int  `yaml:"secure_client_port"`
	// Quorum is sslQuorum: quorum and election connections in TLS.
	Quorum bool `yaml:"quorum"`
	// PortUnification accepts TLS and plaintext on the same ports while a
	// running ensemble migrates (client.portUnification and
	// sslQuorumReloadCertFiles' companion portUnification).
	PortUnification bool `yaml:"port_unification"`
	// Keystore is this node's certificate chain and private key (PEM);
	// Truststore the CA certificates that issued the nodes' and clients'
	// certificates (PEM).
	Keystore   Secret `yaml:"keystore"`
	Truststore Secret `yaml:"truststore"`
}

func defaultTLS() TLS { return TLS{SecureClientPort: 2281} }

// secrets lists the references this section names.
func (t TLS) secrets() []NamedSecret {
	return []NamedSecret{
		{"zookeeper.tls.keystore", t.Keystore},
		{"zookeeper.tls.truststore", t.Truststore},
	}
}

// tls validates zookeeper.tls.
func (v *validator) tls(c *Config) {
	t := &c.ZooKeeper.TLS
	on := t.Client || t.Quorum
	v.secret("zookeeper.tls.keystore", t.Keystore, c.Region(), on)
	v.secret("zookeeper.tls.truststore", t.Truststore, c.Region(), on)
}

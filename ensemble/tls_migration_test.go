package ensemble

import (
	"testing"
)

// TestTLSMigrationSides: the client and the quorum migrate apart.
// client_port_unification is the clients' (Netty, client_port accepting
// TLS and plaintext, so the plaintext port stays open) and
// quorum_port_unification the quorum's (the certificate then authenticates
// the node to its peers, so it needs clientAuth): a quorum-only migration
// keeps a TLS-only client port closed and switches nothing on the client
// side; a client-only one touches nothing of the quorum. A single
// port_unification is refused with its line, naming the two.
func TestTLSMigrationSides(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		tls                        TLS
		clientTLS, quorumTLS, shut bool
	}{
		{"quorum migrating alone", TLS{QuorumPortUnification: true}, false, true, false},
		{"quorum migrating, TLS-only clients", TLS{Client: true, QuorumPortUnification: true}, true, true, true},
		{"clients migrating alone", TLS{Client: true, ClientPortUnification: true}, true, false, false},
		{"client port accepting both, no secure port", TLS{ClientPortUnification: true}, true, false, false},
		{"both migrating, quorum on", TLS{Client: true, Quorum: true, ClientPortUnification: true, QuorumPortUnification: true}, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.tls.ClientTLS(); got != tc.clientTLS {
				t.Errorf("ClientTLS() = %v, want %v", got, tc.clientTLS)
			}
			if got := tc.tls.QuorumTLS(); got != tc.quorumTLS {
				t.Errorf("QuorumTLS() = %v, want %v", got, tc.quorumTLS)
			}
			if got := tc.tls.PlaintextClosed(); got != tc.shut {
				t.Errorf("PlaintextClosed() = %v, want %v", got, tc.shut)
			}
			if !tc.tls.On() {
				t.Error("On() = false")
			}
		})
	}
	const stores = "    keystore: {secretsmanager: \"zk/node-{node}/keystore\"}\n    truststore: {ssm: /zk/truststore}\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"port_unification", "zookeeper:\n  tls:\n    port_unification: true\n" + stores,
			"line 8: zookeeper.tls.port_unification: clients and the quorum migrate apart: set client_port_unification (client_port accepts TLS and plaintext while clients move to TLS) or quorum_port_unification (the quorum and election ports, while the quorum does)"},
		{"client_plaintext false while clients migrate", "zookeeper:\n  tls:\n    client: true\n    client_port_unification: true\n    client_plaintext: false\n" + stores,
			"line 10: zookeeper.tls.client_plaintext: false but zookeeper.tls.client_port_unification keeps client_port open"},
		{"client_plaintext false while the quorum migrates", "zookeeper:\n  tls:\n    client: true\n    quorum_port_unification: true\n    client_plaintext: false\n" + stores, ""},
		{"ssl.quorum.clientAuth while the quorum migrates", "zookeeper:\n  tls:\n    quorum_port_unification: true\n" + stores + "  extra:\n    ssl.quorum.clientAuth: none\n",
			"zookeeper.extra.ssl.quorum.clientAuth: \"none\" with zookeeper.tls.quorum_port_unification on"},
		{"ssl.quorum.clientAuth while the clients migrate", "zookeeper:\n  tls:\n    client_port_unification: true\n" + stores + "  extra:\n    ssl.quorum.clientAuth: none\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) { checkParse(t, base+tc.yaml, Options{}, tc.want) })
	}
}

package zookeeper

import (
	"strings"
	"testing"

	"github.com/zkaas/zkaas/ensemble"
)

// TestRenderTLSMigrationSides: a quorum migration renders nothing of the
// clients' (no Netty, no client.portUnification, no ssl.* stores) and a
// client migration nothing of the quorum's (no portUnification, no
// sslQuorum, no ssl.quorum.*).
func TestRenderTLSMigrationSides(t *testing.T) {
	mat := Material{KeyStore: []byte("K"), TrustStore: []byte("T")}
	for _, tc := range []struct {
		name       string
		tls        ensemble.TLS
		want, none []string
	}{
		{"quorum only", ensemble.TLS{QuorumPortUnification: true},
			[]string{"portUnification=true", "sslQuorum=false", "ssl.quorum.keyStore.location="},
			[]string{"serverCnxnFactory=", "client.portUnification", "\nssl.keyStore", "secureClientPort"}},
		{"quorum only, TLS-only clients", ensemble.TLS{Client: true, QuorumPortUnification: true},
			[]string{"\nportUnification=true", "sslQuorum=false", "secureClientPort=2281"},
			[]string{"client.portUnification", "\nclientPort="}},
		{"clients only", ensemble.TLS{Client: true, ClientPortUnification: true},
			[]string{"client.portUnification=true", "serverCnxnFactory=", "secureClientPort=2281", "\nclientPort=2181"},
			[]string{"\nportUnification", "sslQuorum", "ssl.quorum."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tlsEnsemble(tc.tls)
			f, err := Render(cfg, 2, cfg.Nodes[1].IP, DefaultLayout("/var/lib/zookeeper"), mat)
			if err != nil {
				t.Fatal(err)
			}
			zc := "\n" + string(f.ZooCfg)
			for _, w := range tc.want {
				if !strings.Contains(zc, w) {
					t.Errorf("zoo.cfg lacks %q:\n%s", w, f.ZooCfg)
				}
			}
			for _, n := range tc.none {
				if strings.Contains(zc, n) {
					t.Errorf("zoo.cfg has %q:\n%s", n, f.ZooCfg)
				}
			}
		})
	}
}

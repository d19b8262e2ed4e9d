package deploy

import (
	"slices"
	"strings"
	"testing"
)

// TestTLSRules: with zookeeper.tls.client the nodes' group opens the
// secure client port to the clients and the peers, nothing when off or
// quorum-only; the plaintext client port only while something listens on
// it (TLS off, client_plaintext, client_port_unification).
func TestTLSRules(t *testing.T) {
	withTLS := func(tls, client string) func(string) string {
		return func(s string) string {
			s = strings.Replace(s, "deploy:\n", "zookeeper:\n  tls:\n"+tls+
				"    keystore: {secretsmanager: \"zk/node-{node}\"}\n    truststore: {ssm: /zk/ca}\ndeploy:\n", 1)
			if client != "" {
				s = strings.Replace(s, "    cidrs: [10.0.0.0/16]\n", client, 1)
			}
			return s
		}
	}
	plain := []string{"tcp/2181 from 10.0.0.0/16", "tcp/2181 from itself"}
	tests := []struct {
		name string
		edit func(string) string
		want []string
	}{
		{"off", nil, plain},
		{"quorum only", withTLS("    quorum: true\n", ""), plain},
		{"client, TLS only", withTLS("    client: true\n", ""), []string{"tcp/2281 from 10.0.0.0/16", "tcp/2281 from itself"}},
		{"client, plaintext kept", withTLS("    client: true\n    client_plaintext: true\n", ""),
			[]string{"tcp/2181 from 10.0.0.0/16", "tcp/2281 from 10.0.0.0/16", "tcp/2281 from itself", "tcp/2181 from itself"}},
		{"client while migrating", withTLS("    client: true\n    client_port_unification: true\n", ""),
			[]string{"tcp/2181 from 10.0.0.0/16", "tcp/2281 from 10.0.0.0/16", "tcp/2281 from itself", "tcp/2181 from itself"}},
		{"client on its own port, groups", withTLS("    client: true\n    secure_client_port: 3281\n",
			"    cidrs: [10.1.0.0/16]\n    security_groups: [sg-0123456789abcdef0]\n"),
			[]string{"tcp/3281 from 10.1.0.0/16", "tcp/3281 from sg-0123456789abcdef0", "tcp/3281 from itself"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, raw := load(t, tt.edit)
			var got []string
			for _, r := range ingress(t, mustFor(t, cfg, raw), NodesGroup) {
				// Every rule of a client port, plaintext or secure;
				// quorum and election stay as they are.
				if r.Port == 2181 || r.Port == cfg.ZooKeeper.TLS.SecureClientPort {
					got = append(got, r.String())
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("client port rules %q, want %q", got, tt.want)
			}
		})
	}
}

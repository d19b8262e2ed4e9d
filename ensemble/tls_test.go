package ensemble

import (
	"slices"
	"strings"
	"testing"
)

// TestTLSConfig: zookeeper.tls and the secret references it names,
// refused with the field and the line; warnings for what works but is
// unwise.
func TestTLSConfig(t *testing.T) {
	const stores = "    keystore: {secretsmanager: \"zk/node-{node}/keystore\"}\n    truststore: {ssm: /zk/truststore}\n"
	tests := []struct {
		name     string
		yaml     string
		want     string // error; "" = accepted
		wantWarn string
	}{
		{"client and quorum", "zookeeper:\n  tls:\n    client: true\n    quorum: true\n" + stores, "", ""},
		{"migration", "zookeeper:\n  tls:\n    quorum_port_unification: true\n" + stores, "", ""},
		{"off, nothing named", "zookeeper:\n  tls: {secure_client_port: 2282}\n", "", ""},
		{"on without stores", "zookeeper:\n  tls:\n    client: true\n", "line 7: zookeeper.tls.keystore: required: one of secretsmanager", ""},
		{"migration without stores", "zookeeper:\n  tls:\n    client_port_unification: true\n", "zookeeper.tls.truststore: required", ""},
		{"port clash", "zookeeper:\n  tls:\n    secure_client_port: 2181\n", "line 8: zookeeper.tls.secure_client_port: 2181 is also zookeeper.client_port", ""},
		{"not a port", "zookeeper:\n  tls: {secure_client_port: 0}\n", "zookeeper.tls.secure_client_port: 0 is not a TCP port", ""},
		{"two sources", "zookeeper:\n  tls:\n    client: true\n    keystore: {secretsmanager: a, ssm: /b}\n    truststore: {ssm: /zk/ca}\n", "line 9: zookeeper.tls.keystore: name exactly one of secretsmanager, ssm and file", ""},
		{"bad placeholder", "zookeeper:\n  tls:\n    client: true\n    keystore: {secretsmanager: \"zk/{id}/ks\"}\n    truststore: {ssm: /zk/ca}\n", "the only placeholder is {node}", ""},
		{"relative file", "zookeeper:\n  tls:\n    client: true\n    keystore: {file: etc/ks.pem}\n    truststore: {ssm: /zk/ca}\n", `zookeeper.tls.keystore.file: "etc/ks.pem" must be a clean absolute path`, ""},
		{"ARN in another region", "zookeeper:\n  tls:\n    client: true\n    keystore: {secretsmanager: \"arn:aws:secretsmanager:eu-west-1:123456789012:secret:ks\"}\n    truststore: {ssm: /zk/ca}\n",
			"zookeeper.tls.keystore.secretsmanager: arn:aws:secretsmanager:eu-west-1:123456789012:secret:ks is in region eu-west-1 but the ensemble is in us-east-1", ""},
		{"not a secret ARN", "zookeeper:\n  tls:\n    client: true\n    keystore: {secretsmanager: \"arn:aws:secretsmanager:us-east-1:123456789012:ks\"}\n    truststore: {ssm: /zk/ca}\n",
			`line 9: zookeeper.tls.keystore.secretsmanager: "arn:aws:secretsmanager:us-east-1:123456789012:ks" is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)`, ""},
		{"not a parameter ARN", "zookeeper:\n  tls:\n    client: true\n    keystore: {secretsmanager: ks}\n    truststore: {ssm: \"arn:aws:ssm:us-east-1:123456789012:param/zk/ca\"}\n",
			`line 10: zookeeper.tls.truststore.ssm: "arn:aws:ssm:us-east-1:123456789012:param/zk/ca" is not an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>)`, ""},
		{"parameter ARN in another region", "zookeeper:\n  tls:\n    client: true\n    keystore: {secretsmanager: ks}\n    truststore: {ssm: \"arn:aws:ssm:eu-west-1:123456789012:parameter/zk/ca\"}\n",
			"line 10: zookeeper.tls.truststore.ssm: arn:aws:ssm:eu-west-1:123456789012:parameter/zk/ca is in region eu-west-1 but the ensemble is in us-east-1", ""},
		{"kms key", "zookeeper:\n  tls:\n    client: true\n    keystore: {secretsmanager: ks, kms_key: \"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\"}\n    truststore: {ssm: /zk/ca}\n", "", "one keystore for all 3 nodes"},
		{"kms alias", "zookeeper:\n  tls:\n    client: true\n    keystore: {secretsmanager: ks, kms_key: alias/zk}\n    truststore: {ssm: /zk/ca}\n", `zookeeper.tls.keystore.kms_key: "alias/zk" is not a KMS key ARN`, ""},
		{"kms key in another region", "zookeeper:\n  tls:\n    client: true\n    keystore: {secretsmanager: ks, kms_key: \"arn:aws:kms:eu-west-1:123456789012:key/k\"}\n    truststore: {ssm: /zk/ca}\n", "zookeeper.tls.keystore.kms_key: key arn:aws:kms:eu-west-1:123456789012:key/k is in region eu-west-1", ""},
		{"kms key on a file", "zookeeper:\n  tls:\n    client: true\n    keystore: {file: /etc/ks.pem, kms_key: \"arn:aws:kms:us-east-1:123456789012:key/k\"}\n    truststore: {ssm: /zk/ca}\n", "a file is not encrypted with KMS", ""},
		{"stores named, TLS off", "zookeeper:\n  tls:\n" + stores, "", "nothing is fetched"},
		{"TLS only, plaintext kept", "zookeeper:\n  tls:\n    client: true\n    client_plaintext: true\n" + stores, "", ""},
		{"client_plaintext without client", "zookeeper:\n  tls:\n    quorum: true\n    client_plaintext: true\n" + stores,
			"line 9: zookeeper.tls.client_plaintext: true but zookeeper.tls.client is off", ""},
		{"client_plaintext false with client_port_unification", "zookeeper:\n  tls:\n    client: true\n    client_port_unification: true\n    client_plaintext: false\n" + stores,
			"line 10: zookeeper.tls.client_plaintext: false but zookeeper.tls.client_port_unification keeps client_port open", ""},
		{"client_port_unification keeps the plaintext port", "zookeeper:\n  tls:\n    client: true\n    client_port_unification: true\n" + stores, "", ""},
		{"extra sets a TLS key", "zookeeper:\n  extra:\n    ssl.quorum.keyStore.location: /etc/ks.pem\n", "line 8: zookeeper.extra.ssl.quorum.keyStore.location", ""},
		{"extra sets secureClientPort", "zookeeper:\n  extra: {secureClientPort: 2281}\n", "use zookeeper.tls.secure_client_port", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warns := checkParse(t, base+tt.yaml, Options{}, tt.want)
			found := slices.ContainsFunc(warns, func(w FieldError) bool { return strings.Contains(w.Error(), tt.wantWarn) })
			if tt.wantWarn != "" && !found {
				t.Errorf("warnings %v, want %q", warns, tt.wantWarn)
			}
		})
	}
}

// TestTLSSecrets: the stores are fetched (and granted) only when TLS is on.
func TestTLSSecrets(t *testing.T) {
	on, _, err := Parse("ensemble.yaml", []byte(base+"zookeeper:\n  tls:\n    quorum: true\n    keystore: {secretsmanager: \"zk/node-{node}\"}\n    truststore: {file: /etc/zkaas/ca.pem}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range on.Secrets() {
		got = append(got, s.Field+"="+s.Secret.String())
	}
	if want := []string{"zookeeper.tls.keystore=secretsmanager:zk/node-{node}", "zookeeper.tls.truststore=file:/etc/zkaas/ca.pem"}; !slices.Equal(got, want) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}
	off, _, err := Parse("ensemble.yaml", []byte(base+"zookeeper:\n  tls:\n    keystore: {secretsmanager: \"zk/node-{node}\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := off.Secrets(); len(s) != 0 {
		t.Errorf("TLS off: Secrets() = %v", s)
	}
}

// TestProbePort: the port zkaas's probes ask is the secure one exactly
// when the plaintext port is closed.
func TestProbePort(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tls    TLS
		closed bool
	}{
		{"off", TLS{}, false},
		{"quorum only", TLS{Quorum: true}, false},
		{"client", TLS{Client: true}, true},
		{"client and plaintext", TLS{Client: true, ClientPlaintext: true}, false},
		{"client while migrating", TLS{Client: true, ClientPortUnification: true}, false},
		{"migrating without client", TLS{ClientPortUnification: true}, false},
		{"client while the quorum migrates", TLS{Client: true, QuorumPortUnification: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := Default().ZooKeeper
			tc.tls.SecureClientPort = 2281
			z.TLS = tc.tls
			want := z.ClientPort
			if tc.closed {
				want = 2281
			}
			if got := z.TLS.PlaintextClosed(); got != tc.closed {
				t.Errorf("PlaintextClosed() = %v, want %v", got, tc.closed)
			}
			if got := z.ProbePort(); got != want {
				t.Errorf("ProbePort() = %d, want %d", got, want)
			}
		})
	}
}

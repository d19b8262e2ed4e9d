package ensemble

import (
	"testing"
)

// TestSSLSettings: the ssl.* and ssl.quorum.* keys an operator tunes are
// known and typed as ZooKeeper 3.8 reads them (X509Util: <prefix>protocol,
// enabledProtocols, ciphersuites, clientAuth; ClientAuth.fromPropertyValue
// upper-cases the value and takes NONE, WANT or NEED); ssl.quorum.clientAuth
// other than need is refused while the quorum speaks TLS, since a leader
// would then accept learners without a certificate.
func TestSSLSettings(t *testing.T) {
	const quorum = "  tls:\n    quorum: true\n    keystore: {file: \"/etc/zk/{node}.pem\"}\n    truststore: {file: /etc/zk/t.pem}\n"
	tests := []struct {
		name string
		yaml string
		want string // error; "" = accepted without a warning
	}{
		{"protocol", zk("  extra:", "    ssl.protocol: TLSv1.3"), ""},
		{"enabled protocols", zk("  extra:", "    ssl.enabledProtocols: TLSv1.3,TLSv1.2", "    ssl.quorum.enabledProtocols: TLSv1.3"), ""},
		{"cipher suites", zk("  extra:", "    ssl.ciphersuites: TLS_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"), ""},
		{"client auth want", zk("  extra:", "    ssl.clientAuth: want"), ""},
		{"client auth, ZooKeeper's case", zk("  extra:", "    ssl.clientAuth: NONE"), ""},
		{"quorum client auth need", zk(quorum+"  extra:", "    ssl.quorum.clientAuth: need"), ""},
		{"quorum client auth none without the TLS quorum", zk("  extra:", "    ssl.quorum.clientAuth: none"), ""},
		{"client auth maybe", zk("  extra:", "    ssl.clientAuth: maybe"), "line 8: zookeeper.extra.ssl.clientAuth: \"maybe\": want one of [\"none\" \"want\" \"need\"]"},
		{"protocol SSLv3", zk("  extra:", "    ssl.quorum.protocol: SSLv3"), "line 8: zookeeper.extra.ssl.quorum.protocol: \"SSLv3\": want one of"},
		{"protocol list with a space", zk("  extra:", "    ssl.enabledProtocols: \"TLSv1.3, TLSv1.2\""), "zookeeper.extra.ssl.enabledProtocols: \" TLSv1.2\": want one of"},
		{"cipher suite typo", zk("  extra:", "    ssl.ciphersuites: TLS_AES_128_GCM_SHA256,aes128"), "zookeeper.extra.ssl.ciphersuites: \"aes128\" is not a cipher suite name such as TLS_AES_128_GCM_SHA256"},
		{"quorum client auth none", zk(quorum+"  extra:", "    ssl.quorum.clientAuth: none"),
			"line 12: zookeeper.extra.ssl.quorum.clientAuth: \"none\" with zookeeper.tls.quorum on: a leader would accept learners without a certificate; leave it need (the default)"},
		{"quorum client auth want", zk(quorum+"  extra:", "    ssl.quorum.clientAuth: Want"), "zookeeper.extra.ssl.quorum.clientAuth: \"Want\" with zookeeper.tls.quorum on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if warns := checkParse(t, tt.yaml, Options{}, tt.want); tt.want == "" && len(warns) > 0 {
				t.Errorf("warnings: %v", warns)
			}
		})
	}
}

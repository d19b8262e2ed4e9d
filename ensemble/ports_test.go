package ensemble

import (
	"testing"
)

// TestPortClashes: two uses of one port are refused, on a field the YAML
// sets (so the message has a line), naming a defaulted other "(default)".
// A disabled feature's port counts only when the YAML sets it: a config
// whose ports a disabled feature's default happens to share still parses
// (it booted before that feature existed).
func TestPortClashes(t *testing.T) {
	const stores = "    keystore: {file: /etc/zk/k.pem}\n    truststore: {file: /etc/zk/t.pem}\n"
	tests := []struct {
		name string
		yaml string
		want string // "" = accepted
	}{
		{"TLS off, client port on its default", "zookeeper: {client_port: 2281}\n", ""},
		{"metrics off, admin port on the provider's default", "zookeeper: {admin_server: {enabled: true, port: 7000}}\n", ""},
		{"metrics off, client port on the exporter's default", "zookeeper: {client_port: 9141}\n", ""},
		{"admin off, client port on its default", "zookeeper: {client_port: 8080}\n", ""},
		{"exporter off, provider on the exporter's default", "metrics:\n  zookeeper: {enabled: true, port: 9141}\n", ""},
		{"TLS on, defaulted secure port taken", "zookeeper:\n  client_port: 2281\n  tls:\n    client: true\n" + stores,
			"line 7: zookeeper.client_port: 2281 is also zookeeper.tls.secure_client_port (default)"},
		{"TLS off, secure port set", "zookeeper:\n  tls:\n    secure_client_port: 2888\n",
			"line 8: zookeeper.tls.secure_client_port: 2888 is also zookeeper.quorum_port (default)"},
		{"both set", "zookeeper:\n  client_port: 2500\n  quorum_port: 2500\n", "line 8: zookeeper.quorum_port: 2500 is also zookeeper.client_port"},
		{"exporter on, admin port set to its default", "zookeeper: {admin_server: {port: 9141}}\nmetrics:\n  exporter: {enabled: true}\n",
			"line 6: zookeeper.admin_server.port: 9141 is also metrics.exporter.port (default)"},
		{"provider on, defaulted port taken by the exporter", "metrics:\n  exporter: {port: 7000}\n  zookeeper: {enabled: true}\n",
			"line 7: metrics.exporter.port: 7000 is also metrics.zookeeper.port (default)"},
		{"not a port, even when off", "zookeeper: {admin_server: {port: 0}}\n", "line 6: zookeeper.admin_server.port: 0 is not a TCP port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkParse(t, base+tt.yaml, Options{}, tt.want) })
	}
}

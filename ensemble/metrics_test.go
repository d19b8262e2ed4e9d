package ensemble

import (
	"slices"
	"testing"
)

func TestMetricsDefaults(t *testing.T) {
	cfg, _, err := Parse("ensemble.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Metrics
	if m.Exporter.Enabled || m.ZooKeeper.Enabled || m.Exporter.Port != 9141 || m.ZooKeeper.Port != 7000 {
		t.Errorf("defaults = %+v, want both off on 9141 and 7000", m)
	}
	if p := m.Ports(); len(p) != 0 {
		t.Errorf("Ports() = %v with both off", p)
	}
	on, _, err := Parse("ensemble.yaml", []byte(base+"metrics:\n  exporter: {enabled: true}\n  zookeeper: {enabled: true, port: 7001}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p := on.Metrics.Ports(); !slices.Equal(p, []int{9141, 7001}) {
		t.Errorf("Ports() = %v, want [9141 7001]", p)
	}
	// deploy.metrics falls back to the client port's sources.
	d := Deploy{Client: ClientAccess{CIDRs: []string{"10.0.0.0/16"}, SecurityGroups: []string{"sg-1"}}}
	if p, g := d.MetricsSources(); len(p) != 1 || p[0].String() != "10.0.0.0/16" || !slices.Equal(g, []string{"sg-1"}) {
		t.Errorf("MetricsSources() without deploy.metrics = %v %v", p, g)
	}
	d.Metrics = ClientAccess{SecurityGroups: []string{"sg-2"}}
	if p, g := d.MetricsSources(); len(p) != 0 || !slices.Equal(g, []string{"sg-2"}) {
		t.Errorf("MetricsSources() with deploy.metrics = %v %v", p, g)
	}
}

func TestMetricsErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		opt  Options
		want string // "" = accepted
	}{
		{"exporter on", "metrics:\n  exporter: {enabled: true}\n", Options{}, ""},
		{"exporter port clash", "metrics:\n  exporter: {enabled: true, port: 2181}\n", Options{}, "line 7: metrics.exporter.port: 2181 is also zookeeper.client_port"},
		{"disabled port still checked", "metrics:\n  zookeeper:\n    port: 3888\n", Options{}, "line 8: metrics.zookeeper.port: 3888 is also zookeeper.election_port"},
		{"same port twice", "metrics:\n  exporter: {port: 7100}\n  zookeeper: {port: 7100}\n", Options{}, "line 8: metrics.zookeeper.port: 7100 is also metrics.exporter.port"},
		{"admin port", "zookeeper: {admin_server: {port: 9141}}\nmetrics:\n  exporter: {enabled: true}\n", Options{}, "line 6: zookeeper.admin_server.port: 9141 is also metrics.exporter.port (default)"},
		{"secure client port", "zookeeper: {tls: {client: true, secure_client_port: 9141, keystore: {file: /etc/zk/k.pem}, truststore: {file: /etc/zk/t.pem}}}\nmetrics:\n  exporter: {enabled: true}\n", Options{}, "line 6: zookeeper.tls.secure_client_port: 9141 is also metrics.exporter.port (default)"},
		{"not a port", "metrics:\n  exporter: {port: 70000}\n", Options{}, "line 7: metrics.exporter.port: 70000 is not a TCP port"},
		{"unknown field", "metrics:\n  exporter: {enabled: true, listen: 0.0.0.0}\n", Options{}, "metrics.exporter.listen"},
		{"exporter without mntr", "zookeeper: {four_letter_words: [srvr, ruok]}\nmetrics:\n  exporter: {enabled: true}\n", Options{}, "line 8: metrics.exporter.enabled: the exporter reads ZooKeeper's figures with mntr: add mntr to zookeeper.four_letter_words"},
		{"exporter with *", "zookeeper: {four_letter_words: [\"*\"]}\nmetrics:\n  exporter: {enabled: true}\n", Options{}, ""},
		{"exporter off without mntr", "zookeeper: {four_letter_words: [srvr]}\n", Options{}, ""},
		{"provider on an image without it", "metrics:\n  zookeeper:\n    enabled: true\n", Options{NoPrometheusProvider: "no jar"},
			"line 8: metrics.zookeeper.enabled: this image's ZooKeeper has no Prometheus metrics provider (no jar): use metrics.exporter"},
		{"provider off on an image without it", "metrics:\n  exporter: {enabled: true}\n", Options{NoPrometheusProvider: "no jar"}, ""},
		{"provider where it is installed", "metrics:\n  zookeeper: {enabled: true}\n", Options{}, ""},
		{"scrapers to the world", "deploy:\n  metrics: {cidrs: [0.0.0.0/0]}\n", Options{}, "line 7: deploy.metrics.cidrs[0]: 0.0.0.0/0 opens the metrics ports to every address"},
		{"scrapers not a CIDR", "deploy:\n  metrics: {cidrs: [10.9.0.0/33]}\n", Options{}, "deploy.metrics.cidrs[0]: \"10.9.0.0/33\" is not an IPv4 CIDR"},
		{"scrapers' group", "deploy:\n  metrics: {security_groups: [monitoring]}\n", Options{}, "deploy.metrics.security_groups[0]: \"monitoring\" is not a security group id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkParse(t, base+tt.yaml, tt.opt, tt.want) })
	}
}

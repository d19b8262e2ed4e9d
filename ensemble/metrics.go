package ensemble

// metrics: a Prometheus endpoint per node. Owned by the metrics work of
// issue 13; this file holds the schema and its validation.

import (
	"net/netip"
	"slices"
)

// Metrics configures the node's Prometheus endpoints, both bound to the
// node's ENI address.
type Metrics struct {
	// Exporter is zkaas's own exporter (zkaas-exporter.service): mntr
	// figures and zkaas's state; works with any server.
	Exporter MetricsEndpoint `yaml:"exporter"`
	// ZooKeeper is the server's own Prometheus provider (3.6+ release
	// tarball only; the bake refuses it on a server without the jars).
	ZooKeeper MetricsEndpoint `yaml:"zookeeper"`
}

// MetricsEndpoint is one HTTP endpoint serving /metrics.
type MetricsEndpoint struct {
	Enabled bool `yaml:"enabled"`
	Port    int  `yaml:"port"`
}

// Default ports: 9141 is the zookeeper exporter's entry in Prometheus's
// default port allocations
// (https://github.com/prometheus/prometheus/wiki/Default-port-allocations);
// 7000 is PrometheusMetricsProvider's own default (httpPort).
const (
	DefaultExporterPort  = 9141
	DefaultZooKeeperPort = 7000
)

func defaultMetrics() Metrics {
	return Metrics{
		Exporter:  MetricsEndpoint{Port: DefaultExporterPort},
		ZooKeeper: MetricsEndpoint{Port: DefaultZooKeeperPort},
	}
}

// PrometheusProviderClass is ZooKeeper's Prometheus metrics provider
// (zookeeper-prometheus-metrics-<version>.jar, in the release tarball's lib/
// since 3.6.0).
const PrometheusProviderClass = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"

// Ports lists the TCP ports the enabled endpoints listen on, exporter first:
// what the nodes' security group must open to the scrapers.
func (m Metrics) Ports() []int {
	var ps []int
	if m.Exporter.Enabled {
		ps = append(ps, m.Exporter.Port)
	}
	if m.ZooKeeper.Enabled {
		ps = append(ps, m.ZooKeeper.Port)
	}
	return ps
}

// MetricsSources is who the nodes' security group admits to the metrics
// ports: deploy.metrics, or, when it names no CIDR and no group, the
// client port's sources (deploy.client) — whoever may use ZooKeeper may
// read its figures, which carry no data.
func (d *Deploy) MetricsSources() (prefixes []netip.Prefix, groups []string) {
	a := d.Metrics
	if len(a.CIDRs)+len(a.SecurityGroups) == 0 {
		a = d.Client
	}
	return a.prefixes(), a.SecurityGroups
}

// metrics validates the metrics section (its ports with the others', in
// checkPorts).
func (v *validator) metrics(c *Config) {
	v.access("deploy.metrics", c.Deploy.Metrics, "opens the metrics ports to every address: name the scrapers' subnets or security groups")
	z := &c.ZooKeeper
	// The exporter's ZooKeeper figures come from mntr, which the server
	// answers only when whitelisted (srvr alone lacks the watch, znode and
	// file descriptor counts). Refusing here beats an exporter that serves
	// zk_up 1 and nothing else.
	if c.Metrics.Exporter.Enabled && !slices.Contains(z.FourLetterWords, "mntr") && !slices.Contains(z.FourLetterWords, "*") {
		v.errorf("metrics.exporter.enabled", "the exporter reads ZooKeeper's figures with mntr: add mntr to zookeeper.four_letter_words")
	}
}

// noPrometheusProvider is Options.NoPrometheusProvider: the image's
// ZooKeeper cannot load PrometheusProviderClass, and a server told to use it
// refuses to start, so the config is refused before anything is touched.
func (v *validator) noPrometheusProvider(c *Config, why string) {
	if c.Metrics.ZooKeeper.Enabled {
		v.errorf("metrics.zookeeper.enabled", "this image's ZooKeeper has no Prometheus metrics provider (%s): use metrics.exporter, or bake the image with the release tarball (role zookeeper, source tarball)", why)
	}
}

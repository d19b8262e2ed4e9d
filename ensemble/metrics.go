package ensemble

// metrics: a Prometheus endpoint per node. Owned by the metrics work of
// issue 13; this file holds the schema and its validation.

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

func defaultMetrics() Metrics {
	return Metrics{Exporter: MetricsEndpoint{Port: 9141}, ZooKeeper: MetricsEndpoint{Port: 7000}}
}

// metrics validates the metrics section.
func (v *validator) metrics(c *Config) {}

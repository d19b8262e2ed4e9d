package deploy

import "github.com/zkaas/zkaas/ensemble"

// metricsRules admit Prometheus to each enabled metrics endpoint
// (metrics.exporter, metrics.zookeeper) on the nodes' ENIs, from
// deploy.metrics or, when that names nobody, from the client port's
// sources. Both endpoints listen on the ENI address only, so the nodes'
// group is the one to open; the instances' group stays closed.
func metricsRules(cfg ensemble.Config) []Rule {
	prefixes, groups := cfg.Deploy.MetricsSources()
	var out []Rule
	for _, e := range []struct {
		ep   ensemble.MetricsEndpoint
		desc string
	}{
		{cfg.Metrics.Exporter, "Prometheus: zkaas exporter"},
		{cfg.Metrics.ZooKeeper, "Prometheus: ZooKeeper metrics provider"},
	} {
		if !e.ep.Enabled {
			continue
		}
		out = append(out, sourceRules(e.ep.Port, prefixes, groups, e.desc)...)
	}
	return out
}

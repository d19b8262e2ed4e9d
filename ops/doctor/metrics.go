package doctor

import (
	"fmt"
	"net/netip"
	"strings"
)

// metricsPorts: with metrics.exporter or metrics.zookeeper on, every node's
// ENI admits each enabled port from every source `zkaas up` opens it to
// (deploy.metrics, else deploy.client). A CIDR source is checked by its
// first address: the rule `up` makes admits the whole prefix.
func metricsPorts(in Input) []Finding {
	cfg := in.Config
	type endpoint struct {
		name string
		port int
	}
	var eps []endpoint
	if cfg.Metrics.Exporter.Enabled {
		eps = append(eps, endpoint{"zkaas exporter", cfg.Metrics.Exporter.Port})
	}
	if cfg.Metrics.ZooKeeper.Enabled {
		eps = append(eps, endpoint{"ZooKeeper metrics provider", cfg.Metrics.ZooKeeper.Port})
	}
	if len(eps) == 0 {
		return []Finding{ok("metrics", "off (metrics.exporter and metrics.zookeeper disabled)")}
	}
	prefixes, groups := cfg.Deploy.MetricsSources()
	if len(prefixes)+len(groups) == 0 {
		return []Finding{bad("metrics", "metrics are on but no CIDR or security group may scrape them",
			"name the scrapers in deploy.metrics (cidrs, security_groups), then run `zkaas up`")}
	}
	var out []Finding
	for _, eni := range in.Inv.ENIs {
		var missing []string
		for _, ep := range eps {
			for _, p := range prefixes {
				if !admits(in, eni, ep.port, p.Addr(), nil) {
					missing = append(missing, fmt.Sprintf("tcp/%d (%s) from %s", ep.port, ep.name, p))
				}
			}
			for _, src := range groups {
				if !admits(in, eni, ep.port, netip.Addr{}, []string{src}) {
					missing = append(missing, fmt.Sprintf("tcp/%d (%s) from %s", ep.port, ep.name, src))
				}
			}
		}
		if len(missing) > 0 {
			out = append(out, bad(node(eni.Node), "its ENI's security groups do not admit "+strings.Join(missing, ", "),
				"run `zkaas up` (the nodes' group admits the enabled metrics ports from deploy.metrics, else deploy.client)"))
		} else {
			var ps []string
			for _, ep := range eps {
				ps = append(ps, fmt.Sprintf("tcp/%d", ep.port))
			}
			out = append(out, ok(node(eni.Node), "metrics ports open to the scrapers ("+strings.Join(ps, ", ")+")"))
		}
	}
	return out
}

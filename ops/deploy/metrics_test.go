package deploy

import (
	"slices"
	"strings"
	"testing"
)

// TestMetricsRules: the nodes' group admits each enabled metrics port from
// deploy.metrics, or from the client port's sources when it names nobody;
// the instances' group (primary interfaces) admits nothing.
func TestMetricsRules(t *testing.T) {
	withMetrics := func(metrics, deployMetrics string) func(string) string {
		return func(s string) string {
			s = strings.Replace(s, "deploy:\n", metrics+"deploy:\n", 1)
			return s + deployMetrics
		}
	}
	tests := []struct {
		name string
		edit func(string) string
		want []string // the metrics rules of the nodes' group
	}{
		{"off", nil, nil},
		{"exporter, client sources", withMetrics("metrics:\n  exporter: {enabled: true}\n", ""),
			[]string{"tcp/9141 from 10.0.0.0/16"}},
		{"both, own sources", withMetrics("metrics:\n  exporter: {enabled: true}\n  zookeeper: {enabled: true, port: 7001}\n",
			"  metrics: {cidrs: [10.9.0.0/24], security_groups: [sg-0123456789abcdef0]}\n"),
			[]string{"tcp/9141 from 10.9.0.0/24", "tcp/9141 from sg-0123456789abcdef0", "tcp/7001 from 10.9.0.0/24", "tcp/7001 from sg-0123456789abcdef0"}},
		{"provider only, a group", withMetrics("metrics:\n  zookeeper: {enabled: true}\n", "  metrics: {security_groups: [sg-0fedcba9876543210]}\n"),
			[]string{"tcp/7000 from sg-0fedcba9876543210"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, raw := load(t, tt.edit)
			d := mustFor(t, cfg, raw)
			var got []string
			for _, r := range ingress(t, d, NodesGroup) {
				if strings.HasPrefix(r.Description, "Prometheus") {
					got = append(got, r.String())
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("metrics rules %q, want %q", got, tt.want)
			}
			if in := ingress(t, d, InstanceGroup); len(in) != 0 {
				t.Errorf("the instances' group admits %v", in)
			}
		})
	}
}

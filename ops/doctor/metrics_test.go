package doctor

import (
	"strings"
	"testing"

	"github.com/zkaas/zkaas/ops/inventory"
)

// TestMetricsPorts: with metrics on, each node's ENI must admit each
// enabled port from the sources `zkaas up` opens it to.
func TestMetricsPorts(t *testing.T) {
	exporterRule := inventory.Rule{From: 9141, To: 9141, CIDR: "10.0.0.0/16"}
	providerFromGroup := inventory.Rule{From: 7000, To: 7000, GroupID: "sg-prom"}
	tests := []struct {
		name  string
		setup func(in *Input)
		want  []string // failed details; none = every finding OK
	}{
		{"off", func(in *Input) {}, nil},
		{"exporter open to the client CIDR", func(in *Input) {
			in.Config.Metrics.Exporter.Enabled = true
			addRule(in, exporterRule)
		}, nil},
		{"exporter closed", func(in *Input) { in.Config.Metrics.Exporter.Enabled = true },
			[]string{"do not admit tcp/9141 (zkaas exporter) from 10.0.0.0/16"}},
		{"provider from its group, exporter from a narrower CIDR only", func(in *Input) {
			in.Config.Metrics.Exporter.Enabled = true
			in.Config.Metrics.ZooKeeper.Enabled = true
			in.Config.Deploy.Metrics.SecurityGroups = []string{"sg-prom"}
			in.Config.Deploy.Metrics.CIDRs = []string{"10.0.8.0/24"}
			addRule(in, providerFromGroup)
			addRule(in, inventory.Rule{From: 9141, To: 9141, CIDR: "10.0.8.0/24"})
		}, []string{"do not admit tcp/9141 (zkaas exporter) from sg-prom, tcp/7000 (ZooKeeper metrics provider) from 10.0.8.0/24"}},
		{"nobody may scrape", func(in *Input) {
			in.Config.Metrics.Exporter.Enabled = true
			in.Config.Deploy.Client.CIDRs = nil
		}, []string{"metrics are on but no CIDR or security group may scrape them"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := healthy(t)
			tt.setup(&in)
			var failed []string
			for _, f := range metricsPorts(in) {
				if !f.OK {
					failed = append(failed, f.Detail)
				}
			}
			if len(tt.want) == 0 && len(failed) > 0 {
				t.Fatalf("failed: %q", failed)
			}
			for _, w := range tt.want {
				hit := false
				for _, f := range failed {
					hit = hit || strings.Contains(f, w)
				}
				if !hit {
					t.Errorf("no failure %q in %q", w, failed)
				}
			}
		})
	}
}

func addRule(in *Input, r inventory.Rule) {
	sg := in.Inv.SecurityGroups["sg-nodes"]
	sg.Ingress = append(append([]inventory.Rule{}, sg.Ingress...), r)
	in.Inv.SecurityGroups["sg-nodes"] = sg
}

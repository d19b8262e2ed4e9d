// Package status is `zkaas status`: one row per node, from the inventory
// and each node's srvr answer. Pure: the command gathers, this shapes.
package status

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/ops/inventory"
	"github.com/zkaas/zkaas/ops/zk"
)

// Row is one node.
type Row struct {
	Node         int       `json:"node"`
	IP           string    `json:"ip"`
	AZ           string    `json:"az"`
	ENI          string    `json:"eni,omitempty"`
	Holder       string    `json:"holder,omitempty"`
	State        string    `json:"instance_state,omitempty"`
	Lifecycle    string    `json:"lifecycle_state,omitempty"`
	Volume       string    `json:"volume,omitempty"`
	VolumeHolder string    `json:"volume_holder,omitempty"`
	Mode         string    `json:"mode,omitempty"`
	Zxid         string    `json:"zxid,omitempty"`
	LatencyAvgMS float64   `json:"latency_avg_ms"`
	Outstanding  int       `json:"outstanding"`
	LastSnapshot time.Time `json:"last_snapshot,omitzero"`
	ZooKeeperErr string    `json:"zookeeper_error,omitempty"`
}

// Addrs are the nodes' client addresses, to ask with zk.Client.All: the
// secure client ports when zookeeper.tls closes the plaintext one.
func Addrs(cfg ensemble.Config) []netip.AddrPort {
	var out []netip.AddrPort
	for _, n := range cfg.Nodes {
		out = append(out, cfg.ZooKeeper.ProbeAddr(n.IP))
	}
	return out
}

// Rows builds the table: the config's nodes in id order, what AWS holds
// for each, and what each server said (stats and errs by client address).
func Rows(cfg ensemble.Config, s inventory.Snapshot, stats map[netip.AddrPort]zk.Stat, errs map[netip.AddrPort]error) []Row {
	lifecycle := map[string]string{}
	for _, g := range s.Groups {
		for _, i := range g.Instances {
			lifecycle[i.ID] = i.Lifecycle
		}
	}
	nodes := slices.Clone(cfg.Nodes)
	slices.SortFunc(nodes, func(a, b ensemble.Node) int { return a.ID - b.ID })
	var rows []Row
	for _, n := range nodes {
		r := Row{Node: n.ID, IP: n.IP.String(), AZ: n.AZ}
		var enis, vols []string
		for _, e := range s.ENIs {
			if e.Node == n.ID {
				enis = append(enis, e.ID)
				if e.Instance != "" {
					r.Holder = e.Instance
				}
			}
		}
		for _, v := range s.Volumes {
			if v.Node == n.ID {
				vols = append(vols, v.ID)
				r.VolumeHolder = v.Instance
				if v.LastSnapshot.After(r.LastSnapshot) {
					r.LastSnapshot = v.LastSnapshot
				}
			}
		}
		r.ENI, r.Volume = strings.Join(enis, ","), strings.Join(vols, ",")
		if r.Holder != "" {
			r.State = s.Instances[r.Holder].State
			r.Lifecycle = lifecycle[r.Holder]
		}
		addr := cfg.ZooKeeper.ProbeAddr(n.IP)
		if st, ok := stats[addr]; ok {
			r.Mode, r.LatencyAvgMS, r.Outstanding = st.Mode, st.LatencyAvg, st.Outstanding
			if st.Serving() {
				r.Zxid = fmt.Sprintf("0x%x", st.Zxid)
			}
		} else if err := errs[addr]; err != nil {
			r.ZooKeeperErr = err.Error()
		}
		rows = append(rows, r)
	}
	return rows
}

// Print writes the rows as a table.
func Print(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tIP\tAZ\tENI\tHOLDER\tSTATE\tLIFECYCLE\tVOLUME\tVOLUME HOLDER\tMODE\tZXID\tLATENCY\tOUTSTANDING\tLAST SNAPSHOT")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, r := range rows {
		mode, lat, out := r.Mode, "-", "-"
		if mode == "" {
			mode = "unreachable"
		} else {
			lat, out = fmt.Sprintf("%.1fms", r.LatencyAvgMS), fmt.Sprint(r.Outstanding)
		}
		snap := "-"
		if !r.LastSnapshot.IsZero() {
			snap = r.LastSnapshot.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Node, r.IP, r.AZ, dash(r.ENI), dash(r.Holder), dash(r.State),
			dash(r.Lifecycle), dash(r.Volume), dash(r.VolumeHolder), mode, dash(r.Zxid), lat, out, snap)
	}
	return tw.Flush()
}

// JSON writes the rows as one JSON document.
func JSON(w io.Writer, ensemble string, rows []Row) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Ensemble string `json:"ensemble"`
		Nodes    []Row  `json:"nodes"`
	}{ensemble, rows})
}

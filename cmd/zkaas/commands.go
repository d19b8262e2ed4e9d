package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"text/tabwriter"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/doctor"
	"github.com/zkaas/zkaas/ops/down"
	"github.com/zkaas/zkaas/ops/roll"
	"github.com/zkaas/zkaas/ops/status"
	"github.com/zkaas/zkaas/ops/zk"
)

func (e env) down(ctx context.Context, c Cloud, d deploy.Desired, deleteData bool, confirm string, log *slog.Logger) error {
	res, err := down.Run(ctx, c, d, down.Options{DeleteData: deleteData, Confirm: confirm}, log)
	for _, x := range res.Deleted {
		fmt.Fprintf(e.stdout, "deleted  %s %s (%s)\n", x.Kind, x.Name, x.ID)
	}
	for _, k := range res.Kept {
		fmt.Fprintf(e.stdout, "kept     %s %s (%s): %s\n", k.Existing.Kind, k.Existing.Name, k.Existing.ID, k.Why)
	}
	return err
}

// ask queries every node's srvr, bounded: status must answer even when
// the nodes are not reachable from the operator's machine.
func ask(ctx context.Context, cfg ensemble.Config, zc zk.Client) (map[netip.AddrPort]zk.Stat, map[netip.AddrPort]error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return zc.All(ctx, status.Addrs(cfg))
}

// errTLSOnly: the ensemble's client ports speak TLS only and the operator
// gave no client certificate to ask them with.
var errTLSOnly = errors.New("the ensemble serves clients over TLS only (zookeeper.tls.client without client_plaintext): pass -tls-ca/-tls-cert/-tls-key (or ZKAAS_TLS_CA/ZKAAS_TLS_CERT/ZKAAS_TLS_KEY): a CA of the nodes' certificates and a client certificate their truststore trusts")

// zkClient is how cmd asks the nodes' client ports: srvr in plaintext, or
// over TLS to the secure port with the operator's certificate when the
// config closes the plaintext port. Checked before any call: a roll must
// not start that cannot watch the nodes.
func zkClient(cmd string, cfg ensemble.Config, probe bool, ca, cert, key string) (zk.Client, error) {
	zc := zk.Client{Timeout: 2 * time.Second}
	asks := cmd == "roll" || (probe && (cmd == "status" || cmd == "doctor"))
	if !asks || !cfg.ZooKeeper.TLS.PlaintextClosed() {
		return zc, nil
	}
	if ca == "" || cert == "" || key == "" {
		return zc, errTLSOnly
	}
	conf, err := zk.TLSFiles(ca, cert, key)
	if err != nil {
		return zc, fmt.Errorf("-tls-ca/-tls-cert/-tls-key: %w", err)
	}
	zc.TLS = conf
	return zc, nil
}

func (e env) status(ctx context.Context, c Cloud, cfg ensemble.Config, zc zk.Client, output string, probe bool) error {
	inv, soft, err := c.Inventory(ctx, cfg)
	if err != nil {
		return err
	}
	for _, s := range soft {
		fmt.Fprintf(e.stderr, "warning: %v\n", s)
	}
	var stats map[netip.AddrPort]zk.Stat
	var errs map[netip.AddrPort]error
	if probe {
		stats, errs = ask(ctx, cfg, zc)
	}
	rows := status.Rows(cfg, inv, stats, errs)
	if output == "json" {
		return status.JSON(e.stdout, cfg.Ensemble, rows)
	}
	return status.Print(e.stdout, rows)
}

func (e env) doctor(ctx context.Context, c Cloud, cfg ensemble.Config, zc zk.Client, d deploy.Desired, output string, probe bool) error {
	inv, soft, err := c.Inventory(ctx, cfg)
	if err != nil {
		return err
	}
	for _, s := range soft {
		fmt.Fprintf(e.stderr, "warning: %v\n", s)
	}
	subnet := ""
	for _, x := range inv.ENIs {
		subnet = x.Subnet
	}
	if id, ok := cfg.Deploy.SubnetOf(cfg.Nodes[0].AZ); ok {
		subnet = id
	}
	inv.DryRun = c.DryRun(ctx, cfg, subnet)
	in := doctor.Input{Config: cfg, Inv: inv}
	if probe {
		in.Stats, in.Errs = ask(ctx, cfg, zc)
	}
	fs := doctor.Run(in)
	if output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(fs); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RESULT\tCHECK\tSUBJECT\tDETAIL")
		for _, f := range fs {
			res := "ok"
			if !f.OK {
				res = "FAIL"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res, f.Check, f.Subject, f.Detail)
			if !f.OK {
				fmt.Fprintf(tw, "\t\t\tfix: %s\n", f.Fix)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%d check(s) failed\n", doctor.Failed(fs))
	}
	if n := doctor.Failed(fs); n > 0 {
		return problemsFound(n)
	}
	return nil
}

// zkNodes answers roll's srvr questions by node id.
type zkNodes struct {
	cfg ensemble.Config
	zc  zk.Client
}

func (z zkNodes) Stats(ctx context.Context) (map[int]zk.Stat, map[int]error) {
	stats, errs := ask(ctx, z.cfg, z.zc)
	byID, errByID := map[int]zk.Stat{}, map[int]error{}
	for _, n := range z.cfg.Nodes {
		a := z.cfg.ZooKeeper.ProbeAddr(n.IP)
		if st, ok := stats[a]; ok {
			byID[n.ID] = st
		} else {
			errByID[n.ID] = errs[a]
		}
	}
	return byID, errByID
}

func (e env) roll(ctx context.Context, c Cloud, cfg ensemble.Config, zc zk.Client, d deploy.Desired, log *slog.Logger) error {
	// The template first: its new default version is what replacements
	// launch from.
	if err := e.up(ctx, c, d, log); err != nil {
		return err
	}
	done, err := roll.Run(ctx, c.Roller(cfg.Ensemble), zkNodes{cfg, zc}, roll.Options{
		StepTimeout: cfg.Claim.Deadline.D() + cfg.Health.ReadyTimeout.D() + deploy.Margin, Log: log})
	fmt.Fprintf(e.stdout, "roll: replaced nodes %v\n", done)
	return err
}

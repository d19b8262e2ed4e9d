package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/zkaas/zkaas/ensemble"
	fbexporter "github.com/zkaas/zkaas/firstboot/exporter"
	"github.com/zkaas/zkaas/firstboot/zookeeper"
)

// exporter serves zkaas's Prometheus metrics (zkaas-exporter.service) on
// the node's ENI address and metrics.exporter.port — never on every
// address: the instance's primary address is not the node's, and only the
// ENI's security group opens the port. The address is the one run claimed
// (its report), so the exporter needs a successful run, as zookeeper.service
// does. With metrics.exporter off it exits at once: the unit is in every
// image, and the config (user data) says whether it serves.
func exporter(ctx context.Context, cfg ensemble.Config, state stateFiles, log *slog.Logger) error {
	m := cfg.Metrics.Exporter
	if !m.Enabled {
		log.Info("metrics.exporter is off: nothing to serve", "step", "exporter")
		return nil
	}
	node, ip, err := state.node()
	if err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	addr := netip.AddrPortFrom(ip, uint16(m.Port))
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return fmt.Errorf("exporter: listen on node %d's ENI address: %w", node, err)
	}
	// With the plaintext client port closed, mntr goes over TLS to the
	// secure port with the node's keystore: the unit runs as zookeeper to
	// read it (zkaas-exporter.service says why).
	dial, err := zookeeper.ProbeDialFiles(cfg.ZooKeeper.TLS, zookeeper.DefaultSecretDir, nil)
	if err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	c := &fbexporter.Collector{
		Ensemble:  cfg.Ensemble,
		ZooKeeper: cfg.ZooKeeper.ProbeAddr(ip),
		StateDir:  state.dir,
		Dial:      dial,
		Log:       log,
	}
	log.Info("serving /metrics", "step", "exporter", "node", node, "listen", addr.String(), "zookeeper", c.ZooKeeper.String())
	if err := fbexporter.Serve(ctx, ln, fbexporter.Handler(c)); err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	return nil
}

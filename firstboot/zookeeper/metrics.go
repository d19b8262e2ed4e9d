package zookeeper

// metrics.zookeeper: ZooKeeper's own Prometheus provider, rendered into
// zoo.cfg, and the check that the installed server can load it.
//
// Facts from the ZooKeeper source (PrometheusMetricsProvider.configure,
// zookeeper-metrics-providers/zookeeper-prometheus-metrics, since 3.6.0):
// the provider reads metricsProvider.httpHost (default 0.0.0.0: every
// address, which is why zkaas always sets it; the key exists since 3.7,
// ZOOKEEPER-3931 / PR 1574), metricsProvider.httpPort (default 7000) and
// metricsProvider.exportJvmInfo (default true). A server whose className
// cannot be loaded refuses to start (QuorumPeerConfig loads it while
// parsing zoo.cfg), so a missing jar must be caught before ZooKeeper runs.

import (
	"archive/zip"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/zkaas/zkaas/ensemble"
)

// renderMetrics is metrics.zookeeper's part of zoo.cfg: the provider bound
// to the node's ENI address only.
func renderMetrics(cfg ensemble.Config, node ensemble.Node, _ Layout, _ Material) (security, error) {
	m := cfg.Metrics.ZooKeeper
	if !m.Enabled {
		return security{}, nil
	}
	return security{zooCfg: MetricsProviderLines(node.IP, m.Port)}, nil
}

// MetricsProviderLines are the zoo.cfg lines of the Prometheus provider
// listening on addr:port.
func MetricsProviderLines(addr netip.Addr, port int) []string {
	return []string{
		"# metrics.zookeeper: ZooKeeper's Prometheus endpoint, on this node's ENI address only.",
		"metricsProvider.className=" + ensemble.PrometheusProviderClass,
		"metricsProvider.httpHost=" + addr.String(),
		"metricsProvider.httpPort=" + strconv.Itoa(port),
		"metricsProvider.exportJvmInfo=true",
	}
}

// providerClassFile is the provider's class inside its jar.
const providerClassFile = "org/apache/zookeeper/metrics/prometheus/PrometheusMetricsProvider.class"

// Install is where the bake put ZooKeeper (roles/zookeeper): the release
// tarball's lib/ that zookeeper.service's classpath names, the unit
// itself, and the drop-in that points the unit at the distribution's jar.
type Install struct {
	LibDir       string // /opt/zookeeper/lib
	Unit         string // /etc/systemd/system/zookeeper.service
	DistroDropIn string // /etc/systemd/system/zookeeper.service.d/20-zkaas-distro.conf
}

// DefaultInstall is the image's layout: roles/zookeeper's paths, and
// firstboot/systemd's UnitDir (spelled out here because that package's
// tests import this one; its TestUnitsAgreeWithFirstboot pins them).
func DefaultInstall() Install {
	return Install{
		LibDir:       "/opt/zookeeper/lib",
		Unit:         "/etc/systemd/system/zookeeper.service",
		DistroDropIn: "/etc/systemd/system/zookeeper.service.d/20-zkaas-distro.conf",
	}
}

// NoPrometheusProvider says why the installed ZooKeeper cannot load the
// Prometheus provider, or "" when it can — and "" off an image (no
// zookeeper.service of the bake's: an operator validating user data on a
// laptop cannot know what the image holds). It is
// ensemble.Options.NoPrometheusProvider.
func (i Install) NoPrometheusProvider() string {
	if _, err := os.Stat(i.Unit); err != nil {
		return ""
	}
	if _, err := os.Stat(i.DistroDropIn); err == nil {
		// The drop-in's classpath is the distribution's zookeeper.jar and
		// an SLF4J binding: nothing else is loaded, whatever is installed.
		return "it runs the distribution's package (" + i.DistroDropIn + "), which does not ship zookeeper-prometheus-metrics"
	}
	jars, _ := filepath.Glob(filepath.Join(i.LibDir, "*.jar"))
	for _, j := range jars {
		if jarHas(j, providerClassFile) {
			return ""
		}
	}
	return fmt.Sprintf("no jar in %s holds %s", i.LibDir, ensemble.PrometheusProviderClass)
}

// jarHas reports whether the jar lists name; an unreadable jar holds
// nothing.
func jarHas(jar, name string) bool {
	r, err := zip.OpenReader(jar)
	if err != nil {
		return false
	}
	defer r.Close()
	for _, f := range r.File {
		if f.Name == name {
			return true
		}
	}
	return false
}

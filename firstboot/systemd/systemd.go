// Package systemd carries the zkaas unit files, so the bake installs exactly
// the bytes that were verified with systemd-analyze in this repository.
package systemd

import (
	"embed"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/zkaas/zkaas/ensemble"
)

// Unit names.
const (
	Firstboot = "zkaas-firstboot.service"
	ZooKeeper = "zookeeper.service"
	Ready     = "zkaas-ready.service"
	// Exporter serves Prometheus metrics (metrics.exporter).
	Exporter = "zkaas-exporter.service"
	// Unhealthy is the template OnFailure= instantiates with the failed
	// unit's name: zkaas-unhealthy@zookeeper.service.service.
	Unhealthy = "zkaas-unhealthy@.service"
)

// UnitDir is where the bake installs the units (administrator units, so a
// distro package's own zookeeper.service under /usr/lib cannot win).
const UnitDir = "/etc/systemd/system"

// DropInName is the file name of ReadWriteDropIn under
// UnitDir/zookeeper.service.d/.
const DropInName = "10-zkaas-volume.conf"

var plainPath = regexp.MustCompile(`^[A-Za-z0-9/._-]+$`)

//go:embed zkaas-firstboot.service zookeeper.service zkaas-ready.service zkaas-unhealthy@.service zkaas-exporter.service
var units embed.FS

// Names lists the units in the order they start (the OnFailure= template
// last: it starts only when one of the others fails).
func Names() []string { return []string{Firstboot, ZooKeeper, Ready, Exporter, Unhealthy} }

// Unit returns the bytes of a unit file by name.
func Unit(name string) ([]byte, error) {
	b, err := units.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("unit %s: %w", name, err)
	}
	return b, nil
}

// ReadWriteDropIn returns the zookeeper.service drop-in for a data volume
// mounted somewhere other than ensemble.DefaultMountPoint (the unit's own
// ReadWritePaths=), or nil when none is needed.
// ProtectSystem=strict makes every other path read-only, and the unit is
// loaded before firstboot runs, so the bake (which has the config) installs
// it rather than firstboot.
func ReadWriteDropIn(mountPoint string) ([]byte, error) {
	// Unit files split on whitespace and expand %; such paths are refused
	// rather than escaped.
	if !filepath.IsAbs(mountPoint) || filepath.Clean(mountPoint) != mountPoint || !plainPath.MatchString(mountPoint) {
		return nil, fmt.Errorf("mount point %q must be a clean absolute path of letters, digits and /._-", mountPoint)
	}
	if mountPoint == ensemble.DefaultMountPoint {
		return nil, nil
	}
	// The empty assignment drops the default path: ZooKeeper gets write
	// access to its volume and nothing else.
	return fmt.Appendf(nil, "# Installed by the zkaas bake: the data volume is mounted at %[1]s.\n[Service]\nReadWritePaths=\nReadWritePaths=%[1]s\n", mountPoint), nil
}

//go:build linux

// Package hotplug tells the claim when this instance sees what EC2
// attached to it: the network interface with the ENI's MAC (netlink: one
// link listing, then link updates; see netcfg.FindLinkByMAC) and the block
// device of the volume (its NVMe serial in sysfs, its
// /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol… link, or on Xen the
// requested device name). *Devices is the claim's Devices.
package hotplug

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/firstboot/netcfg"
)

// Devices watches this instance's devices. The zero value uses the real
// system paths; tests point the directories at temporary trees.
type Devices struct {
	DevDir    string        // default /dev
	SysfsRoot string        // default /sys
	Poll      time.Duration // how often the volume's device is looked for; default 50ms
	Log       *slog.Logger  // default slog.Default()
}

func (d *Devices) devDir() string       { return cmp.Or(d.DevDir, "/dev") }
func (d *Devices) sysfsRoot() string    { return cmp.Or(d.SysfsRoot, "/sys") }
func (d *Devices) poll() time.Duration  { return cmp.Or(d.Poll, 50*time.Millisecond) }
func (d *Devices) logger() *slog.Logger { return cmp.Or(d.Log, slog.Default()) }
func (d *Devices) byID(volumeID string) string {
	return filepath.Join(d.devDir(), "disk", "by-id", disk.EBSByIDName(volumeID))
}

// forever bounds nothing: the claim's context bounds every wait (its
// deadline, and the stuck-attach bound of its own polling).
const forever = 24 * time.Hour

// WaitNIC returns once a link with the MAC exists in this network
// namespace. Links are matched by MAC only: the kernel may call a
// hot-plugged ENI eth1, ens6 or enp0s6, and udev may rename it.
func (d *Devices) WaitNIC(ctx context.Context, mac string) error {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return fmt.Errorf("wait for NIC: mac %q: %w", mac, err)
	}
	if _, err := netcfg.FindLinkByMAC(ctx, hw, forever); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// WaitVolume returns once the volume's block device exists. The kernel's
// sysfs entry (/sys/class/block/<name>/device/serial: the volume id
// without its dash, as EBS sets the NVMe serial) comes first, udev's by-id
// link right after; on Xen there is no serial and the device appears under
// the requested name (xvdf for sdf). Neither sysfs nor devtmpfs is worth
// an inotify watch here: a look is a directory read, so it looks every
// Poll until ctx is done.
func (d *Devices) WaitVolume(ctx context.Context, volumeID, device string) error {
	serial := disk.EBSSerial(volumeID)
	names := []string{}
	if device != "" {
		base := filepath.Base(device)
		names = append(names, base)
		switch {
		case strings.HasPrefix(base, "sd"):
			names = append(names, "xvd"+strings.TrimPrefix(base, "sd"))
		case strings.HasPrefix(base, "xvd"):
			names = append(names, "sd"+strings.TrimPrefix(base, "xvd"))
		}
	}
	t := time.NewTicker(d.poll())
	defer t.Stop()
	for {
		where, err := d.lookVolume(serial, volumeID, names)
		if err != nil {
			return err
		}
		if where != "" {
			d.logger().Debug("volume device visible", "step", "claim-wait", "volume", volumeID, "device", where)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// lookVolume returns where the volume's device was found, or "".
func (d *Devices) lookVolume(serial, volumeID string, names []string) (string, error) {
	if isBlock(d.byID(volumeID)) {
		return d.byID(volumeID), nil
	}
	blocks := filepath.Join(d.sysfsRoot(), "class", "block")
	entries, err := os.ReadDir(blocks)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("wait for volume %s: %w", volumeID, err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(blocks, e.Name(), "device", "serial"))
		if err == nil && strings.TrimSpace(string(b)) == serial {
			return filepath.Join(blocks, e.Name()), nil
		}
	}
	for _, n := range names {
		if p := filepath.Join(d.devDir(), n); isBlock(p) {
			return p, nil
		}
	}
	return "", nil
}

func isBlock(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
}

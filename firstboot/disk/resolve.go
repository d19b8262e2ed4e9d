package disk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ebsByIDPrefix is how udev names an EBS volume on Nitro instances (the
// NVMe model string, then the serial, which is the volume id without its
// dash): /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0.
const ebsByIDPrefix = "nvme-Amazon_Elastic_Block_Store_"

// EBSSerial is the device serial EC2 gives a volume: its id without the dash.
func EBSSerial(volumeID string) string { return strings.Replace(volumeID, "-", "", 1) }

// EBSByIDName is the volume's name under /dev/disk/by-id on Nitro.
func EBSByIDName(volumeID string) string { return ebsByIDPrefix + EBSSerial(volumeID) }

// ResolveDevice waits, bounded by DeviceTimeout, for the block device of the
// volume to appear and returns its canonical path (/dev/nvme1n1, /dev/xvdf).
//
// Candidates, checked immediately and then every PollInterval:
//   - Nitro: ByIDDir/nvme-Amazon_Elastic_Block_Store_vol<hex>, which must
//     lead to a device whose serial is exactly that volume id, because a
//     by-id link can be stale for a moment after a detach/attach (see
//     aws-ebs-csi-driver issue 1224);
//   - Xen: spec.Device (/dev/xvdf or /dev/sdf) and its xvd↔sd alias. If the
//     name leads to a device that reports an EBS serial (a udev rule on
//     Nitro links sdf to nvme1n1), that serial must match too.
//
// A candidate that fails verification is not used; if none verifies by the
// deadline the error says why, and is ErrRefused for a serial mismatch.
func (p *Preparer) ResolveDevice(ctx context.Context, spec Spec) (string, error) {
	if !volumeIDPattern.MatchString(spec.VolumeID) {
		return "", fmt.Errorf("invalid volume id %q", spec.VolumeID)
	}
	serial := EBSSerial(spec.VolumeID)
	byID := filepath.Join(p.byIDDir(), EBSByIDName(spec.VolumeID))
	candidates := []string{byID}
	if spec.Device != "" {
		candidates = append(candidates, spec.Device)
		if alias := xenAlias(spec.Device); alias != "" {
			candidates = append(candidates, alias)
		}
	}
	timeout, interval := p.deviceTimeout(), p.pollInterval()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var lastErr error // why the candidates of the latest round were unusable
	for {
		lastErr = nil
		for _, c := range candidates {
			dev, err := p.verifyCandidate(c, serial, c == byID)
			if err != nil {
				lastErr = err
				continue
			}
			if dev != "" {
				return dev, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for device of volume %s: %w", spec.VolumeID, ctx.Err())
		case <-deadline.C:
			if lastErr != nil {
				return "", fmt.Errorf("volume %s: no usable device after %s: %w", spec.VolumeID, timeout, lastErr)
			}
			return "", fmt.Errorf("volume %s: no device appeared within %s (looked for %s)",
				spec.VolumeID, timeout, strings.Join(candidates, ", "))
		case <-tick.C:
		}
	}
}

// verifyCandidate returns the canonical device path behind path if it is a
// block device of the volume, "" if path does not exist (yet), or an error
// saying why it cannot be used.
func (p *Preparer) verifyCandidate(path, wantSerial string, needSerial bool) (string, error) {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	dev, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", path, err)
	}
	fi, err := os.Stat(dev)
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", dev, err)
	}
	if fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return "", fmt.Errorf("%s (from %s) is not a block device", dev, path)
	}
	serial, err := p.serialOf(filepath.Base(dev))
	switch {
	case err != nil && (needSerial || !errors.Is(err, os.ErrNotExist)):
		return "", fmt.Errorf("serial of %s (from %s): %w", dev, path, err)
	case err != nil:
		return dev, nil // a Xen device has no serial to check
	case serial == wantSerial:
		return dev, nil
	case needSerial || strings.HasPrefix(serial, "vol"):
		return "", refuse("device %s (from %s) has serial %q, want %q: refusing to use another volume", dev, path, serial, wantSerial)
	default:
		return dev, nil // a serial, but not an EBS one: nothing to compare
	}
}

// serialOf reads the device serial from sysfs. For an NVMe namespace
// (nvme1n1) the device link leads to the controller, whose serial is the
// EBS volume id without the dash, space-padded to 20 characters.
func (p *Preparer) serialOf(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(p.sysfsRoot(), "class", "block", name, "device", "serial"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// xenAlias maps /dev/sdX to /dev/xvdX and back: on Xen instances the block
// frontend names the device requested as sdf "xvdf".
func xenAlias(dev string) string {
	dir, name := filepath.Split(dev)
	switch {
	case strings.HasPrefix(name, "xvd"):
		return dir + "sd" + strings.TrimPrefix(name, "xvd")
	case strings.HasPrefix(name, "sd"):
		return dir + "xvd" + strings.TrimPrefix(name, "sd")
	}
	return ""
}

package localcloud

import (
	"context"
	"fmt"
	"os"
	"strconv"
)

// Devices of a machine. udev does not run in a container (systemd-nspawn
// gives it no uevents and a /dev of its own), so the harness plays udev's
// part: when EC2 attaches a volume it creates, inside the running
// machine's /dev, the block node and the
// /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol… link, and the
// /sys/class/block/<name>/device/serial that firstboot's disk resolver
// reads; on detach it removes them. nspawn makes a fresh /dev and /sys at
// every boot, so the harness records what is attached and creates it again
// in each boot's container (plugDevices) — as a reboot on EC2 keeps its
// volumes.

// containerPath is p inside the current boot's container, for the
// harness. Call with m.mu held and m.root set.
func (m *machine) containerPath(p string) string {
	return fmt.Sprintf("/proc/self/fd/%d%s", m.root.Fd(), p)
}

// plugDevices prepares a new boot's container for hot-plugged devices — a
// writable tmpfs over its read-only /sys/class/block, /dev/disk/by-id — and
// creates every device attached now. Call with m.mu held.
func (m *machine) plugDevices(ctx context.Context) error {
	t := m.inst.cloud.tools
	if err := t.run(ctx, t.nsenter, "--target="+strconv.Itoa(m.pid1), "--mount", "--",
		"mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev,noexec,size=4m", "localcloud-block", "/sys/class/block"); err != nil {
		return fmt.Errorf("sysfs for devices of %s: %w", m.inst.ID, err)
	}
	if err := os.MkdirAll(m.containerPath("/dev/disk/by-id"), 0o755); err != nil {
		return fmt.Errorf("/dev/disk/by-id of %s: %w", m.inst.ID, err)
	}
	for _, d := range m.devices {
		if err := exposeDeviceAt(m.containerPath, d.name, d.rdev, d.volumeID); err != nil {
			return fmt.Errorf("device %s of %s: %w", d.name, m.inst.ID, err)
		}
	}
	return nil
}

// addDevice records a newly attached device and, while PID 1 runs, creates
// it in the container at once.
func (m *machine) addDevice(name string, rdev uint64, volumeID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.devices[name] = exposedDevice{name: name, rdev: rdev, volumeID: volumeID}
	if m.root == nil {
		return nil // between boots: the next boot creates it
	}
	return exposeDeviceAt(m.containerPath, name, rdev, volumeID)
}

// removeDevice forgets a device and removes it from the running container.
func (m *machine) removeDevice(name, volumeID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.devices, name)
	if m.root != nil {
		hideDeviceAt(m.containerPath, name, volumeID)
	}
}

// mountNSArgs are nsenter's arguments for the mount namespace where the
// instance's programs mount volumes: PID 1's while a machine runs (nil
// between boots: nothing is mounted then), else the instance's own.
func (inst *Instance) mountNSArgs() []string {
	if m := inst.machine; m != nil {
		pid1, _, _, _ := m.state()
		if pid1 == 0 {
			return nil
		}
		// Its PID namespace too: there /proc is the container's, whose
		// /proc/self (read by cat and by umount's libmount) names only
		// processes of that namespace.
		return []string{"--target=" + strconv.Itoa(pid1), "--mount", "--pid"}
	}
	return []string{"--mount=" + inst.MountNS}
}

package localcloud

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/firstboot/disk"
)

// TestMachineLifecycle: a machine boots the image with systemd as PID 1;
// the image's zkaas-firstboot.service claims node 1's ENI and volume
// (hot-plugged into the running machine), formats and mounts it, and
// zookeeper.service starts: the system settles "running", nothing failed.
// A reboot stops the units in order, unmounts the volume, and boots PID 1
// again on the same root with the devices back; Terminate shuts down
// cleanly within its bound. A second machine crashes (kill -9 of its whole
// cgroup): no shutdown, and nothing of it is left.
func TestMachineLifecycle(t *testing.T) {
	const bound = 60 * time.Second
	c := machineCloud(t, bound)
	cfg := machineConfig("lc", 30*time.Second)
	var slots []Slot
	for i, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		s, err := c.CreateSlot("lc", i+1, az, "10.0."+string(rune('1'+i))+".10", 1)
		if err != nil {
			t.Fatal(err)
		}
		slots = append(slots, s)
	}
	files := LaunchOptions{Files: map[string][]byte{"/etc/zkaas/ensemble.yaml": cfg}}

	start := time.Now()
	inst, err := c.LaunchWith(t.Context(), "us-east-1a", files)
	if err != nil {
		t.Fatal(err)
	}
	launched := time.Since(start)
	if got := waitUnit(t, inst, "zkaas-firstboot.service", "active", "failed"); got != "active" {
		t.Fatalf("zkaas-firstboot.service %s:\n%s", got, journal(t, inst, "-u", "zkaas-firstboot", "-o", "cat"))
	}
	firstboot := time.Since(start)
	state := waitSystem(t, inst)
	settled := time.Since(start)
	failed, err := inst.FailedUnits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if state != "running" || len(failed) > 0 {
		t.Errorf("system %s, failed units %v; want running, none", state, failed)
	}
	t.Logf("launch → PID 1 %s, → firstboot done %s, → system %s %s", launched.Round(time.Millisecond), firstboot.Round(time.Millisecond), state, settled.Round(time.Millisecond))

	// The hot-plugged ENI and volume, inside the machine.
	slot := slots[0]
	if out := inside(t, inst, "ip -o link"); !strings.Contains(out, slot.ENI.MAC) {
		t.Errorf("the machine has no link with %s's MAC %s:\n%s", slot.ENI.ID, slot.ENI.MAC, out)
	}
	byID := "/dev/disk/by-id/" + disk.EBSByIDName(slot.Volume.ID)
	dev := inside(t, inst, "readlink -f "+byID)
	name := filepath.Base(dev)
	if got := inside(t, inst, "cat /sys/class/block/"+name+"/device/serial"); got != disk.EBSSerial(slot.Volume.ID) {
		t.Errorf("serial of %s = %q, want %q", name, got, disk.EBSSerial(slot.Volume.ID))
	}
	if got := inside(t, inst, "findmnt -n -o SOURCE /var/lib/zookeeper"); got != dev {
		t.Errorf("/var/lib/zookeeper is on %q, want %s", got, dev)
	}
	if got := waitUnit(t, inst, "zookeeper.service", "active", "failed"); got != "active" {
		t.Errorf("zookeeper.service %s", got)
	}

	t.Run("reboot", func(t *testing.T) {
		inside(t, inst, "echo kept > /root/marker")
		pid1 := inst.PID1()
		start := time.Now()
		if err := c.Reboot(t.Context(), inst); err != nil {
			t.Fatal(err)
		}
		back := time.Since(start)
		if inst.PID1() == pid1 || inst.Boots() != 2 {
			t.Errorf("PID 1 %d (boot %d) after the reboot, was %d", inst.PID1(), inst.Boots(), pid1)
		}
		if got := inside(t, inst, "cat /root/marker"); got != "kept" {
			t.Errorf("marker after the reboot = %q, want kept", got)
		}
		if got := waitUnit(t, inst, "zkaas-firstboot.service", "active", "failed"); got != "active" {
			t.Fatalf("zkaas-firstboot.service %s after the reboot", got)
		}
		state := waitSystem(t, inst)
		t.Logf("reboot → PID 1 %s, → system %s %s", back.Round(time.Millisecond), state, time.Since(start).Round(time.Millisecond))
		prev := journal(t, inst, "--boot=-1", "-o", "cat")
		for _, want := range []string{"Stopped zookeeper.service", "Unmounted var-lib-zookeeper.mount", "System Reboot"} {
			if !strings.Contains(prev, want) {
				t.Errorf("the previous boot's journal lacks %q", want)
			}
		}
		if i, j := strings.Index(prev, "Stopped zookeeper.service"), strings.Index(prev, "Unmounted var-lib-zookeeper.mount"); i < 0 || j < i {
			t.Errorf("ZooKeeper not stopped before its volume was unmounted")
		}
		if !strings.Contains(mountsOf(t, inst), " /var/lib/zookeeper ") {
			t.Errorf("volume not mounted again after the reboot")
		}
	})

	t.Run("terminate", func(t *testing.T) {
		cg := inst.Cgroup()
		start := time.Now()
		if err := c.Terminate(t.Context(), inst); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		t.Logf("terminate (clean shutdown, bound %s) took %s", bound, took.Round(time.Millisecond))
		if took > bound {
			t.Errorf("terminate took %s, longer than its bound", took)
		}
		last := journal(t, inst, "--boot=0", "-o", "cat")
		for _, want := range []string{"Stopped zookeeper.service", "Unmounted var-lib-zookeeper.mount", "System Halt"} {
			if !strings.Contains(last, want) {
				t.Errorf("the last boot's journal lacks %q", want)
			}
		}
		checkMachineGone(t, c, inst, cg, slot)
	})

	t.Run("crash", func(t *testing.T) {
		inst, err := c.LaunchWith(t.Context(), "us-east-1b", files)
		if err != nil {
			t.Fatal(err)
		}
		if got := waitUnit(t, inst, "zookeeper.service", "active", "failed"); got != "active" {
			t.Fatalf("zookeeper.service %s", got)
		}
		pids, err := cgroupPIDs(inst.Cgroup())
		if err != nil || len(pids) < 3 {
			t.Fatalf("machine's processes %v (%v)", pids, err)
		}
		cg := inst.Cgroup()
		if err := c.Crash(t.Context(), inst); err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if !gone(pid) {
				t.Errorf("process %d of the crashed machine still runs", pid)
			}
		}
		last := journal(t, inst, "--boot=0", "-o", "cat")
		for _, never := range []string{"Stopping", "Unmounted", "System Halt", "Reached target shutdown.target"} {
			if strings.Contains(last, never) {
				t.Errorf("the crashed boot's journal has %q: a shutdown ran", never)
			}
		}
		if !strings.Contains(last, "Started zookeeper.service") {
			t.Errorf("the crashed boot's journal lacks its start (not persistent?)")
		}
		checkMachineGone(t, c, inst, cg, slots[1])
	})
}

// checkMachineGone checks nothing of a removed machine is left: its cgroup,
// network namespace, mount namespace, its volume's loop device.
func checkMachineGone(t *testing.T, c *Cloud, inst *Instance, cg string, slot Slot) {
	t.Helper()
	for _, p := range []string{cg, inst.NetNS, inst.MountNS, inst.dir} {
		if exists(p) {
			t.Errorf("%s of %s left behind", p, inst.ID)
		}
	}
	if loops := loopOf(t, volumeFile(t, c, slot.Volume.ID)); len(loops) > 0 {
		t.Errorf("loop devices %v left on %s", loops, slot.Volume.ID)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	// By path: instance ids repeat across clouds (the simulator is seeded).
	for _, p := range []string{inst.dir, inst.MountNS, inst.NetNS} {
		if strings.Contains(string(mi), p) {
			t.Errorf("mount %s of %s left on the host", p, inst.ID)
		}
	}
}

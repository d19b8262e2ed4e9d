package localcloud

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/zkaas/zkaas/firstboot/disk"
)

// envCrashMachine (the image's root) makes the crash helper boot a machine.
const envCrashMachine = "LOCALCLOUD_TEST_CRASH_MACHINE"

// TestReclaimMachineAfterCrash kills (SIGKILL) a harness that has a machine
// running, with a volume mounted inside it, and checks that the next New
// kills the machine by the PIDs of its recorded cgroup and reclaims the
// rest: cgroup, namespaces, loop device.
func TestReclaimMachineAfterCrash(t *testing.T) {
	rootfs := bakedImage(t)
	_, out, report := runCrashChild(t, envCrashMachine+"="+rootfs)
	pid1, err := strconv.Atoi(report["PID1"])
	if err != nil {
		t.Fatalf("crash helper did not report: %s", out)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid1, syscall.SIGKILL) }) // should New not
	cg := report["CGROUP"]
	if gone(pid1) || !exists(cg) || len(loopOf(t, report["FILE"])) != 1 {
		t.Fatalf("the crash left PID 1 gone %v, cgroup %s there %v, loops %v: not what a crash leaves", gone(pid1), cg, exists(cg), loopOf(t, report["FILE"]))
	}
	pids, _ := cgroupPIDs(cg)

	newCloud(t, Options{EC2: fastSim})

	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("process %d of the crashed run's machine still running", pid)
		}
	}
	for _, path := range []string{cg, report["STATE"], report["NETNS"]} {
		if exists(path) {
			t.Errorf("%s not reclaimed", path)
		}
	}
	if got := loopOf(t, report["FILE"]); len(got) != 0 {
		t.Errorf("loop device %v on the crashed run's volume not released", got)
	}
}

// machineCrashHelper boots a machine, mounts a volume inside it, reports
// and SIGKILLs itself.
func machineCrashHelper() {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Println("ERROR=" + err.Error())
		os.Exit(1)
	}
	c, err := New(ctx, Options{EC2: fastSim, RootFS: os.Getenv(envCrashMachine), Boot: BootSystemd, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fail(err)
	}
	inst, err := c.LaunchWith(ctx, "us-east-1a", LaunchOptions{Files: map[string][]byte{"/etc/zkaas/ensemble.yaml": machineConfig("none", 2*time.Second)}})
	if err != nil {
		fail(err)
	}
	vol, err := attachNewVolume(ctx, c, inst)
	if err != nil {
		fail(err)
	}
	byID := "/dev/disk/by-id/" + disk.EBSByIDName(vol.ID)
	if out, err := inst.Command(ctx, "sh", "-ec", "mkfs.ext4 -q "+byID+"; mkdir -p /mnt/v; mount "+byID+" /mnt/v").CombinedOutput(); err != nil {
		fail(fmt.Errorf("%w: %s", err, out))
	}
	file, _ := c.VolumeFile(vol.ID)
	fmt.Printf("PID1=%d\nCGROUP=%s\nFILE=%s\nSTATE=%s\nNETNS=%s\n", inst.PID1(), inst.Cgroup(), file, c.volumes.dir, inst.NetNS)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

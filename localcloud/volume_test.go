package localcloud

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// TestVolumeFollowsData: a volume attached through the real SDK is the
// instance's EBS device for firstboot's own resolver, on that instance only;
// data written to it survives a detach and an attach to another instance.
func TestVolumeFollowsData(t *testing.T) {
	opts := fastSim
	opts.Latency = ec2sim.Latency{VolumeAttach: 100 * time.Millisecond, VolumeDetach: 50 * time.Millisecond}
	c := newCloud(t, Options{EC2: opts})
	a := launch(t, c, "us-east-1a")
	b := launch(t, c, "us-east-1a")
	vol, err := c.CreateVolume("us-east-1a", 1, map[string]string{TagNode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	file := volumeFile(t, c, vol.ID)
	byID := "/dev/disk/by-id/" + disk.EBSByIDName(vol.ID)
	mnt := t.TempDir() // exists for every instance; mounts there stay theirs

	attach := func(t *testing.T, inst *Instance) string {
		t.Helper()
		if _, err := ec2From(inst).AttachVolume(t.Context(), &ec2.AttachVolumeInput{
			VolumeId: aws.String(vol.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/sdf"),
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, vol.ID+" attached", func() bool { return volumeState(c, vol.ID) == ec2sim.AttachAttached })
		return resolve(t, inst, vol.ID)
	}
	detach := func(t *testing.T, inst *Instance) {
		t.Helper()
		if _, err := ec2From(inst).DetachVolume(t.Context(), &ec2.DetachVolumeInput{VolumeId: aws.String(vol.ID)}); err != nil {
			t.Fatal(err)
		}
		eventually(t, vol.ID+" available", func() bool { return volumeState(c, vol.ID) == ec2sim.StatusAvailable })
		eventually(t, "loop device released", func() bool { return len(loopOf(t, file)) == 0 })
	}

	dev := attach(t, a)
	loops := loopOf(t, file)
	if len(loops) != 1 || dev != "/dev/"+loops[0].Name {
		t.Fatalf("resolver on %s found %s; loop devices of %s: %v", a.ID, dev, file, loops)
	}
	name := loops[0].Name
	if got := run(t, a, "cat /sys/class/block/"+name+"/device/serial; cat /sys/class/block/"+name+"/size"); got != strings.Replace(vol.ID, "-", "", 1)+"\n2097152" {
		t.Errorf("sysfs of %s on %s: %q", name, a.ID, got)
	}
	for where, path := range map[string]string{"host": byID, b.ID: b.Path(byID), b.ID + " /dev": b.Path("/dev/" + name)} {
		if exists(path) {
			t.Errorf("%s sees %s, attached to %s", where, path, a.ID)
		}
	}
	run(t, a, "mkfs.ext4 -q "+byID+" && mount "+byID+" "+mnt+" && echo kept > "+mnt+"/data && sync")
	if entries, _ := os.ReadDir(mnt); len(entries) != 0 {
		t.Errorf("the host sees %v in %s, mounted on %s only", entries, mnt, a.ID)
	}

	// Detached while mounted, as EC2 does: the harness unmounts.
	detach(t, a)
	if got := run(t, a, "grep -c ' "+mnt+" ' /proc/self/mountinfo || true; ls /dev/disk/by-id | wc -l"); got != "0\n0" {
		t.Errorf("%s still has the volume mounted or linked: %q", a.ID, got)
	}

	attach(t, b)
	if got := run(t, b, "mount "+byID+" "+mnt+" && cat "+mnt+"/data"); got != "kept" {
		t.Errorf("data on %s after the move = %q, want kept", b.ID, got)
	}
	// Left mounted on b: Close must unmount it and release the device.
}

// resolve runs firstboot's device resolver on the instance (this test
// binary, re-executed there) and returns the device it found.
func resolve(t *testing.T, inst *Instance, volumeID string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd := inst.Command(t.Context(), exe)
	cmd.Env = append(cmd.Env, envResolve+"="+volumeID)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("resolve %s on %s: %v: %s", volumeID, inst.ID, err, stderr.String())
	}
	return filepath.Clean(strings.TrimSpace(string(out)))
}

// TestAPICreatedVolume: a volume made with the real SDK's CreateVolume (as
// `zkaas up` makes them), not Cloud.CreateVolume, gets its backing file at
// its first attach — of its size, reading zero — and is the instance's EBS
// device like any other.
func TestAPICreatedVolume(t *testing.T) {
	opts := fastSim
	opts.Latency = ec2sim.Latency{VolumeAttach: 50 * time.Millisecond}
	c := newCloud(t, Options{EC2: opts})
	inst := launch(t, c, "us-east-1a")
	api := ec2From(inst)
	out, err := api.CreateVolume(t.Context(), &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.VolumeId)
	eventually(t, id+" available", func() bool { return volumeState(c, id) == ec2sim.StatusAvailable })
	if _, ok := c.volumes.file(id); ok {
		t.Fatalf("%s has a backing file before any attach", id)
	}
	if _, err := api.AttachVolume(t.Context(), &ec2.AttachVolumeInput{VolumeId: aws.String(id), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/sdf")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, id+" attached", func() bool { return volumeState(c, id) == ec2sim.AttachAttached })
	dev := resolve(t, inst, id)
	name := filepath.Base(dev)
	if got := run(t, inst, "cat /sys/class/block/"+name+"/size; head -c 1048576 "+dev+" | tr -d '\\000' | wc -c"); got != "4194304\n0" {
		t.Errorf("%s on %s: %q, want 2 GiB reading zero", id, inst.ID, got)
	}
}

package localcloud

import (
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// TestTerminate: terminating an instance kills its processes by PID —
// tracked ones and daemons it forked alike — deletes its namespaces,
// releases its veths and loop devices, and the simulator makes its ENI and
// volume available again; the other instance is untouched.
func TestTerminate(t *testing.T) {
	opts := fastSim
	opts.Latency = ec2sim.Latency{InstanceTerminate: 50 * time.Millisecond, ENIDetach: 50 * time.Millisecond, VolumeDetach: 50 * time.Millisecond}
	c := newCloud(t, Options{EC2: opts})
	other := launch(t, c, "us-east-1b")
	inst := launch(t, c, "us-east-1b")
	slot, err := c.CreateSlot("test", 1, "us-east-1b", "10.0.2.10", 1)
	if err != nil {
		t.Fatal(err)
	}
	api := ec2From(inst)
	if _, err := api.AttachNetworkInterface(t.Context(), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(slot.ENI.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(1),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.AttachVolume(t.Context(), &ec2.AttachVolumeInput{
		VolumeId: aws.String(slot.Volume.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/sdf"),
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "attachments", func() bool {
		return eniStatus(c, slot.ENI.ID) == ec2sim.AttachAttached && volumeState(c, slot.Volume.ID) == ec2sim.AttachAttached
	})
	mnt := t.TempDir()
	byID := "/dev/disk/by-id/" + disk.EBSByIDName(slot.Volume.ID)
	run(t, inst, "mkfs.ext4 -q "+byID+" && mount "+byID+" "+mnt)

	tracked, err := inst.Start(inst.Command(t.Context(), "sleep", "600"))
	if err != nil {
		t.Fatal(err)
	}
	// A daemon: its parent exits, the harness never knew its PID.
	daemon, err := strconv.Atoi(run(t, inst, "cd "+mnt+" && sleep 600 >/dev/null 2>&1 & echo $!"))
	if err != nil {
		t.Fatal(err)
	}
	vpc := netlinkIn(t, c.vpc.ns)
	linksBefore := linkNames(t, vpc)
	file := volumeFile(t, c, slot.Volume.ID)

	if err := c.Terminate(t.Context(), inst); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tracked.Done():
	default:
		t.Error("tracked process still running after Terminate")
	}
	if !gone(daemon) {
		t.Errorf("daemon %d still running after Terminate", daemon)
	}
	for _, path := range []string{inst.NetNS, inst.MountNS} {
		if exists(path) {
			t.Errorf("%s still exists", path)
		}
	}
	if got := loopOf(t, file); len(got) != 0 {
		t.Errorf("loop device %v still on %s", got, file)
	}
	if got := linkNames(t, vpc); len(got) != len(linksBefore)-2 {
		t.Errorf("VPC links after Terminate: %v, before: %v; want the primary and the ENI's gone", got, linksBefore)
	}
	eventually(t, "instance terminated, ENI and volume available", func() bool {
		si, _ := c.Sim().Instance(inst.ID)
		return si.State == ec2sim.StateTerminated && eniStatus(c, slot.ENI.ID) == ec2sim.StatusAvailable &&
			volumeState(c, slot.Volume.ID) == ec2sim.StatusAvailable
	})
	if _, err := inst.Start(inst.Command(t.Context(), "true")); err == nil {
		t.Error("Start on a terminated instance succeeded")
	}
	if err := c.Terminate(t.Context(), inst); err == nil {
		t.Error("second Terminate succeeded")
	}
	if got := run(t, other, "echo alive"); got != "alive" {
		t.Errorf("other instance: %q", got)
	}

	// The replacement takes the slot over, as firstboot will.
	repl := launch(t, c, "us-east-1b")
	if _, err := ec2From(repl).AttachVolume(t.Context(), &ec2.AttachVolumeInput{
		VolumeId: aws.String(slot.Volume.ID), InstanceId: aws.String(repl.ID), Device: aws.String("/dev/sdf"),
	}); err != nil {
		t.Fatal(err)
	}
	if got := resolve(t, repl, slot.Volume.ID); got != "/dev/"+loopOf(t, file)[0].Name {
		t.Errorf("replacement resolved %s", got)
	}
}

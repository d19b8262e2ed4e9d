package localcloud

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/zkaas/zkaas/firstboot/disk"
)

// TestMachineHotplug: a machine whose ensemble has no slots settles
// "degraded" with exactly zkaas-firstboot.service failed (its claim finds
// nothing) and zookeeper.service never started. Then an ENI and a volume
// attached through the real SDK appear inside the running machine only
// after the attach — the link by its MAC; the device node, the by-id link
// and the serial where firstboot's disk resolver reads them; a volume the
// machine can format and mount — and vanish on detach.
func TestMachineHotplug(t *testing.T) {
	c := machineCloud(t, 30*time.Second)
	inst, err := c.LaunchWith(t.Context(), "us-east-1a", LaunchOptions{Files: map[string][]byte{
		"/etc/zkaas/ensemble.yaml": machineConfig("none", 3*time.Second),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitSystem(t, inst); got != "degraded" {
		t.Errorf("system %s, want degraded", got)
	}
	failed, err := inst.FailedUnits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(failed, []string{"zkaas-firstboot.service"}) {
		t.Errorf("failed units %v, want only zkaas-firstboot.service", failed)
	}
	if got, _ := inst.UnitState(t.Context(), "zookeeper.service"); got != "inactive" {
		t.Errorf("zookeeper.service %s, want inactive (held back by Requires=)", got)
	}
	summary := journal(t, inst, "-u", "zkaas-firstboot", "-o", "cat")
	if !strings.Contains(summary, "claim") {
		t.Errorf("firstboot's journal does not say the claim failed:\n%s", summary)
	}

	api := ec2From(inst)
	eni, err := c.CreateNetworkInterface("us-east-1a", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := c.CreateVolume("us-east-1a", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	byID := "/dev/disk/by-id/" + disk.EBSByIDName(vol.ID)
	if out := inside(t, inst, "ip -o link; ls /dev/disk/by-id"); strings.Contains(out, eni.MAC) || strings.Contains(out, disk.EBSByIDName(vol.ID)) {
		t.Fatalf("devices there before the attach:\n%s", out)
	}
	if _, err := api.AttachNetworkInterface(t.Context(), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(eni.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(1),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.AttachVolume(t.Context(), &ec2.AttachVolumeInput{
		VolumeId: aws.String(vol.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/sdf"),
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ENI inside the machine", func() bool {
		out, _ := inst.Command(t.Context(), "ip", "-o", "link").Output()
		return strings.Contains(string(out), eni.MAC)
	})
	eventually(t, "the volume inside the machine", func() bool {
		return inst.Command(t.Context(), "test", "-b", byID).Run() == nil
	})
	dev := inside(t, inst, "readlink -f "+byID)
	name := strings.TrimPrefix(dev, "/dev/")
	if got := inside(t, inst, "cat /sys/class/block/"+name+"/device/serial"); got != disk.EBSSerial(vol.ID) {
		t.Errorf("serial of %s = %q, want %q", name, got, disk.EBSSerial(vol.ID))
	}
	if got := inside(t, inst, "mkfs.ext4 -q "+byID+" && mkdir -p /mnt/v && mount "+byID+" /mnt/v && echo x > /mnt/v/f && cat /mnt/v/f"); got != "x" {
		t.Errorf("write on the volume inside the machine: %q", got)
	}

	if _, err := api.DetachNetworkInterface(t.Context(), &ec2.DetachNetworkInterfaceInput{AttachmentId: attachmentID(c, eni.ID)}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.DetachVolume(t.Context(), &ec2.DetachVolumeInput{VolumeId: aws.String(vol.ID)}); err != nil {
		t.Fatal(err)
	}
	var left string
	gone := func() bool {
		out, _ := inst.Command(t.Context(), "sh", "-c", "ip -o link; ls /dev /dev/disk/by-id /sys/class/block; grep /mnt/v /proc/self/mountinfo || true").Output()
		left = string(out)
		return !strings.Contains(left, eni.MAC) && !strings.Contains(left, disk.EBSByIDName(vol.ID)) && !strings.Contains(left, name+"\n") && !strings.Contains(left, "/mnt/v")
	}
	for deadline := time.Now().Add(10 * time.Second); !gone(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the ENI or the volume still in the machine after the detach:\n%s", left)
		}
	}
	if loops := loopOf(t, volumeFile(t, c, vol.ID)); len(loops) > 0 {
		t.Errorf("loop device %v still on %s after the detach", loops, vol.ID)
	}
}

// attachmentID is the ENI's current attachment id.
func attachmentID(c *Cloud, id string) *string {
	n, _ := c.Sim().NetworkInterface(id)
	if n.Attachment == nil {
		return aws.String("")
	}
	return aws.String(n.Attachment.ID)
}

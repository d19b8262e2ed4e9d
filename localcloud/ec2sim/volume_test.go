package ec2sim_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func TestDescribeVolumesFilters(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	inst := e.run(e.subA)
	v1 := e.volume("us-east-1a", tags("prod", "1"))
	v2 := e.volume("us-east-1a", tags("prod", "2"))
	v3 := e.volume("us-east-1b", tags("prod", "3"))
	v4 := e.volume("us-east-1a", tags("staging", "1"))
	e.attachVolume(v2.ID, inst.ID, "/dev/xvdf")

	tests := []struct {
		name    string
		filters []types.Filter
		want    []string
	}{
		{"tag", []types.Filter{filter("tag:zkaas:ensemble", "prod")}, []string{v1.ID, v2.ID, v3.ID}},
		{"tag AND az", []types.Filter{filter("tag:zkaas:ensemble", "prod"), filter("availability-zone", "us-east-1a")}, []string{v1.ID, v2.ID}},
		{"tag OR values", []types.Filter{filter("tag:zkaas:node", "1", "3")}, []string{v1.ID, v3.ID, v4.ID}},
		{"tag wildcard", []types.Filter{filter("tag:zkaas:ensemble", "*ing")}, []string{v4.ID}},
		{"tag-key", []types.Filter{filter("tag-key", "zkaas:ensemble")}, []string{v1.ID, v2.ID, v3.ID, v4.ID}},
		{"status available", []types.Filter{filter("status", "available")}, []string{v1.ID, v3.ID, v4.ID}},
		{"status in-use", []types.Filter{filter("status", "in-use")}, []string{inst.RootVolume, v2.ID}},
		{"volume-id", []types.Filter{filter("volume-id", v1.ID, v3.ID)}, []string{v1.ID, v3.ID}},
		{"attachment.instance-id", []types.Filter{filter("attachment.instance-id", inst.ID)}, []string{inst.RootVolume, v2.ID}},
		{"attachment.status", []types.Filter{filter("attachment.status", "attached"), filter("tag-key", "zkaas:node")}, []string{v2.ID}},
		{"attachment.device", []types.Filter{filter("attachment.device", "/dev/xvd?")}, []string{inst.RootVolume, v2.ID}},
		{"attachment.device exact", []types.Filter{filter("attachment.device", "/dev/xvdf")}, []string{v2.ID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{Filters: tc.filters})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := volumeIDs(out.Volumes), sorted(tc.want...); !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
	t.Run("unknown filter", func(t *testing.T) {
		_, err := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{Filters: []types.Filter{filter("attachment.bogus", "x")}})
		wantError(t, err, "InvalidParameterValue", "The filter 'attachment.bogus' is invalid")
	})
}

func TestVolumeAttachDetachLifecycle(t *testing.T) {
	e := setup(t, ec2sim.Options{Latency: ec2sim.Latency{VolumeAttach: 150 * time.Millisecond, VolumeDetach: 150 * time.Millisecond}})
	inst := e.run(e.subA)
	v := e.volume("us-east-1a", tags("prod", "1"))

	out, err := e.ec2.AttachVolume(ctx(t), &ec2.AttachVolumeInput{
		VolumeId: aws.String(v.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/xvdf"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.State != types.VolumeAttachmentStateAttaching || aws.ToString(out.VolumeId) != v.ID ||
		aws.ToString(out.InstanceId) != inst.ID || aws.ToString(out.Device) != "/dev/xvdf" || out.AttachTime == nil {
		t.Fatalf("AttachVolume returned %+v", out)
	}
	state := func() (types.VolumeState, types.VolumeAttachmentState) {
		got := e.describeVolume(v.ID)
		if len(got.Attachments) == 0 {
			return got.State, ""
		}
		return got.State, got.Attachments[0].State
	}
	if s, a := state(); s != types.VolumeStateInUse || a != types.VolumeAttachmentStateAttaching {
		t.Fatalf("right after attach: %s/%s, want in-use/attaching", s, a)
	}
	bdm := func() *types.EbsInstanceBlockDevice {
		for _, m := range e.describeInstance(inst.ID).BlockDeviceMappings {
			if aws.ToString(m.Ebs.VolumeId) == v.ID {
				if aws.ToString(m.DeviceName) != "/dev/xvdf" {
					t.Fatalf("block device %s at %s", v.ID, aws.ToString(m.DeviceName))
				}
				return m.Ebs
			}
		}
		return nil
	}
	if b := bdm(); b == nil || b.Status != types.AttachmentStatusAttaching {
		t.Fatalf("DescribeInstances right after attach: %+v", b)
	}
	eventually(t, "attached", func() bool { _, a := state(); return a == types.VolumeAttachmentStateAttached })
	if b := bdm(); b == nil || b.Status != types.AttachmentStatusAttached || aws.ToBool(b.DeleteOnTermination) || b.AttachTime == nil {
		t.Fatalf("DescribeInstances after attach: %+v", b)
	}

	det, err := e.ec2.DetachVolume(ctx(t), &ec2.DetachVolumeInput{VolumeId: aws.String(v.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if det.State != types.VolumeAttachmentStateDetaching {
		t.Fatalf("DetachVolume returned state %s", det.State)
	}
	if s, a := state(); s != types.VolumeStateInUse || a != types.VolumeAttachmentStateDetaching {
		t.Fatalf("right after detach: %s/%s, want in-use/detaching", s, a)
	}
	eventually(t, "available", func() bool { s, a := state(); return s == types.VolumeStateAvailable && a == "" })
	if b := bdm(); b != nil {
		t.Fatalf("detached volume still on the instance: %+v", b)
	}
}

func TestVolumeErrors(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	inst := e.run(e.subA)
	other := e.run(e.subA)
	inUse := e.volume("us-east-1a", nil)
	free := e.volume("us-east-1a", nil)
	freeB := e.volume("us-east-1b", nil)
	e.attachVolume(inUse.ID, inst.ID, "/dev/xvdf")

	slow := setup(t, ec2sim.Options{Latency: ec2sim.Latency{InstanceStart: time.Hour}})
	pending := slow.run(slow.subA)
	slowVol := slow.volume("us-east-1a", nil)

	attach := func(c *ec2.Client, vol, inst, dev string) error {
		_, err := c.AttachVolume(ctx(t), &ec2.AttachVolumeInput{VolumeId: aws.String(vol), InstanceId: aws.String(inst), Device: aws.String(dev)})
		return err
	}
	detach := func(in *ec2.DetachVolumeInput) func() error {
		return func() error { _, err := e.ec2.DetachVolume(ctx(t), in); return err }
	}
	tests := []struct {
		name      string
		call      func() error
		code, msg string
	}{
		{"attach in-use volume", func() error { return attach(e.ec2, inUse.ID, other.ID, "/dev/xvdg") },
			"VolumeInUse", fmt.Sprintf("%s is already attached to an instance", inUse.ID)},
		{"attach across AZ", func() error { return attach(e.ec2, freeB.ID, inst.ID, "/dev/xvdg") },
			"InvalidVolume.ZoneMismatch", fmt.Sprintf("The volume '%s' is not in the same availability zone as instance '%s'", freeB.ID, inst.ID)},
		{"device in use", func() error { return attach(e.ec2, free.ID, inst.ID, "/dev/xvdf") },
			"InvalidParameterValue", "Invalid value '/dev/xvdf' for unixDevice. Attachment point /dev/xvdf is already in use"},
		{"sdf is xvdf", func() error { return attach(e.ec2, free.ID, inst.ID, "/dev/sdf") },
			"InvalidParameterValue", "Invalid value '/dev/sdf' for unixDevice. Attachment point /dev/sdf is already in use"},
		{"root device in use", func() error { return attach(e.ec2, free.ID, inst.ID, "/dev/sda1") },
			"InvalidParameterValue", "Invalid value '/dev/sda1' for unixDevice. Attachment point /dev/sda1 is already in use"},
		{"bad device name", func() error { return attach(e.ec2, free.ID, inst.ID, "/dev/nvme1n1") },
			"InvalidParameterValue", "Value (/dev/nvme1n1) for parameter device is invalid. /dev/nvme1n1 is not a valid EBS device name."},
		{"instance not running", func() error { return attach(slow.ec2, slowVol.ID, pending.ID, "/dev/xvdf") },
			"IncorrectState", fmt.Sprintf("Instance '%s' is not 'running'.", pending.ID)},
		{"unknown volume", func() error { return attach(e.ec2, "vol-0123456789abcdef0", inst.ID, "/dev/xvdg") },
			"InvalidVolume.NotFound", "The volume 'vol-0123456789abcdef0' does not exist."},
		{"malformed volume id", func() error { return attach(e.ec2, "volume-1", inst.ID, "/dev/xvdg") },
			"InvalidVolumeID.Malformed", `Invalid id: "volume-1" (expecting "vol-...")`},
		{"unknown instance", func() error { return attach(e.ec2, free.ID, "i-0123456789abcdef0", "/dev/xvdg") },
			"InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist"},
		{"detach available", detach(&ec2.DetachVolumeInput{VolumeId: aws.String(free.ID)}),
			"IncorrectState", fmt.Sprintf("Volume '%s' is in the 'available' state.", free.ID)},
		{"detach from wrong instance", detach(&ec2.DetachVolumeInput{VolumeId: aws.String(inUse.ID), InstanceId: aws.String(other.ID)}),
			"InvalidAttachment.NotFound", ""},
		{"detach root", detach(&ec2.DetachVolumeInput{VolumeId: aws.String(inst.RootVolume)}),
			"IncorrectState", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tc.call(), tc.code, tc.msg)
		})
	}
	if v, _ := e.sim.Volume(free.ID); v.State != ec2sim.StatusAvailable {
		t.Fatalf("failed attaches changed %s: %+v", free.ID, v)
	}
}

package ec2sim_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func instanceIDs(out *ec2.DescribeInstancesOutput) []string {
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	return sorted(ids...)
}

func TestDescribeInstances(t *testing.T) {
	e := setup(t, ec2sim.Options{Latency: ec2sim.Latency{InstanceTerminate: time.Millisecond}})
	a1 := e.run(e.subA)
	a2 := e.run(e.subA)
	b1 := e.run(e.subB)
	gone := e.run(e.subB)
	if _, err := e.ec2.CreateTags(ctx(t), &ec2.CreateTagsInput{
		Resources: []string{a1.ID, b1.ID}, Tags: []types.Tag{{Key: aws.String("role"), Value: aws.String("zk")}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.TerminateInstance(gone.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "terminated", func() bool { i, _ := e.sim.Instance(gone.ID); return i.State == ec2sim.StateTerminated })

	tests := []struct {
		name    string
		in      ec2.DescribeInstancesInput
		want    []string
		wantErr string
	}{
		{"all", ec2.DescribeInstancesInput{}, []string{a1.ID, a2.ID, b1.ID, gone.ID}, ""},
		{"ids", ec2.DescribeInstancesInput{InstanceIds: []string{a2.ID, b1.ID}}, []string{a2.ID, b1.ID}, ""},
		{"instance-id filter", ec2.DescribeInstancesInput{Filters: []types.Filter{filter("instance-id", a1.ID)}}, []string{a1.ID}, ""},
		{"state running", ec2.DescribeInstancesInput{Filters: []types.Filter{filter("instance-state-name", "running")}}, []string{a1.ID, a2.ID, b1.ID}, ""},
		{"state terminated", ec2.DescribeInstancesInput{Filters: []types.Filter{filter("instance-state-name", "terminated", "shutting-down")}}, []string{gone.ID}, ""},
		{"az", ec2.DescribeInstancesInput{Filters: []types.Filter{filter("availability-zone", "us-east-1b")}}, []string{b1.ID, gone.ID}, ""},
		{"tag AND az", ec2.DescribeInstancesInput{Filters: []types.Filter{filter("tag:role", "zk"), filter("availability-zone", "us-east-1a")}}, []string{a1.ID}, ""},
		{"ids AND filter", ec2.DescribeInstancesInput{InstanceIds: []string{a1.ID, a2.ID}, Filters: []types.Filter{filter("tag-key", "role")}}, []string{a1.ID}, ""},
		{"unknown id", ec2.DescribeInstancesInput{InstanceIds: []string{"i-0000000000000000f"}}, nil, "InvalidInstanceID.NotFound"},
		{"unknown filter", ec2.DescribeInstancesInput{Filters: []types.Filter{filter("instance-state", "running")}}, nil, "InvalidParameterValue"},
		{"ids with MaxResults", ec2.DescribeInstancesInput{InstanceIds: []string{a1.ID}, MaxResults: aws.Int32(5)}, nil, "InvalidParameterCombination"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.ec2.DescribeInstances(ctx(t), &tc.in)
			if tc.wantErr != "" {
				wantError(t, err, tc.wantErr, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := instanceIDs(out), sorted(tc.want...); !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}

	t.Run("shape", func(t *testing.T) {
		got := e.describeInstance(a1.ID)
		if got.State.Name != types.InstanceStateNameRunning || aws.ToInt32(got.State.Code) != 16 ||
			aws.ToString(got.Placement.AvailabilityZone) != "us-east-1a" || aws.ToString(got.SubnetId) != e.subA ||
			aws.ToString(got.PrivateIpAddress) != a1.PrivateIP || aws.ToString(got.RootDeviceName) != ec2sim.RootDevice {
			t.Fatalf("instance %+v", got)
		}
		if len(got.NetworkInterfaces) != 1 {
			t.Fatalf("want the primary ENI only, got %d", len(got.NetworkInterfaces))
		}
		ni := got.NetworkInterfaces[0]
		if aws.ToString(ni.NetworkInterfaceId) != a1.PrimaryENI || aws.ToInt32(ni.Attachment.DeviceIndex) != 0 ||
			!aws.ToBool(ni.Attachment.DeleteOnTermination) || aws.ToString(ni.MacAddress) != a1.MAC {
			t.Fatalf("primary ENI %+v", ni)
		}
		if len(got.BlockDeviceMappings) != 1 || aws.ToString(got.BlockDeviceMappings[0].Ebs.VolumeId) != a1.RootVolume {
			t.Fatalf("want the root volume only, got %+v", got.BlockDeviceMappings)
		}
		if g := e.describeInstance(gone.ID); g.State.Name != types.InstanceStateNameTerminated || aws.ToInt32(g.State.Code) != 48 {
			t.Fatalf("terminated instance state %+v", g.State)
		}
	})
}

func TestInstanceStartDelay(t *testing.T) {
	e := setup(t, ec2sim.Options{Latency: ec2sim.Latency{InstanceStart: 100 * time.Millisecond}})
	inst := e.run(e.subA)
	if got := e.describeInstance(inst.ID).State; got.Name != types.InstanceStateNamePending || aws.ToInt32(got.Code) != 0 {
		t.Fatalf("new instance state %+v, want pending/0", got)
	}
	eventually(t, "running", func() bool { return e.describeInstance(inst.ID).State.Name == types.InstanceStateNameRunning })
}

func TestTerminationReleasesAttachments(t *testing.T) {
	var mu sync.Mutex
	var detachedENIs, detachedVols []string
	e := setup(t, ec2sim.Options{
		Latency: ec2sim.Latency{InstanceTerminate: 50 * time.Millisecond, ENIDetach: 100 * time.Millisecond, VolumeDetach: 100 * time.Millisecond},
		Hooks: ec2sim.Hooks{
			ENIDetached: func(ev ec2sim.ENIEvent) {
				mu.Lock()
				defer mu.Unlock()
				detachedENIs = append(detachedENIs, ev.NetworkInterfaceID)
			},
			VolumeDetached: func(ev ec2sim.VolumeEvent) {
				mu.Lock()
				defer mu.Unlock()
				detachedVols = append(detachedVols, ev.VolumeID)
			},
		},
	})
	inst := e.run(e.subA)
	keep := e.eni(e.subA, "", tags("prod", "1"))
	doomed := e.eni(e.subA, "", nil)
	data := e.volume("us-east-1a", tags("prod", "1"))
	e.attachENI(keep.ID, inst.ID, 1)
	doomedAtt := e.attachENI(doomed.ID, inst.ID, 2)
	e.attachVolume(data.ID, inst.ID, "/dev/xvdf")
	if _, err := e.ec2.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(doomed.ID),
		Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(doomedAtt), DeleteOnTermination: aws.Bool(true)},
	}); err != nil {
		t.Fatal(err)
	}

	if err := e.sim.TerminateInstance(inst.ID); err != nil {
		t.Fatal(err)
	}
	if i, _ := e.sim.Instance(inst.ID); i.State != ec2sim.StateShuttingDown {
		t.Fatalf("state %s right after terminate, want shutting-down", i.State)
	}
	// Still shutting down: attachments are held. A successor waits for this.
	if n, _ := e.sim.NetworkInterface(keep.ID); n.Attachment == nil || n.Attachment.Status != ec2sim.AttachAttached {
		t.Fatalf("ENI released before terminated: %+v", n.Attachment)
	}
	eventually(t, "terminated", func() bool { i, _ := e.sim.Instance(inst.ID); return i.State == ec2sim.StateTerminated })
	if n, _ := e.sim.NetworkInterface(keep.ID); n.Attachment != nil && n.Attachment.Status != ec2sim.AttachDetaching {
		t.Fatalf("ENI after termination: %+v, want detaching", n.Attachment)
	}
	eventually(t, "secondary ENI available", func() bool {
		n, _ := e.sim.NetworkInterface(keep.ID)
		return n.Status == ec2sim.StatusAvailable && n.Attachment == nil
	})
	eventually(t, "data volume available", func() bool {
		v, _ := e.sim.Volume(data.ID)
		return v.State == ec2sim.StatusAvailable && v.Attachment == nil
	})
	for _, id := range []string{doomed.ID, inst.PrimaryENI} {
		if _, ok := e.sim.NetworkInterface(id); ok {
			t.Errorf("ENI %s (delete on termination) still exists", id)
		}
	}
	if _, ok := e.sim.Volume(inst.RootVolume); ok {
		t.Errorf("root volume %s still exists", inst.RootVolume)
	}
	_, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{doomed.ID}})
	wantError(t, err, "InvalidNetworkInterfaceID.NotFound", "")

	mu.Lock()
	defer mu.Unlock()
	if got, want := sorted(detachedENIs...), sorted(keep.ID, doomed.ID); !slices.Equal(got, want) {
		t.Errorf("ENIDetached hooks for %v, want %v", got, want)
	}
	if !slices.Equal(detachedVols, []string{data.ID}) {
		t.Errorf("VolumeDetached hooks for %v, want [%s]", detachedVols, data.ID)
	}
	// The freed ENI can be claimed by a new instance.
	next := e.run(e.subA)
	e.attachENI(keep.ID, next.ID, 1)
}

func TestAttachHooks(t *testing.T) {
	var mu sync.Mutex
	var enis []ec2sim.ENIEvent
	var vols []ec2sim.VolumeEvent
	failFor := ""
	e := setup(t, ec2sim.Options{Hooks: ec2sim.Hooks{
		ENIAttached: func(ev ec2sim.ENIEvent) error {
			mu.Lock()
			defer mu.Unlock()
			if ev.NetworkInterfaceID == failFor {
				return errors.New("no veth for you")
			}
			enis = append(enis, ev)
			return nil
		},
		VolumeAttached: func(ev ec2sim.VolumeEvent) error {
			mu.Lock()
			defer mu.Unlock()
			vols = append(vols, ev)
			return nil
		},
	}})
	inst := e.run(e.subA)
	n := e.eni(e.subA, "10.0.1.77", nil)
	v := e.volume("us-east-1a", nil)
	e.attachENI(n.ID, inst.ID, 1)
	e.attachVolume(v.ID, inst.ID, "/dev/xvdg")
	mu.Lock()
	wantENI := ec2sim.ENIEvent{NetworkInterfaceID: n.ID, MAC: n.MAC, PrivateIP: "10.0.1.77", InstanceID: inst.ID, DeviceIndex: 1}
	if len(enis) != 1 || enis[0] != wantENI {
		t.Errorf("ENIAttached events %+v, want [%+v]", enis, wantENI)
	}
	wantVol := ec2sim.VolumeEvent{VolumeID: v.ID, InstanceID: inst.ID, Device: "/dev/xvdg"}
	if len(vols) != 1 || vols[0] != wantVol {
		t.Errorf("VolumeAttached events %+v, want [%+v]", vols, wantVol)
	}
	bad := e.eni(e.subA, "", nil)
	failFor = bad.ID
	mu.Unlock()

	// A failing hook leaves the attachment attaching; detaching still works.
	out, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(bad.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(2),
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := e.describeENI(bad.ID); got.Attachment.Status != types.AttachmentStatusAttaching {
		t.Fatalf("after failed hook: %s, want attaching", got.Attachment.Status)
	}
	if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: out.AttachmentId}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "available", func() bool { n, _ := e.sim.NetworkInterface(bad.ID); return n.Status == ec2sim.StatusAvailable })
}

func TestCreateTags(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	inst := e.run(e.subA)
	n := e.eni(e.subA, "", nil)
	v := e.volume("us-east-1a", map[string]string{"keep": "me"})
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

	if _, err := e.ec2.CreateTags(ctx(t), &ec2.CreateTagsInput{
		Resources: []string{inst.ID, n.ID, v.ID, e.subA},
		Tags:      []types.Tag{tag("zkaas:ensemble", "prod"), tag("zkaas:node", "7")},
	}); err != nil {
		t.Fatal(err)
	}
	gotENI, _ := e.sim.NetworkInterface(n.ID)
	gotVol, _ := e.sim.Volume(v.ID)
	gotInst, _ := e.sim.Instance(inst.ID)
	if gotENI.Tags["zkaas:node"] != "7" || gotVol.Tags["zkaas:node"] != "7" || gotVol.Tags["keep"] != "me" || gotInst.Tags["zkaas:ensemble"] != "prod" {
		t.Fatalf("tags not applied: eni %v volume %v instance %v", gotENI.Tags, gotVol.Tags, gotInst.Tags)
	}
	out, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("tag:zkaas:node", "7")}})
	if err != nil || len(out.Subnets) != 1 || aws.ToString(out.Subnets[0].SubnetId) != e.subA {
		t.Fatalf("subnet tag not visible: %+v %v", out, err)
	}

	tests := []struct {
		name      string
		in        ec2.CreateTagsInput
		code, msg string
	}{
		{"unknown resource type", ec2.CreateTagsInput{Resources: []string{"sg-0123"}, Tags: []types.Tag{tag("a", "b")}},
			"InvalidID", "The ID 'sg-0123' is not valid"},
		{"unknown volume", ec2.CreateTagsInput{Resources: []string{n.ID, "vol-0123456789abcdef0"}, Tags: []types.Tag{tag("partial", "no")}},
			"InvalidVolume.NotFound", "The volume 'vol-0123456789abcdef0' does not exist."},
		{"reserved prefix", ec2.CreateTagsInput{Resources: []string{n.ID}, Tags: []types.Tag{tag("aws:foo", "x")}},
			"InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ec2.CreateTags(ctx(t), &tc.in)
			wantError(t, err, tc.code, tc.msg)
		})
	}
	if got, _ := e.sim.NetworkInterface(n.ID); got.Tags["partial"] != "" {
		t.Fatal("a failed CreateTags tagged some resources")
	}
}

func TestDescribeSubnets(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	e.run(e.subA)
	e.eni(e.subA, "", nil)
	out, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("availability-zone", "us-east-1a")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Subnets) != 1 {
		t.Fatalf("got %d subnets, want 1", len(out.Subnets))
	}
	s := out.Subnets[0]
	// A /24 has 256-5 usable addresses; two are taken.
	if aws.ToString(s.SubnetId) != e.subA || aws.ToString(s.CidrBlock) != "10.0.1.0/24" || aws.ToInt32(s.AvailableIpAddressCount) != 249 ||
		s.State != types.SubnetStateAvailable || aws.ToString(s.AvailabilityZone) != "us-east-1a" {
		t.Fatalf("subnet %+v", s)
	}
	_, err = e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef0"}})
	wantError(t, err, "InvalidSubnetID.NotFound", "The subnet ID 'subnet-0123456789abcdef0' does not exist")
}

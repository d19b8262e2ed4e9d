package ec2sim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func tagSpec(rt types.ResourceType, kv ...string) []types.TagSpecification {
	ts := types.TagSpecification{ResourceType: rt}
	for i := 0; i < len(kv); i += 2 {
		ts.Tags = append(ts.Tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return []types.TagSpecification{ts}
}

func TestCreateNetworkInterface(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	taken := e.eni(e.subA, "10.0.1.50", nil)
	sg, err := e.ec2.CreateSecurityGroup(ctx(t), &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("zk"), Description: aws.String("zk nodes"), VpcId: aws.String(e.sim.VPCID())})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		in        ec2.CreateNetworkInterfaceInput
		code, msg string
		wantIP    string
		groups    int
	}{
		{"fixed IP, tags, group", ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subA), PrivateIpAddress: aws.String("10.0.1.11"),
			Groups: []string{aws.ToString(sg.GroupId)}, Description: aws.String("zk node 1"),
			TagSpecifications: tagSpec(types.ResourceTypeNetworkInterface, "zkaas:ensemble", "prod", "zkaas:node", "1")}, "", "", "10.0.1.11", 1},
		{"next free address, default group", ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subB)}, "", "", "10.0.2.4", 1},
		{"address taken", ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subA), PrivateIpAddress: aws.String(taken.PrivateIP)},
			"InvalidIPAddress.InUse", "The specified address is already in use.", "", 0},
		{"outside the subnet", ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subA), PrivateIpAddress: aws.String("10.0.2.10")},
			"InvalidParameterValue", "Address 10.0.2.10 does not fall within the subnet's address range", "", 0},
		{"first four reserved", ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subA), PrivateIpAddress: aws.String("10.0.1.3")},
			"InvalidParameterValue", "Address 10.0.1.3 is in subnet's reserved address range", "", 0},
		{"last reserved", ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subA), PrivateIpAddress: aws.String("10.0.1.255")},
			"InvalidParameterValue", "Address 10.0.1.255 is in subnet's reserved address range", "", 0},
		{"unknown subnet", ec2.CreateNetworkInterfaceInput{SubnetId: aws.String("subnet-0123456789abcdef0")},
			"InvalidSubnetID.NotFound", "The subnet ID 'subnet-0123456789abcdef0' does not exist", "", 0},
		{"unknown group", ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subA), Groups: []string{"sg-0123456789abcdef0"}},
			"InvalidGroup.NotFound", "The security group 'sg-0123456789abcdef0' does not exist", "", 0},
		{"wrong tag resource type", ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subA), TagSpecifications: tagSpec(types.ResourceTypeVolume, "a", "b")},
			"InvalidParameterValue", "'volume' is not a valid taggable resource type for this operation.", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			out, err := e.ec2.CreateNetworkInterface(ctx(t), &in)
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := out.NetworkInterface
			if got := aws.ToString(n.PrivateIpAddress); got != tc.wantIP || n.Status != types.NetworkInterfaceStatusAvailable || len(n.Groups) != tc.groups {
				t.Fatalf("got %s %s groups %v", got, n.Status, n.Groups)
			}
			d := e.describeENI(aws.ToString(n.NetworkInterfaceId))
			if aws.ToString(d.Description) != aws.ToString(in.Description) || len(d.TagSet) != len(tc.in.TagSpecifications)*2 && len(tc.in.TagSpecifications) > 0 {
				t.Fatalf("described %+v", d)
			}
		})
	}
	// The group filter finds the ENI in its group, and ModifyNetworkInterfaceAttribute replaces the set.
	list, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("group-name", "zk")}})
	if err != nil || len(list.NetworkInterfaces) != 1 {
		t.Fatalf("group-name filter: %v %d", err, len(list.NetworkInterfaces))
	}
	id := aws.ToString(list.NetworkInterfaces[0].NetworkInterfaceId)
	def := e.sim.NetworkInterfaceGroups(taken.ID)[0]
	if _, err := e.ec2.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(id), Groups: []string{def, aws.ToString(sg.GroupId)}}); err != nil {
		t.Fatal(err)
	}
	if got := e.describeENI(id).Groups; len(got) != 2 || aws.ToString(got[0].GroupName) != "default" {
		t.Fatalf("groups after modify: %+v", got)
	}
}

func TestDeleteNetworkInterface(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	inst := e.run(e.subA)
	attached := e.eni(e.subA, "", nil)
	e.attachENI(attached.ID, inst.ID, 1)
	free := e.eni(e.subA, "", nil)
	tests := []struct {
		name, id, code, msg string
	}{
		{"attached", attached.ID, "InvalidParameterValue", "Network interface '" + attached.ID + "' is currently in use."},
		{"available", free.ID, "", ""},
		{"gone", free.ID, "InvalidNetworkInterfaceID.NotFound", ""},
		{"malformed", "eni-x", "InvalidNetworkInterfaceID.Malformed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ec2.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(tc.id)})
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := e.sim.NetworkInterface(tc.id); ok {
				t.Fatal("still there")
			}
		})
	}
	// Its address is free again.
	if _, err := e.sim.CreateNetworkInterface(e.subA, free.PrivateIP, nil); err != nil {
		t.Fatal(err)
	}
}

const keyARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func TestCreateVolume(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	snap := e.sim.AddSnapshot(20)
	az := aws.String("us-east-1a")
	tests := []struct {
		name      string
		in        ec2.CreateVolumeInput
		code, msg string
		want      ec2sim.VolumeOptions
		size      int32
	}{
		{"gp3 with IOPS, throughput, KMS, tags", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(100), VolumeType: types.VolumeTypeGp3,
			Iops: aws.Int32(6000), Throughput: aws.Int32(250), Encrypted: aws.Bool(true), KmsKeyId: aws.String(keyARN),
			TagSpecifications: tagSpec(types.ResourceTypeVolume, "zkaas:ensemble", "prod", "zkaas:node", "1")}, "", "",
			ec2sim.VolumeOptions{Type: "gp3", IOPS: 6000, Throughput: 250, Encrypted: true, KMSKeyID: keyARN}, 100},
		{"gp3 defaults", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(10), VolumeType: types.VolumeTypeGp3}, "", "",
			ec2sim.VolumeOptions{Type: "gp3", IOPS: 3000, Throughput: 125}, 10},
		{"default type gp2", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(100)}, "", "",
			ec2sim.VolumeOptions{Type: "gp2", IOPS: 300}, 100},
		{"io2", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(10), VolumeType: types.VolumeTypeIo2, Iops: aws.Int32(10000)}, "", "",
			ec2sim.VolumeOptions{Type: "io2", IOPS: 10000}, 10},
		{"from snapshot", ec2.CreateVolumeInput{AvailabilityZone: az, SnapshotId: aws.String(snap), VolumeType: types.VolumeTypeGp3}, "", "",
			ec2sim.VolumeOptions{Type: "gp3", IOPS: 3000, Throughput: 125, SnapshotID: snap}, 20},
		{"encrypted, default key", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(10), VolumeType: types.VolumeTypeGp3, Encrypted: aws.Bool(true)}, "", "",
			ec2sim.VolumeOptions{Type: "gp3", IOPS: 3000, Throughput: 125, Encrypted: true, KMSKeyID: "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000ebs"}, 10},
		{"gp3 too large", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(70000), VolumeType: types.VolumeTypeGp3},
			"InvalidParameterValue", "Volume of 70000GiB is too large; maximum is 65536GiB.", ec2sim.VolumeOptions{}, 0},
		{"st1 too small", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(10), VolumeType: types.VolumeTypeSt1},
			"InvalidParameterValue", "Volume of 10GiB is too small; minimum is 125GiB.", ec2sim.VolumeOptions{}, 0},
		{"gp3 IOPS too low", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(10), VolumeType: types.VolumeTypeGp3, Iops: aws.Int32(100)},
			"InvalidParameterValue", "Volume iops of 100 is too low; minimum is 3000.", ec2sim.VolumeOptions{}, 0},
		{"gp3 IOPS per GiB", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(8), VolumeType: types.VolumeTypeGp3, Iops: aws.Int32(5000)},
			"InvalidParameterValue", "Iops to volume size ratio of 625.000000 is too high; maximum is 500.000000.", ec2sim.VolumeOptions{}, 0},
		{"gp3 throughput per IOPS", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(100), VolumeType: types.VolumeTypeGp3, Throughput: aws.Int32(1000)},
			"InvalidParameterValue", "Throughput (MiBps) to iops ratio of 0.333333 is too high; maximum is 0.250000 MiBps per iops.", ec2sim.VolumeOptions{}, 0},
		{"gp2 with IOPS", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(10), VolumeType: types.VolumeTypeGp2, Iops: aws.Int32(3000)},
			"InvalidParameterCombination", "The parameter iops is not supported for gp2 volumes.", ec2sim.VolumeOptions{}, 0},
		{"io1 without IOPS", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(10), VolumeType: types.VolumeTypeIo1},
			"InvalidParameterCombination", "The parameter iops must be specified for io1 volumes.", ec2sim.VolumeOptions{}, 0},
		{"throughput on io2", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(10), VolumeType: types.VolumeTypeIo2, Iops: aws.Int32(1000), Throughput: aws.Int32(200)},
			"InvalidParameterCombination", "The parameter throughput is not supported for io2 volumes.", ec2sim.VolumeOptions{}, 0},
		{"KMS key without Encrypted", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(10), KmsKeyId: aws.String("alias/zk")},
			"InvalidParameterDependency", "The parameter KmsKeyId requires the parameter Encrypted to be set.", ec2sim.VolumeOptions{}, 0},
		{"smaller than snapshot", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(10), SnapshotId: aws.String(snap)},
			"InvalidParameterValue", "Volume of 10GiB is smaller than snapshot '" + snap + "', expect size >= 20GiB", ec2sim.VolumeOptions{}, 0},
		{"unknown snapshot", ec2.CreateVolumeInput{AvailabilityZone: az, SnapshotId: aws.String("snap-0123456789abcdef0")},
			"InvalidSnapshot.NotFound", "The snapshot 'snap-0123456789abcdef0' does not exist.", ec2sim.VolumeOptions{}, 0},
		{"no size", ec2.CreateVolumeInput{AvailabilityZone: az}, "MissingParameter", "", ec2sim.VolumeOptions{}, 0},
		{"bad AZ", ec2.CreateVolumeInput{AvailabilityZone: aws.String("eu-west-1a"), Size: aws.Int32(10)},
			"InvalidParameterValue", "Invalid availability zone: [eu-west-1a]", ec2sim.VolumeOptions{}, 0},
		{"bad type", ec2.CreateVolumeInput{AvailabilityZone: az, Size: aws.Int32(10), VolumeType: "gp9"}, "InvalidParameterValue", "", ec2sim.VolumeOptions{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			out, err := e.ec2.CreateVolume(ctx(t), &in)
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.State != types.VolumeStateCreating || aws.ToInt32(out.Size) != tc.size {
				t.Fatalf("answer: %s %d GiB", out.State, aws.ToInt32(out.Size))
			}
			id := aws.ToString(out.VolumeId)
			if got := e.sim.VolumeAttributes(id); got != tc.want {
				t.Fatalf("attributes %+v, want %+v", got, tc.want)
			}
			w := ec2.NewVolumeAvailableWaiter(e.ec2, func(o *ec2.VolumeAvailableWaiterOptions) {
				o.MinDelay = 10 * time.Millisecond
				o.MaxDelay = 20 * time.Millisecond
			})
			if err := w.Wait(ctx(t), &ec2.DescribeVolumesInput{VolumeIds: []string{id}}, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			v := e.describeVolume(id)
			if string(v.VolumeType) != tc.want.Type || aws.ToInt32(v.Iops) != tc.want.IOPS || aws.ToInt32(v.Throughput) != tc.want.Throughput ||
				aws.ToBool(v.Encrypted) != tc.want.Encrypted || aws.ToString(v.KmsKeyId) != tc.want.KMSKeyID || aws.ToString(v.SnapshotId) != tc.want.SnapshotID {
				t.Fatalf("described %s iops %d tput %d enc %v key %q snap %q", v.VolumeType, aws.ToInt32(v.Iops), aws.ToInt32(v.Throughput),
					aws.ToBool(v.Encrypted), aws.ToString(v.KmsKeyId), aws.ToString(v.SnapshotId))
			}
			if len(tc.in.TagSpecifications) > 0 && len(v.Tags) != 2 {
				t.Fatalf("tags %v", v.Tags)
			}
		})
	}
	// Filters on the new attributes.
	out, err := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{Filters: []types.Filter{filter("volume-type", "io2")}})
	if err != nil || len(out.Volumes) != 1 {
		t.Fatalf("volume-type filter: %v %d", err, len(out.Volumes))
	}
}

func TestVolumeCreatingThenDelete(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	e.sim.SetVolumeCreateDelay(time.Hour)
	inst := e.run(e.subA)
	out, err := e.ec2.CreateVolume(ctx(t), &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(10), VolumeType: types.VolumeTypeGp3})
	if err != nil {
		t.Fatal(err)
	}
	creating := aws.ToString(out.VolumeId)
	_, err = e.ec2.AttachVolume(ctx(t), &ec2.AttachVolumeInput{VolumeId: out.VolumeId, InstanceId: aws.String(inst.ID), Device: aws.String("/dev/xvdf")})
	wantError(t, err, "IncorrectState", creating+" is not 'available'.")

	attached := e.volume("us-east-1a", nil)
	e.attachVolume(attached.ID, inst.ID, "/dev/xvdg")
	tests := []struct {
		name, id, code, msg string
	}{
		{"attached", attached.ID, "VolumeInUse", "Volume " + attached.ID + " is currently attached to " + inst.ID},
		{"creating", creating, "", ""},
		{"gone", creating, "InvalidVolume.NotFound", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ec2.DeleteVolume(ctx(t), &ec2.DeleteVolumeInput{VolumeId: aws.String(tc.id)})
			if tc.code != "" {
				wantError(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDryRun: every mutating call the operator makes answers DryRunOperation
// and changes nothing; a denied action answers UnauthorizedOperation, with
// DryRun or without.
func TestDryRun(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	vpc := aws.String(e.sim.VPCID())
	calls := []struct {
		action string
		call   func(dry bool) error
	}{
		{"CreateNetworkInterface", func(dry bool) error {
			_, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subA), DryRun: aws.Bool(dry)})
			return err
		}},
		{"CreateVolume", func(dry bool) error {
			_, err := e.ec2.CreateVolume(ctx(t), &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(1), DryRun: aws.Bool(dry)})
			return err
		}},
		{"CreateSecurityGroup", func(dry bool) error {
			_, err := e.ec2.CreateSecurityGroup(ctx(t), &ec2.CreateSecurityGroupInput{GroupName: aws.String("g"), Description: aws.String("d"), VpcId: vpc, DryRun: aws.Bool(dry)})
			return err
		}},
		{"AuthorizeSecurityGroupIngress", func(dry bool) error {
			_, err := e.ec2.AuthorizeSecurityGroupIngress(ctx(t), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("sg-0123456789abcdef0"), DryRun: aws.Bool(dry)})
			return err
		}},
		{"DeleteVolume", func(dry bool) error {
			_, err := e.ec2.DeleteVolume(ctx(t), &ec2.DeleteVolumeInput{VolumeId: aws.String("vol-0123456789abcdef0"), DryRun: aws.Bool(dry)})
			return err
		}},
		{"DescribeNetworkInterfaces", func(dry bool) error {
			_, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{DryRun: aws.Bool(dry)})
			return err
		}},
		{"AttachVolume", func(dry bool) error {
			_, err := e.ec2.AttachVolume(ctx(t), &ec2.AttachVolumeInput{VolumeId: aws.String("vol-0123456789abcdef0"), InstanceId: aws.String("i-0123456789abcdef0"), Device: aws.String("/dev/xvdf"), DryRun: aws.Bool(dry)})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.action, func(t *testing.T) {
			code, msg, status := apiError(t, c.call(true))
			if code != "DryRunOperation" || msg != "Request would have succeeded, but DryRun flag is set." || status != 412 {
				t.Fatalf("%s %q HTTP %d", code, msg, status)
			}
			e.sim.Deny(c.action)
			defer e.sim.Allow(c.action)
			for _, dry := range []bool{true, false} {
				wantError(t, c.call(dry), "UnauthorizedOperation", "You are not authorized to perform this operation.")
			}
		})
	}
	if n := len(e.sim.SecurityGroups()); n != 1 {
		t.Fatalf("%d security groups after dry runs, want the default one", n)
	}
	vols, _ := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{})
	enis, _ := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{})
	if len(vols.Volumes)+len(enis.NetworkInterfaces) != 0 {
		t.Fatalf("dry runs created %d volumes, %d ENIs", len(vols.Volumes), len(enis.NetworkInterfaces))
	}
}

// TestClientTokenAndLostResponses: a create whose answer is lost is
// retried by the SDK with the same ClientToken and answered with the
// resource it made, not a second one.
func TestClientTokenAndLostResponses(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	e.sim.LoseNextResponse("CreateVolume", 1)
	e.sim.LoseNextResponse("CreateNetworkInterface", 2)
	vol, err := e.ec2.CreateVolume(ctx(t), &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(10), VolumeType: types.VolumeTypeGp3})
	if err != nil {
		t.Fatal(err)
	}
	eni, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subA), PrivateIpAddress: aws.String("10.0.1.10")})
	if err != nil {
		t.Fatal(err)
	}
	vols, _ := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{})
	enis, _ := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{})
	if len(vols.Volumes) != 1 || len(enis.NetworkInterfaces) != 1 ||
		aws.ToString(vols.Volumes[0].VolumeId) != aws.ToString(vol.VolumeId) || aws.ToString(enis.NetworkInterfaces[0].NetworkInterfaceId) != aws.ToString(eni.NetworkInterface.NetworkInterfaceId) {
		t.Fatalf("%d volumes, %d ENIs after lost answers", len(vols.Volumes), len(enis.NetworkInterfaces))
	}
	if st := e.sim.Stats(); st.Calls["CreateVolume"] != 2 || st.Calls["CreateNetworkInterface"] != 3 {
		t.Fatalf("calls %v", st.Calls)
	}
	tests := []struct {
		name string
		size int32
		code string
		same bool
	}{
		{"first", 10, "", false},
		{"same token, same parameters", 10, "", true},
		{"same token, other parameters", 20, "IdempotentParameterMismatch", false},
	}
	var first string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.ec2.CreateVolume(ctx(t), &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(tc.size), ClientToken: aws.String("zkaas-up-1")})
			if tc.code != "" {
				wantError(t, err, tc.code, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.same && aws.ToString(out.VolumeId) != first {
				t.Fatalf("replay made %s, first was %s", aws.ToString(out.VolumeId), first)
			}
			first = aws.ToString(out.VolumeId)
		})
	}
}

// TestKMSKeyForms: every form of KmsKeyId comes back as a key ARN, the
// same alias as the same key.
func TestKMSKeyForms(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	arnOf := func(key string) string {
		out, err := e.ec2.CreateVolume(ctx(t), &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(1),
			VolumeType: types.VolumeTypeGp3, Encrypted: aws.Bool(true), KmsKeyId: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.KmsKeyId)
	}
	alias := arnOf("alias/zk")
	tests := []struct{ key, want string }{
		{keyARN, keyARN},
		{"1234abcd-12ab-34cd-56ef-1234567890ab", keyARN},
		{"arn:aws:kms:us-east-1:123456789012:alias/zk", alias},
		{"alias/zk", alias},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			if got := arnOf(tc.key); got != tc.want || !strings.HasPrefix(got, "arn:aws:kms:us-east-1:123456789012:key/") {
				t.Fatalf("%s -> %s, want %s", tc.key, got, tc.want)
			}
		})
	}
}

func TestFailNext(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	tests := []struct {
		name, code string
		retried    bool // the SDK's default retryer gets past it
	}{
		{"throttled, retried", "RequestLimitExceeded", true},
		{"internal, retried", "InternalError", true},
		{"client error", "InvalidParameterValue", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.sim.FailNext("CreateSecurityGroup", 1, tc.code)
			_, err := e.ec2.CreateSecurityGroup(ctx(t), &ec2.CreateSecurityGroupInput{GroupName: aws.String(strings.ReplaceAll(tc.name, ",", "")),
				Description: aws.String("d"), VpcId: aws.String(e.sim.VPCID())})
			if tc.retried {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantError(t, err, tc.code, "injected by FailNext")
		})
	}
	if n := len(e.sim.SecurityGroups()); n != 3 { // default + the two retried
		t.Fatalf("%d groups", n)
	}
}

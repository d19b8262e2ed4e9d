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

func tags(ensemble, node string) map[string]string {
	return map[string]string{"zkaas:ensemble": ensemble, "zkaas:node": node}
}

func TestDescribeNetworkInterfacesFilters(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	inst := e.run(e.subA) // primary ENI 10.0.1.4
	e1 := e.eni(e.subA, "10.0.1.11", tags("prod", "1"))
	e2 := e.eni(e.subA, "10.0.1.12", tags("prod", "2"))
	e3 := e.eni(e.subB, "10.0.2.13", tags("prod", "3"))
	e4 := e.eni(e.subA, "10.0.1.21", tags("staging", "1"))
	e5 := e.eni(e.subA, "10.0.1.30", map[string]string{"note": "a*b"})
	att := e.attachENI(e2.ID, inst.ID, 1)
	primary := inst.PrimaryENI

	tests := []struct {
		name    string
		filters []types.Filter
		want    []string
	}{
		{"tag", []types.Filter{filter("tag:zkaas:ensemble", "prod")}, []string{e1.ID, e2.ID, e3.ID}},
		{"filters AND", []types.Filter{filter("tag:zkaas:ensemble", "prod"), filter("availability-zone", "us-east-1a")}, []string{e1.ID, e2.ID}},
		{"values OR", []types.Filter{filter("tag:zkaas:node", "1", "3")}, []string{e1.ID, e3.ID, e4.ID}},
		{"star wildcard", []types.Filter{filter("tag:zkaas:ensemble", "pr*")}, []string{e1.ID, e2.ID, e3.ID}},
		{"question wildcard", []types.Filter{filter("tag:zkaas:ensemble", "?rod")}, []string{e1.ID, e2.ID, e3.ID}},
		{"question is exactly one", []types.Filter{filter("tag:zkaas:ensemble", "p?d")}, nil},
		{"values are case-sensitive", []types.Filter{filter("tag:zkaas:ensemble", "PROD")}, nil},
		{"tag-key", []types.Filter{filter("tag-key", "zkaas:node")}, []string{e1.ID, e2.ID, e3.ID, e4.ID}},
		{"tag-key wildcard", []types.Filter{filter("tag-key", "zkaas:*")}, []string{e1.ID, e2.ID, e3.ID, e4.ID}},
		{"status available", []types.Filter{filter("status", "available"), filter("tag:zkaas:ensemble", "prod")}, []string{e1.ID, e3.ID}},
		{"status in-use", []types.Filter{filter("status", "in-use")}, []string{primary, e2.ID}},
		{"attachment.instance-id", []types.Filter{filter("attachment.instance-id", inst.ID)}, []string{primary, e2.ID}},
		{"attachment.status AND tag-key", []types.Filter{filter("attachment.status", "attached"), filter("tag-key", "zkaas:node")}, []string{e2.ID}},
		{"attachment.attachment-id", []types.Filter{filter("attachment.attachment-id", att)}, []string{e2.ID}},
		{"network-interface-id", []types.Filter{filter("network-interface-id", e1.ID, e4.ID)}, []string{e1.ID, e4.ID}},
		{"subnet-id", []types.Filter{filter("subnet-id", e.subB)}, []string{e3.ID}},
		{"private-ip-address ?", []types.Filter{filter("private-ip-address", "10.0.1.1?")}, []string{e1.ID, e2.ID}},
		{"private-ip-address * AND status", []types.Filter{filter("private-ip-address", "10.0.1.*"), filter("status", "available")}, []string{e1.ID, e4.ID, e5.ID}},
		{"mac-address", []types.Filter{filter("mac-address", e1.MAC)}, []string{e1.ID}},
		{"no match", []types.Filter{filter("tag:zkaas:ensemble", "nope")}, nil},
		{"escaped star is literal", []types.Filter{filter("tag:note", `a\*b`)}, []string{e5.ID}},
		{"escaped star is not a wildcard", []types.Filter{filter("tag:note", `a\*`)}, nil},
		{"star matches a star", []types.Filter{filter("tag:note", "a*")}, []string{e5.ID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{Filters: tc.filters})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := eniIDs(out.NetworkInterfaces), sorted(tc.want...); !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}

	t.Run("unknown filter", func(t *testing.T) {
		_, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{
			Filters: []types.Filter{filter("bogus", "x")},
		})
		wantError(t, err, "InvalidParameterValue", "The filter 'bogus' is invalid")
	})
	t.Run("ids and filters", func(t *testing.T) {
		out, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{
			NetworkInterfaceIds: []string{e1.ID, e4.ID}, Filters: []types.Filter{filter("tag:zkaas:ensemble", "prod")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := eniIDs(out.NetworkInterfaces); !slices.Equal(got, []string{e1.ID}) {
			t.Fatalf("got %v, want [%s]", got, e1.ID)
		}
	})
}

func TestDescribeNetworkInterfaceShape(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	inst := e.run(e.subA)
	n := e.eni(e.subA, "10.0.1.50", tags("prod", "1"))
	att := e.attachENI(n.ID, inst.ID, 1)

	got := e.describeENI(n.ID)
	checks := []struct {
		field     string
		got, want any
	}{
		{"NetworkInterfaceId", aws.ToString(got.NetworkInterfaceId), n.ID},
		{"SubnetId", aws.ToString(got.SubnetId), e.subA},
		{"VpcId", aws.ToString(got.VpcId), n.VPCID},
		{"AvailabilityZone", aws.ToString(got.AvailabilityZone), "us-east-1a"},
		{"Status", got.Status, types.NetworkInterfaceStatusInUse},
		{"PrivateIpAddress", aws.ToString(got.PrivateIpAddress), "10.0.1.50"},
		{"MacAddress", aws.ToString(got.MacAddress), n.MAC},
		{"PrivateDnsName", aws.ToString(got.PrivateDnsName), "ip-10-0-1-50.ec2.internal"},
		{"PrivateIpAddresses[0].Primary", aws.ToBool(got.PrivateIpAddresses[0].Primary), true},
		{"InterfaceType", got.InterfaceType, types.NetworkInterfaceTypeInterface},
		{"Tags", len(got.TagSet), 2},
		{"Attachment.AttachmentId", aws.ToString(got.Attachment.AttachmentId), att},
		{"Attachment.InstanceId", aws.ToString(got.Attachment.InstanceId), inst.ID},
		{"Attachment.DeviceIndex", aws.ToInt32(got.Attachment.DeviceIndex), int32(1)},
		{"Attachment.NetworkCardIndex", aws.ToInt32(got.Attachment.NetworkCardIndex), int32(0)},
		{"Attachment.Status", got.Attachment.Status, types.AttachmentStatusAttached},
		{"Attachment.DeleteOnTermination", aws.ToBool(got.Attachment.DeleteOnTermination), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if got.Attachment.AttachTime == nil || time.Since(*got.Attachment.AttachTime) > time.Minute {
		t.Errorf("Attachment.AttachTime = %v, want about now", got.Attachment.AttachTime)
	}
	if mac := n.MAC; len(mac) != 17 || mac[:3] != "02:" {
		t.Errorf("MAC %q is not a locally administered 02:xx:... address", mac)
	}
}

func TestENIAttachDetachLifecycle(t *testing.T) {
	e := setup(t, ec2sim.Options{Latency: ec2sim.Latency{ENIAttach: 150 * time.Millisecond, ENIDetach: 150 * time.Millisecond}})
	inst := e.run(e.subA)
	n := e.eni(e.subA, "", tags("prod", "1"))

	out, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(n.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	att := aws.ToString(out.AttachmentId)
	if len(att) != len("eni-attach-")+17 || aws.ToInt32(out.NetworkCardIndex) != 0 {
		t.Fatalf("AttachNetworkInterface = %q card %d", att, aws.ToInt32(out.NetworkCardIndex))
	}
	state := func() (types.NetworkInterfaceStatus, types.AttachmentStatus) {
		got := e.describeENI(n.ID)
		if got.Attachment == nil {
			return got.Status, ""
		}
		return got.Status, got.Attachment.Status
	}
	if s, a := state(); s != types.NetworkInterfaceStatusInUse || a != types.AttachmentStatusAttaching {
		t.Fatalf("right after attach: %s/%s, want in-use/attaching", s, a)
	}
	// DescribeInstances shows the same transition: the claimer watches it there.
	instENI := func() *types.InstanceNetworkInterface {
		for _, ni := range e.describeInstance(inst.ID).NetworkInterfaces {
			if aws.ToString(ni.NetworkInterfaceId) == n.ID {
				return &ni
			}
		}
		return nil
	}
	if ni := instENI(); ni == nil || ni.Attachment.Status != types.AttachmentStatusAttaching {
		t.Fatalf("DescribeInstances right after attach: %+v", ni)
	}
	eventually(t, "attached", func() bool { _, a := state(); return a == types.AttachmentStatusAttached })
	ni := instENI()
	if ni == nil || ni.Attachment.Status != types.AttachmentStatusAttached || aws.ToInt32(ni.Attachment.DeviceIndex) != 1 ||
		aws.ToString(ni.Attachment.AttachmentId) != att || aws.ToBool(ni.Attachment.DeleteOnTermination) ||
		aws.ToString(ni.MacAddress) != n.MAC || aws.ToString(ni.PrivateIpAddress) != n.PrivateIP ||
		aws.ToString(ni.SubnetId) != e.subA {
		t.Fatalf("DescribeInstances after attach: %+v", ni)
	}

	if _, err := e.ec2.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(n.ID),
		Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(att), DeleteOnTermination: aws.Bool(true)},
	}); err != nil {
		t.Fatal(err)
	}
	if got := e.describeENI(n.ID); !aws.ToBool(got.Attachment.DeleteOnTermination) {
		t.Fatal("DeleteOnTermination not changed")
	}

	if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(att)}); err != nil {
		t.Fatal(err)
	}
	if s, a := state(); s != types.NetworkInterfaceStatusInUse || a != types.AttachmentStatusDetaching {
		t.Fatalf("right after detach: %s/%s, want in-use/detaching", s, a)
	}
	// Detaching twice is harmless.
	if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(att)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "available", func() bool { s, a := state(); return s == types.NetworkInterfaceStatusAvailable && a == "" })
	if ni := instENI(); ni != nil {
		t.Fatalf("detached ENI still on the instance: %+v", ni)
	}
}

func TestENIErrors(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	instA := e.run(e.subA)
	instA2 := e.run(e.subA)
	inUse := e.eni(e.subA, "", nil)
	free := e.eni(e.subA, "", nil)
	freeB := e.eni(e.subB, "", nil)
	att := e.attachENI(inUse.ID, instA.ID, 1)

	slow := setup(t, ec2sim.Options{Latency: ec2sim.Latency{InstanceStart: time.Hour}})
	pending := slow.run(slow.subA)
	slowENI := slow.eni(slow.subA, "", nil)

	attach := func(c *ec2.Client, eni, inst string, index int32) error {
		_, err := c.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
			NetworkInterfaceId: aws.String(eni), InstanceId: aws.String(inst), DeviceIndex: aws.Int32(index),
		})
		return err
	}
	tests := []struct {
		name      string
		call      func() error
		code, msg string
	}{
		{"attach in-use ENI", func() error { return attach(e.ec2, inUse.ID, instA2.ID, 1) },
			"InvalidParameterValue", fmt.Sprintf("Interface: [%s] in use.", inUse.ID)},
		{"attach across AZ", func() error { return attach(e.ec2, freeB.ID, instA.ID, 2) },
			"InvalidParameterCombination", "You may not attach a network interface to an instance if they are not in the same availability zone"},
		{"device index taken", func() error { return attach(e.ec2, free.ID, instA.ID, 1) },
			"InvalidParameterValue", fmt.Sprintf("Instance '%s' already has an interface attached at device index '1'.", instA.ID)},
		{"device index 0 taken by primary", func() error { return attach(e.ec2, free.ID, instA.ID, 0) },
			"InvalidParameterValue", fmt.Sprintf("Instance '%s' already has an interface attached at device index '0'.", instA.ID)},
		{"instance not running", func() error { return attach(slow.ec2, slowENI.ID, pending.ID, 1) },
			"IncorrectInstanceState", fmt.Sprintf("The pending instance '%s' is not in a valid state for this operation.", pending.ID)},
		{"unknown ENI", func() error { return attach(e.ec2, "eni-0123456789abcdef0", instA.ID, 2) },
			"InvalidNetworkInterfaceID.NotFound", "The networkInterface ID 'eni-0123456789abcdef0' does not exist"},
		{"malformed ENI id", func() error { return attach(e.ec2, "eni-xyz", instA.ID, 2) },
			"InvalidNetworkInterfaceID.Malformed", `Invalid id: "eni-xyz" (expecting "eni-...")`},
		{"unknown instance", func() error { return attach(e.ec2, free.ID, "i-0123456789abcdef0", 2) },
			"InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist"},
		{"describe unknown ENI", func() error {
			_, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{free.ID, "eni-00000000000000001"}})
			return err
		}, "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID 'eni-00000000000000001' does not exist"},
		{"detach unknown attachment", func() error {
			_, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String("eni-attach-0123456789abcdef0")})
			return err
		}, "InvalidAttachmentID.NotFound", "The attachment ID 'eni-attach-0123456789abcdef0' does not exist"},
		{"detach primary", func() error {
			primary, _ := e.sim.NetworkInterface(instA.PrimaryENI)
			_, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(primary.Attachment.ID)})
			return err
		}, "OperationNotPermitted", ""},
		{"modify wrong attachment", func() error {
			_, err := e.ec2.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String(free.ID),
				Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(att), DeleteOnTermination: aws.Bool(false)},
			})
			return err
		}, "InvalidAttachmentID.NotFound", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tc.call(), tc.code, tc.msg)
		})
	}
	// None of the failed calls changed anything.
	if n, _ := e.sim.NetworkInterface(free.ID); n.Status != ec2sim.StatusAvailable {
		t.Fatalf("failed attaches changed %s: %+v", free.ID, n)
	}
}

func TestPagination(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	var wantENIs, wantVols []string
	for i := range 12 {
		wantENIs = append(wantENIs, e.eni(e.subA, "", tags("prod", fmt.Sprint(i))).ID)
		wantVols = append(wantVols, e.volume("us-east-1a", tags("prod", fmt.Sprint(i))).ID)
	}
	prod := []types.Filter{filter("tag:zkaas:ensemble", "prod")}

	t.Run("network interfaces", func(t *testing.T) {
		var got []string
		pages := 0
		p := ec2.NewDescribeNetworkInterfacesPaginator(e.ec2, &ec2.DescribeNetworkInterfacesInput{Filters: prod, MaxResults: aws.Int32(5)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			pages++
			got = append(got, eniIDs(out.NetworkInterfaces)...)
		}
		if pages != 3 || !slices.Equal(got, sorted(wantENIs...)) {
			t.Fatalf("%d pages, got %v, want %v", pages, got, sorted(wantENIs...))
		}
	})
	t.Run("volumes", func(t *testing.T) {
		var got []string
		pages := 0
		p := ec2.NewDescribeVolumesPaginator(e.ec2, &ec2.DescribeVolumesInput{Filters: prod, MaxResults: aws.Int32(5)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			pages++
			got = append(got, volumeIDs(out.Volumes)...)
		}
		if pages != 3 || !slices.Equal(got, sorted(wantVols...)) {
			t.Fatalf("%d pages, got %v, want %v", pages, got, sorted(wantVols...))
		}
	})
	t.Run("MaxResults below 5", func(t *testing.T) {
		_, err := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{MaxResults: aws.Int32(3)})
		wantError(t, err, "InvalidParameterValue", "Value ( 3 ) for parameter maxResults is invalid. Expecting a value greater than 5.")
	})
	t.Run("ids with MaxResults", func(t *testing.T) {
		_, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: wantENIs[:1], MaxResults: aws.Int32(5)})
		wantError(t, err, "InvalidParameterCombination", "")
	})
	t.Run("bad token", func(t *testing.T) {
		_, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NextToken: aws.String("!!")})
		wantError(t, err, "InvalidPaginationToken", "")
	})
}

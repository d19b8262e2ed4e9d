package ec2sim_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// attachAt attaches an ENI through the API and returns the error.
func (e *env) attachAt(eniID, instID string, index int32) error {
	e.t.Helper()
	_, err := e.ec2.AttachNetworkInterface(ctx(e.t), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(eniID), InstanceId: aws.String(instID), DeviceIndex: aws.Int32(index),
	})
	return err
}

func TestENILimitPerInstanceType(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	tests := []struct {
		instanceType string
		max          int
	}{
		{"", 3}, // DefaultInstanceType, t3.medium
		{"t2.micro", 2},
		{"t3.micro", 2},
		{"t3.small", 3},
		{"m5.large", 3},
		{"m5.xlarge", 4},
		{"c5.large", 3},
		{"r5.large", 3},
		{"m6i.large", 3},
	}
	for _, tc := range tests {
		t.Run(tc.instanceType, func(t *testing.T) {
			inst, err := e.sim.RunInstanceOfType(e.subA, tc.instanceType)
			if err != nil {
				t.Fatal(err)
			}
			wantType := tc.instanceType
			if wantType == "" {
				wantType = ec2sim.DefaultInstanceType
			}
			if got := string(e.describeInstance(inst.ID).InstanceType); got != wantType {
				t.Fatalf("DescribeInstances says %s, want %s", got, wantType)
			}
			if n, ok := ec2sim.MaxNetworkInterfaces(wantType); !ok || n != tc.max {
				t.Fatalf("MaxNetworkInterfaces(%s) = %d %v, want %d", wantType, n, ok, tc.max)
			}
			// The primary ENI counts: max-1 more fit, at any indexes.
			var atts []string
			for i := 1; i < tc.max; i++ {
				atts = append(atts, e.attachENI(e.eni(e.subA, "", nil).ID, inst.ID, int32(2*i)))
			}
			extra := e.eni(e.subA, "", nil)
			err = e.attachAt(extra.ID, inst.ID, 1)
			wantError(t, err, "AttachmentLimitExceeded", fmt.Sprintf("Interface count %d exceeds the limit for %s", tc.max+1, wantType))
			if got, _ := e.sim.NetworkInterface(extra.ID); got.Status != ec2sim.StatusAvailable {
				t.Fatalf("refused ENI is %s", got.Status)
			}
			// A detaching interface still counts; once it is gone there is room.
			if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(atts[0])}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "detached", func() bool {
				out, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{
					Filters: []types.Filter{filter("attachment.instance-id", inst.ID)},
				})
				return err == nil && len(out.NetworkInterfaces) == tc.max-1
			})
			e.attachENI(extra.ID, inst.ID, 1)
		})
	}
	t.Run("filter instance-type", func(t *testing.T) {
		out, err := e.ec2.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("instance-type", "m5.xlarge")}})
		if err != nil || len(out.Reservations) != 1 {
			t.Fatalf("%d reservations, %v; want the one m5.xlarge", len(out.Reservations), err)
		}
	})
	t.Run("unknown type", func(t *testing.T) {
		_, err := e.sim.RunInstanceOfType(e.subA, "x9.huge")
		if err == nil || !strings.Contains(err.Error(), "Invalid value 'x9.huge' for InstanceType") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestForcedENIDetachLosesDeviceIndex(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64
		force    bool
		losesIdx bool
	}{
		{"forced, index lost", 1, true, true},
		{"forced, index kept", 0, true, false},
		{"not forced", 1, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, ec2sim.Options{Faults: ec2sim.Faults{ForcedDetachIndexLossRate: tc.rate}})
			inst := e.run(e.subA) // t3.medium: three interfaces
			stuck := e.eni(e.subA, "", nil)
			e.sim.StickNextAttach(stuck.ID)
			out, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
				NetworkInterfaceId: aws.String(stuck.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(1),
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{
				AttachmentId: out.AttachmentId, Force: aws.Bool(tc.force),
			}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "detached", func() bool { n, _ := e.sim.NetworkInterface(stuck.ID); return n.Status == ec2sim.StatusAvailable })

			next := e.eni(e.subA, "", nil)
			err = e.attachAt(next.ID, inst.ID, 1)
			if !tc.losesIdx {
				if err != nil {
					t.Fatalf("attach at the freed index: %v", err)
				}
				return
			}
			// The error claim's slotTaken recognises: take another index.
			wantError(t, err, "InvalidParameterValue", fmt.Sprintf("Instance '%s' already has an interface attached at device index '1'.", inst.ID))
			// The same ENI is refused there too; another index works.
			wantError(t, e.attachAt(stuck.ID, inst.ID, 1), "InvalidParameterValue", "")
			e.attachENI(next.ID, inst.ID, 2)
			// The lost index still holds a device: the t3.medium is full.
			wantError(t, e.attachAt(stuck.ID, inst.ID, 3), "AttachmentLimitExceeded", "Interface count 4 exceeds the limit for t3.medium")
			// Other instances are not affected.
			e.attachENI(stuck.ID, e.run(e.subA).ID, 1)
		})
	}
}

func TestStuckVolumeReattachedUnderAnotherName(t *testing.T) {
	lat := ec2sim.Latency{VolumeAttach: 5 * time.Millisecond}
	tests := []struct {
		name  string
		rate  float64
		force bool
		held  bool
	}{
		{"forced, name held", 1, true, true},
		{"forced, name released", 0, true, false},
		{"not forced", 1, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, ec2sim.Options{Latency: lat, Faults: ec2sim.Faults{ForcedDetachDeviceHoldRate: tc.rate}})
			inst := e.run(e.subA)
			v := e.volume("us-east-1a", nil)
			e.sim.StickNextAttach(v.ID)
			attach := func(dev string) {
				t.Helper()
				if _, err := e.ec2.AttachVolume(ctx(t), &ec2.AttachVolumeInput{
					VolumeId: aws.String(v.ID), InstanceId: aws.String(inst.ID), Device: aws.String(dev),
				}); err != nil {
					t.Fatalf("attach %s: %v", dev, err)
				}
			}
			detach := func(force bool) {
				t.Helper()
				if _, err := e.ec2.DetachVolume(ctx(t), &ec2.DetachVolumeInput{VolumeId: aws.String(v.ID), Force: aws.Bool(force)}); err != nil {
					t.Fatal(err)
				}
				eventually(t, "volume available", func() bool { x, _ := e.sim.Volume(v.ID); return x.State == ec2sim.StatusAvailable })
			}
			state := func() types.VolumeAttachmentState {
				time.Sleep(50 * time.Millisecond) // ten attach delays
				return e.describeVolume(v.ID).Attachments[0].State
			}
			attach("/dev/xvdf")
			if got := state(); got != types.VolumeAttachmentStateAttaching {
				t.Fatalf("first attach %s, want stuck attaching", got)
			}
			detach(tc.force)

			// Same instance, same name (and its sd twin).
			for _, dev := range []string{"/dev/xvdf", "/dev/sdf"} {
				attach(dev)
				if !tc.held {
					eventually(t, "attached under "+dev, func() bool {
						return e.describeVolume(v.ID).Attachments[0].State == types.VolumeAttachmentStateAttached
					})
				} else if got := state(); got != types.VolumeAttachmentStateAttaching {
					t.Fatalf("re-attach under held %s: %s, want attaching", dev, got)
				}
				detach(false)
			}
			if !tc.held {
				return
			}
			// A different name works.
			e.attachVolume(v.ID, inst.ID, "/dev/xvdg")
			detach(false)
			// A reboot releases the name.
			if err := e.sim.RebootInstance(inst.ID); err != nil {
				t.Fatal(err)
			}
			e.attachVolume(v.ID, inst.ID, "/dev/xvdf")
		})
	}
}

func TestStopStartReleasesLostIndex(t *testing.T) {
	e := setup(t, ec2sim.Options{
		Latency: ec2sim.Latency{InstanceStop: 20 * time.Millisecond, InstanceStart: 20 * time.Millisecond},
		Faults:  ec2sim.Faults{ForcedDetachIndexLossRate: 1},
	})
	inst := e.run(e.subA)
	eventually(t, "running", func() bool { i, _ := e.sim.Instance(inst.ID); return i.State == ec2sim.StateRunning })
	n := e.eni(e.subA, "", nil)
	att := e.attachENI(n.ID, inst.ID, 1)
	if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(att), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "detached", func() bool { x, _ := e.sim.NetworkInterface(n.ID); return x.Status == ec2sim.StatusAvailable })
	wantError(t, e.attachAt(n.ID, inst.ID, 1), "InvalidParameterValue", "")

	tests := []struct {
		name string
		call func() error
		want string // "" = success
	}{
		{"stop", func() error { return e.sim.StopInstance(inst.ID) }, ""},
		{"stop again", func() error { return e.sim.StopInstance(inst.ID) }, ""},
		{"start while stopping", func() error { return e.sim.StartInstance(inst.ID) }, "IncorrectInstanceState"},
	}
	for _, tc := range tests {
		if err := tc.call(); (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Fatalf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	eventually(t, "stopped", func() bool { i, _ := e.sim.Instance(inst.ID); return i.State == ec2sim.StateStopped })
	if got := e.describeInstance(inst.ID).State; got.Name != types.InstanceStateNameStopped || aws.ToInt32(got.Code) != 80 {
		t.Fatalf("DescribeInstances state %+v", got)
	}
	// A warm attach (to a stopped instance) at the once lost index works.
	e.attachENI(n.ID, inst.ID, 1)
	if err := e.sim.StartInstance(inst.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "running again", func() bool { i, _ := e.sim.Instance(inst.ID); return i.State == ec2sim.StateRunning })
	if got := e.describeENI(n.ID).Attachment; got == nil || aws.ToString(got.InstanceId) != inst.ID {
		t.Fatalf("attachment after the restart: %+v", got)
	}
	pending := e.run(e.subA)
	if err := e.sim.StopInstance(pending.ID); err == nil || !strings.Contains(err.Error(), "never reached the 'running' state") {
		t.Fatalf("stop pending: %v", err)
	}
}

func TestOptionsInstanceType(t *testing.T) {
	e := setup(t, ec2sim.Options{InstanceType: "t3.micro"})
	inst := e.run(e.subA)
	if inst.InstanceType != "t3.micro" {
		t.Fatalf("RunInstance launched %s", inst.InstanceType)
	}
	e.attachENI(e.eni(e.subA, "", nil).ID, inst.ID, 1)
	wantError(t, e.attachAt(e.eni(e.subA, "", nil).ID, inst.ID, 2), "AttachmentLimitExceeded", "Interface count 3 exceeds the limit for t3.micro")
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted an unknown instance type")
		}
	}()
	ec2sim.New(ec2sim.Options{InstanceType: "x9.huge"})
}

package ec2sim_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func TestHideNextAttach(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	inst := e.run(e.subA)
	n := e.eni(e.subA, "", nil)
	v := e.volume("us-east-1a", nil)
	e.sim.HideNextAttach(n.ID)
	e.sim.HideNextAttach(v.ID)
	att := e.attachENI(n.ID, inst.ID, 1) // waits for the true state
	e.attachVolume(v.ID, inst.ID, "/dev/xvdf")

	byFilter := func(name, value string) (enis, vols int) {
		outE, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter(name, value)}})
		if err != nil {
			t.Fatal(err)
		}
		outV, err := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{Filters: []types.Filter{filter(name, value)}})
		if err != nil {
			t.Fatal(err)
		}
		return len(outE.NetworkInterfaces), len(outV.Volumes)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"ENI status", e.describeENI(n.ID).Status, types.NetworkInterfaceStatusAvailable},
		{"ENI attachment", e.describeENI(n.ID).Attachment == nil, true},
		{"volume state", e.describeVolume(v.ID).State, types.VolumeStateAvailable},
		{"volume attachments", len(e.describeVolume(v.ID).Attachments), 0},
		{"DescribeInstances interfaces", len(e.describeInstance(inst.ID).NetworkInterfaces), 1},      // the primary
		{"DescribeInstances block devices", len(e.describeInstance(inst.ID).BlockDeviceMappings), 1}, // the root
		{"filter attachment.instance-id (ENIs, volumes)", fmtPair(byFilter("attachment.instance-id", inst.ID)), "1 1"},
		{"filter status available (ENIs, volumes)", fmtPair(byFilter("status", "available")), "1 1"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	// The true state holds: EC2 still refuses a second attacher and lets
	// the owner detach.
	wantError(t, e.attachAt(n.ID, e.run(e.subA).ID, 1), "InvalidParameterValue", "")
	if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(att)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "detached", func() bool { x, _ := e.sim.NetworkInterface(n.ID); return x.Status == ec2sim.StatusAvailable })
	// Only that attachment was hidden: the next one shows.
	e.attachENI(n.ID, inst.ID, 1)
	if got := e.describeENI(n.ID); got.Attachment == nil || got.Attachment.Status != types.AttachmentStatusAttached {
		t.Fatalf("next attachment: %+v", got.Attachment)
	}
}

func fmtPair(a, b int) string { return fmt.Sprintf("%d %d", a, b) }

func TestAttachedInAPIHooks(t *testing.T) {
	var mu sync.Mutex
	var order []string
	var e *env
	record := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, s)
	}
	e = setup(t, ec2sim.Options{
		Latency: ec2sim.Latency{ENIAttach: 10 * time.Millisecond, VolumeAttach: 10 * time.Millisecond},
		Hooks: ec2sim.Hooks{
			ENIAttached: func(ev ec2sim.ENIEvent) error {
				n, _ := e.sim.NetworkInterface(ev.NetworkInterfaceID)
				record("device " + n.Attachment.Status)
				return nil
			},
			ENIAttachedInAPI: func(ev ec2sim.ENIEvent) {
				n, _ := e.sim.NetworkInterface(ev.NetworkInterfaceID)
				record("api " + n.Attachment.Status)
			},
			VolumeAttached: func(ev ec2sim.VolumeEvent) error {
				v, _ := e.sim.Volume(ev.VolumeID)
				record("device " + v.Attachment.State)
				return nil
			},
			VolumeAttachedInAPI: func(ev ec2sim.VolumeEvent) {
				v, _ := e.sim.Volume(ev.VolumeID)
				record("api " + v.Attachment.State + " " + ev.Device)
			},
		},
	})
	inst := e.run(e.subA)
	e.attachENI(e.eni(e.subA, "", nil).ID, inst.ID, 1)
	eventually(t, "ENI hooks", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 2 })
	e.attachVolume(e.volume("us-east-1a", nil).ID, inst.ID, "/dev/xvdf")
	eventually(t, "volume hooks", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 4 })
	// A stuck attachment fires neither.
	stuck := e.eni(e.subA, "", nil)
	e.sim.StickNextAttach(stuck.ID)
	if err := e.attachAt(stuck.ID, inst.ID, 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	want := []string{"device attaching", "api attached", "device attaching", "api attached /dev/xvdf"}
	if len(order) != len(want) {
		t.Fatalf("hooks ran %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("hooks ran %v, want %v", order, want)
		}
	}
}

func TestDetachEventsSayForced(t *testing.T) {
	var mu sync.Mutex
	enis, vols := map[string]bool{}, map[string]bool{}
	e := setup(t, ec2sim.Options{
		Latency: ec2sim.Latency{ENIDetach: 200 * time.Millisecond, VolumeDetach: 200 * time.Millisecond},
		Hooks: ec2sim.Hooks{
			ENIDetached:    func(ev ec2sim.ENIEvent) { mu.Lock(); defer mu.Unlock(); enis[ev.NetworkInterfaceID] = ev.Forced },
			VolumeDetached: func(ev ec2sim.VolumeEvent) { mu.Lock(); defer mu.Unlock(); vols[ev.VolumeID] = ev.Forced },
		},
	})
	tests := []struct {
		name   string
		forces []bool // successive detach calls
		forced bool
	}{
		{"plain", []bool{false}, false},
		{"forced", []bool{true}, true},
		{"forced while detaching", []bool{false, true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst := e.run(e.subA)
			n := e.eni(e.subA, "", nil)
			v := e.volume("us-east-1a", nil)
			att := e.attachENI(n.ID, inst.ID, 1)
			e.attachVolume(v.ID, inst.ID, "/dev/xvdf")
			for _, f := range tc.forces {
				if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(att), Force: aws.Bool(f)}); err != nil {
					t.Fatal(err)
				}
				if _, err := e.ec2.DetachVolume(ctx(t), &ec2.DetachVolumeInput{VolumeId: aws.String(v.ID), Force: aws.Bool(f)}); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "detach events", func() bool {
				mu.Lock()
				defer mu.Unlock()
				_, okE := enis[n.ID]
				_, okV := vols[v.ID]
				return okE && okV
			})
			mu.Lock()
			defer mu.Unlock()
			if enis[n.ID] != tc.forced || vols[v.ID] != tc.forced {
				t.Fatalf("Forced: ENI %v, volume %v, want %v", enis[n.ID], vols[v.ID], tc.forced)
			}
		})
	}
}

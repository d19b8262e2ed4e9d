package ec2sim_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// volumeStates returns the volume's attachment state as DescribeVolumes and
// as DescribeInstances show it ("" = not attached).
func (e *env) volumeStates(volID, instID string) (fromVolumes, fromInstances string) {
	e.t.Helper()
	if v := e.describeVolume(volID); len(v.Attachments) > 0 {
		fromVolumes = string(v.Attachments[0].State)
	}
	for _, bd := range e.describeInstance(instID).BlockDeviceMappings {
		if aws.ToString(bd.Ebs.VolumeId) == volID {
			fromInstances = string(bd.Ebs.Status)
		}
	}
	return fromVolumes, fromInstances
}

func TestLagPerAPI(t *testing.T) {
	const lag = 400 * time.Millisecond
	tests := []struct {
		name                 string
		lag                  ec2sim.Lag
		volumesLag, instsLag bool // which view is stale right after the attach
	}{
		{"volumes lag", ec2sim.Lag{Volumes: lag}, true, false},
		{"instances lag", ec2sim.Lag{Instances: lag}, false, true},
		{"both", ec2sim.Lag{Instances: lag, Volumes: lag}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, ec2sim.Options{Lag: tc.lag})
			inst := e.run(e.subA)
			v := e.volume("us-east-1a", nil)
			time.Sleep(lag) // both exist in every view
			start := time.Now()
			e.attachVolume(v.ID, inst.ID, "/dev/xvdf")
			vols, insts := e.volumeStates(v.ID, inst.ID)
			if time.Since(start) >= lag {
				t.Skip("too slow to look within the lag")
			}
			if got := vols == ""; got != tc.volumesLag {
				t.Errorf("DescribeVolumes shows %q within the lag", vols)
			}
			if got := insts == ""; got != tc.instsLag {
				t.Errorf("DescribeInstances shows %q within the lag", insts)
			}
			eventually(t, "both views catch up", func() bool {
				vols, insts := e.volumeStates(v.ID, inst.ID)
				return vols == "attached" && insts == "attached"
			})
		})
	}
}

func TestLagRandomIsNotMonotonic(t *testing.T) {
	const lag = 300 * time.Millisecond
	e := setup(t, ec2sim.Options{Seed: 3, Lag: ec2sim.Lag{NetworkInterfaces: lag, Random: true}})
	inst := e.run(e.subA)
	n := e.eni(e.subA, "", nil)
	time.Sleep(lag)
	e.attachENI(n.ID, inst.ID, 1)
	// Within the lag, answers flip between the old and the new state.
	var seen []bool // attached?
	for start := time.Now(); time.Since(start) < lag*2/3; {
		seen = append(seen, e.describeENI(n.ID).Attachment != nil)
	}
	backwards := false
	for i := 1; i < len(seen); i++ {
		if seen[i-1] && !seen[i] {
			backwards = true
		}
	}
	if !backwards {
		t.Fatalf("%d answers never went from attached back to available: %v", len(seen), seen)
	}
	// After the lag every answer is current.
	time.Sleep(lag)
	for range 20 {
		if got := e.describeENI(n.ID); got.Attachment == nil || got.Attachment.Status != types.AttachmentStatusAttached {
			t.Fatalf("after the lag: %+v", got.Attachment)
		}
	}
}

func TestLagNewIDsNotFoundToMutations(t *testing.T) {
	const lag = 300 * time.Millisecond
	e := setup(t, ec2sim.Options{Lag: ec2sim.Lag{NewIDs: lag}})
	old := e.run(e.subA)
	oldENI := e.eni(e.subA, "", nil)
	time.Sleep(lag)
	created := time.Now()
	inst := e.run(e.subA)
	n := e.eni(e.subA, "", nil)
	v := e.volume("us-east-1a", nil)
	tag := []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}

	tests := []struct {
		name      string
		call      func() error
		code, msg string
	}{
		{"attach new ENI", func() error { return e.attachAt(n.ID, old.ID, 1) },
			"InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '" + n.ID + "' does not exist"},
		{"attach to new instance", func() error { return e.attachAt(oldENI.ID, inst.ID, 1) },
			"InvalidInstanceID.NotFound", "The instance ID '" + inst.ID + "' does not exist"},
		{"attach new volume", func() error {
			_, err := e.ec2.AttachVolume(ctx(t), &ec2.AttachVolumeInput{VolumeId: aws.String(v.ID), InstanceId: aws.String(old.ID), Device: aws.String("/dev/xvdf")})
			return err
		}, "InvalidVolume.NotFound", "The volume '" + v.ID + "' does not exist."},
		{"tag new volume", func() error {
			_, err := e.ec2.CreateTags(ctx(t), &ec2.CreateTagsInput{Resources: []string{v.ID}, Tags: tag})
			return err
		}, "InvalidVolume.NotFound", ""},
		{"tag new instance", func() error {
			_, err := e.ec2.CreateTags(ctx(t), &ec2.CreateTagsInput{Resources: []string{old.ID, inst.ID}, Tags: tag})
			return err
		}, "InvalidInstanceID.NotFound", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if time.Since(created) >= lag {
				t.Skip("too slow to call within the lag")
			}
			wantError(t, err, tc.code, tc.msg)
		})
	}
	// The Go admin API is not subject to it.
	if err := e.sim.CreateTags([]string{v.ID}, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(created.Add(lag)))
	for _, tc := range tests {
		if err := tc.call(); err != nil {
			t.Fatalf("%s after the lag: %v", tc.name, err)
		}
	}
}

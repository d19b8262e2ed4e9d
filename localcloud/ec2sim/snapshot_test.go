package ec2sim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func TestDescribeSnapshots(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	v1, v2 := e.volume("us-east-1a", nil), e.volume("us-east-1b", nil)
	s1, err := e.sim.TakeSnapshot(v1.ID, "daily", map[string]string{"zkaas:ensemble": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := e.sim.TakeSnapshot(v2.ID, "daily", nil)
	if _, err := e.sim.TakeSnapshot("vol-0123456789abcdef0", "", nil); err == nil {
		t.Fatal("snapshot of an unknown volume")
	}
	tests := []struct {
		name string
		in   ec2.DescribeSnapshotsInput
		want []string
		code string
	}{
		{"by volume, self", ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []types.Filter{filter("volume-id", v1.ID, v2.ID)}}, []string{s1.ID, s2.ID}, ""},
		{"by tag", ec2.DescribeSnapshotsInput{Filters: []types.Filter{filter("tag:zkaas:ensemble", "prod")}}, []string{s1.ID}, ""},
		{"by id", ec2.DescribeSnapshotsInput{SnapshotIds: []string{s2.ID}}, []string{s2.ID}, ""},
		{"amazon's", ec2.DescribeSnapshotsInput{OwnerIds: []string{"amazon"}}, nil, ""},
		{"unknown", ec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-0123456789abcdef0"}}, nil, "InvalidSnapshot.NotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			out, err := e.ec2.DescribeSnapshots(ctx(t), &in)
			if tc.code != "" {
				wantError(t, err, tc.code, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range out.Snapshots {
				got = append(got, aws.ToString(s.SnapshotId))
				if s.State != types.SnapshotStateCompleted || s.StartTime == nil || aws.ToInt32(s.VolumeSize) != 10 {
					t.Fatalf("%+v", s)
				}
			}
			if g, w := sorted(got...), sorted(tc.want...); len(g) != len(w) || (len(g) > 0 && g[0] != w[0]) {
				t.Fatalf("got %v, want %v", g, w)
			}
		})
	}
}

func TestModifyVolume(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	v := e.volume("us-east-1a", nil) // gp3, 10 GiB, 3000 IOPS, 125 MiB/s
	modify := func(in ec2.ModifyVolumeInput) (*ec2.ModifyVolumeOutput, error) {
		in.VolumeId = aws.String(v.ID)
		return e.ec2.ModifyVolume(ctx(t), &in)
	}
	waitDone := func() {
		eventually(t, "modification completed", func() bool {
			_, err := modify(ec2.ModifyVolumeInput{})
			code, _, _ := apiError(t, err)
			return code != "IncorrectModificationState"
		})
	}
	tests := []struct {
		name string
		in   ec2.ModifyVolumeInput
		want ec2sim.VolumeOptions
		size int32
		code string
	}{
		{"grow and raise IOPS", ec2.ModifyVolumeInput{Size: aws.Int32(20), Iops: aws.Int32(6000)}, ec2sim.VolumeOptions{Type: "gp3", IOPS: 6000, Throughput: 125}, 20, ""},
		{"shrink", ec2.ModifyVolumeInput{Size: aws.Int32(5)}, ec2sim.VolumeOptions{}, 0, "InvalidParameterValue"},
		{"throughput over the ratio", ec2.ModifyVolumeInput{Throughput: aws.Int32(2000)}, ec2sim.VolumeOptions{}, 0, "InvalidParameterValue"},
		{"to io2", ec2.ModifyVolumeInput{VolumeType: types.VolumeTypeIo2, Iops: aws.Int32(5000)}, ec2sim.VolumeOptions{Type: "io2", IOPS: 5000}, 20, ""},
		{"back to gp3", ec2.ModifyVolumeInput{VolumeType: types.VolumeTypeGp3}, ec2sim.VolumeOptions{Type: "gp3", IOPS: 3000, Throughput: 125}, 20, ""},
		{"throughput", ec2.ModifyVolumeInput{Throughput: aws.Int32(500)}, ec2sim.VolumeOptions{Type: "gp3", IOPS: 3000, Throughput: 500}, 20, ""},
		{"a fifth in 24 hours", ec2.ModifyVolumeInput{Size: aws.Int32(30)}, ec2sim.VolumeOptions{}, 0, "VolumeModificationRateExceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := modify(tc.in)
			if tc.code != "" {
				wantError(t, err, tc.code, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m := out.VolumeModification; m.ModificationState != types.VolumeModificationStateModifying || aws.ToInt32(m.TargetSize) != tc.size {
				t.Fatalf("%+v", m)
			}
			if got := e.sim.VolumeAttributes(v.ID); got != tc.want {
				t.Fatalf("attributes %+v, want %+v", got, tc.want)
			}
			if d := e.describeVolume(v.ID); aws.ToInt32(d.Size) != tc.size || string(d.VolumeType) != tc.want.Type {
				t.Fatalf("described %d GiB %s", aws.ToInt32(d.Size), d.VolumeType)
			}
			waitDone()
		})
	}
}

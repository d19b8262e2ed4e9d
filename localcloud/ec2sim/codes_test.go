package ec2sim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func TestENIInUseCodes(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		codes []string // every answer is one of these
	}{
		{"InvalidParameterValue form", 0, []string{"InvalidParameterValue"}},
		{"InvalidNetworkInterface.InUse form", 1, []string{"InvalidNetworkInterface.InUse"}},
		{"seeded mix", 0.5, []string{"InvalidParameterValue", "InvalidNetworkInterface.InUse"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, ec2sim.Options{Seed: 5, Faults: ec2sim.Faults{ENIInUseCodeRate: tc.rate}})
			n := e.eni(e.subA, "", nil)
			e.attachENI(n.ID, e.run(e.subA).ID, 1)
			other := e.run(e.subA)
			seen := map[string]int{}
			for range 20 {
				code, msg, status := apiError(t, e.attachAt(n.ID, other.ID, 1))
				if want := fmt.Sprintf("Interface: [%s] in use.", n.ID); msg != want || status != 400 {
					t.Fatalf("%s %q HTTP %d, want %q HTTP 400", code, msg, status, want)
				}
				seen[code]++
			}
			if len(seen) != len(tc.codes) {
				t.Fatalf("codes %v, want each of %v", seen, tc.codes)
			}
			for _, c := range tc.codes {
				if seen[c] == 0 {
					t.Fatalf("codes %v, want each of %v", seen, tc.codes)
				}
			}
		})
	}
}

func TestAttachToPendingInstance(t *testing.T) {
	e := setup(t, ec2sim.Options{Latency: ec2sim.Latency{InstanceStart: time.Hour}})
	pending := e.run(e.subA)
	n := e.eni(e.subA, "", nil)
	v := e.volume("us-east-1a", nil)
	tests := []struct {
		name      string
		call      func() error
		code, msg string
	}{
		{"ENI", func() error { return e.attachAt(n.ID, pending.ID, 1) },
			"IncorrectInstanceState", fmt.Sprintf("The pending instance '%s' is not in a valid state for this operation.", pending.ID)},
		{"volume", func() error {
			_, err := e.ec2.AttachVolume(ctx(t), &ec2.AttachVolumeInput{VolumeId: aws.String(v.ID), InstanceId: aws.String(pending.ID), Device: aws.String("/dev/xvdf")})
			return err
		}, "IncorrectState", fmt.Sprintf("Instance '%s' is not 'running'.", pending.ID)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tc.call(), tc.code, tc.msg)
		})
	}
	if got, _ := e.sim.NetworkInterface(n.ID); got.Status != ec2sim.StatusAvailable {
		t.Fatalf("refused ENI is %s", got.Status)
	}
	if got, _ := e.sim.Volume(v.ID); got.State != ec2sim.StatusAvailable {
		t.Fatalf("refused volume is %s", got.State)
	}
}

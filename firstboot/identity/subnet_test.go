package identity

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// fakeIMDS serves meta-data paths from a map; a path listed in lag answers
// only after that many failed reads, as IMDS does for a hot-plugged ENI.
type fakeIMDS struct {
	mu    sync.Mutex
	paths map[string]string
	lag   map[string]int
	reads []string
}

func (f *fakeIMDS) GetMetadata(_ context.Context, in *imds.GetMetadataInput, _ ...func(*imds.Options)) (*imds.GetMetadataOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, in.Path)
	if f.lag[in.Path] > 0 {
		f.lag[in.Path]--
		return nil, errors.New("404 not found")
	}
	v, ok := f.paths[in.Path]
	if !ok {
		return nil, errors.New("404 not found")
	}
	return &imds.GetMetadataOutput{Content: io.NopCloser(strings.NewReader(v + "\n"))}, nil
}

func TestSubnet(t *testing.T) {
	const macs = "network/interfaces/macs/"
	self := Instance{InstanceID: "i-1", MAC: "02:00:00:00:00:01"}
	eniMAC := net.HardwareAddr{2, 0, 0, 0, 0, 0x42}
	primary := map[string]string{
		macs + "02:00:00:00:00:01/subnet-id":              "subnet-a",
		macs + "02:00:00:00:00:01/subnet-ipv4-cidr-block": "10.0.1.0/24",
	}
	withENI := map[string]string{macs + "02:00:00:00:00:42/subnet-ipv4-cidr-block": "10.0.2.0/24"}
	for k, v := range primary {
		withENI[k] = v
	}
	tests := []struct {
		name     string
		subnetID string
		paths    map[string]string
		lag      int // failed reads of the ENI's entry before it appears
		want     netip.Prefix
		wantErr  string
		// wantENIReads is how often the ENI's own entry was read.
		wantENIReads int
	}{
		{"same subnet as the primary: its entry answers", "subnet-a", primary, 0, netip.MustParsePrefix("10.0.1.0/24"), "", 0},
		{"other subnet: the ENI's entry", "subnet-b", withENI, 0, netip.MustParsePrefix("10.0.2.0/24"), "", 1},
		{"other subnet, IMDS lags: polled until it appears", "subnet-b", withENI, 2, netip.MustParsePrefix("10.0.2.0/24"), "", 3},
		{"other subnet, never appears: bounded", "subnet-b", primary, 0, netip.Prefix{}, "IMDS has no subnet for ENI eni-1 (02:00:00:00:00:42) after 400ms", -1},
		{"garbage CIDR", "subnet-b", map[string]string{macs + "02:00:00:00:00:42/subnet-ipv4-cidr-block": "ten"}, 0, netip.Prefix{}, "subnet-ipv4-cidr-block", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eniPath := macs + eniMAC.String() + "/subnet-ipv4-cidr-block"
			f := &fakeIMDS{paths: tt.paths, lag: map[string]int{eniPath: tt.lag}}
			m := Metadata{API: f, SubnetWait: 2 * time.Second}
			if tt.wantENIReads < 0 {
				m.SubnetWait = 400 * time.Millisecond
			}
			got, err := m.Subnet(context.Background(), self, Interface{ID: "eni-1", MAC: eniMAC, SubnetID: tt.subnetID})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("Subnet = %v, %v; want %v", got, err, tt.want)
			}
			n := 0
			for _, p := range f.reads {
				if p == eniPath {
					n++
				}
			}
			if tt.wantENIReads >= 0 && n != tt.wantENIReads {
				t.Errorf("read the ENI's entry %d times, want %d (reads %v)", n, tt.wantENIReads, f.reads)
			}
		})
	}
}

package disk_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/localcloud/looptest"
)

func TestResolveDevice(t *testing.T) {
	dev := looptest.New(t, 1<<20)
	name := filepath.Base(dev.Path)
	notBlock := filepath.Join(t.TempDir(), "regular-file")
	if err := os.WriteFile(notBlock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond

	tests := []struct {
		name    string
		links   map[string]string // by-id name -> target
		serials map[string]string // block device name -> sysfs serial
		xen     map[string]string // name in the requested device's directory -> target
		request string            // spec.Device, relative to that directory
		late    time.Duration     // create the by-id links only after this long
		want    string            // resolved device; "" means an error
		wantErr []string
		refused bool
	}{
		{
			name:    "nitro by-id link with matching serial",
			links:   map[string]string{byIDName(testVolume): dev.Path},
			serials: map[string]string{name: ebsSerial(testVolume)},
			want:    dev.Path,
		},
		{
			name:    "nitro by-id link appearing after the first poll",
			links:   map[string]string{byIDName(testVolume): dev.Path},
			serials: map[string]string{name: ebsSerial(testVolume)},
			late:    100 * time.Millisecond,
			want:    dev.Path,
		},
		{
			// EC2 said attached, but the OS sees the device only after
			// the bound: the resolver does not wait longer than told.
			name:    "nitro by-id link appearing after the deadline",
			links:   map[string]string{byIDName(testVolume): dev.Path},
			serials: map[string]string{name: ebsSerial(testVolume)},
			late:    3 * timeout,
			wantErr: []string{testVolume, "no device appeared within 300ms", byIDName(testVolume)},
		},
		{
			name:    "nitro by-id link to a device of another volume is refused",
			links:   map[string]string{byIDName(testVolume): dev.Path},
			serials: map[string]string{name: ebsSerial("vol-0fedcba9876543210")},
			wantErr: []string{`has serial "vol0fedcba9876543210", want "` + testSerial + `"`, testVolume},
			refused: true,
		},
		{
			name:    "nitro by-id link to a device without a serial",
			links:   map[string]string{byIDName(testVolume): dev.Path},
			wantErr: []string{"serial of " + dev.Path},
		},
		{
			name:    "by-id link to something that is not a block device",
			links:   map[string]string{byIDName(testVolume): notBlock},
			wantErr: []string{"is not a block device"},
		},
		{
			name:    "xen: requested sdf is found as xvdf",
			xen:     map[string]string{"xvdf": dev.Path},
			request: "sdf",
			want:    dev.Path,
		},
		{
			name:    "xen: requested name leads to a device with another EBS serial",
			xen:     map[string]string{"sdf": dev.Path},
			serials: map[string]string{name: ebsSerial("vol-0fedcba9876543210")},
			request: "sdf",
			wantErr: []string{"refusing to use another volume"},
			refused: true,
		},
		{
			name:    "device never appears",
			request: "xvdf",
			wantErr: []string{"no device appeared within 300ms", byIDName(testVolume), "xvdf", "sdf"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var links map[string]string
			if tc.late == 0 {
				links = tc.links
			}
			prep := nitro(t, links, tc.serials)
			prep.DeviceTimeout = timeout
			xenDir := t.TempDir()
			for n, target := range tc.xen {
				if err := os.Symlink(target, filepath.Join(xenDir, n)); err != nil {
					t.Fatal(err)
				}
			}
			spec := disk.Spec{VolumeID: testVolume}
			if tc.request != "" {
				spec.Device = filepath.Join(xenDir, tc.request)
			}
			if tc.late > 0 {
				timer := time.AfterFunc(tc.late, func() {
					for n, target := range tc.links {
						if err := os.Symlink(target, filepath.Join(prep.ByIDDir, n)); err != nil {
							t.Error(err)
						}
					}
				})
				t.Cleanup(func() { timer.Stop() })
			}

			start := time.Now()
			got, err := prep.ResolveDevice(context.Background(), spec)
			elapsed := time.Since(start)

			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("ResolveDevice = %q, %v; want %q", got, err, tc.want)
				}
				if elapsed >= timeout {
					t.Errorf("took %v, want well under the %v deadline", elapsed, timeout)
				}
				return
			}
			if err == nil {
				t.Fatalf("ResolveDevice = %q, want an error", got)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			for _, sub := range tc.wantErr {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error %q does not contain %q", err, sub)
				}
			}
			if errors.Is(err, disk.ErrRefused) != tc.refused {
				t.Errorf("errors.Is(err, ErrRefused) = %v, want %v", !tc.refused, tc.refused)
			}
			// Failures are decided at the deadline, not before (a stale
			// link may be fixed by udev) and not much after.
			if elapsed < timeout || elapsed > timeout+time.Second {
				t.Errorf("failed after %v, want at the %v deadline", elapsed, timeout)
			}
		})
	}
}

func TestResolveDeviceHonoursContext(t *testing.T) {
	prep := nitro(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := prep.ResolveDevice(ctx, disk.Spec{VolumeID: testVolume})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
}

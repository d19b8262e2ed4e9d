package localcloud

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestMachineBootWithDeviceLag: the image's zkaas-firstboot.service, unmodified
// under systemd, boots node 1 when the OS sees the hot-plugged ENI and
// volume well after EC2 says attached (and IMDS learns of the ENI late),
// and when it sees them well before: every wait of the boot is bounded and
// none is fooled by either order.
func TestMachineBootWithDeviceLag(t *testing.T) {
	tests := []struct {
		name     string
		delay    time.Duration // NICVisibleDelay and DiskVisibleDelay
		imdsLag  time.Duration
		wantSlow time.Duration // the claim takes at least this long
	}{
		{"devices and IMDS 2s after attached", 2 * time.Second, 2 * time.Second, 2 * time.Second},
		{"devices 1.5s before attached", -1500 * time.Millisecond, 0, 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs := bakedImage(t)
			c := newCloud(t, Options{EC2: fastSim, RootFS: rootfs, Boot: BootSystemd, ShutdownTimeout: 30 * time.Second,
				NICVisibleDelay: tt.delay, DiskVisibleDelay: tt.delay, IMDSInterfaceLag: tt.imdsLag})
			c.PrintJournalsOnFailure(t)
			for i, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
				if _, err := c.CreateSlot("lag", i+1, az, fmt.Sprintf("10.0.%d.10", i+1), 1); err != nil {
					t.Fatal(err)
				}
			}
			inst, err := c.LaunchWith(t.Context(), "us-east-1a", LaunchOptions{Files: map[string][]byte{
				"/etc/zkaas/ensemble.yaml": machineConfig("lag", 30*time.Second),
			}})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if got := waitUnit(t, inst, "zkaas-firstboot.service", "active", "failed"); got != "active" {
				t.Fatalf("zkaas-firstboot.service %s:\n%s", got, journal(t, inst, "-u", "zkaas-firstboot", "-o", "cat"))
			}
			t.Logf("firstboot done %s after PID 1", time.Since(start).Round(time.Millisecond))
			// The claim's own account: it waited for the devices (after
			// attached) or for EC2's attached (devices before).
			claimed := ""
			for _, l := range strings.Split(journal(t, inst, "-u", "zkaas-firstboot", "-o", "cat"), "\n") {
				if strings.Contains(l, "msg=claimed") {
					claimed = l
				}
			}
			t.Log(claimed)
			_, d, _ := strings.Cut(claimed, " duration=")
			if took, err := time.ParseDuration(strings.Fields(d + " x")[0]); err != nil || took < tt.wantSlow {
				t.Errorf("claim took %q (%v), want at least %s", d, err, tt.wantSlow)
			}
			if out := inside(t, inst, "ip -o -4 addr show"); !strings.Contains(out, "10.0.1.10/24") {
				t.Errorf("node 1's address is not configured:\n%s", out)
			}
			if got := inside(t, inst, "findmnt -n -o TARGET /var/lib/zookeeper"); got != "/var/lib/zookeeper" {
				t.Errorf("/var/lib/zookeeper not mounted: %q", got)
			}
		})
	}
}

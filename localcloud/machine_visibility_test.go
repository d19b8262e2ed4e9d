package localcloud

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMachineBootWithDeviceLag: the image's zkaas-firstboot.service,
// unmodified under systemd, boots node 1 when the OS sees the hot-plugged
// ENI and volume well after EC2 says attached, when it sees them well
// before, and when IMDS learns of an ENI of another subnet seconds after
// the attach: every wait of the boot is bounded and none is fooled by
// either order. The journal shows which stage waited.
func TestMachineBootWithDeviceLag(t *testing.T) {
	const other = "10.0.4.0/24" // a second subnet in us-east-1a
	tests := []struct {
		name    string
		delay   time.Duration // NICVisibleDelay and DiskVisibleDelay
		imdsLag time.Duration
		subnet  string // of node 1's ENI; "" is the instance's
		// The claim, and the network stage, take at least this long.
		wantClaim, wantNetwork time.Duration
	}{
		{name: "devices 2s after attached", delay: 2 * time.Second, imdsLag: 2 * time.Second, wantClaim: 2 * time.Second},
		{name: "devices 1.5s before attached", delay: -1500 * time.Millisecond, wantClaim: 1500 * time.Millisecond},
		{name: "ENI in another subnet, IMDS 3s after attached", imdsLag: 3 * time.Second, subnet: other, wantNetwork: 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs := bakedImage(t)
			c := newCloud(t, Options{EC2: fastSim, RootFS: rootfs, Boot: BootSystemd, ShutdownTimeout: 30 * time.Second,
				Subnets:         append(slices.Clone(DefaultSubnets), Subnet{AZ: "us-east-1a", CIDR: other}),
				NICVisibleDelay: tt.delay, DiskVisibleDelay: tt.delay, IMDSInterfaceLag: tt.imdsLag})
			c.PrintJournalsOnFailure(t)
			cfg := string(machineConfig("lag", 30*time.Second))
			for i, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
				ip := fmt.Sprintf("10.0.%d.10", i+1)
				if i > 0 || tt.subnet == "" {
					if _, err := c.CreateSlot("lag", i+1, az, ip, 1); err != nil {
						t.Fatal(err)
					}
					continue
				}
				// Node 1's slot, its ENI in the other subnet.
				tags := map[string]string{TagEnsemble: "lag", TagNode: "1"}
				if _, err := c.CreateNetworkInterfaceIn(tt.subnet, "10.0.4.10", tags); err != nil {
					t.Fatal(err)
				}
				if _, err := c.CreateVolume(az, 1, tags); err != nil {
					t.Fatal(err)
				}
				cfg = strings.Replace(cfg, "ip: "+ip, "ip: 10.0.4.10", 1)
			}
			inst, err := c.LaunchWith(t.Context(), "us-east-1a", LaunchOptions{Files: map[string][]byte{
				"/etc/zkaas/ensemble.yaml": []byte(cfg),
			}})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if got := waitUnit(t, inst, "zkaas-firstboot.service", "active", "failed"); got != "active" {
				t.Fatalf("zkaas-firstboot.service %s:\n%s", got, journal(t, inst, "-u", "zkaas-firstboot", "-o", "cat"))
			}
			t.Logf("firstboot done %s after PID 1", time.Since(start).Round(time.Millisecond))

			// The stages' own account of their waits.
			var claimed, network string
			for _, l := range strings.Split(journal(t, inst, "-u", "zkaas-firstboot", "-o", "cat"), "\n") {
				switch {
				case strings.Contains(l, "msg=claimed"):
					claimed = l
				case strings.Contains(l, `msg="step finished" step=network duration=`):
					network = l
				}
			}
			t.Log(claimed)
			t.Log(network)
			for _, c := range []struct {
				what, line string
				min        time.Duration
			}{{"claim", claimed, tt.wantClaim}, {"network stage", network, tt.wantNetwork}} {
				_, d, _ := strings.Cut(c.line, " duration=")
				took, err := time.ParseDuration(strings.Fields(d + " x")[0])
				if err != nil || took < c.min {
					t.Errorf("%s took %q (%v), want at least %s", c.what, d, err, c.min)
				}
			}
			ip := "10.0.1.10/24"
			if tt.subnet != "" {
				ip = "10.0.4.10/24"
			}
			if out := inside(t, inst, "ip -o -4 addr show"); !strings.Contains(out, ip) {
				t.Errorf("node 1's address %s is not configured:\n%s", ip, out)
			}
			if got := inside(t, inst, "findmnt -n -o TARGET /var/lib/zookeeper"); got != "/var/lib/zookeeper" {
				t.Errorf("/var/lib/zookeeper not mounted: %q", got)
			}
		})
	}
}

package localcloud

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/claim"
	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/firstboot/hotplug"
	"github.com/zkaas/zkaas/firstboot/identity"
	"github.com/zkaas/zkaas/firstboot/netcfg"
	"github.com/zkaas/zkaas/internal/nsutil"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// TestDeviceVisibility: the OS's view and the API's view of a hot attach,
// in both orders. The claim engine, run against the real SDK, answers only
// once the API says attached — also when the devices appeared long before
// — and firstboot's own waits (the link by MAC, the volume by serial) find
// a device that appears after the API said attached within their bound,
// and fail at the bound, in one line naming the MAC or volume and the
// bound, when it appears later.
func TestDeviceVisibility(t *testing.T) {
	const attach = 200 * time.Millisecond
	tests := []struct {
		name  string
		delay time.Duration // NICVisibleDelay and DiskVisibleDelay
		// devices: the claim waits on the instance's own signals
		// (package hotplug) before it asks EC2, as zkaas-firstboot's
		// does; else it polls EC2 only.
		devices bool
	}{
		{"devices appear 1.5s after the API says attached", 1500 * time.Millisecond, false},
		{"devices appear 1s before the API says attached", -time.Second, false},
		{"claim on device signals, devices after attached", 1500 * time.Millisecond, true},
		{"claim on device signals, devices before attached", -time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastSim
			opts.Latency = ec2sim.Latency{ENIAttach: attach, VolumeAttach: attach, ENIDetach: 50 * time.Millisecond, VolumeDetach: 50 * time.Millisecond}
			c := newCloud(t, Options{EC2: opts, NICVisibleDelay: tt.delay, DiskVisibleDelay: tt.delay})
			inst := launch(t, c, "us-east-1a")
			slot, err := c.CreateSlot("vis", 1, "us-east-1a", "10.0.1.10", 1)
			if err != nil {
				t.Fatal(err)
			}
			mac, _ := net.ParseMAC(slot.ENI.MAC)
			w := watch(t, c, inst, slot)

			cfg := visConfig(t)
			cl := claim.NewClaimer(ec2From(inst), cfg, identity.Instance{
				InstanceID: inst.ID, AZ: inst.AZ, Region: inst.Region, MAC: inst.MAC,
			}, slog.New(slog.NewTextHandler(t.Output(), nil)))
			if tt.devices {
				cl.Devices = devicesOn(inst)
			}
			res, err := cl.Claim(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			claimed := time.Now()
			if res.ENI != slot.ENI.ID || res.Volume != slot.Volume.ID {
				t.Fatalf("claimed %s and %s, want slot 1's %s and %s", res.ENI, res.Volume, slot.ENI.ID, slot.Volume.ID)
			}
			// Whatever the OS saw, the claim answers on the API's word.
			if s, v := eniStatus(c, slot.ENI.ID), volumeState(c, slot.Volume.ID); s != ec2sim.AttachAttached || v != ec2sim.AttachAttached {
				t.Errorf("claim returned with the ENI %s and the volume %s, want both attached", s, v)
			}

			if tt.devices && tt.delay > 0 {
				// It waited for the devices, which came after the API's
				// "attached".
				seen := w.times()
				if seen.link.IsZero() || seen.disk.IsZero() || claimed.Before(seen.link) || claimed.Before(seen.disk) {
					t.Errorf("claim returned at %s, devices seen at %+v", claimed.Format(time.StampMilli), seen)
				}
				return
			}
			if tt.delay < 0 {
				// The devices were there while the API still said
				// attaching: the claim did not take them for attached.
				seen := w.times()
				if seen.link.IsZero() || seen.disk.IsZero() {
					t.Fatalf("devices not seen by the time the claim returned: %+v", seen)
				}
				for what, at := range map[string]time.Time{"link": seen.link, "disk": seen.disk} {
					api := seen.eniAttached
					if what == "disk" {
						api = seen.volAttached
					}
					if d := api.Sub(at); d < -tt.delay*8/10 {
						t.Errorf("%s appeared %s before the API said attached, want about %s", what, d, -tt.delay)
					}
				}
				return
			}

			// The API said attached; the devices are not there yet.
			if l := linkByMAC(t, netlinkIn(t, inst.NetNS), mac); l != nil {
				t.Fatalf("link %s there %s after the claim, before the %s delay", l.Attrs().Name, time.Since(claimed), tt.delay)
			}
			t.Run("waits past the bound fail clearly", func(t *testing.T) {
				const bound = 300 * time.Millisecond
				var wg sync.WaitGroup
				var linkErr, diskErr error
				wg.Go(func() { _, linkErr = findLinkOn(inst, mac, bound) })
				wg.Go(func() { _, diskErr = resolveErr(t, inst, slot.Volume.ID, bound) })
				wg.Wait()
				if !errors.Is(linkErr, netcfg.ErrLinkNotFound) {
					t.Errorf("link: %v, want ErrLinkNotFound", linkErr)
				} else if msg := linkErr.Error(); !strings.Contains(msg, mac.String()) || !strings.Contains(msg, "300ms") || strings.Contains(msg, "\n") {
					t.Errorf("link error %q: want one line naming %s and the bound", msg, mac)
				}
				if diskErr == nil {
					t.Errorf("volume resolved before it appeared")
				} else if msg := strings.TrimSpace(diskErr.Error()); !strings.Contains(msg, slot.Volume.ID) || !strings.Contains(msg, "within 300ms") || strings.Contains(msg, "\n") {
					t.Errorf("volume error %q: want one line naming %s and the bound", msg, slot.Volume.ID)
				}
			})
			t.Run("waits within the bound find the devices", func(t *testing.T) {
				var wg sync.WaitGroup
				var link netlink.Link
				var linkErr, diskErr error
				var dev string
				wg.Go(func() { link, linkErr = findLinkOn(inst, mac, 10*time.Second) })
				wg.Go(func() { dev, diskErr = resolveErr(t, inst, slot.Volume.ID, 10*time.Second) })
				wg.Wait()
				if linkErr != nil || link.Attrs().Name != "ens6" {
					t.Errorf("link: %v, %v; want ens6", link, linkErr)
				}
				if loops := loopOf(t, volumeFile(t, c, slot.Volume.ID)); diskErr != nil || len(loops) != 1 || dev != "/dev/"+loops[0].Name {
					t.Errorf("volume resolved to %q (%v); its file is on %v", dev, diskErr, loops)
				}
				if d := time.Since(claimed); d < tt.delay/2 {
					t.Errorf("found %s after the claim, before the %s delay", d, tt.delay)
				}
			})
		})
	}
}

// TestDeviceVisibilityDetachFirst: a device whose appearance is still
// delayed when its attachment goes away never appears.
func TestDeviceVisibilityDetachFirst(t *testing.T) {
	opts := fastSim
	opts.Latency = ec2sim.Latency{ENIAttach: 50 * time.Millisecond, ENIDetach: 50 * time.Millisecond}
	c := newCloud(t, Options{EC2: opts, NICVisibleDelay: time.Second})
	inst := launch(t, c, "us-east-1a")
	eni, err := c.CreateNetworkInterface("us-east-1a", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	api := ec2From(inst)
	out, err := api.AttachNetworkInterface(t.Context(), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(eni.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, eni.ID+" attached", func() bool { return eniStatus(c, eni.ID) == ec2sim.AttachAttached })
	if _, err := api.DetachNetworkInterface(t.Context(), &ec2.DetachNetworkInterfaceInput{AttachmentId: out.AttachmentId}); err != nil {
		t.Fatal(err)
	}
	eventually(t, eni.ID+" available", func() bool { return eniStatus(c, eni.ID) == ec2sim.StatusAvailable })
	mac, _ := net.ParseMAC(eni.MAC)
	nl := netlinkIn(t, inst.NetNS)
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if l := linkByMAC(t, nl, mac); l != nil {
			t.Fatalf("%s appeared as %s after its detach", eni.ID, l.Attrs().Name)
		}
	}
}

// TestIMDSInterfaceLag: the instance's IMDS serves a hot-attached ENI's
// entries only IMDSInterfaceLag after the API says attached. firstboot's
// IMDS reader, for an ENI in another subnet of the AZ (where the primary's
// entry cannot answer), waits for them within its bound and fails at the
// bound, in one line naming the ENI, its MAC and the bound, when they come
// later. An ENI in the primary's subnet — the usual layout — does not wait.
func TestIMDSInterfaceLag(t *testing.T) {
	const lag = time.Second
	const other = "10.0.4.0/24" // a second subnet in us-east-1a
	opts := fastSim
	opts.Latency = ec2sim.Latency{ENIAttach: 50 * time.Millisecond}
	c := newCloud(t, Options{EC2: opts, IMDSInterfaceLag: lag,
		Subnets: append(slices.Clone(DefaultSubnets), Subnet{AZ: "us-east-1a", CIDR: other})})
	inst := launch(t, c, "us-east-1a")
	if !strings.HasPrefix(inst.SubnetCIDR, "10.0.1.") {
		t.Fatalf("instance launched in %s, want the AZ's first subnet", inst.SubnetCIDR)
	}
	same, err := c.CreateNetworkInterface("us-east-1a", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := c.CreateNetworkInterfaceIn(other, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, eni := range []ec2sim.NetworkInterface{same, elsewhere} {
		if _, err := ec2From(inst).AttachNetworkInterface(t.Context(), &ec2.AttachNetworkInterfaceInput{
			NetworkInterfaceId: aws.String(eni.ID), InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(int32(i + 1)),
		}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "both attached", func() bool {
		return eniStatus(c, same.ID) == ec2sim.AttachAttached && eniStatus(c, elsewhere.ID) == ec2sim.AttachAttached
	})
	attached := time.Now()
	nicOf := func(eni ec2sim.NetworkInterface) identity.Interface {
		mac, _ := net.ParseMAC(eni.MAC)
		return identity.Interface{ID: eni.ID, MAC: mac, SubnetID: eni.SubnetID}
	}
	md := func(wait time.Duration) identity.Metadata {
		return identity.Metadata{API: identity.NewIMDS(aws.Config{HTTPClient: inst.HTTPClient()}), SubnetWait: wait}
	}
	self := identity.Instance{InstanceID: inst.ID, AZ: inst.AZ, Region: inst.Region, MAC: inst.MAC}

	if got, err := md(time.Second).Subnet(t.Context(), self, nicOf(same)); err != nil || got.String() != inst.SubnetCIDR {
		t.Errorf("Subnet of %s in the primary's subnet = %v, %v; want %s", same.ID, got, err, inst.SubnetCIDR)
	}
	if d := time.Since(attached); d > lag/2 {
		t.Errorf("the primary's entry took %s", d)
	}
	if _, err := md(200*time.Millisecond).Subnet(t.Context(), self, nicOf(elsewhere)); err == nil {
		t.Error("the ENI's entry answered before the lag")
	} else if msg := err.Error(); !strings.Contains(msg, elsewhere.ID) || !strings.Contains(msg, elsewhere.MAC) || !strings.Contains(msg, "200ms") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line naming %s, %s and the bound", msg, elsewhere.ID, elsewhere.MAC)
	}
	got, err := md(10*time.Second).Subnet(t.Context(), self, nicOf(elsewhere))
	if err != nil || got.String() != other {
		t.Fatalf("Subnet of %s = %v, %v; want %s", elsewhere.ID, got, err, other)
	}
	if d := time.Since(attached); d < lag*9/10 {
		t.Errorf("the ENI's entry answered %s after the attach, before the %s lag", d, lag)
	}
}

// visConfig is a three-node ensemble with test bounds.
func visConfig(t *testing.T) ensemble.Config {
	t.Helper()
	cfg, _, err := ensemble.Parse("vis.yaml", machineConfig("vis", 20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// seenTimes are when the watcher first saw each device and each "attached".
type seenTimes struct{ link, disk, eniAttached, volAttached time.Time }

type watcher struct {
	mu   sync.Mutex
	seen seenTimes
}

func (w *watcher) times() seenTimes {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// watch records, every 10 ms until the test ends, when the slot's devices
// first appear on the instance and when the API first says attached.
func watch(t *testing.T, c *Cloud, inst *Instance, s Slot) *watcher {
	t.Helper()
	mac, _ := net.ParseMAC(s.ENI.MAC)
	nl := netlinkIn(t, inst.NetNS)
	byID := inst.Path("/dev/disk/by-id/" + disk.EBSByIDName(s.Volume.ID))
	w := &watcher{}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		set := func(at *time.Time, cond bool) {
			if cond && at.IsZero() {
				*at = time.Now()
			}
		}
		for {
			links, _ := nl.LinkList()
			link := false
			for _, l := range links {
				link = link || l.Attrs().HardwareAddr.String() == mac.String()
			}
			_, derr := os.Lstat(byID)
			w.mu.Lock()
			set(&w.seen.link, link)
			set(&w.seen.disk, derr == nil)
			set(&w.seen.eniAttached, eniStatus(c, s.ENI.ID) == ec2sim.AttachAttached)
			set(&w.seen.volAttached, volumeState(c, s.Volume.ID) == ec2sim.AttachAttached)
			w.mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	return w
}

// findLinkOn runs netcfg's link search inside the instance's network
// namespace, as firstboot does there.
func findLinkOn(inst *Instance, mac net.HardwareAddr, bound time.Duration) (netlink.Link, error) {
	h, err := netns.GetFromPath(inst.NetNS)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var link netlink.Link
	err = nsutil.InNetNS(h, func() (err error) {
		link, err = netcfg.FindLinkByMAC(context.Background(), mac, bound)
		return err
	})
	return link, err
}

// resolveErr is resolve with the resolver's bound, returning its failure.
func resolveErr(t *testing.T, inst *Instance, volumeID string, bound time.Duration) (string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	var stderr strings.Builder
	cmd := inst.Command(t.Context(), exe)
	cmd.Env = append(cmd.Env, envResolve+"="+volumeID, envResolveTimeout+"="+bound.String())
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", errors.New(strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// devicesOn is the claim's Devices for an instance, from the harness:
// package hotplug's watches, the NIC's inside the instance's network
// namespace, the volume's in its /dev and /sys.
func devicesOn(inst *Instance) claim.Devices {
	return instDevices{inst: inst, d: &hotplug.Devices{DevDir: inst.Path("/dev"), SysfsRoot: inst.Path("/sys")}}
}

type instDevices struct {
	inst *Instance
	d    *hotplug.Devices
}

func (i instDevices) WaitNIC(ctx context.Context, mac string) error {
	h, err := netns.GetFromPath(i.inst.NetNS)
	if err != nil {
		return err
	}
	defer h.Close()
	return nsutil.InNetNS(h, func() error { return i.d.WaitNIC(ctx, mac) })
}

func (i instDevices) WaitVolume(ctx context.Context, volumeID, device string) error {
	return i.d.WaitVolume(ctx, volumeID, device)
}

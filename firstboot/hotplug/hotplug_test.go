//go:build linux

package hotplug

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zkaas/zkaas/localcloud/netnstest"
)

func TestMain(m *testing.M) { os.Exit(netnstest.Main(m)) }

// TestWaitNIC: the NIC is found by MAC whether it is already there or
// hot-plugged while the claim waits, whatever it is called; a MAC that
// never appears waits until the context ends.
func TestWaitNIC(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x5a, 0, 0, 0, 7}
	for _, tt := range []struct {
		name  string
		after time.Duration // -1: before the wait
	}{{"present", -1}, {"hot-plugged", 200 * time.Millisecond}} {
		t.Run(tt.name, func(t *testing.T) {
			ns := netnstest.New(t)
			if err := ns.AddVeth(t, "decoy0", net.HardwareAddr{0x02, 0x5a, 0, 0, 0, 1}); err != nil {
				t.Fatal(err)
			}
			plugged := make(chan struct{})
			plug := func() {
				defer close(plugged)
				if err := ns.AddVeth(t, "ens6", mac); err != nil {
					t.Error(err)
				}
			}
			if tt.after < 0 {
				plug()
			} else {
				time.AfterFunc(tt.after, plug)
			}
			// The NIC is seen under its kernel name, before the rename:
			// let the rename finish before the namespace goes.
			defer func() { <-plugged }()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			if err := ns.Do(func() error { return (&Devices{}).WaitNIC(ctx, mac.String()) }); err != nil {
				t.Fatal(err)
			}
			if tt.after > 0 && time.Since(start) < tt.after {
				t.Errorf("returned after %s, before the NIC was plugged (%s)", time.Since(start), tt.after)
			}
		})
	}
	t.Run("never", func(t *testing.T) {
		ns := netnstest.New(t)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := ns.Do(func() error { return (&Devices{}).WaitNIC(ctx, mac.String()) })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's deadline", err)
		}
	})
}

// TestWaitVolume: the volume's device is seen from its sysfs serial (padded
// as an NVMe controller's), from its by-id link, or on Xen from the
// requested name; another volume's serial is not it.
func TestWaitVolume(t *testing.T) {
	const vol = "vol-0123456789abcdef0"
	blockDev := findBlockDevice(t)
	tests := []struct {
		name   string
		device string
		// plug runs on a timer's goroutine: it may only t.Error.
		plug       func(t *testing.T, dev, sys string)
		found      bool
		needsBlock bool // links to a block device of this host
	}{
		{"sysfs serial", "/dev/xvdf", func(t *testing.T, dev, sys string) {
			writeSerial(t, sys, "nvme1n1", "vol0123456789abcdef0")
		}, true, false},
		{"by-id link", "/dev/xvdf", func(t *testing.T, dev, sys string) {
			mkdir(t, filepath.Join(dev, "disk", "by-id"))
			if err := os.Symlink(blockDev, filepath.Join(dev, "disk", "by-id", "nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0")); err != nil {
				t.Error(err)
			}
		}, true, true},
		{"xen name", "/dev/sdf", func(t *testing.T, dev, sys string) {
			if err := os.Symlink(blockDev, filepath.Join(dev, "xvdf")); err != nil {
				t.Error(err)
			}
		}, true, true},
		{"another volume", "/dev/xvdf", func(t *testing.T, dev, sys string) {
			writeSerial(t, sys, "nvme1n1", "vol0fffffffffffffff0")
		}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsBlock && blockDev == "" {
				t.Skip("no block device on this host to link to")
			}
			dev, sys := t.TempDir(), t.TempDir()
			mkdir(t, filepath.Join(sys, "class", "block"))
			d := &Devices{DevDir: dev, SysfsRoot: sys, Poll: 10 * time.Millisecond}
			time.AfterFunc(100*time.Millisecond, func() { tt.plug(t, dev, sys) })
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err := d.WaitVolume(ctx, vol, tt.device)
			if tt.found && err != nil {
				t.Fatal(err)
			}
			if !tt.found && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the context's deadline", err)
			}
		})
	}
}

func writeSerial(t *testing.T, sys, name, serial string) {
	dir := filepath.Join(sys, "class", "block", name, "device")
	mkdir(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "serial"), fmt.Appendf(nil, "%-24s\n", serial), 0o444); err != nil {
		t.Error(err)
	}
}

func mkdir(t *testing.T, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Error(err)
	}
}

// findBlockDevice returns a block device node of this host, or "".
func findBlockDevice(t *testing.T) string {
	for _, p := range []string{"/dev/loop0", "/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/xvda"} {
		if isBlock(p) {
			return p
		}
	}
	return ""
}

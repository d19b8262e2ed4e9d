package netnstest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/zkaas/zkaas/internal/nsutil"
	"github.com/zkaas/zkaas/internal/procutil"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestAddVeth(t *testing.T) {
	tests := []struct {
		name string
		mac  string
	}{
		{"ens5", "02:00:00:00:00:05"},
		{"enp0s6", "02:00:00:00:00:06"},
		{"eth1", "02:00:00:00:00:01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := New(t)
			mac, _ := net.ParseMAC(tt.mac)
			if err := ns.AddVeth(t, tt.name, mac); err != nil {
				t.Fatal(err)
			}
			l, err := ns.Netlink().LinkByName(tt.name)
			if err != nil {
				t.Fatalf("peer %s not in %s: %v", tt.name, ns.Name, err)
			}
			if !bytes.Equal(l.Attrs().HardwareAddr, mac) {
				t.Errorf("peer mac = %s, want %s", l.Attrs().HardwareAddr, mac)
			}
			// The same link seen from inside Do, with the plain
			// package-level netlink functions.
			var inside net.HardwareAddr
			if err := ns.Do(func() error {
				l, err := netlink.LinkByName(tt.name)
				if err != nil {
					return err
				}
				inside = l.Attrs().HardwareAddr
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(inside, mac) {
				t.Errorf("mac seen inside Do = %s, want %s", inside, mac)
			}
			// Only the host end is in the host namespace.
			links, err := netlink.LinkList()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range links {
				if bytes.Equal(l.Attrs().HardwareAddr, mac) {
					t.Errorf("link %s with the peer's mac is in the host namespace", l.Attrs().Name)
				}
			}
		})
	}
}

func TestDoRestoresNamespace(t *testing.T) {
	ns := New(t)
	host, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	for range 20 { // enough rounds to reuse threads
		if err := ns.Do(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := ns.Do(func() error { return errors.New("boom") }); err == nil || err.Error() != "boom" {
		t.Errorf("Do error = %v, want boom", err)
	}
	now, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer now.Close()
	if !now.Equal(host) {
		t.Errorf("test goroutine is in %s after Do, want host %s", now, host)
	}
}

// TestReclaim plants what a crashed run leaves — a namespace and a host veth
// end named after a process that has exited — and checks Reclaim removes
// them but not what a live process (this one) owns.
func TestReclaim(t *testing.T) {
	RequireRoot(t)
	dead := exitedPID(t)
	deadNS := fmt.Sprintf("%s%d-1", Prefix, dead)
	deadVeth := vethPrefix + strconv.FormatInt(int64(dead), 36) + "-1"
	t.Cleanup(func() { // in case Reclaim fails
		_ = deleteNamed(deadNS)
		_ = deleteLink(deadVeth)
	})
	if err := nsutil.OnLockedThread(func() error {
		h, err := netns.NewNamed(deadNS)
		if err == nil {
			h.Close()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	orphan, err := netns.GetFromName(deadNS)
	if err != nil {
		t.Fatal(err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: deadVeth}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(orphan))}
	err = netlink.LinkAdd(veth)
	orphan.Close()
	if err != nil {
		t.Fatal(err)
	}

	live := New(t)
	if err := Reclaim(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, deadNS)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns %s of exited pid %d not reclaimed: %v", deadNS, dead, err)
	}
	if _, err := netlink.LinkByName(deadVeth); err == nil {
		t.Errorf("veth %s of exited pid %d not reclaimed", deadVeth, dead)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, live.Name)); err != nil {
		t.Errorf("netns %s of this live process was reclaimed: %v", live.Name, err)
	}
}

// exitedPID returns the pid of a process that has exited.
func exitedPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if procutil.Alive(pid) {
		t.Skipf("pid %d already reused", pid)
	}
	return pid
}

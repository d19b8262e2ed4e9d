// Package netnstest gives tests throwaway network namespaces with veth links
// in them, so real netlink code can run as root without touching the host's
// network.
//
// Everything is named after the test process (namespaces
// "zkaas-test-<pid>-<n>", host veth ends "zkt<pid36>-<n36>"), which lets a
// later run reclaim what a crashed run left behind without ever touching the
// namespaces of a test binary that is still running: `go test ./...` runs
// packages in parallel, and each may use this package.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(netnstest.Main(m)) }
package netnstest

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zkaas/zkaas/internal/nsutil"
	"github.com/zkaas/zkaas/internal/procutil"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace this package creates.
const Prefix = "zkaas-test-"

// netnsDir is where named namespaces are bind-mounted (by `ip netns add` and
// by netns.NewNamed alike).
const netnsDir = "/run/netns"

const vethPrefix = "zkt"

var (
	seq     atomic.Uint64
	nsRe    = regexp.MustCompile(`^` + Prefix + `([0-9]+)-[0-9]+$`)
	vethRe  = regexp.MustCompile(`^` + vethPrefix + `([0-9a-z]+)-[0-9a-z]+$`)
	selfPID = os.Getpid()
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and veth links")
	}
}

// Main reclaims leftovers of crashed runs, runs the tests and fails the run
// if any namespace or veth created by this process is still present.
func Main(m *testing.M) int {
	if os.Geteuid() == 0 {
		if err := Reclaim(); err != nil {
			fmt.Fprintln(os.Stderr, "netnstest: reclaim leftovers:", err)
			return 1
		}
	}
	code := m.Run()
	if os.Geteuid() != 0 {
		return code
	}
	left, err := Leftovers()
	if err != nil {
		fmt.Fprintln(os.Stderr, "netnstest: check leftovers:", err)
		return 1
	}
	if len(left) > 0 {
		fmt.Fprintln(os.Stderr, "netnstest: leaked:", strings.Join(left, ", "))
		return 1
	}
	return code
}

// NS is a named network namespace that lives until the test ends.
type NS struct {
	Name   string
	handle netns.NsHandle
	nl     *netlink.Handle
}

// New creates a namespace and registers its removal with t.Cleanup.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("%s%d-%d", Prefix, selfPID, seq.Add(1))
	var h netns.NsHandle
	err := nsutil.OnLockedThread(func() error {
		// NewNamed unshares this thread into the new namespace;
		// OnLockedThread puts the thread back.
		var err error
		h, err = netns.NewNamed(name)
		return err
	})
	if err != nil {
		// NewNamed may have created the mount point before failing.
		_ = deleteNamed(name)
		t.Fatalf("create netns %s: %v", name, err)
	}
	n := &NS{Name: name, handle: h}
	t.Cleanup(func() {
		if n.nl != nil {
			n.nl.Close()
		}
		h.Close()
		if err := deleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	n.nl, err = netlink.NewHandleAt(h)
	if err != nil {
		t.Fatalf("netlink handle in netns %s: %v", name, err)
	}
	return n
}

// Netlink returns a netlink handle bound to the namespace, for reading state
// back without switching threads.
func (n *NS) Netlink() *netlink.Handle { return n.nl }

// Do runs fn with the calling goroutine's view of the network being the
// namespace: fn runs on an OS thread locked into it. fn must not call
// t.Fatal (it runs on another goroutine); return an error instead.
// Goroutines fn starts run elsewhere, but sockets fn opens stay in the
// namespace.
func (n *NS) Do(fn func() error) error {
	return nsutil.InNetNS(n.handle, fn)
}

// AddVeth creates a veth pair whose peer appears inside the namespace under
// a kernel-style name (ethN), carrying mac, and is then renamed to name —
// the way a hot-plugged ENI shows up as eth1 and udev renames it to ens6.
// The peer is left down. The host end, the only thing created in the host
// namespace, is removed by t.Cleanup. AddVeth is safe to call from any
// goroutine that is not inside Do.
func (n *NS) AddVeth(t testing.TB, name string, mac net.HardwareAddr) error {
	id := seq.Add(1)
	host := vethPrefix + strconv.FormatInt(int64(selfPID), 36) + "-" + strconv.FormatUint(id, 36)
	kernelName := fmt.Sprintf("eth%d", 100+id)
	t.Cleanup(func() {
		if err := deleteLink(host); err != nil {
			t.Errorf("delete veth %s: %v", host, err)
		}
	})
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: host},
		PeerName:         kernelName,
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(int(n.handle)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s (peer %s in %s): %w", host, kernelName, n.Name, err)
	}
	if name == kernelName {
		return nil
	}
	peer, err := n.nl.LinkByName(kernelName)
	if err != nil {
		return fmt.Errorf("find veth peer %s in %s: %w", kernelName, n.Name, err)
	}
	if err := n.nl.LinkSetName(peer, name); err != nil {
		return fmt.Errorf("rename %s to %s in %s: %w", kernelName, name, n.Name, err)
	}
	return nil
}

// Reclaim deletes namespaces and host veth ends left by test processes that
// no longer run.
func Reclaim() error {
	var errs []error
	names, err := namespaces()
	if err != nil {
		return err
	}
	for _, name := range names {
		if pid, _ := strconv.Atoi(nsRe.FindStringSubmatch(name)[1]); !procutil.Alive(pid) {
			if err := deleteNamed(name); err != nil {
				errs = append(errs, fmt.Errorf("delete netns %s: %w", name, err))
			}
		}
	}
	links, err := hostVeths()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, name := range links {
		if pid, _ := strconv.ParseInt(vethRe.FindStringSubmatch(name)[1], 36, 64); !procutil.Alive(int(pid)) {
			if err := deleteLink(name); err != nil {
				errs = append(errs, fmt.Errorf("delete veth %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists the namespaces and host veth ends this process created
// that still exist.
func Leftovers() ([]string, error) {
	var left []string
	names, err := namespaces()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if nsRe.FindStringSubmatch(name)[1] == strconv.Itoa(selfPID) {
			left = append(left, "netns "+name)
		}
	}
	links, err := hostVeths()
	if err != nil {
		return nil, err
	}
	for _, name := range links {
		if vethRe.FindStringSubmatch(name)[1] == strconv.FormatInt(int64(selfPID), 36) {
			left = append(left, "veth "+name)
		}
	}
	return left, nil
}

// namespaces lists the names under /run/netns that this package could have
// created.
func namespaces() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", netnsDir, err)
	}
	var names []string
	for _, e := range entries {
		if nsRe.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// hostVeths lists veth links in the host namespace named like our host ends.
func hostVeths() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("list host links: %w", err)
	}
	var names []string
	for _, l := range links {
		if l.Type() == "veth" && vethRe.MatchString(l.Attrs().Name) {
			names = append(names, l.Attrs().Name)
		}
	}
	return names, nil
}

// deleteNamed unmounts and removes a named namespace; a half-created one
// (file without mount) is removed too.
func deleteNamed(name string) error {
	path := filepath.Join(netnsDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// deleteLink deletes a host link by name; a link already gone (deleting a
// namespace takes the veth pair with it) is fine.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return err
	}
	return nil
}

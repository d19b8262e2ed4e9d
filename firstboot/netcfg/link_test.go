//go:build linux

package netcfg

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/zkaas/zkaas/localcloud/netnstest"
)

// TestFindLinkByMAC finds the ENI whatever the kernel or udev called it, next
// to a decoy link with another MAC.
func TestFindLinkByMAC(t *testing.T) {
	for _, name := range []string{"ens5", "enp0s6", "eth1"} {
		t.Run(name, func(t *testing.T) {
			ns := netnstest.New(t)
			for i, n := range []string{"decoy0", name} {
				if err := ns.AddVeth(t, n, macFor(byte(i+1))); err != nil {
					t.Fatal(err)
				}
			}
			var got netlink.Link
			if err := ns.Do(func() (err error) {
				got, err = FindLinkByMAC(context.Background(), macFor(2), time.Second)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if got.Attrs().Name != name {
				t.Errorf("found %s, want %s", got.Attrs().Name, name)
			}
		})
	}
}

// TestFindLinkNeverAppears fails at the deadline, naming the MAC and the
// links that were there.
func TestFindLinkNeverAppears(t *testing.T) {
	ns := netnstest.New(t)
	if err := ns.AddVeth(t, "ens5", macFor(1)); err != nil {
		t.Fatal(err)
	}
	for _, subscribe := range []bool{true, false} {
		start := time.Now()
		err := ns.Do(func() error {
			_, err := findLink(context.Background(), testLogger(t), macFor(9), 300*time.Millisecond, subscribe)
			return err
		})
		elapsed := time.Since(start)
		if !errors.Is(err, ErrLinkNotFound) {
			t.Fatalf("subscribe=%v: error %v, want ErrLinkNotFound", subscribe, err)
		}
		for _, want := range []string{macFor(9).String(), "300ms", "ens5 " + macFor(1).String(), "lo"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("subscribe=%v: error %q does not mention %q", subscribe, err, want)
			}
		}
		if elapsed < 300*time.Millisecond || elapsed > 2*time.Second {
			t.Errorf("subscribe=%v: gave up after %s, want about 300ms", subscribe, elapsed)
		}
	}
}

// TestFindLinkCancelled returns promptly when the caller gives up.
func TestFindLinkCancelled(t *testing.T) {
	ns := netnstest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := ns.Do(func() error {
		_, err := FindLinkByMAC(ctx, macFor(9), time.Minute)
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
}

// TestFindLinkAppearsLater finds a link hot-plugged 200ms after the search
// started: through the subscription, and through the polling fallback.
func TestFindLinkAppearsLater(t *testing.T) {
	for _, subscribe := range []bool{true, false} {
		ns := netnstest.New(t)
		plugged := make(chan error, 1)
		go func() {
			time.Sleep(200 * time.Millisecond)
			plugged <- ns.AddVeth(t, "enp0s6", macFor(1))
		}()
		var got netlink.Link
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), nil))
		start := time.Now()
		err := ns.Do(func() (err error) {
			got, err = findLink(context.Background(), log, macFor(1), 5*time.Second, subscribe)
			return err
		})
		if perr := <-plugged; perr != nil {
			t.Fatal(perr)
		}
		if err != nil {
			t.Fatalf("subscribe=%v: %v", subscribe, err)
		}
		if subscribe && strings.Contains(logs.String(), "polling") {
			t.Errorf("found by polling, not through the subscription:\n%s", logs.String())
		}
		if elapsed := time.Since(start); elapsed < 200*time.Millisecond {
			t.Errorf("subscribe=%v: found after %s, before the link was plugged", subscribe, elapsed)
		}
		// The link appears as a kernel-named ethN and is renamed: with a
		// subscription the first sighting may carry the old name, so
		// compare indexes.
		want, err := ns.Netlink().LinkByName("enp0s6")
		if err != nil {
			t.Fatal(err)
		}
		if got.Attrs().Index != want.Attrs().Index {
			t.Errorf("subscribe=%v: found index %d (%s), want %d", subscribe, got.Attrs().Index, got.Attrs().Name, want.Attrs().Index)
		}
	}
}

// TestFindLinkAppearsTooLate: a link hot-plugged after the bound is not
// waited for: the search fails at the bound with one line naming the MAC
// and the bound, through the subscription and through polling.
func TestFindLinkAppearsTooLate(t *testing.T) {
	const bound = 200 * time.Millisecond
	for _, subscribe := range []bool{true, false} {
		ns := netnstest.New(t)
		timer := time.AfterFunc(3*bound, func() {
			if err := ns.AddVeth(t, "ens6", macFor(3)); err != nil {
				t.Error(err)
			}
		})
		start := time.Now()
		err := ns.Do(func() error {
			_, err := findLink(context.Background(), testLogger(t), macFor(3), bound, subscribe)
			return err
		})
		elapsed := time.Since(start)
		timer.Stop()
		if !errors.Is(err, ErrLinkNotFound) {
			t.Fatalf("subscribe=%v: error %v, want ErrLinkNotFound", subscribe, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, macFor(3).String()) || !strings.Contains(msg, bound.String()) || strings.Contains(msg, "\n") {
			t.Errorf("subscribe=%v: error %q: want one line naming %s and %s", subscribe, msg, macFor(3), bound)
		}
		if elapsed < bound || elapsed > 3*bound {
			t.Errorf("subscribe=%v: gave up after %s, want at the %s bound", subscribe, elapsed, bound)
		}
	}
}

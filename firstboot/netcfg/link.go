//go:build linux

package netcfg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrLinkNotFound is returned (wrapped) when no link with the MAC appeared
// in time.
var ErrLinkNotFound = errors.New("link not found")

// pollInterval paces the fallback when link updates cannot be subscribed to.
const pollInterval = 100 * time.Millisecond

// FindLinkByMAC returns the link carrying mac, waiting up to wait for it to
// appear. The kernel may call a hot-plugged ENI eth1, ens6 or enp0s6, and udev
// may rename it right after it appears, so only the MAC identifies it; use
// the returned link's index, not its name.
//
// It subscribes to link updates and then lists the links once, so a link that
// appeared before the subscription is not missed; if subscribing fails it
// polls instead. At the deadline the error wraps ErrLinkNotFound and names
// the MAC and every link seen.
func FindLinkByMAC(ctx context.Context, mac net.HardwareAddr, wait time.Duration) (netlink.Link, error) {
	return findLink(ctx, slog.Default(), mac, wait, true)
}

func findLink(ctx context.Context, log *slog.Logger, mac net.HardwareAddr, wait time.Duration, subscribe bool) (netlink.Link, error) {
	if len(mac) == 0 {
		return nil, errors.New("find link: empty mac")
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	seen := map[string]string{} // name -> MAC, for the error

	var updates <-chan netlink.LinkUpdate
	if subscribe {
		ch, stop, err := subscribeLinks()
		if err != nil {
			log.Warn("falling back to polling for the link", "mac", mac.String(), "err", err)
		} else {
			defer stop()
			updates = ch
		}
	}
	var ticker *time.Ticker
	var poll <-chan time.Time
	startPolling := func() {
		ticker = time.NewTicker(pollInterval)
		poll = ticker.C
	}
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	if updates == nil {
		startPolling()
	}

	if link, err := scanLinks(mac, seen); link != nil || err != nil {
		return link, err
	}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("find link with mac %s: %w", mac, ctx.Err())
		case <-deadline.C:
			return nil, fmt.Errorf("%w: no link with mac %s appeared within %s (links seen: %s)",
				ErrLinkNotFound, mac, wait, describeSeen(seen))
		case u, ok := <-updates:
			if !ok {
				// The subscription died (e.g. the socket overran): a
				// link may have been missed, so list and keep polling.
				log.Warn("link updates ended; polling for the link", "mac", mac.String())
				updates = nil
				startPolling()
				if link, err := scanLinks(mac, seen); link != nil || err != nil {
					return link, err
				}
				continue
			}
			if u.Header.Type != unix.RTM_NEWLINK {
				continue
			}
			attrs := u.Link.Attrs()
			seen[attrs.Name] = attrs.HardwareAddr.String()
			if bytes.Equal(attrs.HardwareAddr, mac) {
				return u.Link, nil
			}
		case <-poll:
			if link, err := scanLinks(mac, seen); link != nil || err != nil {
				return link, err
			}
		}
	}
}

// subscribeLinks subscribes to link updates in the current network namespace.
// stop ends the subscription.
func subscribeLinks() (updates <-chan netlink.LinkUpdate, stop func(), err error) {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	if err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{}); err != nil {
		close(done)
		return nil, nil, fmt.Errorf("subscribe to link updates: %w", err)
	}
	stop = func() {
		close(done)
		// The receiver goroutine closes ch when it sees the socket
		// closed, but it may be blocked handing us an update: drain so
		// it can get there instead of leaking.
		go func() {
			for range ch {
			}
		}()
	}
	return ch, stop, nil
}

// scanLinks lists the links once and returns the one with mac, if any.
func scanLinks(mac net.HardwareAddr, seen map[string]string) (netlink.Link, error) {
	links, err := netlink.LinkList()
	// An interrupted dump is incomplete, not wrong: use what came back
	// and look again at the next event or tick.
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		attrs := l.Attrs()
		seen[attrs.Name] = attrs.HardwareAddr.String()
		if bytes.Equal(attrs.HardwareAddr, mac) {
			return l, nil
		}
	}
	return nil, nil
}

func describeSeen(seen map[string]string) string {
	if len(seen) == 0 {
		return "none"
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		if mac := seen[name]; mac != "" {
			names[i] = name + " " + mac
		}
	}
	return strings.Join(names, ", ")
}

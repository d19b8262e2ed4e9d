//go:build linux

package netcfg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// udevDir is udev's runtime directory: "control" exists while udevd runs, and
// data/n<ifindex> once it has processed a network link.
const udevDir = "/run/udev"

// udevWait bounds the wait for udev to process a new link, which normally
// takes milliseconds. Past it Apply goes on: the name is cosmetic to us.
const udevWait = 5 * time.Second

// udevSeesLinks reports whether udev runs and receives the events of links in
// the calling thread's network namespace. A hot-plugged ENI appears with a
// kernel name (eth1) that udev renames (ens6) moments later; configuring the
// link in between races the rename, which kernels before 6.2 refuse for a
// link that is up — leaving nodes with differently named ENIs. udevd lives
// in PID 1's network namespace and gets no events for links in others, so
// only there is it worth waiting for.
func udevSeesLinks() bool {
	if _, err := os.Stat(filepath.Join(udevDir, "control")); err != nil {
		return false
	}
	initNS, err1 := os.Stat("/proc/1/ns/net")
	ownNS, err2 := os.Stat("/proc/thread-self/ns/net")
	if err1 != nil || err2 != nil {
		return false
	}
	return sameFile(initNS, ownNS)
}

func sameFile(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// waitUdevInitialized waits until udev has recorded the link with index in
// dir (its database, normally /run/udev), i.e. has renamed it and run its
// rules, polling up to wait.
func waitUdevInitialized(ctx context.Context, dir string, index int, wait time.Duration) error {
	path := filepath.Join(dir, "data", fmt.Sprintf("n%d", index))
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := os.Stat(path)
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("udev database entry of link index %d: %w", index, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for udev to initialize link index %d: %w", index, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("udev did not initialize link index %d within %s (no %s)", index, wait, path)
		case <-tick.C:
		}
	}
}

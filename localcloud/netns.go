package localcloud

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zkaas/zkaas/internal/nsutil"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns add` bind-mounts named network namespaces.
const netnsDir = "/run/netns"

// killWait bounds how long the harness waits for killed processes to be gone.
const killWait = 10 * time.Second

// createNetNS creates a named network namespace with `ip netns add`, which
// also sets up /run/netns the way every other iproute2 user expects, and
// returns an open handle to it.
func (t *tools) createNetNS(ctx context.Context, name string) (string, netns.NsHandle, error) {
	path := filepath.Join(netnsDir, name)
	if err := t.run(ctx, t.ip, "netns", "add", name); err != nil {
		_ = deleteNetNS(path) // ip may have created the mount point before failing
		return "", netns.None(), fmt.Errorf("create netns %s: %w", name, err)
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		_ = deleteNetNS(path)
		return "", netns.None(), fmt.Errorf("open netns %s: %w", name, err)
	}
	return path, h, nil
}

// deleteNetNS kills whatever still runs in a named network namespace, then
// unmounts and removes it; a half-created one (a file without a mount) and
// one already gone are fine.
func deleteNetNS(path string) error {
	if err := killNamespace("net", path); err != nil {
		return err
	}
	return unmountRemove(path)
}

// unmountRemove detaches the mount at path, if any, and removes the file.
func unmountRemove(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// killNamespace SIGKILLs, by PID, every process whose namespace of the given
// kind ("net", "mnt") is the one bind-mounted at path, and waits until none
// is left. Processes are found in /proc rather than only among the ones the
// harness started, because programs on an instance daemonize (zkServer.sh
// forks java) and a forgotten one would keep the namespace — and the veth
// and loop device in it — alive.
func killNamespace(kind, path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", path, err)
	}
	want := fmt.Sprintf("%s:[%d]", kind, st.Ino)
	deadline := time.Now().Add(killWait)
	for {
		pids, err := pidsIn(kind, want)
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in %s namespace %s after SIGKILL", pids, kind, path)
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pidsIn lists the processes whose /proc/<pid>/ns/<kind> reads want. An
// exited process (even a zombie) has left its namespaces and is not listed.
func pidsIn(kind, want string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if link, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", kind)); err == nil && link == want {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// netnsRef is an open network namespace handle that dials may use until it
// is closed. Its zero value is closed.
type netnsRef struct {
	mu   sync.RWMutex
	h    netns.NsHandle
	open bool
}

func (r *netnsRef) set(h netns.NsHandle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h, r.open = h, true
}

// close closes the handle; a dial in progress finishes first, so its
// descriptor is never closed (and reused) under it.
func (r *netnsRef) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open {
		r.h.Close()
		r.open = false
	}
}

// dial connects from inside the namespace.
func (r *netnsRef) dial(ctx context.Context, network, address string) (net.Conn, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.open {
		return nil, fmt.Errorf("dial %s: namespace deleted", address)
	}
	var conn net.Conn
	err := nsutil.InNetNS(r.h, func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, network, address)
		return err
	})
	return conn, err
}

// listen opens a listener inside the namespace; it keeps working (and
// keeps the namespace) until closed.
func (r *netnsRef) listen(network, address string) (net.Listener, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.open {
		return nil, fmt.Errorf("listen %s: namespace deleted", address)
	}
	var l net.Listener
	err := nsutil.InNetNS(r.h, func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// httpClient returns a client whose connections are made by dial. Keep-alive
// is off: an idle pooled connection would hold its namespace (and the veth
// in it) alive after the namespace is deleted. Proxies from the environment
// are ignored; nothing inside the local cloud is reachable through them.
func httpClient(dial func(ctx context.Context, network, address string) (net.Conn, error)) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

// ownerPID returns the pid at the start of a run id ("<pid>-<seq>...").
func ownerPID(runID string) (int, bool) {
	head, _, ok := strings.Cut(runID, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(head)
	return pid, err == nil
}

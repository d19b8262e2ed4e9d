package localbake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// Addresses of the veth pair between Packer's namespace and the build
// host's (RFC 2544 benchmarking space: never routed anywhere real).
const (
	PackerAddr = "198.18.0.1"
	HostAddr   = "198.18.0.2"
	proxyPort  = 3142
)

// nsPrefix names every namespace this package creates, followed by the
// creating process's pid, so leftovers of a crashed run can be reclaimed.
const nsPrefix = "zkaas-bake-"

var hostSeq atomic.Int32

// Host is a running build host: a chroot of an unpacked root file system
// whose sshd listens on HostAddr:22 in its own network namespace, in a
// private mount and pid namespace so that every process it starts dies
// with it.
type Host struct {
	Root     string // the root file system, on the host's disk
	KeyFile  string // private key root@HostAddr accepts
	PackerNS string // network namespace to run Packer in
	HostNS   string // the build host's network namespace

	dir    string
	sshd   *exec.Cmd
	done   chan struct{}
	proxy  *http.Server
	log    *slog.Logger
	closed bool
}

// HostConfig describes a build host.
type HostConfig struct {
	Tarball string // root file system (Rootfs)
	// AptCache, when set, is a directory mounted over the build host's
	// /var/cache/apt/archives: packages downloaded once are reused by later
	// build hosts, and never end up in the image.
	AptCache string
}

// StartHost unpacks the root file system into a fresh directory and starts
// the build host: a new SSH key pair and host keys, the two namespaces and
// their veth pair, the apt proxy and sshd. Close undoes all of it.
func StartHost(ctx context.Context, cfg HostConfig, log *slog.Logger) (h *Host, err error) {
	reclaim(log)
	n := hostSeq.Add(1)
	id := fmt.Sprintf("%d-%d", os.Getpid(), n)
	dir, err := os.MkdirTemp("", nsPrefix+id+"-")
	if err != nil {
		return nil, fmt.Errorf("build host: %w", err)
	}
	h = &Host{
		Root:     filepath.Join(dir, "rootfs"),
		KeyFile:  filepath.Join(dir, "id_ed25519"),
		PackerNS: nsPrefix + id + "-p",
		HostNS:   nsPrefix + id + "-b",
		dir:      dir,
		log:      log,
	}
	defer func() {
		if err != nil {
			h.Close()
			err = fmt.Errorf("build host: %w", err)
		}
	}()
	start := time.Now()
	if err := os.Mkdir(h.Root, 0o755); err != nil {
		return h, err
	}
	if err := run(ctx, "tar", "--numeric-owner", "--xattrs", "-xpf", cfg.Tarball, "-C", h.Root); err != nil {
		return h, err
	}
	if err := h.keys(ctx); err != nil {
		return h, err
	}
	// apt on the build host reaches the mirror through the proxy.
	if err := os.WriteFile(filepath.Join(h.Root, aptProxyConf), []byte(fmt.Sprintf("Acquire::http::Proxy \"http://%s:%d\";\n", PackerAddr, proxyPort)), 0o644); err != nil {
		return h, err
	}
	if err := h.network(ctx, n); err != nil {
		return h, err
	}
	l, err := h.Listen(proxyPort)
	if err != nil {
		return h, err
	}
	h.proxy = &http.Server{Handler: newAptProxy(), ReadHeaderTimeout: 30 * time.Second}
	go h.proxy.Serve(l)
	if cfg.AptCache != "" {
		if err := os.MkdirAll(filepath.Join(cfg.AptCache, "partial"), 0o755); err != nil {
			return h, err
		}
	}
	if err := h.startSSHD(ctx, cfg.AptCache); err != nil {
		return h, err
	}
	log.Info("build host up", "root", h.Root, "ssh", HostAddr+":22", "netns", h.HostNS, "duration", time.Since(start).Round(time.Millisecond))
	return h, nil
}

// aptProxyConf points the build host's apt at the proxy; Export removes it.
const aptProxyConf = "etc/apt/apt.conf.d/00zkaas-bake-proxy"

// keys makes a fresh client key pair for this run, authorizes it for root,
// and gives the build host fresh host keys.
func (h *Host) keys(ctx context.Context) error {
	if err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "zkaas-bake", "-f", h.KeyFile); err != nil {
		return err
	}
	pub, err := os.ReadFile(h.KeyFile + ".pub")
	if err != nil {
		return err
	}
	ssh := filepath.Join(h.Root, "root/.ssh")
	if err := os.MkdirAll(ssh, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ssh, "authorized_keys"), pub, 0o600); err != nil {
		return err
	}
	return run(ctx, "chroot", h.Root, "ssh-keygen", "-A")
}

// network creates both namespaces and the veth pair directly inside them:
// the pair never exists in the host's namespace.
func (h *Host) network(ctx context.Context, n int32) error {
	tag := strconv.FormatInt(int64(os.Getpid()), 36) + strconv.Itoa(int(n))
	vp, vb := "zkb"+tag+"p", "zkb"+tag+"b"
	for _, args := range [][]string{
		{"netns", "add", h.PackerNS},
		{"netns", "add", h.HostNS},
		{"-n", h.PackerNS, "link", "add", vp, "type", "veth", "peer", "name", vb, "netns", h.HostNS},
		{"-n", h.PackerNS, "addr", "add", PackerAddr + "/30", "dev", vp},
		{"-n", h.HostNS, "addr", "add", HostAddr + "/30", "dev", vb},
		{"-n", h.PackerNS, "link", "set", vp, "up"},
		{"-n", h.HostNS, "link", "set", vb, "up"},
		{"-n", h.PackerNS, "link", "set", "lo", "up"},
		{"-n", h.HostNS, "link", "set", "lo", "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// sshdScript runs inside the build host's new mount and pid namespaces
// (sshd becomes pid 1: when it dies every process it started dies) and
// gives the chroot what a booted system has: /proc, /sys, /dev and a tmpfs
// /run. The private mount namespace keeps these mounts out of the host's
// view, so the root file system on disk stays clean for export.
const sshdScript = `set -e
r=$1
mount -t proc proc "$r/proc"
mount -t sysfs -o ro sysfs "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs -o mode=755 tmpfs "$r/run"
mkdir -p "$r/run/sshd"
if [ -n "$2" ]; then mount --bind "$2" "$r/var/cache/apt/archives"; fi
exec chroot "$r" /usr/sbin/sshd -D -e -o ListenAddress=` + HostAddr + ` -o PasswordAuthentication=no -o UseDNS=no`

func (h *Host) startSSHD(ctx context.Context, aptCache string) error {
	logf, err := os.Create(filepath.Join(h.dir, "sshd.log"))
	if err != nil {
		return err
	}
	// unshare --kill-child: when unshare is killed, so is pid 1 of the new
	// pid namespace, and with it everything the provisioning started.
	h.sshd = exec.Command("ip", "netns", "exec", h.HostNS,
		"unshare", "--mount", "--pid", "--fork", "--propagation", "private", "--kill-child",
		"sh", "-c", sshdScript, "sh", h.Root, aptCache)
	h.sshd.Stdout, h.sshd.Stderr = logf, logf
	if err := h.sshd.Start(); err != nil {
		logf.Close()
		return err
	}
	h.done = make(chan struct{})
	go func() {
		h.sshd.Wait()
		logf.Close()
		close(h.done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := h.dial(HostAddr + ":22")
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-h.done:
			out, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("sshd exited: %s", tail(out, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd on %s:22 not answering after 20s: %w", HostAddr, err)
		}
	}
}

// Listen opens a TCP listener on PackerAddr:port, in Packer's namespace,
// where the build host can reach it.
func (h *Host) Listen(port int) (net.Listener, error) {
	var l net.Listener
	err := inNetns(h.PackerNS, func() (err error) {
		l, err = net.Listen("tcp", net.JoinHostPort(PackerAddr, strconv.Itoa(port)))
		return err
	})
	return l, err
}

func (h *Host) dial(addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(h.PackerNS, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, time.Second)
		return err
	})
	return c, err
}

// inNetns runs fn on an OS thread switched into the named network
// namespace. Sockets fn creates stay in that namespace. The thread is never
// unlocked, so it exits with the goroutine and cannot carry the namespace
// into other goroutines.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromName(name)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", name, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Command returns a command that runs argv inside the build host — its
// namespaces and its root — as root, like a command over SSH would.
func (h *Host) Command(ctx context.Context, argv ...string) (*exec.Cmd, error) {
	pid, err := h.pid1()
	if err != nil {
		return nil, err
	}
	args := append([]string{"-t", strconv.Itoa(pid), "-m", "-p", "-n", "-r", "-w", "--"}, argv...)
	return exec.CommandContext(ctx, "nsenter", args...), nil
}

// pid1 is sshd, pid 1 of the build host's pid namespace: the child of
// unshare (which `ip netns exec` became).
func (h *Host) pid1() (int, error) {
	if h.sshd == nil || h.sshd.Process == nil {
		return 0, errors.New("build host is not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", h.sshd.Process.Pid, h.sshd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("build host pid 1: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0, fmt.Errorf("build host pid 1: unshare has children %q", f)
	}
	return strconv.Atoi(f[0])
}

// PackerCommand returns a command running the packer binary in Packer's
// namespace, from where HostAddr:22 is reachable.
func (h *Host) PackerCommand(ctx context.Context, packer string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.PackerNS, packer}, args...)...)
}

// Stop ends every process of the build host and removes its namespaces;
// the root file system stays for Export.
func (h *Host) Stop() {
	if h.proxy != nil {
		h.proxy.Close()
		h.proxy = nil
	}
	if h.sshd != nil && h.sshd.Process != nil {
		h.sshd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			h.sshd.Process.Kill()
			<-h.done
		}
		h.sshd = nil
	}
	for _, ns := range []string{h.HostNS, h.PackerNS} {
		deleteNetns(ns, h.log)
	}
}

// Close stops the build host and removes its directory.
func (h *Host) Close() {
	if h.closed {
		return
	}
	h.closed = true
	h.Stop()
	if err := os.RemoveAll(h.dir); err != nil {
		h.log.Warn("remove build host directory", "dir", h.dir, "err", err)
	}
}

// deleteNetns kills what still runs in a namespace and deletes it (and
// with it the veth end inside).
func deleteNetns(name string, log *slog.Logger) {
	if _, err := os.Stat(filepath.Join("/run/netns", name)); err != nil {
		return
	}
	if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			// This process may be listed: a thread locked into the
			// namespace by inNetns can be the main thread.
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		log.Warn("delete netns", "netns", name, "err", err, "out", strings.TrimSpace(string(out)))
	}
}

// reclaim deletes the namespaces and directories of build hosts whose
// process is gone (a crashed or killed run).
func reclaim(log *slog.Logger) {
	netnses, _ := filepath.Glob("/run/netns/" + nsPrefix + "*")
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), nsPrefix+"*"))
	for _, p := range append(netnses, dirs...) {
		rest := strings.TrimPrefix(filepath.Base(p), nsPrefix)
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its owner is alive
		}
		log.Info("reclaiming what a crashed run left", "path", p)
		if strings.HasPrefix(p, "/run/netns/") {
			deleteNetns(filepath.Base(p), log)
		} else if err := os.RemoveAll(p); err != nil {
			log.Warn("reclaim", "path", p, "err", err)
		}
	}
}

// Log returns what sshd printed (for a failed build's report).
func (h *Host) Log() string {
	b, _ := os.ReadFile(filepath.Join(h.dir, "sshd.log"))
	return string(b)
}

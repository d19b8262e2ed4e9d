package localcloud

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// setupScript runs as the first process of an instance's mount namespace
// (made with propagation private, so nothing here reaches the host), inside
// the instance's network namespace. It first drops its copies of the
// host's network namespace bind mounts (/run/netns/*): a copy would keep
// that namespace alive after it is deleted — another instance's, with
// whatever veth and addresses it still has — for as long as this instance
// lives. (One deleted on the host meanwhile has its copy detached by the
// kernel, so an umount that finds nothing there is fine.) With an image
// ($LOCALCLOUD_ROOT set), it mounts the instance's root: an overlay of its
// own upper layer on the image, which every instance shares read-only. Then, at $LOCALCLOUD_ROOT (the host's root
// without an image), it mounts:
//   - a fresh sysfs, so that /sys/class/net shows the instance's links, not
//     the host's (as `ip netns exec` does);
//   - an empty tmpfs over /sys/class/block, where the harness adds an entry
//     with the EBS serial for each attached volume;
//   - a private /dev, so that the instance sees the block devices of its own
//     volumes only (and the by-id links to them), not every disk of the host
//     and of the other instances; it also needs no /dev/disk on the host,
//     which hosts without udev lack;
//   - with an image, /proc and fresh tmpfs on /run and /tmp, as the image's
//     init would;
//   - without one, an overlay over each private directory ($1 lower, $2
//     upper, $3 work).
//
// A machine ($LOCALCLOUD_MACHINE set, BootSystemd) gets the overlay only:
// systemd-nspawn mounts /dev, /sys, /proc, /run and /tmp itself at every
// boot, and refuses a pre-populated /dev.
//
// It then says "ready" and waits on stdin, so that the harness can take hold
// of the namespace's root before the namespace is left to its bind mount.
const setupScript = `set -e
findmnt --raw --noheadings --types nsfs --output TARGET | while read -r m; do umount --lazy "$m" || ! findmnt --mountpoint "$m" >/dev/null; done
r=
if [ -n "$LOCALCLOUD_ROOT" ]; then
	mount -t overlay -o "lowerdir=$LOCALCLOUD_LOWER,upperdir=$LOCALCLOUD_UPPER,workdir=$LOCALCLOUD_WORK" localcloud-root "$LOCALCLOUD_ROOT"
	r=$LOCALCLOUD_ROOT
	mkdir -p -m 0755 "$r/sys" "$r/dev" "$r/proc" "$r/run"
	mkdir -p -m 1777 "$r/tmp"
fi
if [ -z "$LOCALCLOUD_MACHINE" ]; then
mount -t sysfs sysfs "$r/sys"
mount -t tmpfs -o mode=0755,nosuid,nodev,noexec,size=4m localcloud-block "$r/sys/class/block"
mount -t tmpfs -o mode=0755,nosuid,size=4m localcloud-dev "$r/dev"
mkdir -m 0755 "$r/dev/pts" "$r/dev/shm" "$r/dev/disk" "$r/dev/disk/by-id"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
if [ -n "$r" ]; then
	mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
	mount -t tmpfs -o mode=0755,nosuid,nodev,size=64m localcloud-run "$r/run"
	mount -t tmpfs -o mode=1777,nosuid,nodev localcloud-tmp "$r/tmp"
fi
fi
while [ $# -gt 0 ]; do
	mount -t overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" localcloud-private "$1"
	shift 3
done
echo ready
read -r _ || true
`

// devNodes are the character devices every instance's /dev has, copied
// from the host's (same numbers and modes).
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// devLinks are the symlinks of a standard /dev.
var devLinks = map[string]string{
	"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	"ptmx": "pts/ptmx",
}

// instanceMounts creates the instance's persistent mount namespace (kept by
// a bind mount in the run directory) and opens its root for Path.
func (c *Cloud) instanceMounts(ctx context.Context, inst *Instance) (err error) {
	defer c.step("instance mounts", "instance", inst.ID).Defer(&err)
	file := filepath.Join(c.runDir, "mnt", inst.ID)
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		return fmt.Errorf("mount namespace file of %s: %w", inst.ID, err)
	}
	inst.MountNS = file
	args := []string{"--net=" + inst.NetNS, "--", c.tools.unshare, "--mount=" + file, "--propagation", "private",
		"--", c.tools.sh, "-c", setupScript, "sh"}
	// Set in any case: the harness's own environment must not choose.
	env := append(os.Environ(), "LOCALCLOUD_ROOT=", "LOCALCLOUD_MACHINE=")
	machine := c.opts.Boot == BootSystemd
	if machine {
		env = append(env, "LOCALCLOUD_MACHINE=1")
	}
	if c.opts.RootFS != "" {
		// The mount point stays an empty directory on the host: the
		// overlay exists in the instance's mount namespace only.
		inst.rootDir = filepath.Join(inst.dir, "root")
		upper, work := filepath.Join(inst.dir, "rootfs", "upper"), filepath.Join(inst.dir, "rootfs", "work")
		for _, dir := range []string{inst.rootDir, upper, work} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("root of %s: %w", inst.ID, err)
			}
		}
		env = append(env, "LOCALCLOUD_ROOT="+inst.rootDir, "LOCALCLOUD_LOWER="+c.opts.RootFS, "LOCALCLOUD_UPPER="+upper, "LOCALCLOUD_WORK="+work)
	}
	for i, d := range c.opts.PrivateDirs {
		layers := filepath.Join(inst.dir, "private", strconv.Itoa(i))
		upper, work := filepath.Join(layers, "upper"), filepath.Join(layers, "work")
		for _, dir := range []string{upper, work} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("private dir %s of %s: %w", d, inst.ID, err)
			}
		}
		args = append(args, d, upper, work)
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(setupCtx, c.tools.nsenter, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("set up mount namespace of %s: %w", inst.ID, err)
	}
	line, rerr := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) == "ready" {
		// While the script waits, /proc/<pid>/root is the namespace's
		// root, and the instance's root (the overlay) is inside it; the
		// descriptor keeps it reachable afterwards.
		inst.root, rerr = os.OpenFile(fmt.Sprintf("/proc/%d/root%s", cmd.Process.Pid, inst.rootDir), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	} else if rerr == nil || errors.Is(rerr, io.EOF) {
		rerr = fmt.Errorf("setup script said %q", line)
	}
	stdin.Close()
	werr := cmd.Wait()
	if err := errors.Join(rerr, werr); err != nil {
		return fmt.Errorf("set up mount namespace of %s: %w: %s", inst.ID, err, strings.TrimSpace(stderr.String()))
	}
	if !machine {
		if err := inst.populateDev(); err != nil {
			return err
		}
	}
	if inst.rootDir != "" {
		return inst.writeNetworkFiles()
	}
	return nil
}

// writeNetworkFiles gives an instance booted from an image the name
// service files its boot would write (cloud-init, DHCP): /etc/hosts where
// the machine's host name is its primary private IP, as the VPC's DNS
// answers on EC2, and an /etc/resolv.conf without servers, since the local
// VPC has none. The image's own are the build host's: a lookup of the host
// name through an unreachable server stalls a JVM's start for seconds.
func (inst *Instance) writeNetworkFiles() error {
	host, err := os.Hostname()
	if err != nil {
		return err
	}
	if inst.cloud.opts.Boot == BootSystemd {
		host = inst.hostname() // a machine has a UTS namespace and a name of its own
	}
	for p, content := range map[string]string{
		"/etc/hosts":       fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", inst.PrivateIP, host),
		"/etc/resolv.conf": "# The local cloud's VPC has no DNS server.\n",
	} {
		if err := inst.replaceFile(p, []byte(content)); err != nil {
			return fmt.Errorf("%s on %s: %w", p, inst.ID, err)
		}
	}
	return nil
}

// replaceFile replaces a file in the instance's root with a new one. The
// image's may be a link (resolv.conf often is), which must not be followed
// from the harness: an absolute one would lead to the host's file.
func (inst *Instance) replaceFile(p string, data []byte) error {
	path := inst.Path(p)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Close())
}

// populateDev fills the instance's private /dev.
func (inst *Instance) populateDev() error {
	for _, name := range devNodes {
		var st unix.Stat_t
		if err := unix.Stat("/dev/"+name, &st); err != nil {
			return fmt.Errorf("stat host /dev/%s: %w", name, err)
		}
		if err := mknod(inst.Path("/dev/"+name), st.Mode, st.Rdev); err != nil {
			return fmt.Errorf("/dev/%s on %s: %w", name, inst.ID, err)
		}
	}
	for name, target := range devLinks {
		if err := os.Symlink(target, inst.Path("/dev/"+name)); err != nil {
			return fmt.Errorf("/dev/%s on %s: %w", name, inst.ID, err)
		}
	}
	return nil
}

// mknod creates a device node with exactly mode's permissions (the umask
// would otherwise take some away).
func mknod(path string, mode uint32, rdev uint64) error {
	if err := unix.Mknod(path, mode, int(rdev)); err != nil {
		return err
	}
	return unix.Chmod(path, mode&0o7777)
}

// unmountDevice unmounts, inside the instance's mount namespace, everything
// mounted from the block device rdev — innermost first; lazily if it is
// busy, since on EC2 a detach takes the device away whatever is using it.
func (inst *Instance) unmountDevice(ctx context.Context, rdev uint64) error {
	t := inst.cloud.tools
	ns := inst.mountNSArgs()
	if ns == nil {
		return nil // a machine between boots: nothing is mounted
	}
	info, err := t.output(ctx, t.nsenter, append(ns, "--", "cat", "/proc/self/mountinfo")...)
	if err != nil {
		return fmt.Errorf("mounts of %s: %w", inst.ID, err)
	}
	mounts, err := mountinfo.GetMountsFromReader(bytes.NewReader(info), func(m *mountinfo.Info) (skip, stop bool) {
		return uint32(m.Major) != unix.Major(rdev) || uint32(m.Minor) != unix.Minor(rdev), false
	})
	if err != nil {
		return fmt.Errorf("mounts of %s: %w", inst.ID, err)
	}
	// Innermost (most recent) first; the paths come unescaped.
	var targets []string
	for _, m := range slices.Backward(mounts) {
		targets = append(targets, m.Mountpoint)
	}
	if len(targets) == 0 {
		return nil
	}
	// The umount of the namespace's own root (the image's, in a machine).
	args := append(append(ns, "--", "umount"), targets...)
	if err := t.run(ctx, t.nsenter, args...); err != nil {
		inst.log.Warn("unmount failed: detaching lazily", "step", "volume detach", "targets", targets, "err", err)
		lazy := append(append(ns, "--", "umount", "--lazy"), targets...)
		if err := t.run(ctx, t.nsenter, lazy...); err != nil {
			return fmt.Errorf("unmount %v on %s: %w", targets, inst.ID, err)
		}
	}
	return nil
}

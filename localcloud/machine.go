package localcloud

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// BootMode says what runs on an instance.
type BootMode int

const (
	// BootHost is the fast mode for low-level tests: nothing runs on an
	// instance by itself; the harness starts programs there with Command
	// and Start — the host's, or with Options.RootFS the image's.
	BootHost BootMode = iota
	// BootSystemd boots each instance as a machine: systemd-nspawn starts
	// the image's systemd as PID 1 on the instance's own overlay root, in
	// its network namespace and a cgroup of its own; the image's units
	// run unmodified. Needs Options.RootFS and systemd-nspawn (Debian
	// systemd-container).
	BootSystemd
)

func (b BootMode) String() string {
	switch b {
	case BootHost:
		return "host"
	case BootSystemd:
		return "systemd"
	}
	return "BootMode(" + strconv.Itoa(int(b)) + ")"
}

// nspawnRebootStatus is systemd-nspawn's exit status when the container's
// init asked for a reboot: "If the container is rebooted, systemd-nspawn
// exits with status 133" (systemd-nspawn(1); systemd-nspawn@.service
// restarts on it with RestartForceExitStatus=133). The harness plays that
// service's part.
const nspawnRebootStatus = 133

// pid1Wait bounds how long a boot may take to get systemd running as PID 1.
const pid1Wait = 30 * time.Second

// machine is an instance's running OS: systemd-nspawn with the image's
// systemd as PID 1, restarted after a reboot on the same root, in the same
// network namespace, with the same devices.
type machine struct {
	inst   *Instance
	log    *slog.Logger
	nspawn string
	cgroup string // the machine's cgroup: everything it runs is in it
	// remountCgroup mounts the tracking hierarchy as the machine's cgroup
	// namespace sees it (see boot).
	// cgroupV2 is its cgroup in the run's cgroup v2 mount on a legacy host
	// (see machineCgroup), "" otherwise.
	cgroupV2      string
	remountCgroup string
	console       string // file receiving the console (PID 1's and nspawn's output)

	mu       sync.Mutex
	cmd      *exec.Cmd // the running nspawn, nil between boots
	pid1     int       // systemd's PID on the host, 0 between boots
	root     *os.File  // /proc/<pid1>/root (O_PATH): the container's "/"
	boots    int       // how many times PID 1 has started
	stopping bool      // a shutdown or kill was asked for: the next exit is final
	down     bool      // the machine is off for good
	downErr  error     // why, when it was not asked for
	changed  chan struct{}
	devices  map[string]exposedDevice // by device name: re-created in every boot's /dev
	watching chan struct{}            // closed when the watcher has returned
}

// exposedDevice is a volume's block device as the machine sees it.
type exposedDevice struct {
	name, volumeID string
	rdev           uint64
}

// nspawnArgs is how the harness boots a machine. Each one with its reason:
//   - --register=no --keep-unit: no machined and no host systemd to ask for
//     a scope; nspawn stays in the cgroup the harness made for the machine
//     (systemd-nspawn(1), --keep-unit);
//   - --network-namespace-path: the instance's network namespace, with its
//     veths (ens5 and every hot-plugged ENI) and the IMDS address;
//   - --link-journal=no: the journal stays in the machine's root, in
//     /var/log/journal (persistent, journald's Storage=auto finding the
//     directory), readable after a crash with journalctl -D;
//   - --resolv-conf=off --timezone=off: the root's files are the ones the
//     harness wrote, not the host's;
//   - --capability=CAP_NET_ADMIN: nspawn's default set lacks it, and
//     firstboot configures addresses, routes and rules with netlink
//     (mounting the volume needs CAP_SYS_ADMIN, which is in the default);
//   - --kill-signal=SIGRTMIN+3: what nspawn sends PID 1 when it gets
//     SIGTERM itself; systemd answers it with an orderly halt, starting
//     halt.target (systemd(1), SIGRTMIN+3), which in a container ends it
//     like a poweroff. It is nspawn's default with --boot; said here
//     because Terminate relies on it;
//   - --console=read-only: output to the console file, no input.
func (m *machine) nspawnArgs() []string {
	return []string{m.nspawn,
		"--quiet", "--boot", "--directory=" + m.inst.rootDir, "--machine=" + m.inst.hostname(),
		"--register=no", "--keep-unit",
		"--network-namespace-path=/proc/self/ns/net",
		"--link-journal=no", "--resolv-conf=off", "--timezone=off",
		"--capability=CAP_NET_ADMIN", "--kill-signal=SIGRTMIN+3",
		"--console=read-only",
	}
}

// boot starts nspawn and waits until systemd runs as PID 1 of the new
// container, then gives that container the machine's devices (see
// plugDevices).
func (m *machine) boot(ctx context.Context) (err error) {
	defer startStep(m.log, "boot", "instance", m.inst.ID, "boot", m.boots+1).Defer(&err)
	t := m.inst.cloud.tools
	console, err := os.OpenFile(m.console, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("console of %s: %w", m.inst.ID, err)
	}
	defer console.Close()
	// sh moves itself into the machine's cgroup before it becomes nspawn,
	// so that nothing of the machine ever runs outside it; nsenter puts
	// nspawn in the instance's mount namespace (where its root is
	// mounted) and network namespace (which /proc/self/ns/net names).
	// Then a cgroup namespace rooted at the machine's cgroup, with the
	// tracking hierarchy mounted again in a mount namespace of its own:
	// nspawn takes the root of what it sees for its own cgroup and puts
	// its "supervisor" and "payload" cgroups there — on a legacy host
	// (where /proc/self/cgroup's "0::/" line names no mounted hierarchy)
	// that was the host's root, shared by every machine.
	args := append([]string{"-c", `echo $$ > "$1/cgroup.procs" && { [ -z "$2" ] || echo $$ > "$2/cgroup.procs"; } && shift 2 && exec "$@"`,
		"sh", m.cgroup, m.cgroupV2,
		t.nsenter, "--mount=" + m.inst.MountNS, "--net=" + m.inst.NetNS, "--",
		t.unshare, "--mount", "--cgroup", "--propagation=private", "--",
		t.sh, "-c", m.remountCgroup + ` && exec "$@"`, "sh"}, m.nspawnArgs()...)
	cmd := exec.Command(t.sh, args...)
	cmd.Stdout, cmd.Stderr = console, console
	// Not killed with the harness on purpose: a crashed harness leaves the
	// machine to reclaim (by its cgroup), as it leaves everything else.
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start systemd-nspawn for %s: %w", m.inst.ID, err)
	}
	pid1, err := m.waitPID1(ctx, cmd.Process.Pid)
	if err != nil {
		_ = killCgroupProcs(m.cgroup)
		_ = cmd.Process.Kill() // in case it escaped its cgroup
		_ = cmd.Wait()
		return fmt.Errorf("boot %s: %w (console: %s)", m.inst.ID, err, tail(m.console))
	}
	root, err := os.OpenFile(fmt.Sprintf("/proc/%d/root", pid1), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = killCgroupProcs(m.cgroup)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("root of %s: %w", m.inst.ID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cmd, m.pid1, m.root = cmd, pid1, root
	m.boots++
	if err := m.plugDevices(ctx); err != nil {
		return err
	}
	m.broadcast()
	m.log.Info("PID 1 running", "step", "boot", "pid1", pid1, "boot", m.boots)
	return nil
}

// waitPID1 finds systemd as PID 1 of the container nspawn (pid) starts:
// nspawn forks an inner nspawn in new namespaces, whose child becomes
// PID 1 and executes the image's init. It is the process of the machine's
// cgroup whose innermost PID is 1 and which already runs systemd.
func (m *machine) waitPID1(ctx context.Context, pid int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, pid1Wait)
	defer cancel()
	for {
		if !procAlive(pid) {
			return 0, errors.New("systemd-nspawn exited before PID 1 ran")
		}
		pids, _ := cgroupPIDs(m.cgroup)
		for _, p := range pids {
			if isContainerInit(p) {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no systemd as PID 1 after %s: %w", pid1Wait, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// isContainerInit reports whether pid is PID 1 of a PID namespace below
// ours and runs systemd (not yet the forked nspawn).
func isContainerInit(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	var name, nspid string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Name:"); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "NSpid:"); ok {
			nspid = v
		}
	}
	f := strings.Fields(nspid)
	return name == "systemd" && len(f) >= 2 && f[len(f)-1] == "1"
}

// procAlive reports whether pid exists and is not a zombie.
func procAlive(pid int) bool { return !gonePID(pid) }

func gonePID(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z")
}

// watch waits for each nspawn to exit and boots the machine again when PID 1
// asked for a reboot (exit status 133), on the same root and network
// namespace, the devices still attached. Any other exit, or one that was
// asked for, leaves the machine down.
func (m *machine) watch() {
	defer close(m.watching)
	for {
		m.mu.Lock()
		cmd := m.cmd
		m.mu.Unlock()
		err := cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		m.mu.Lock()
		if m.root != nil {
			m.root.Close()
		}
		m.cmd, m.pid1, m.root = nil, 0, nil
		stopping := m.stopping
		m.broadcast()
		m.mu.Unlock()
		if code == nspawnRebootStatus && !stopping {
			m.log.Info("PID 1 rebooted: booting again", "step", "reboot", "instance", m.inst.ID)
			berr := m.boot(context.Background())
			if berr == nil {
				continue
			}
			err = berr
		}
		m.mu.Lock()
		m.down = true
		if !stopping {
			m.downErr = fmt.Errorf("machine %s went down (systemd-nspawn exit status %d): %v", m.inst.ID, code, err)
			m.log.Warn("machine down", "step", "machine", "instance", m.inst.ID, "status", code)
		}
		m.broadcast()
		m.mu.Unlock()
		return
	}
}

// broadcast wakes those waiting for a state change. Call with m.mu held.
func (m *machine) broadcast() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// state returns PID 1 (0 between boots), the boot count, whether the
// machine is down for good, and a channel closed on the next change.
func (m *machine) state() (pid1, boots int, down bool, changed <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pid1, m.boots, m.down, m.changed
}

// reboot asks systemd for a reboot the way a keyboard would: SIGINT makes
// it start ctrl-alt-del.target, i.e. reboot.target, with every unit
// stopped in order (systemd(1), SIGINT). It returns once the next boot's
// PID 1 runs.
func (m *machine) reboot(ctx context.Context, bound time.Duration) error {
	pid1, boots, down, _ := m.state()
	if down || pid1 == 0 {
		return fmt.Errorf("reboot %s: machine not running", m.inst.ID)
	}
	if err := unix.Kill(pid1, unix.SIGINT); err != nil {
		return fmt.Errorf("reboot %s: signal PID 1: %w", m.inst.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, bound+pid1Wait)
	defer cancel()
	for {
		pid, b, down, changed := m.state()
		switch {
		case down:
			return fmt.Errorf("reboot %s: the machine went down instead", m.inst.ID)
		case pid != 0 && b > boots:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reboot %s: PID 1 not back: %w", m.inst.ID, ctx.Err())
		case <-changed:
		}
	}
}

// shutdown halts the machine in order: SIGTERM to nspawn, which sends PID 1
// its kill signal (SIGRTMIN+3: halt.target), and waits for nspawn to exit
// within bound; past it — or if nspawn cannot be signalled — it kills the
// machine. It returns whether the shutdown was clean.
func (m *machine) shutdown(bound time.Duration) (clean bool, err error) {
	m.mu.Lock()
	m.stopping = true
	cmd := m.cmd
	m.mu.Unlock()
	if cmd != nil {
		if err := cmd.Process.Signal(unix.SIGTERM); err == nil {
			select {
			case <-m.watching:
				return true, m.kill() // nothing left; removes the cgroup
			case <-time.After(bound):
				m.log.Warn("shutdown took too long: killing the machine", "step", "shutdown", "instance", m.inst.ID, "bound", bound)
			}
		}
	}
	return false, m.kill()
}

// kill is a crash: every process of the machine's cgroup gets SIGKILL, by
// PID; nothing shuts down. Then the cgroup is removed.
func (m *machine) kill() error {
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	err := killCgroupProcs(m.cgroup)
	if m.watching != nil {
		select {
		case <-m.watching:
		case <-time.After(killWait):
			err = errors.Join(err, fmt.Errorf("systemd-nspawn of %s did not exit after SIGKILL", m.inst.ID))
		}
	}
	err = errors.Join(err, removeCgroup(m.cgroup))
	if m.cgroupV2 != "" {
		err = errors.Join(err, killCgroup(m.cgroupV2))
	}
	return err
}

// killCgroupProcs is killCgroup without removing the cgroup.
func killCgroupProcs(dir string) error {
	deadline := time.Now().Add(killWait)
	for {
		pids, err := cgroupPIDs(dir)
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in cgroup %s after SIGKILL", pids, dir)
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail returns the last lines of a file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// journalDir is where the machine keeps its persistent journal, seen from
// the host: in the overlay's upper layer, since every journal file is one
// the instance wrote.
func (inst *Instance) journalDir() string {
	return filepath.Join(inst.dir, "rootfs", "upper", "var", "log", "journal")
}

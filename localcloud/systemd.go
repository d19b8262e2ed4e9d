package localcloud

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LaunchOptions are what one launch may vary.
type LaunchOptions struct {
	// Files are put into the instance's root before anything runs on it
	// — before PID 1 starts with BootSystemd — by absolute path, with mode
	// 0644, parents made as needed (0755): /etc/zkaas/ensemble.yaml, unit
	// drop-ins, ... Needs Options.RootFS.
	Files map[string][]byte
	// UserData is what the instance's IMDS serves at latest/user-data
	// (decoded, as EC2 serves it); nil means none (404).
	UserData []byte
	// Tags go on the instance's IMDS under meta-data/tags/instance (as
	// with the launch template's InstanceMetadataTags enabled); the
	// simulator's instance carries them already.
	Tags map[string]string
}

// defaultShutdownTimeout bounds a machine's clean shutdown when
// Options.ShutdownTimeout is 0. zookeeper.service's TimeoutStopSec is 60 s;
// a machine that needs more is stuck and gets killed.
const defaultShutdownTimeout = 90 * time.Second

// writeFiles puts the launch's files into the instance's root.
func (inst *Instance) writeFiles(files map[string][]byte) error {
	if len(files) == 0 {
		return nil
	}
	if inst.rootDir == "" {
		return fmt.Errorf("files for %s: LaunchOptions.Files needs Options.RootFS", inst.ID)
	}
	for _, p := range slices.Sorted(mapKeys(files)) {
		if !path.IsAbs(p) || path.Clean(p) != p {
			return fmt.Errorf("file %q for %s: want a clean absolute path", p, inst.ID)
		}
		if err := os.MkdirAll(inst.Path(path.Dir(p)), 0o755); err != nil {
			return fmt.Errorf("file %s on %s: %w", p, inst.ID, err)
		}
		if err := inst.replaceFile(p, files[p]); err != nil {
			return fmt.Errorf("file %s on %s: %w", p, inst.ID, err)
		}
	}
	return nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// hostname is the instance's host name: on EC2 the resource name of its
// primary address (ip-10-0-1-10), which nspawn gives the machine with
// --machine.
func (inst *Instance) hostname() string {
	return "ip-" + strings.ReplaceAll(inst.PrivateIP, ".", "-")
}

// prepareMachineRoot makes the root an instance of its own before its first
// boot:
//   - /etc/machine-id: the image has none (the bake empties it, so that
//     instances differ); one written now stays across reboots, so that
//     every boot of the instance journals into one directory, as an EC2
//     instance keeps the id systemd committed at its first boot;
//   - ssh.service masked: the image ships without host keys (the bake
//     removes the build host's), which on EC2 cloud-init generates at first
//     boot; local instances have no cloud-init and are reached with
//     nsenter, never SSH, so sshd is not started rather than failing;
//   - /etc/systemd/system.conf.d/localcloud.conf: DefaultEnvironment= (for
//     every unit, which stays unmodified) with what on EC2 the VPC's DNS
//     and the instance profile give — the EC2 endpoint (the simulator,
//     plain HTTP in the VPC), the region and credentials whose key id is
//     the instance id (Environ's AWS settings).
func (inst *Instance) prepareMachineRoot() error {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	if err := inst.replaceFile("/etc/machine-id", []byte(hex.EncodeToString(id)+"\n")); err != nil {
		return fmt.Errorf("machine id of %s: %w", inst.ID, err)
	}
	unit := inst.Path("/etc/systemd/system/ssh.service")
	if err := os.Remove(unit); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mask ssh.service on %s: %w", inst.ID, err)
	}
	if err := os.Symlink("/dev/null", unit); err != nil {
		return fmt.Errorf("mask ssh.service on %s: %w", inst.ID, err)
	}
	var env []string
	for _, kv := range inst.Environ() {
		if strings.HasPrefix(kv, "AWS_") {
			env = append(env, strconv.Quote(kv))
		}
	}
	conf := "# The local cloud's stand-in for the VPC's DNS and the instance profile.\n[Manager]\nDefaultEnvironment=" + strings.Join(env, " ") + "\n"
	if err := os.MkdirAll(inst.Path("/etc/systemd/system.conf.d"), 0o755); err != nil {
		return fmt.Errorf("system.conf.d on %s: %w", inst.ID, err)
	}
	if err := inst.replaceFile("/etc/systemd/system.conf.d/localcloud.conf", []byte(conf)); err != nil {
		return fmt.Errorf("system.conf.d on %s: %w", inst.ID, err)
	}
	return nil
}

// bootMachine gives a launched instance its machine and boots it.
func (c *Cloud) bootMachine(ctx context.Context, inst *Instance) (err error) {
	if err := inst.prepareMachineRoot(); err != nil {
		return err
	}
	cg, v2, remount, err := machineCgroup(c.runDir, filepath.Base(inst.NetNS))
	if err != nil {
		return fmt.Errorf("machine %s: %w", inst.ID, err)
	}
	m := &machine{
		inst: inst, log: inst.log, nspawn: c.tools.nspawn, cgroup: cg, cgroupV2: v2, remountCgroup: remount,
		console: filepath.Join(inst.dir, "console.log"),
		changed: make(chan struct{}), devices: map[string]exposedDevice{},
	}
	// Set before it boots: from now on the instance's devices are the
	// machine's, and kill removes the cgroup whatever happens next.
	inst.machine = m
	if err := m.boot(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	m.watching = make(chan struct{})
	m.mu.Unlock()
	go m.watch()
	return nil
}

// shutdownMachine shuts the machine down in order, within the bound.
func (c *Cloud) shutdownMachine(inst *Instance) (err error) {
	bound := c.opts.ShutdownTimeout
	defer c.step("shutdown", "instance", inst.ID, "bound", bound).Defer(&err)
	clean, err := inst.machine.shutdown(bound)
	if err == nil && !clean {
		inst.log.Warn("machine killed: no clean shutdown within the bound", "step", "shutdown", "bound", bound)
	}
	return err
}

// Reboot reboots the instance's machine as `systemctl reboot` would:
// systemd stops every unit in order and unmounts the volumes, nspawn exits
// (status 133), and the harness starts PID 1 again on the same root, in the
// same network namespace, the ENIs and volumes still attached (their
// devices made again in the new /dev). It returns once the new PID 1 runs.
// BootSystemd only.
func (c *Cloud) Reboot(ctx context.Context, inst *Instance) (err error) {
	if inst.machine == nil {
		return fmt.Errorf("reboot %s: only machines (BootSystemd) reboot", inst.ID)
	}
	if err := c.begin(); err != nil {
		return err
	}
	defer c.busy.Done()
	defer c.step("reboot", "instance", inst.ID).Defer(&err)
	return inst.machine.reboot(ctx, c.opts.ShutdownTimeout)
}

// Boots is how many times the instance's PID 1 has started (0 in host mode).
func (inst *Instance) Boots() int {
	if inst.machine == nil {
		return 0
	}
	_, boots, _, _ := inst.machine.state()
	return boots
}

// PID1 is the host PID of the machine's systemd, 0 between boots, when down
// or in host mode.
func (inst *Instance) PID1() int {
	if inst.machine == nil {
		return 0
	}
	pid, _, _, _ := inst.machine.state()
	return pid
}

// Cgroup is the machine's cgroup directory ("" in host mode): every process
// of the machine is in it or below.
func (inst *Instance) Cgroup() string {
	if inst.machine == nil {
		return ""
	}
	return inst.machine.cgroup
}

// machineCommand is Command on a machine: nsenter into every namespace of
// PID 1 — mount (so the machine's root), PID, network, UTS, IPC, cgroup —
// as `machinectl shell` would, but without machined.
func (inst *Instance) machineCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	pid1, _, _, _ := inst.machine.state()
	// Between boots pid 0: nsenter fails with its own message.
	argv := append([]string{"--target=" + fmt.Sprint(pid1), "--all", "--"}, name)
	return exec.CommandContext(ctx, inst.cloud.tools.nsenter, append(argv, args...)...)
}

// SystemState is `systemctl is-system-running` on the machine: initializing,
// starting, running, degraded, maintenance, stopping, offline.
func (inst *Instance) SystemState(ctx context.Context) (string, error) {
	if inst.machine == nil {
		return "", fmt.Errorf("system state of %s: host mode runs no systemd", inst.ID)
	}
	// It exits non-zero for anything but running: the word is the answer.
	out, err := inst.Command(ctx, "systemctl", "is-system-running").Output()
	state := strings.TrimSpace(string(out))
	if state == "" {
		return "", fmt.Errorf("system state of %s: %w", inst.ID, err)
	}
	return state, nil
}

// UnitState is a unit's ActiveState (active, inactive, activating,
// deactivating, failed, reloading).
func (inst *Instance) UnitState(ctx context.Context, unit string) (string, error) {
	out, err := inst.Command(ctx, "systemctl", "show", "--property=ActiveState", "--value", unit).Output()
	if err != nil {
		return "", fmt.Errorf("state of %s on %s: %w", unit, inst.ID, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// waitBound bounds WaitUnit and WaitSystem when ctx has no deadline.
const waitBound = 5 * time.Minute

// WaitUnit waits until the unit's ActiveState is one of states and returns
// it — within ctx's deadline, at most 5 minutes without one.
func (inst *Instance) WaitUnit(ctx context.Context, unit string, states ...string) (string, error) {
	return inst.waitState(ctx, unit, states, func(ctx context.Context) (string, error) { return inst.UnitState(ctx, unit) })
}

// WaitSystem waits until SystemState is one of states and returns it: once
// "running" or "degraded", the boot is over (systemctl is-system-running
// answers "starting" while jobs are queued).
func (inst *Instance) WaitSystem(ctx context.Context, states ...string) (string, error) {
	return inst.waitState(ctx, "the system", states, inst.SystemState)
}

func (inst *Instance) waitState(ctx context.Context, what string, states []string, get func(context.Context) (string, error)) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, waitBound)
		defer cancel()
	}
	var last string
	var lastErr error
	for {
		s, err := get(ctx)
		if err == nil && slices.Contains(states, s) {
			return s, nil
		}
		last, lastErr = s, err
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%s on %s: still %q (last error %v), want one of %v: %w", what, inst.ID, last, lastErr, states, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// FailedUnits lists the machine's failed units.
func (inst *Instance) FailedUnits(ctx context.Context) ([]string, error) {
	out, err := inst.Command(ctx, "systemctl", "list-units", "--failed", "--plain", "--no-legend", "--full").Output()
	if err != nil {
		return nil, fmt.Errorf("failed units of %s: %w", inst.ID, err)
	}
	var units []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			units = append(units, f[0])
		}
	}
	return units, nil
}

// Journal runs journalctl over the instance's journal with args
// (-u zkaas-firstboot, -b -1, -o cat, ...) and returns its output. While
// the machine runs it asks the machine's own journalctl (which also sees
// what journald has not flushed to /var/log/journal yet); otherwise —
// between boots, after Terminate or Crash, until the Cloud closes — the
// host's, over the persistent journal the machine left in its root.
func (inst *Instance) Journal(ctx context.Context, args ...string) ([]byte, error) {
	if inst.machine == nil {
		return nil, fmt.Errorf("journal of %s: host mode runs no journald", inst.ID)
	}
	args = append([]string{"--no-pager"}, args...)
	var cmd *exec.Cmd
	if inst.PID1() != 0 {
		cmd = inst.Command(ctx, "journalctl", args...)
	} else {
		dir := inst.journalDir()
		if _, err := os.Stat(dir); err != nil {
			dir = inst.cloud.keptJournal(inst.ID)
		}
		cmd = exec.CommandContext(ctx, inst.cloud.tools.journalctl, append([]string{"--directory=" + dir}, args...)...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("journal of %s: %w: %s", inst.ID, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// keptJournal is where a removed instance's journal is kept until Close.
func (c *Cloud) keptJournal(id string) string { return filepath.Join(c.runDir, "journal", id) }

// keepJournal moves a removed machine's persistent journal out of its
// directory, for Journal (and PrintJournalsOnFailure) after Terminate or
// Crash.
func (c *Cloud) keepJournal(inst *Instance) error {
	if inst.machine == nil {
		return nil
	}
	if _, err := os.Stat(inst.journalDir()); err != nil {
		return nil // it never booted far enough to have one
	}
	if err := os.MkdirAll(filepath.Join(c.runDir, "journal"), 0o700); err != nil {
		return err
	}
	if err := os.Rename(inst.journalDir(), c.keptJournal(inst.ID)); err != nil {
		return fmt.Errorf("keep the journal of %s: %w", inst.ID, err)
	}
	c.journaled.Store(inst.ID, inst)
	return nil
}

// TB is the part of testing.TB that PrintJournalsOnFailure needs.
type TB interface {
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
}

// PrintJournalsOnFailure makes t print, if it fails, each machine's journal
// (running ones and those terminated or crashed meanwhile) and its console.
// Call it right after New: cleanups run last-in first-out, so it runs
// before the Cloud's Close.
func (c *Cloud) PrintJournalsOnFailure(t TB) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		insts := c.instances.all()
		c.journaled.Range(func(_, v any) bool { insts = append(insts, v.(*Instance)); return true })
		for _, inst := range insts {
			if inst.machine == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := inst.Journal(ctx, "-o", "short-monotonic")
			cancel()
			t.Logf("journal of %s (%s):\n%s(err: %v)", inst.ID, inst.PrivateIP, out, err)
		}
	})
}

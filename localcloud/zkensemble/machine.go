package zkensemble

// Machines: instances that boot the baked image with systemd as PID 1
// (localcloud.BootSystemd). The harness puts the ensemble config in the
// instance's root before PID 1 starts, as user data would carry it, and
// from then on only watches: the image's zkaas-firstboot.service makes the
// instance a node, its zookeeper.service (Requires= and After= firstboot)
// starts ZooKeeper under the unit's sandbox, and what the harness knows of
// either comes from systemd — unit states, MainPID — and the journal.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/boot"
	"github.com/zkaas/zkaas/firstboot/systemd"
	"github.com/zkaas/zkaas/localcloud"
)

const (
	firstbootUnit = systemd.Firstboot
	zookeeperUnit = systemd.ZooKeeper
)

// firstbootSlack is what a boot takes around firstboot's claim deadline,
// which firstboot enforces itself: PID 1 up to the unit's start, and the
// steps after the claim (network, disk — mkfs of a new volume —, render,
// the quorum probe). A firstboot still running past deadline + slack is
// stuck, not slow.
const firstbootSlack = 2 * time.Minute

// journalLag bounds how long the journal may take to show what a finished
// unit printed: journald reads the service's output stream on its own
// time, so the unit can be "active" before its last line is in.
const journalLag = 10 * time.Second

// onMachine reports whether the instance is a machine (systemd as PID 1)
// rather than a host-mode instance.
func onMachine(inst *localcloud.Instance) bool { return inst.Cgroup() != "" }

// bootMachine is Boot on a machine: launch with the config (and extra
// files: drop-ins a test adds, or another config) in the root, then wait
// for zkaas-firstboot.service to finish.
func (e *Ensemble) bootMachine(ctx context.Context, az string, extra map[string][]byte) (*Node, error) {
	files := map[string][]byte{ensemble.DefaultPath: e.cfg}
	maps.Copy(files, extra)
	launched := time.Now()
	inst, err := e.Cloud.LaunchWith(ctx, az, localcloud.LaunchOptions{Files: files})
	if err != nil {
		return nil, err
	}
	if !onMachine(inst) {
		err := fmt.Errorf("instance %s boots the image in host mode: the ensemble runs an image only under systemd (localcloud.BootSystemd)", inst.ID)
		return nil, errors.Join(err, e.Cloud.Terminate(context.WithoutCancel(ctx), inst))
	}
	rep, err := e.waitFirstboot(ctx, inst)
	if err != nil {
		return nil, err
	}
	n := &Node{ID: rep.Claim.Node, IP: rep.Claim.IP.String(), Instance: inst, Report: rep, Launched: launched}
	e.add(n)
	return n, nil
}

// waitFirstboot waits until zkaas-firstboot.service has finished on the
// machine and returns the report it printed; if it failed, a
// *FirstbootError with its last line.
func (e *Ensemble) waitFirstboot(ctx context.Context, inst *localcloud.Instance) (boot.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Deadline+firstbootSlack)
	defer cancel()
	state, err := inst.WaitUnit(ctx, firstbootUnit, "active", "failed")
	if err != nil {
		return boot.Report{}, fmt.Errorf("firstboot on %s: %w", inst.ID, err)
	}
	run, err := finishedRun(ctx, inst, state)
	if state == "failed" {
		return boot.Report{}, &FirstbootError{Instance: inst, Line: run.failure}
	}
	if err != nil {
		return boot.Report{}, err
	}
	return *run.report, nil
}

// firstbootRun is what one `zkaas-firstboot run` printed, as the journal
// has it.
type firstbootRun struct {
	summary string       // on success: the one-line summary (boot.Report.String)
	report  *boot.Report // on success: the JSON report on stdout
	failure string       // on failure: its last word, "zkaas-firstboot: ..."
}

// firstbootOutput is what zkaas-firstboot.service's processes printed in
// the machine's current boot (not systemd's lines about the unit).
func firstbootOutput(ctx context.Context, inst *localcloud.Instance) (string, error) {
	out, err := inst.Journal(ctx, "--boot=0", "_SYSTEMD_UNIT="+firstbootUnit, "--output=cat")
	return string(out), err
}

// finishedRun waits, journalLag at most, until the journal shows how
// firstboot's last run in this boot ended as the unit's state says: its
// report (active) or its error (failed). A failed unit that printed no
// error (its program could not even start) gets systemd's last line about
// it instead.
func finishedRun(ctx context.Context, inst *localcloud.Instance, state string) (firstbootRun, error) {
	ctx, cancel := context.WithTimeout(ctx, journalLag)
	defer cancel()
	var run firstbootRun
	var err error
	for {
		var out string
		if out, err = firstbootOutput(ctx, inst); err == nil {
			run = parseFirstboot(out)
			if state == "active" && run.report != nil || state == "failed" && run.failure != "" {
				return run, nil
			}
		}
		select {
		case <-ctx.Done():
			if state == "failed" {
				// Systemd's own account, e.g. "Failed at step EXEC".
				jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), journalLag)
				all, _ := inst.Journal(jctx, "--boot=0", "--unit="+firstbootUnit, "--output=cat")
				cancel()
				run.failure = lastLine(string(all))
			}
			return run, fmt.Errorf("firstboot on %s is %s, but its journal shows no end of its run after %s (last error %v)", inst.ID, state, journalLag, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readyMessage is the record zkaas-firstboot run logs (log/slog's text
// format, on stderr) when it succeeded; its summary attribute is the one
// summary line.
const readyMessage = `msg="ready for zookeeper.service"`

// parseFirstboot reads firstboot's output (one line per journal entry) and
// returns how its last run ended, if it did.
func parseFirstboot(out string) firstbootRun {
	var run firstbootRun
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.Contains(l, readyMessage):
			run = firstbootRun{summary: attr(l, "summary")}
		case strings.HasPrefix(l, "{") && run.summary != "":
			var rep boot.Report
			if json.Unmarshal([]byte(l), &rep) == nil {
				run.report = &rep
			}
		case strings.HasPrefix(l, "zkaas-firstboot: "):
			// main prints the error as one message, which may span
			// lines; journald makes each line an entry of its own. What
			// follows, up to the next log record, belongs to it.
			msg := []string{l}
			for i+1 < len(lines) && !strings.HasPrefix(lines[i+1], "time=") && !strings.HasPrefix(lines[i+1], "zkaas-firstboot: ") {
				i++
				msg = append(msg, lines[i])
			}
			run = firstbootRun{failure: strings.Join(msg, "; ")}
		}
	}
	return run
}

// attr is the value of a record's last attribute key in log/slog's text
// format (key=value, the value quoted when it has spaces).
func attr(record, key string) string {
	i := strings.LastIndex(record, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := record[i+len(key)+2:]
	if s, err := strconv.Unquote(v); err == nil {
		return s
	}
	return v
}

// Units returns the ActiveState (active, failed, inactive, activating, …)
// of the node's zkaas-firstboot.service and zookeeper.service.
func (e *Ensemble) Units(ctx context.Context, n *Node) (map[string]string, error) {
	if !onMachine(n.Instance) {
		return nil, fmt.Errorf("units of node %d (%s): host mode runs no systemd", n.ID, n.Instance.ID)
	}
	states := map[string]string{}
	for _, u := range []string{firstbootUnit, zookeeperUnit} {
		s, err := n.Instance.UnitState(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", n.ID, err)
		}
		states[u] = s
	}
	return states, nil
}

// FirstbootSummary is the one summary line of firstboot's last run in the
// node's current boot, from the machine's journal: on success
// "node N (ip, volume): K change(s) in D" (boot.Report.String), on failure
// its error, "zkaas-firstboot: …". In host mode it is the String of the
// report firstboot printed. It waits a little for journald to catch up
// with a unit that has just finished; an error if firstboot has not
// finished in this boot.
func (e *Ensemble) FirstbootSummary(ctx context.Context, n *Node) (string, error) {
	if !onMachine(n.Instance) {
		return n.Report.String(), nil
	}
	state, err := n.Instance.UnitState(ctx, firstbootUnit)
	if err != nil {
		return "", fmt.Errorf("firstboot summary of node %d: %w", n.ID, err)
	}
	if state != "active" && state != "failed" {
		return "", fmt.Errorf("firstboot summary of node %d (%s): %s is %s, not finished", n.ID, n.Instance.ID, firstbootUnit, state)
	}
	run, err := finishedRun(ctx, n.Instance, state)
	if err != nil {
		return "", fmt.Errorf("firstboot summary of node %d: %w", n.ID, err)
	}
	if state == "failed" {
		return run.failure, nil
	}
	return run.summary, nil
}

// firstbootReport is the report of firstboot's last run in the machine's
// current boot (after a reboot: the second run's).
func firstbootReport(ctx context.Context, inst *localcloud.Instance) (boot.Report, error) {
	state, err := inst.UnitState(ctx, firstbootUnit)
	if err != nil {
		return boot.Report{}, err
	}
	if state != "active" {
		return boot.Report{}, fmt.Errorf("firstboot report of %s: %s is %s", inst.ID, firstbootUnit, state)
	}
	run, err := finishedRun(ctx, inst, state)
	if err != nil {
		return boot.Report{}, err
	}
	return *run.report, nil
}

// unitProps reads properties of a unit as systemd has them now
// (`systemctl show`): effective settings and runtime state alike.
func unitProps(ctx context.Context, inst *localcloud.Instance, unit string, props ...string) (map[string]string, error) {
	out, err := inst.Command(ctx, "systemctl", "show", "--property="+strings.Join(props, ","), unit).Output()
	if err != nil {
		return nil, fmt.Errorf("properties of %s on %s: %w", unit, inst.ID, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// mainPID is the host PID of the unit's main process.
func (n *Node) mainPID(ctx context.Context, unit string) (int, error) {
	p, err := unitProps(ctx, n.Instance, unit, "MainPID", "ActiveState")
	if err != nil {
		return 0, fmt.Errorf("node %d: %w", n.ID, err)
	}
	pid, err := strconv.Atoi(p["MainPID"])
	if err != nil || pid == 0 {
		return 0, fmt.Errorf("node %d (%s): %s has no main process (%s)", n.ID, n.Instance.ID, unit, p["ActiveState"])
	}
	host, err := hostPID(n.Instance, pid)
	if err != nil {
		return 0, fmt.Errorf("node %d: %s: %w", n.ID, unit, err)
	}
	return host, nil
}

// hostPID translates a PID of the machine's PID namespace into the host's:
// the process of the machine's cgroup whose innermost PID it is.
func hostPID(inst *localcloud.Instance, pid int) (int, error) {
	found := 0
	// Errors while walking are cgroups that came or went meanwhile.
	_ = filepath.WalkDir(inst.Cgroup(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if h, _ := strconv.Atoi(f); innermostPID(h) == pid {
				found = h
				return fs.SkipAll
			}
		}
		return nil
	})
	if found == 0 {
		return 0, fmt.Errorf("no process of %s is its pid %d", inst.ID, pid)
	}
	return found, nil
}

// innermostPID is a host process's PID in its own PID namespace, -1 for
// processes of the host's (nspawn itself).
func innermostPID(host int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", host))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
			f := strings.Fields(v)
			if len(f) < 2 {
				return -1
			}
			pid, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return -1
			}
			return pid
		}
	}
	return -1
}

// systemctl runs systemctl on the node's machine.
func (n *Node) systemctl(ctx context.Context, args ...string) error {
	if out, err := n.Instance.Command(ctx, "systemctl", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl %s on node %d (%s): %w: %s", strings.Join(args, " "), n.ID, n.Instance.ID, err, strings.TrimSpace(string(out)))
	}
	return nil
}

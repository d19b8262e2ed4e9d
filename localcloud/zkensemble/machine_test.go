package zkensemble

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/boot"
	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// checkSystem waits until the machine's boot is over and checks that
// exactly the units in want have failed: `systemctl is-system-running` is
// "running" with none, "degraded" with some.
func checkSystem(t *testing.T, inst *localcloud.Instance, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	state, err := inst.WaitSystem(ctx, "running", "degraded")
	if err != nil {
		t.Error(err)
		return
	}
	failed, err := inst.FailedUnits(ctx)
	if err != nil {
		t.Error(err)
		return
	}
	slices.Sort(failed)
	slices.Sort(want)
	wantState := map[bool]string{true: "running", false: "degraded"}[len(want) == 0]
	if state != wantState || !slices.Equal(failed, want) {
		t.Errorf("%s: system %s with failed units %v, want %s with %v", inst.ID, state, failed, wantState, want)
	}
}

// props reads a unit's properties on the machine (systemctl show).
func props(t *testing.T, inst *localcloud.Instance, unit string, names ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p, err := unitProps(ctx, inst, unit, names...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// monotonicProp is a *TimestampMonotonic property, in µs (0: never).
func monotonicProp(t *testing.T, inst *localcloud.Instance, unit, name string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(props(t, inst, unit, name)[name], 10, 64)
	if err != nil {
		t.Fatalf("%s of %s on %s: %v", name, unit, inst.ID, err)
	}
	return v
}

// checkNeverStarted: systemd never started the unit in this boot — no
// process ever ran, and it never left "inactive".
func checkNeverStarted(t *testing.T, inst *localcloud.Instance, unit string) {
	t.Helper()
	p := props(t, inst, unit, "ActiveState", "ExecMainStartTimestampMonotonic", "InactiveExitTimestampMonotonic")
	if p["ActiveState"] != "inactive" || p["ExecMainStartTimestampMonotonic"] != "0" || p["InactiveExitTimestampMonotonic"] != "0" {
		t.Errorf("%s on %s was started: %v", unit, inst.ID, p)
	}
}

// asFirstbootError checks a Boot failed in firstboot and returns why.
func asFirstbootError(t *testing.T, n *Node, err error) *FirstbootError {
	t.Helper()
	var fe *FirstbootError
	if !errors.As(err, &fe) {
		t.Fatalf("boot: node %v, error %v; want firstboot to fail", n, err)
	}
	return fe
}

// waitFirstbootReport waits until firstboot has run in the machine's
// current boot and returns its report.
func waitFirstbootReport(t *testing.T, inst *localcloud.Instance) boot.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if s, err := inst.WaitUnit(ctx, firstbootUnit, "active", "failed"); err != nil || s != "active" {
		t.Fatalf("%s on %s: %s %v", firstbootUnit, inst.ID, s, err)
	}
	rep, err := firstbootReport(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestFirstbootGatesZooKeeper: zookeeper.service (Requires= and After=
// zkaas-firstboot.service) starts only once firstboot succeeded, after it
// finished; when firstboot fails — the config's node IP matches no ENI, or
// the node has no volume — ZooKeeper is never started and firstboot is the
// one failed unit.
func TestFirstbootGatesZooKeeper(t *testing.T) {
	// The missing volume fails at the claim deadline: keep it short.
	e := newEnsembleWith(t, onMachines, ec2sim.Options{}, nodes("us-east-1a", "us-east-1b", "us-east-1c"), Options{Deadline: 5 * time.Second})
	retag(t, e, e.Slot(2).Volume.ID)
	wrongIP := bytes.Replace(e.Config(), []byte("ip: 10.0.1.11"), []byte("ip: 10.0.1.99"), 1)
	if bytes.Equal(wrongIP, e.Config()) {
		t.Fatalf("config has no node 1 at 10.0.1.11:\n%s", e.Config())
	}
	tests := []struct {
		name   string
		az     string
		config []byte // default: the ensemble's
		fails  string // what firstboot's last line says; "" for success
	}{
		{name: "claims its node", az: "us-east-1c"},
		{name: "node IP matches no ENI", az: "us-east-1a", config: wrongIP, fails: "has IP"},
		{name: "no volume for the node", az: "us-east-1b", fails: "no volume is tagged"},
	}
	// Parallel: the failing boots take the claim deadline each.
	t.Run("group", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				var files map[string][]byte
				if tt.config != nil {
					files = map[string][]byte{ensemble.DefaultPath: tt.config}
				}
				n, err := e.bootMachine(t.Context(), tt.az, files)
				if tt.fails == "" {
					if err != nil {
						t.Fatal(err)
					}
					inst := n.Instance
					ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
					defer cancel()
					if s, err := inst.WaitUnit(ctx, zookeeperUnit, "active", "failed"); err != nil || s != "active" {
						t.Fatalf("%s %s %v after firstboot succeeded", zookeeperUnit, s, err)
					}
					done := monotonicProp(t, inst, firstbootUnit, "ExecMainExitTimestampMonotonic")
					started := monotonicProp(t, inst, zookeeperUnit, "ExecMainStartTimestampMonotonic")
					if done == 0 || started < done {
						t.Errorf("ZooKeeper started at %d µs, firstboot finished at %d µs: want it after", started, done)
					}
					units, err := e.Units(ctx, n)
					if err != nil || units[firstbootUnit] != "active" || units[zookeeperUnit] != "active" {
						t.Errorf("units %v, %v", units, err)
					}
					checkSystem(t, inst)
					return
				}
				fe := asFirstbootError(t, n, err)
				t.Cleanup(func() {
					if err := e.Cloud.Crash(context.Background(), fe.Instance); err != nil {
						t.Error(err)
					}
				})
				if !strings.Contains(fe.Line, tt.fails) || !strings.HasPrefix(fe.Line, "zkaas-firstboot: ") {
					t.Errorf("firstboot's last line %q, want its error about %q", fe.Line, tt.fails)
				}
				if s, err := fe.Instance.UnitState(t.Context(), firstbootUnit); err != nil || s != "failed" {
					t.Errorf("%s %s %v", firstbootUnit, s, err)
				}
				checkNeverStarted(t, fe.Instance, zookeeperUnit)
				checkSystem(t, fe.Instance, firstbootUnit)
			})
		}
	})
}

// TestParseFirstboot: the end of firstboot's last run, from its journal
// lines — the summary and report on success, the error (with the lines it
// spans) on failure.
func TestParseFirstboot(t *testing.T) {
	const ready = `time=2026-12-01T21:07:19.799Z level=INFO msg="ready for zookeeper.service" step=run summary="node 2 (10.0.2.11, vol-1): 0 change(s) in 1.2s"`
	const report = `{"claim":{"node":2},"changes":0}`
	const fail = `zkaas-firstboot: run failed: claim: claim deadline 5s passed: describe ENIs: refused`
	tests := []struct {
		name    string
		out     string
		summary string
		report  bool
		failure string
	}{
		{name: "nothing yet", out: "time=... level=INFO msg=\"step started\" step=identify\n"},
		{name: "success", out: ready + "\n" + report + "\n", summary: "node 2 (10.0.2.11, vol-1): 0 change(s) in 1.2s", report: true},
		{name: "summary before its report", out: ready + "\n", summary: "node 2 (10.0.2.11, vol-1): 0 change(s) in 1.2s"},
		{name: "failure spanning lines", out: "time=x level=ERROR msg=\"step failed\"\n" + fail + "\ndescribe volumes: refused\n",
			failure: fail + "; describe volumes: refused"},
		{name: "the last run wins", out: fail + "\n" + "time=x msg=\"step started\"\n" + ready + "\n" + report + "\n",
			summary: "node 2 (10.0.2.11, vol-1): 0 change(s) in 1.2s", report: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := parseFirstboot(tt.out)
			if run.summary != tt.summary || (run.report != nil) != tt.report || run.failure != tt.failure {
				t.Errorf("got summary %q, report %v, failure %q; want %q, %v, %q", run.summary, run.report != nil, run.failure, tt.summary, tt.report, tt.failure)
			}
			if tt.report && run.report.Claim.Node != 2 {
				t.Errorf("report %+v", run.report)
			}
		})
	}
}

// TestLastSync: the latest sync a ZooKeeper log tells of wins.
func TestLastSync(t *testing.T) {
	for _, tt := range []struct{ log, want string }{
		{"", ""},
		{"INFO Getting a diff from the leader 0x100000005\n", "DIFF"},
		{"INFO Getting a snapshot from leader 0x0\n...\nINFO Getting a diff from the leader 0x200000001\n", "DIFF"},
		{"INFO Getting a diff from the leader 0x1\nINFO Getting a snapshot from leader 0x0\n", "SNAP"},
		{"INFO Truncating log to get in sync with the leader 0x1\n", "TRUNC"},
	} {
		if got := lastSync(tt.log); got != tt.want {
			t.Errorf("lastSync(%q) = %q, want %q", tt.log, got, tt.want)
		}
	}
}

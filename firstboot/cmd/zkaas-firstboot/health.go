package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/boot"
	fbexporter "github.com/zkaas/zkaas/firstboot/exporter"
	"github.com/zkaas/zkaas/firstboot/health"
	"github.com/zkaas/zkaas/firstboot/identity"
	"github.com/zkaas/zkaas/firstboot/systemd"
	"github.com/zkaas/zkaas/firstboot/zookeeper"
	"github.com/zkaas/zkaas/internal/fsutil"
)

// defaultStateDir holds what run leaves for ready and unhealthy: tmpfs, so
// a reboot starts clean and the next run writes it again.
const defaultStateDir = "/run/zkaas"

// stateFiles are run's report and its failure, as files in dir.
type stateFiles struct{ dir string }

// Failure is why run failed, for unhealthy.
type Failure struct {
	Command string `json:"command"`
	Reason  string `json:"reason"` // the one summary line
	Refused bool   `json:"refused"`
	// Hold is how long unhealthy waits before reporting a refusal: the
	// config's health.refused_hold, read even from a config refused for
	// other reasons.
	Hold string    `json:"hold,omitempty"`
	At   time.Time `json:"at"`
}

func (s stateFiles) reportPath() string  { return filepath.Join(s.dir, fbexporter.ReportFile) }
func (s stateFiles) failurePath() string { return filepath.Join(s.dir, fbexporter.FailureFile) }

// node is the node run claimed, from its report: its id and ENI address
// (what ready probes and the exporter listens on).
func (s stateFiles) node() (int, netip.Addr, error) {
	b, err := os.ReadFile(s.reportPath())
	if err != nil {
		return 0, netip.Addr{}, fmt.Errorf("no report of a successful run (%w): zkaas-firstboot run did not finish", err)
	}
	var rep struct {
		Claim struct {
			Node int        `json:"node"`
			IP   netip.Addr `json:"ip"`
		} `json:"claim"`
	}
	if err := json.Unmarshal(b, &rep); err != nil || !rep.Claim.IP.IsValid() {
		return 0, netip.Addr{}, fmt.Errorf("unreadable report %s: %v", s.reportPath(), err)
	}
	return rep.Claim.Node, rep.Claim.IP, nil
}

// failed records a failure of run (other commands only return it) and
// returns the error main prints as the journal's last line.
func (s stateFiles) failed(cmd string, err error, refused bool, hold time.Duration) error {
	if cmd == "run" {
		_ = s.writeFailure(err, refused, hold)
	}
	return fmt.Errorf("%s failed: %w", cmd, err)
}

func (s stateFiles) writeFailure(err error, refused bool, hold time.Duration) error {
	f := Failure{Command: "run", Reason: oneLine(err.Error()), Refused: refused, At: time.Now().UTC()}
	if hold > 0 {
		f.Hold = hold.String()
	}
	b, _ := json.Marshal(f)
	if mkErr := os.MkdirAll(s.dir, 0o755); mkErr != nil {
		return mkErr
	}
	_ = os.Remove(s.reportPath())
	_, werr := fsutil.WriteFile(s.failurePath(), append(b, '\n'), 0o644)
	return werr
}

func (s stateFiles) writeReport(rep boot.Report) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(s.failurePath())
	_, err = fsutil.WriteFile(s.reportPath(), append(b, '\n'), 0o644)
	return err
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 900 {
		s = s[:900] + "..."
	}
	return s
}

// group is this instance in its Auto Scaling group, through the SDK's
// standard configuration (AWS_ENDPOINT_URL_AUTO_SCALING honoured) in the
// instance's region.
func group(ctx context.Context, awsCfg aws.Config, log *slog.Logger) (*health.Group, error) {
	id, err := identity.Identify(ctx, identity.NewIMDS(awsCfg))
	if err != nil {
		return nil, err
	}
	awsCfg.Region = id.Region
	return &health.Group{API: autoscaling.NewFromConfig(awsCfg), InstanceID: id.InstanceID, Log: log}, nil
}

// ready waits until this node's ZooKeeper serves, then completes the
// launch: what zkaas-ready.service runs after zookeeper.service.
func ready(ctx context.Context, awsCfg aws.Config, cfg ensemble.Config, state stateFiles, stdout io.Writer, log *slog.Logger) error {
	node, ip, err := state.node()
	if err != nil {
		return fmt.Errorf("ready: %w", err)
	}
	g, err := group(ctx, awsCfg, log)
	if err != nil {
		return fmt.Errorf("ready: %w", err)
	}
	// Its own client port: the secure one over TLS, with the keystore the
	// run wrote, when the plaintext port is closed.
	self := cfg.ZooKeeper.ProbeAddr(ip)
	dial, err := zookeeper.ProbeDialFiles(cfg.ZooKeeper.TLS, zookeeper.DefaultSecretDir, nil)
	if err != nil {
		return fmt.Errorf("ready: %w", err)
	}
	prober := zookeeper.Prober{Attempts: 1, Dial: dial}
	serving := func(ctx context.Context) (bool, string, error) {
		q := prober.Probe(ctx, []netip.AddrPort{self})
		if err := q.Errors[self]; err != nil {
			return false, "", err
		}
		mode := q.Modes[self]
		// zoo.cfg sets standaloneEnabled=false: even one node leads.
		ok := mode == zookeeper.ModeLeader || mode == zookeeper.ModeFollower
		return ok, "node " + fmt.Sprint(node) + " " + mode, nil
	}
	did, err := g.Ready(ctx, serving, cfg.Health.ReadyTimeout.D())
	if errors.Is(err, health.ErrNotInGroup) {
		fmt.Fprintf(stdout, "%s: nothing to tell\n", err)
		return nil
	}
	if did != "" {
		fmt.Fprintln(stdout, did)
	}
	if err != nil {
		return fmt.Errorf("ready: %w", err)
	}
	return nil
}

// unhealthy tells the group this instance failed: what OnFailure= runs
// for zkaas-firstboot.service and zookeeper.service. For a refusal every
// replacement would hit too, it first holds for health.refused_hold,
// which bounds the churn. It needs no valid config: a config refused at
// boot is one of the failures it reports.
func unhealthy(ctx context.Context, cfgPath, unit string, state stateFiles, stdout io.Writer, log *slog.Logger) error {
	var f Failure
	haveFailure := false
	if b, err := os.ReadFile(state.failurePath()); err == nil && json.Unmarshal(b, &f) == nil && f.Reason != "" {
		haveFailure = true
	}
	reason, refused := unit+" failed: systemd gave up restarting it", false
	switch {
	case (unit == "" || unit == systemd.Firstboot) && haveFailure:
		reason, refused = f.Reason, f.Refused
	case unit == "" || unit == systemd.Firstboot:
		reason = "zkaas-firstboot failed"
	case haveFailure:
		// zookeeper.service fails too when firstboot did (it requires
		// it); firstboot's own OnFailure= instance reports that, with
		// its reason and its hold.
		fmt.Fprintf(stdout, "%s failed because zkaas-firstboot did (%s): reported by zkaas-unhealthy@%s; the reason: journalctl -u %s -o cat | tail -1\n", unit, f.Reason, systemd.Firstboot, systemd.Firstboot)
		return nil
	}
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return err
	}
	// The hold run recorded, else the config's, else the default.
	hold := ensemble.Default().Health.RefusedHold.D()
	if d, err := time.ParseDuration(f.Hold); err == nil && f.Hold != "" {
		hold = d
	} else {
		ud, _ := identity.UserData(ctx, identity.NewIMDS(awsCfg))
		if cfg, _, _, err := ensemble.Resolve(ud, cfgPath, ensemble.Options{}); err == nil {
			hold = cfg.Health.RefusedHold.D()
		}
	}
	g, err := group(ctx, awsCfg, log)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	if refused {
		if err := g.Hold(ctx, hold); err != nil {
			return notInGroup(err, stdout)
		}
	}
	did, err := g.Fail(ctx, reason)
	if err != nil {
		return notInGroup(err, stdout)
	}
	fmt.Fprintln(stdout, did)
	return nil
}

// notInGroup turns ErrNotInGroup into a line and success: outside a
// group there is no one to tell, and the failed unit already says why.
func notInGroup(err error, stdout io.Writer) error {
	if errors.Is(err, health.ErrNotInGroup) {
		fmt.Fprintf(stdout, "%s: nothing to tell\n", err)
		return nil
	}
	return fmt.Errorf("unhealthy: %w", err)
}

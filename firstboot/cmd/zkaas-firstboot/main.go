// Command zkaas-firstboot turns a freshly launched instance into one node of
// a ZooKeeper ensemble. It runs on every boot from zkaas-firstboot.service.
//
// Exit codes: 0 success; 1 the step failed (the last line on stderr says
// what was missing, and the ASG health check replaces the instance); 2 bad
// usage or an invalid config (nothing was touched).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/boot"
	"github.com/zkaas/zkaas/firstboot/claim"
	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/firstboot/hotplug"
	"github.com/zkaas/zkaas/firstboot/iampolicy"
	"github.com/zkaas/zkaas/firstboot/identity"
	"github.com/zkaas/zkaas/firstboot/secrets"
	"github.com/zkaas/zkaas/firstboot/zookeeper"
	"github.com/zkaas/zkaas/internal/fsutil"
)

const usage = `usage: zkaas-firstboot <command> [flags]

commands:
  run         everything, on every boot: claim, network, disk, ZooKeeper config
  ready       once ZooKeeper serves, complete the Auto Scaling launch (zkaas-ready.service)
  exporter    serve Prometheus metrics on the node's ENI address when metrics.exporter.enabled (zkaas-exporter.service)
  unhealthy   tell the Auto Scaling group this instance failed (OnFailure= of the units)
  validate    check the ensemble config and list every problem
  claim       claim this instance's node (ENI + volume) and print it as JSON
  render      write zoo.cfg, myid and java.env for -node N into -out DIR (offline)
  iam-policy  print the least-privilege IAM policy for the instance profile

The config is the instance's user data when it carries one (a plain YAML
document, or the text/x-zkaas-ensemble part of a MIME multipart; a document
of only "node: N" pins the node of the baked file), else -config. On the
instance, run, claim and ready read user data from IMDS; -user-data FILE
checks a user-data document instead (validate it before launching), and
-user-data none ignores it.
`

// exitError carries an exit code; its message is the one summary line.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		code := 1
		var ee exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		fmt.Fprintf(os.Stderr, "zkaas-firstboot: %v\n", err)
		os.Exit(code)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{2, errors.New("no command")}
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", ensemble.DefaultPath, "ensemble config file")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	node := fs.Int("node", 0, "render: the node id")
	out := fs.String("out", "", "render: the output directory")
	userData := fs.String("user-data", "", "user data: a file to use as the instance's user data, or none (default: IMDS for run, claim, ready)")
	stateDir := fs.String("state-dir", defaultStateDir, "where run leaves its report and failure for ready and unhealthy")
	unit := fs.String("unit", "", "unhealthy: the unit that failed (%n of OnFailure=)")
	if err := fs.Parse(args); err != nil {
		return exitError{2, err}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return exitError{2, fmt.Errorf("-log-level: %w", err)}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	switch cmd {
	case "validate", "claim", "iam-policy", "render", "run", "ready", "unhealthy", "exporter":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return exitError{2, fmt.Errorf("unknown command %q", cmd)}
	}
	state := stateFiles{dir: *stateDir}
	if cmd == "unhealthy" {
		return unhealthy(ctx, *cfgPath, *unit, state, stdout, log)
	}
	onInstance := cmd == "run" || cmd == "claim" || cmd == "ready" || cmd == "exporter"
	var awsCfg aws.Config
	var ud []byte
	if onInstance {
		var err error
		if awsCfg, err = loadAWS(ctx); err != nil {
			return state.failed(cmd, err, false, 0)
		}
	}
	switch *userData {
	case "none":
	case "":
		if onInstance {
			var err error
			if ud, err = identity.UserData(ctx, identity.NewIMDS(awsCfg)); err != nil {
				return state.failed(cmd, err, false, 0)
			}
		}
	default:
		var err error
		if ud, err = os.ReadFile(*userData); err != nil {
			return exitError{2, fmt.Errorf("-user-data: %w", err)}
		}
	}
	cfg, src, warns, err := ensemble.Resolve(ud, *cfgPath, ensemble.Options{
		Hardened: fileExists(ensemble.HardenedMarker),
		// On an image (the bake's validate step, every boot): refuse
		// metrics.zookeeper when its server cannot load the provider.
		NoPrometheusProvider: zookeeper.DefaultInstall().NoPrometheusProvider(),
	})
	for _, w := range warns {
		log.Warn("config", "step", "config", "source", src.String(), "warning", w.Error())
	}
	if err != nil {
		var p *ensemble.Problems
		if errors.As(err, &p) {
			fmt.Fprintln(stderr, p.Error())
			err = fmt.Errorf("invalid config (%s): %d problem(s); first: %s", p.File, len(p.Errors), p.Errors[0].Error())
		}
		// Every replacement would read the same config: a refusal.
		if cmd == "run" {
			_ = state.writeFailure(err, true, refusedHold(ud, *cfgPath))
		}
		return exitError{2, err}
	}
	log.Info("config", "step", "config", "source", src.String(), "ensemble", cfg.Ensemble)
	switch cmd {
	case "validate":
		fmt.Fprintf(stdout, "%s: ok (%d nodes)\n", src, len(cfg.Nodes))
		return nil
	case "iam-policy":
		_, err := stdout.Write(iampolicy.For(cfg).JSON())
		return err
	case "render":
		return render(cfg, *node, *out, stdout)
	}
	if cmd == "ready" {
		return ready(ctx, awsCfg, cfg, state, stdout, log)
	}
	if cmd == "exporter" {
		return exporter(ctx, cfg, state, log) // exporter.go
	}
	r, err := runner(awsCfg, cfg, log)
	if err != nil {
		return err
	}
	if cmd == "claim" {
		res, err := r.Claim(ctx)
		if err != nil {
			return fmt.Errorf("claim failed: %w", err)
		}
		return json.NewEncoder(stdout).Encode(res)
	}
	rep, err := r.Run(ctx)
	if err != nil {
		return state.failed("run", err, refused(err), cfg.Health.RefusedHold.D())
	}
	rep.Config = src.String()
	if err := state.writeReport(rep); err != nil {
		log.Warn("state for ready not written", "step", "run", "err", err)
	}
	log.Info("ready for zookeeper.service", "step", "run", "summary", rep.String())
	return json.NewEncoder(stdout).Encode(rep)
}

// refused reports failures every replacement would hit too: the claim
// cannot be made (misconfiguration, permissions, instance type), the
// volume was refused (it may hold data), or a secret is missing, denied
// or unusable (a certificate that does not fit the node included). Churn
// for them is bounded by health.refused_hold.
func refused(err error) bool {
	return errors.Is(err, claim.ErrCannotClaim) || errors.Is(err, disk.ErrRefused) || errors.Is(err, secrets.ErrUnusable)
}

// refusedHold is health.refused_hold of the config a boot refused: from
// the user data's document when it carries one, else from the baked file;
// 0 when neither says (unhealthy then uses the default).
func refusedHold(userData []byte, path string) time.Duration {
	if doc, ok, err := ensemble.FromUserData(userData); err == nil && ok {
		if d, ok := ensemble.RefusedHoldOf(doc); ok {
			return d
		}
	}
	// No user data, or a pin over the baked file.
	if doc, err := os.ReadFile(path); err == nil {
		if d, ok := ensemble.RefusedHoldOf(doc); ok {
			return d
		}
	}
	return 0
}

// loadAWS is the SDK's standard configuration chain (endpoint overrides
// included).
func loadAWS(ctx context.Context) (aws.Config, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// runner builds the boot runner: IMDSv2 only, and EC2 in the ensemble's
// region.
func runner(awsCfg aws.Config, cfg ensemble.Config, log *slog.Logger) (*boot.Runner, error) {
	md := identity.Metadata{API: identity.NewIMDS(awsCfg)}
	awsCfg.Region = cfg.Region()
	cloud := claim.NewCloud(awsCfg, cfg, log)
	// The claim waits on the instance's own view of the hot-plugged ENI
	// and volume, and asks EC2 once they are visible.
	cloud.Devices = &hotplug.Devices{Log: log}
	r := &boot.Runner{Config: cfg, Metadata: md, Cloud: cloud, Log: log}
	if len(cfg.Secrets()) > 0 {
		// Secrets Manager and SSM in the ensemble's region, through the
		// standard chain (AWS_ENDPOINT_URL_SECRETS_MANAGER and _SSM
		// honoured).
		r.Secrets = secrets.New(awsCfg, secrets.Options{Log: log})
	}
	return r, nil
}

// render writes the node's ZooKeeper files, as a boot would render them,
// flat into dir — for review or a diff, without AWS.
func render(cfg ensemble.Config, node int, dir string, stdout io.Writer) error {
	n, ok := cfg.NodeByID(node)
	if !ok || dir == "" {
		return exitError{2, fmt.Errorf("render needs -node (one of the config's node ids) and -out DIR")}
	}
	// No secret is fetched offline: placeholders stand in, so that zoo.cfg
	// and java.env come out as at boot; the private files are not written.
	files, err := zookeeper.Render(cfg, n.ID, n.IP, zookeeper.DefaultLayout(cfg.Volume.MountPoint), zookeeper.PlaceholderMaterial(cfg))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range map[string][]byte{zookeeper.ZooCfgName: files.ZooCfg, zookeeper.MyIDName: files.MyID, zookeeper.JavaEnvName: files.JavaEnv} {
		changed, err := fsutil.WriteFile(filepath.Join(dir, name), data, 0o644)
		if err != nil {
			return err
		}
		if changed {
			fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(dir, name))
		}
	}
	return nil
}

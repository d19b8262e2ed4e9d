// Command zkaas is the operator's command: it creates, inspects and
// removes an ensemble's AWS side from the same YAML the nodes boot with.
//
//	zkaas plan   -config ensemble.yaml          what up would create or change
//	zkaas up     -config ensemble.yaml          apply it, in dependency order (resumable)
//	zkaas status -config ensemble.yaml [-o json]
//	zkaas doctor -config ensemble.yaml [-o json]
//	zkaas down   -config ensemble.yaml [-delete-data -confirm NAME]
//
// AWS credentials, region and endpoints come from the SDK's standard
// chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_EC2, ...); the region
// defaults to the nodes' region.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	opsaws "github.com/zkaas/zkaas/ops/aws"
	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/inventory"
	"github.com/zkaas/zkaas/ops/plan"
	"github.com/zkaas/zkaas/ops/roll"
)

// Cloud is what the subcommands need: plan's domain cloud, the inventory
// status and doctor read, and EC2's DryRun.
type Cloud interface {
	plan.Cloud
	Inventory(ctx context.Context, cfg ensemble.Config) (inventory.Snapshot, []error, error)
	DryRun(ctx context.Context, cfg ensemble.Config, subnet string) map[string]string
	Roller(ensemble string) roll.Cloud
}

// env is the command's world; tests replace newCloud.
type env struct {
	stdout, stderr io.Writer
	newCloud       func(ctx context.Context, cfg ensemble.Config, log *slog.Logger) (Cloud, error)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	e := env{stdout: os.Stdout, stderr: os.Stderr, newCloud: realCloud}
	os.Exit(e.run(ctx, os.Args[1:]))
}

func realCloud(ctx context.Context, cfg ensemble.Config, log *slog.Logger) (Cloud, error) {
	c, err := opsaws.New(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	return awsCloud{c}, nil
}

// awsCloud adds the roller to *opsaws.Cloud.
type awsCloud struct{ *opsaws.Cloud }

func (a awsCloud) Roller(ens string) roll.Cloud { return opsaws.Roller{Cloud: a.Cloud, Ensemble: ens} }

const usage = `usage: zkaas <command> -config ensemble.yaml [flags]

commands:
  plan     print what up would create or change (create / update / ok / conflict)
  up       create or update the ensemble's AWS resources, in dependency order
  status   one row per node: ENI, holder, volume, ZooKeeper mode and zxid
  doctor   every check, each with its fix
  down     remove groups, templates, security groups, role and profile made by zkaas
           (ENIs and volumes stay unless -delete-data -confirm <ensemble>)
  roll     up (a new template version), then replace node by node, followers first,
           the leader last, each only when every node serves and has caught up
`

// exit codes: 0 ok, 1 failed (or doctor found problems), 2 bad usage or config.
func (e env) run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "--help" {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("zkaas "+cmd, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cfgPath := fs.String("config", "ensemble.yaml", "the ensemble config")
	output := fs.String("o", "table", "status/doctor output: table or json")
	deleteData := fs.Bool("delete-data", false, "down: also delete every node's ENI and volume")
	confirm := fs.String("confirm", "", "down -delete-data: the ensemble's name, typed back")
	probe := fs.Bool("zookeeper", true, "status/doctor: ask the nodes' client ports (srvr)")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	verbose := fs.Bool("v", false, "log every step")
	tlsCA := fs.String("tls-ca", os.Getenv("ZKAAS_TLS_CA"), "status/doctor/roll: PEM CA certificates the nodes' certificates chain to, for an ensemble serving clients over TLS only (default $ZKAAS_TLS_CA)")
	tlsCert := fs.String("tls-cert", os.Getenv("ZKAAS_TLS_CERT"), "status/doctor/roll: PEM client certificate the nodes' truststore trusts (default $ZKAAS_TLS_CERT)")
	tlsKey := fs.String("tls-key", os.Getenv("ZKAAS_TLS_KEY"), "status/doctor/roll: PEM PKCS #8 private key of -tls-cert (default $ZKAAS_TLS_KEY)")
	image := fs.String("image", "", "roll: the image to roll to; must be the config's deploy.image_id (so a later up keeps it)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "zkaas %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(e.stderr, "zkaas %s: -o %q: want table or json\n", cmd, *output)
		return 2
	}
	level := slog.LevelWarn
	if *verbose || cmd == "up" || cmd == "down" || cmd == "roll" {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	switch cmd {
	case "plan", "up", "status", "doctor", "down", "roll":
	default:
		fmt.Fprintf(e.stderr, "zkaas: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	// Everything about the input is checked before any call.
	raw, err := os.ReadFile(*cfgPath)
	if err != nil {
		fmt.Fprintf(e.stderr, "zkaas %s: %v\n", cmd, err)
		return 2
	}
	cfg, warns, err := ensemble.Parse(*cfgPath, raw)
	for _, w := range warns {
		fmt.Fprintf(e.stderr, "warning: %s\n", w.Error())
	}
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 2
	}
	desired, err := deploy.For(cfg, raw)
	if err != nil {
		fmt.Fprintf(e.stderr, "zkaas %s: %s: %v\n", cmd, *cfgPath, err)
		return 2
	}
	if cmd == "down" && *deleteData && *confirm != cfg.Ensemble {
		fmt.Fprintf(e.stderr, "zkaas down: -delete-data deletes every node's ENI and volume, the ensemble's data: add -confirm %s\n", cfg.Ensemble)
		return 2
	}
	if cmd == "roll" && *image != "" && *image != cfg.Deploy.ImageID {
		fmt.Fprintf(e.stderr, "zkaas roll: -image %s differs from deploy.image_id %s in %s: set deploy.image_id to %s (so a later up keeps it) and run roll again\n", *image, cfg.Deploy.ImageID, *cfgPath, *image)
		return 2
	}
	zc, err := zkClient(cmd, cfg, *probe, *tlsCA, *tlsCert, *tlsKey)
	if err != nil {
		fmt.Fprintf(e.stderr, "zkaas %s: %v\n", cmd, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, err := e.newCloud(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(e.stderr, "zkaas %s: %v\n", cmd, err)
		return 1
	}
	switch cmd {
	case "plan":
		err = e.plan(ctx, c, desired)
	case "up":
		err = e.up(ctx, c, desired, log)
	case "down":
		err = e.down(ctx, c, desired, *deleteData, *confirm, log)
	case "status":
		err = e.status(ctx, c, cfg, zc, *output, *probe)
	case "doctor":
		err = e.doctor(ctx, c, cfg, zc, desired, *output, *probe)
	case "roll":
		err = e.roll(ctx, c, cfg, zc, desired, log)
	}
	var found problemsFound
	switch {
	case errors.As(err, &found):
		return 1
	case err != nil:
		fmt.Fprintf(e.stderr, "zkaas %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// problemsFound: doctor ran and reported failures (already printed).
type problemsFound int

func (p problemsFound) Error() string { return fmt.Sprintf("%d problem(s)", int(p)) }

func (e env) plan(ctx context.Context, c Cloud, d deploy.Desired) error {
	p, err := plan.Make(ctx, c, d)
	if err != nil {
		return err
	}
	return plan.Print(e.stdout, p)
}

func (e env) up(ctx context.Context, c Cloud, d deploy.Desired, log *slog.Logger) error {
	start := time.Now()
	p, err := plan.Make(ctx, c, d)
	if err != nil {
		return err
	}
	n, err := plan.Apply(ctx, c, p, log)
	if err != nil {
		return fmt.Errorf("%w (%d change(s) made; run up again to resume)", err, n)
	}
	fmt.Fprintf(e.stdout, "up: %d change(s), %d resource(s) of ensemble %s in %s\n", n, len(p.Steps), d.Ensemble, time.Since(start).Round(time.Millisecond))
	return nil
}

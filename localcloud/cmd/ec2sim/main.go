// Command ec2sim serves the EC2 API simulator (package ec2sim) over HTTP.
//
//	go run ./localcloud/cmd/ec2sim -listen 127.0.0.1:0 -state seed.yaml \
//	    -rtt 40ms -eni-attach 2s -volume-attach 3s -consistency 500ms -stuck-rate 0.05
//
// The first line on stdout is the endpoint URL (point AWS_ENDPOINT_URL_EC2
// at it; any credentials are accepted), the second the seeded resources as
// one JSON object. It serves until SIGINT or SIGTERM. The -state file
// format is documented on ec2sim.Seed; the JSON admin API under /_sim/ on
// the ec2sim package. Exit status: 0 after a clean shutdown, 2 for bad
// flags or a bad seed, 1 if serving fails.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ec2sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts       ec2sim.Options
		listen     = fs.String("listen", "127.0.0.1:0", "address to listen on")
		state      = fs.String("state", "", "YAML file with the initial subnets, ENIs, volumes and instances")
		noThrottle = fs.Bool("no-throttle", false, "switch off EC2's request token buckets")
		debug      = fs.Bool("debug", false, "log every API call")
	)
	fs.StringVar(&opts.Region, "region", "us-east-1", "region; availability zones are <region><letter>")
	fs.Uint64Var(&opts.Seed, "seed", uint64(time.Now().UnixNano()), "seed for ids, jitter and faults")
	fs.StringVar(&opts.InstanceType, "instance-type", ec2sim.DefaultInstanceType, "type of the instances launched without one (limits their network interfaces)")
	fs.DurationVar(&opts.Consistency, "consistency", 0, "Describe calls show state this old")
	fs.DurationVar(&opts.Lag.Instances, "lag-instances", 0, "DescribeInstances is up to this stale (default: -consistency)")
	fs.DurationVar(&opts.Lag.Volumes, "lag-volumes", 0, "DescribeVolumes is up to this stale (default: -consistency)")
	fs.DurationVar(&opts.Lag.NetworkInterfaces, "lag-enis", 0, "DescribeNetworkInterfaces is up to this stale (default: -consistency)")
	fs.BoolVar(&opts.Lag.Random, "lag-random", false, "each answer picks its staleness at random up to its lag: Describe is not monotonic")
	fs.DurationVar(&opts.Lag.NewIDs, "lag-new-ids", 0, "mutations answer NotFound for resources created less than this ago")
	fs.DurationVar(&opts.Latency.RoundTrip, "rtt", 0, "API round trip")
	fs.DurationVar(&opts.Latency.RoundTripJitter, "rtt-jitter", 0, "uniform extra round trip, up to this")
	fs.DurationVar(&opts.Latency.ENIAttach, "eni-attach", 0, "ENI attaching -> attached")
	fs.DurationVar(&opts.Latency.ENIDetach, "eni-detach", 0, "ENI detaching -> available")
	fs.DurationVar(&opts.Latency.VolumeAttach, "volume-attach", 0, "volume attaching -> attached")
	fs.DurationVar(&opts.Latency.VolumeDetach, "volume-detach", 0, "volume detaching -> available")
	fs.DurationVar(&opts.Latency.InstanceStart, "instance-start", 0, "instance pending -> running")
	fs.DurationVar(&opts.Latency.InstanceStop, "instance-stop", 0, "instance stopping -> stopped (admin stop)")
	fs.DurationVar(&opts.Latency.InstanceTerminate, "instance-terminate", 0, "instance shutting-down -> terminated")
	fs.Float64Var(&opts.Faults.ThrottleRate, "throttle-rate", 0, "probability a call fails with RequestLimitExceeded")
	fs.Float64Var(&opts.Faults.StuckAttachRate, "stuck-rate", 0, "probability an attach stays attaching until detached")
	fs.Float64Var(&opts.Faults.InUseRaceRate, "inuse-rate", 0, "probability an attach of an available resource loses a simulated race")
	fs.Float64Var(&opts.Faults.ENIInUseCodeRate, "eni-inuse-code-rate", 0, "probability an attach of an in-use ENI answers InvalidNetworkInterface.InUse instead of InvalidParameterValue")
	fs.Float64Var(&opts.Faults.ForcedDetachDeviceHoldRate, "forced-detach-device-hold-rate", 0, "probability a forced volume detach leaves its device name held: attaches under it stick")
	fs.Float64Var(&opts.Faults.ForcedDetachIndexLossRate, "forced-detach-index-loss-rate", 0, "probability a forced ENI detach leaves its device index unusable on the instance")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ec2sim: unexpected arguments %q\n", fs.Args())
		return 2
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts.Logger = log
	if _, ok := ec2sim.MaxNetworkInterfaces(opts.InstanceType); !ok {
		fmt.Fprintf(stderr, "ec2sim: -instance-type %s: not a type the simulator knows\n", opts.InstanceType)
		return 2
	}
	if *noThrottle {
		opts.Throttle = &ec2sim.Throttle{Disabled: true}
	}

	var seed ec2sim.Seed
	if *state != "" {
		data, err := os.ReadFile(*state)
		if err != nil {
			fmt.Fprintf(stderr, "ec2sim: %v\n", err)
			return 2
		}
		if seed, err = ec2sim.ParseSeed(data); err != nil {
			fmt.Fprintf(stderr, "ec2sim: %s: %v\n", *state, err)
			return 2
		}
	}
	sim := ec2sim.New(opts)
	defer sim.Close()
	seeded, err := sim.ApplySeed(seed)
	if err != nil {
		fmt.Fprintf(stderr, "ec2sim: %s: %v\n", *state, err)
		return 2
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "ec2sim: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + ln.Addr().String()
	fmt.Fprintln(stdout, url)
	if err := json.NewEncoder(stdout).Encode(seeded); err != nil {
		fmt.Fprintf(stderr, "ec2sim: %v\n", err)
		return 1
	}
	log.Info("serving", "url", url, "seed", opts.Seed, "region", opts.Region)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		fmt.Fprintf(stderr, "ec2sim: serve: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "ec2sim: shutdown: %v\n", err)
		return 1
	}
	log.Info("stopped", "calls", sim.Stats().Total)
	return 0
}

//go:build mage

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/zkaas/zkaas/firstboot/cloud"
	"github.com/zkaas/zkaas/firstboot/ec2sim"
	"github.com/zkaas/zkaas/firstboot/imdsmock"
)

const demoSeed = `
subnets:
  - {name: a, availabilityZone: us-east-1a, cidrBlock: 10.0.1.0/24}
  - {name: b, availabilityZone: us-east-1b, cidrBlock: 10.0.2.0/24}
  - {name: c, availabilityZone: us-east-1c, cidrBlock: 10.0.3.0/24}
networkInterfaces:
  - {subnet: a, privateIpAddress: 10.0.1.10, tags: {"zkaas:ensemble": demo, "zkaas:node": "1"}}
  - {subnet: b, privateIpAddress: 10.0.2.10, tags: {"zkaas:ensemble": demo, "zkaas:node": "2"}}
  - {subnet: c, privateIpAddress: 10.0.3.10, tags: {"zkaas:ensemble": demo, "zkaas:node": "3"}}
volumes:
  - {availabilityZone: us-east-1a, sizeGiB: 10, tags: {"zkaas:ensemble": demo, "zkaas:node": "1"}}
  - {availabilityZone: us-east-1b, sizeGiB: 10, tags: {"zkaas:ensemble": demo, "zkaas:node": "2"}}
  - {availabilityZone: us-east-1c, sizeGiB: 10, tags: {"zkaas:ensemble": demo, "zkaas:node": "3"}}
instances:
  - {subnet: a}
  - {subnet: b}
  - {subnet: c}
`

const demoConfig = `ensemble: demo
nodes:
  - {id: 1, az: us-east-1a, ip: 10.0.1.10}
  - {id: 2, az: us-east-1b, ip: 10.0.2.10}
  - {id: 3, az: us-east-1c, ip: 10.0.3.10}
claim: {deadline: 30s, stuck_attach: 10s}
`

// Demo boots three instances at once against the EC2 simulator (with EC2's
// latency model) and AWS's IMDS mock, runs the real zkaas-firstboot claim
// on each, and shows who became which node.
func Demo(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "zkaas-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "zkaas-firstboot")
	fmt.Println("==> building zkaas-firstboot")
	if out, err := exec.Command("go", "build", "-o", bin, "./firstboot/cmd/zkaas-firstboot").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "ensemble.yaml")
	if err := os.WriteFile(cfgPath, []byte(demoConfig), 0o644); err != nil {
		return err
	}

	fmt.Println("==> starting the EC2 simulator (ENI attach ~1 s, volume attach ~2 s, 25-35 ms round trips)")
	sim := ec2sim.New(ec2sim.Options{
		Latency: ec2sim.Latency{RoundTrip: 25 * time.Millisecond, RoundTripJitter: 10 * time.Millisecond,
			ENIAttach: time.Second, VolumeAttach: 2 * time.Second},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(sim)
	defer func() { srv.Close(); sim.Close() }()
	seed, err := ec2sim.ParseSeed([]byte(demoSeed))
	if err != nil {
		return err
	}
	seeded, err := sim.ApplySeed(seed)
	if err != nil {
		return err
	}

	fmt.Println("==> booting 3 instances at once, each with its own IMDSv2 (amazon-ec2-metadata-mock)")
	results := make([]cloud.Result, len(seeded.Instances))
	errs := make([]error, len(seeded.Instances))
	var wg sync.WaitGroup
	for i, inst := range seeded.Instances {
		imds, err := imdsmock.Start(ctx, imdsmock.Instance{InstanceID: inst.ID, AZ: inst.AZ, Region: "us-east-1", MAC: inst.MAC}, "127.0.0.1", 0, nil)
		if err != nil {
			return err
		}
		defer imds.Stop()
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, bin, "claim", "-config", cfgPath)
			cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds.URL, "AWS_ENDPOINT_URL_EC2="+srv.URL,
				"AWS_ACCESS_KEY_ID=AKIDDEMO", "AWS_SECRET_ACCESS_KEY=demo", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("%s: %v\n%s", inst.ID, err, stderr.String())
				return
			}
			errs[i] = json.Unmarshal(stdout.Bytes(), &results[i])
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Printf("\n%-20s %-11s %-5s %-10s %-22s %-22s %-10s %8s %6s\n", "instance", "az", "node", "ip", "eni", "volume", "device", "claim", "calls")
	for i, r := range results {
		inst := seeded.Instances[i]
		fmt.Printf("%-20s %-11s %-5d %-10s %-22s %-22s %-10s %7.2fs %6d\n", inst.ID, inst.AZ, r.Node, r.IP, r.ENI, r.Volume, r.Device, r.Phases.Total.Seconds(), r.Calls)
	}
	st := sim.Stats()
	fmt.Printf("\nEC2 calls in total: %d (%v); errors: %v\n", st.Total, st.Calls, st.Errors)
	fmt.Println("The local cloud (network namespaces, loop-device volumes, a real ZooKeeper ensemble) is issue 4.")
	return nil
}

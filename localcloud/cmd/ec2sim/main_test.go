package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

const seedDoc = `
subnets:
  - {name: a, availabilityZone: us-east-1a, cidrBlock: 10.0.1.0/24}
networkInterfaces:
  - {subnet: a, privateIpAddress: 10.0.1.11, tags: {"zkaas:ensemble": prod, "zkaas:node": "1"}}
volumes:
  - {availabilityZone: us-east-1a, sizeGiB: 10, tags: {"zkaas:ensemble": prod, "zkaas:node": "1"}}
instances:
  - {subnet: a}
`

func TestServeSeededState(t *testing.T) {
	seedFile := filepath.Join(t.TempDir(), "seed.yaml")
	if err := os.WriteFile(seedFile, []byte(seedDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-state", seedFile, "-seed", "1", "-eni-attach", "10ms", "-debug",
			"-lag-enis", "1ms", "-lag-random", "-lag-new-ids", "1ms", "-eni-inuse-code-rate", "1",
			"-forced-detach-index-loss-rate", "1", "-forced-detach-device-hold-rate", "1"}, outW, &stderr)
		outW.Close()
	}()

	out := bufio.NewReader(outR)
	url, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("no URL on stdout: %v (stderr: %s)", err, stderr.String())
	}
	url = strings.TrimSpace(url)
	var seeded ec2sim.Seeded
	line, err := out.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(line, &seeded); err != nil {
		t.Fatalf("seeded resources line: %v: %s", err, line)
	}
	if len(seeded.NetworkInterfaces) != 1 || len(seeded.Volumes) != 1 || len(seeded.Instances) != 1 {
		t.Fatalf("seeded %+v", seeded)
	}

	client := ec2.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	}, func(o *ec2.Options) { o.BaseEndpoint = aws.String(url) })
	callCtx, callCancel := context.WithTimeout(ctx, 10*time.Second)
	defer callCancel()
	got, err := client.DescribeNetworkInterfaces(callCtx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("tag:zkaas:ensemble"), Values: []string{"prod"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.NetworkInterfaces) != 1 || aws.ToString(got.NetworkInterfaces[0].NetworkInterfaceId) != seeded.NetworkInterfaces[0].ID {
		t.Fatalf("DescribeNetworkInterfaces %+v, want %s", got.NetworkInterfaces, seeded.NetworkInterfaces[0].ID)
	}
	if _, err := client.AttachNetworkInterface(callCtx, &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(seeded.NetworkInterfaces[0].ID), InstanceId: aws.String(seeded.Instances[0].ID), DeviceIndex: aws.Int32(1),
	}); err != nil {
		t.Fatal(err)
	}
	// -eni-inuse-code-rate 1: the in-use ENI answers InvalidNetworkInterface.InUse.
	_, err = client.AttachNetworkInterface(callCtx, &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(seeded.NetworkInterfaces[0].ID), InstanceId: aws.String(seeded.Instances[0].ID), DeviceIndex: aws.Int32(2),
	})
	if ae := (smithy.APIError)(nil); !errors.As(err, &ae) || ae.ErrorCode() != "InvalidNetworkInterface.InUse" {
		t.Fatalf("second attach: %v, want InvalidNetworkInterface.InUse", err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after cancel")
	}
	if log := stderr.String(); !strings.Contains(log, "action=AttachNetworkInterface") || !strings.Contains(log, "msg=stopped") {
		t.Fatalf("stderr lacks the call log:\n%s", log)
	}
}

func TestBadInvocations(t *testing.T) {
	dir := t.TempDir()
	badSeed := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badSeed, []byte("subnets:\n  - {name: a, zone: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badRef := filepath.Join(dir, "ref.yaml")
	if err := os.WriteFile(badRef, []byte("instances:\n  - {subnet: nope}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined"},
		{"extra argument", []string{"serve"}, "unexpected arguments"},
		{"bad duration", []string{"-eni-attach", "soon"}, "invalid value"},
		{"unknown instance type", []string{"-instance-type", "x9.huge"}, "not a type the simulator knows"},
		{"missing state file", []string{"-state", filepath.Join(dir, "none.yaml")}, "no such file"},
		{"unknown seed field", []string{"-state", badSeed}, "field zone not found"},
		{"unknown subnet reference", []string{"-state", badRef}, `unknown subnet "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

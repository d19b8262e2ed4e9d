package ec2sim_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// env is a simulator behind a real HTTP server, with two subnets in two
// AZs, and the real SDK client pointed at it.
type env struct {
	t    *testing.T
	sim  *ec2sim.Sim
	url  string
	ec2  *ec2.Client
	subA string // us-east-1a, 10.0.1.0/24
	subB string // us-east-1b, 10.0.2.0/24
}

func setup(t *testing.T, opts ec2sim.Options) *env {
	t.Helper()
	sim := ec2sim.New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	e := &env{t: t, sim: sim, url: srv.URL}
	e.ec2 = e.client()
	var err error
	if e.subA, err = sim.CreateSubnet("us-east-1a", "10.0.1.0/24"); err != nil {
		t.Fatal(err)
	}
	if e.subB, err = sim.CreateSubnet("us-east-1b", "10.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
	return e
}

// client is the real aws-sdk-go-v2 EC2 client, as the claim engine builds it.
func (e *env) client(optFns ...func(*ec2.Options)) *ec2.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	}
	return ec2.NewFromConfig(cfg, append([]func(*ec2.Options){func(o *ec2.Options) {
		o.BaseEndpoint = aws.String(e.url)
	}}, optFns...)...)
}

// noRetries makes throttling visible instead of retried away.
func noRetries(o *ec2.Options) { o.RetryMaxAttempts = 1 }

func (e *env) run(subnet string) ec2sim.Instance {
	e.t.Helper()
	inst, err := e.sim.RunInstance(subnet)
	if err != nil {
		e.t.Fatal(err)
	}
	return inst
}

func (e *env) eni(subnet, ip string, tags map[string]string) ec2sim.NetworkInterface {
	e.t.Helper()
	n, err := e.sim.CreateNetworkInterface(subnet, ip, tags)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) volume(az string, tags map[string]string) ec2sim.Volume {
	e.t.Helper()
	v, err := e.sim.CreateVolume(az, 10, tags)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// attachENI attaches through the API and waits for "attached".
func (e *env) attachENI(eniID, instID string, index int32) string {
	e.t.Helper()
	out, err := e.ec2.AttachNetworkInterface(ctx(e.t), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(eniID), InstanceId: aws.String(instID), DeviceIndex: aws.Int32(index),
	})
	if err != nil {
		e.t.Fatalf("attach %s to %s: %v", eniID, instID, err)
	}
	eventually(e.t, "ENI "+eniID+" attached", func() bool {
		n, _ := e.sim.NetworkInterface(eniID)
		return n.Attachment != nil && n.Attachment.Status == ec2sim.AttachAttached
	})
	return aws.ToString(out.AttachmentId)
}

// attachVolume attaches through the API and waits for "attached".
func (e *env) attachVolume(volID, instID, device string) {
	e.t.Helper()
	_, err := e.ec2.AttachVolume(ctx(e.t), &ec2.AttachVolumeInput{
		VolumeId: aws.String(volID), InstanceId: aws.String(instID), Device: aws.String(device),
	})
	if err != nil {
		e.t.Fatalf("attach %s to %s: %v", volID, instID, err)
	}
	eventually(e.t, "volume "+volID+" attached", func() bool {
		v, _ := e.sim.Volume(volID)
		return v.Attachment != nil && v.Attachment.State == ec2sim.AttachAttached
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

// apiError returns the EC2 error code, message and HTTP status of err.
func apiError(t *testing.T, err error) (code, msg string, status int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an EC2 API error, got %v", err)
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return ae.ErrorCode(), ae.ErrorMessage(), status
}

// wantError checks err's EC2 code and message (message "" = any).
func wantError(t *testing.T, err error, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	gotCode, gotMsg, status := apiError(t, err)
	if gotCode != code || (msg != "" && gotMsg != msg) {
		t.Fatalf("want %s %q, got %s %q", code, msg, gotCode, gotMsg)
	}
	if status != 400 {
		t.Fatalf("%s: want HTTP 400, got %d", code, status)
	}
}

func sorted(ids ...string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

func eniIDs(list []types.NetworkInterface) []string {
	var ids []string
	for _, n := range list {
		ids = append(ids, aws.ToString(n.NetworkInterfaceId))
	}
	return sorted(ids...)
}

func volumeIDs(list []types.Volume) []string {
	var ids []string
	for _, v := range list {
		ids = append(ids, aws.ToString(v.VolumeId))
	}
	return sorted(ids...)
}

// describeENI returns one ENI as DescribeNetworkInterfaces shows it.
func (e *env) describeENI(id string) types.NetworkInterface {
	e.t.Helper()
	out, err := e.ec2.DescribeNetworkInterfaces(ctx(e.t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(out.NetworkInterfaces) != 1 {
		e.t.Fatalf("describe %s: got %d interfaces", id, len(out.NetworkInterfaces))
	}
	return out.NetworkInterfaces[0]
}

// describeVolume returns one volume as DescribeVolumes shows it.
func (e *env) describeVolume(id string) types.Volume {
	e.t.Helper()
	out, err := e.ec2.DescribeVolumes(ctx(e.t), &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(out.Volumes) != 1 {
		e.t.Fatalf("describe %s: got %d volumes", id, len(out.Volumes))
	}
	return out.Volumes[0]
}

// describeInstance returns one instance as DescribeInstances shows it.
func (e *env) describeInstance(id string) types.Instance {
	e.t.Helper()
	out, err := e.ec2.DescribeInstances(ctx(e.t), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		e.t.Fatalf("describe %s: got %d reservations", id, len(out.Reservations))
	}
	return out.Reservations[0].Instances[0]
}

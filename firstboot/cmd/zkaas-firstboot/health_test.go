package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/zkaas/zkaas/localcloud/asgsim"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/imdsmock"
)

// groupRig is EC2 and Auto Scaling simulators over HTTP, one subnet, a
// launch template, and a way to put an instance into a group with a
// pending launch hook (Pending:Wait) and give it AWS's IMDS mock.
type groupRig struct {
	t          *testing.T
	sim        *ec2sim.Sim
	asg        *asgsim.Service
	ec2URL     string
	asgURL     string
	subnet     string
	autoscaler *autoscaling.Client
}

func newGroupRig(t *testing.T) *groupRig {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim := ec2sim.New(ec2sim.Options{Seed: 3, Logger: quiet})
	ec2srv := httptest.NewServer(sim)
	svc := asgsim.New(asgsim.Options{EC2: asgsim.NewEC2Sim(sim), Seed: 3, Logger: quiet})
	asgsrv := httptest.NewServer(svc)
	t.Cleanup(func() { asgsrv.Close(); ec2srv.Close(); sim.Close() })
	subnet, err := sim.CreateSubnet("us-east-1a", "10.0.1.0/24")
	if err != nil {
		t.Fatal(err)
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")}
	// The Go API: these tests are about the group, not the template calls.
	if _, err := sim.CreateLaunchTemplate("zkaas-nodes", ec2sim.LaunchTemplateData{ImageID: "ami-0123456789abcdef0", InstanceType: "t3.medium"}); err != nil {
		t.Fatal(err)
	}
	return &groupRig{t: t, sim: sim, asg: svc, ec2URL: ec2srv.URL, asgURL: asgsrv.URL, subnet: subnet,
		autoscaler: autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(asgsrv.URL) })}
}

// launch creates a one-instance group with a launch hook and returns the
// instance the group launched, held in Pending:Wait.
func (r *groupRig) launch(name string) string {
	t := r.t
	_, err := r.autoscaler.CreateAutoScalingGroup(t.Context(), &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name),
		LaunchTemplate:       &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String("zkaas-nodes"), Version: aws.String("$Latest")},
		MinSize:              aws.Int32(1), MaxSize: aws.Int32(1), DesiredCapacity: aws.Int32(1),
		VPCZoneIdentifier: aws.String(r.subnet),
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{{
			LifecycleHookName: aws.String("zkaas-launch"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"),
			HeartbeatTimeout: aws.Int32(300), DefaultResult: aws.String("ABANDON"),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.asg.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	out, err := r.autoscaler.DescribeAutoScalingGroups(t.Context(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil || len(out.AutoScalingGroups) != 1 || len(out.AutoScalingGroups[0].Instances) != 1 {
		t.Fatalf("group %s launched nothing: %+v, %v", name, out, err)
	}
	id := aws.ToString(out.AutoScalingGroups[0].Instances[0].InstanceId)
	// EC2 starts it; the group then holds it for the hook.
	for range 50 {
		if err := r.asg.Reconcile(t.Context()); err != nil {
			t.Fatal(err)
		}
		if in, _ := r.asg.Instance(id); in.LifecycleState == "Pending:Wait" {
			return id
		}
		time.Sleep(20 * time.Millisecond)
	}
	in, _ := r.asg.Instance(id)
	t.Fatalf("%s is %s, want Pending:Wait", id, in.LifecycleState)
	return ""
}

// env is the instance's view: its IMDS and the two endpoints.
func (r *groupRig) env(id string) []string {
	t := r.t
	inst, ok := r.sim.Instance(id)
	if !ok {
		t.Fatalf("no instance %s", id)
	}
	md, err := imdsmock.Start(context.Background(), imdsmock.Instance{InstanceID: id, AZ: inst.AZ, Region: "us-east-1", MAC: inst.MAC}, imdsmock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(md.Stop)
	return []string{
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + md.URL,
		"AWS_ENDPOINT_URL_EC2=" + r.ec2URL, "AWS_ENDPOINT_URL_AUTO_SCALING=" + r.asgURL,
		"AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

func (r *groupRig) state(id string) string {
	if err := r.asg.Reconcile(r.t.Context()); err != nil {
		r.t.Fatal(err)
	}
	in, ok := r.asg.Instance(id)
	if !ok {
		return "gone"
	}
	return in.LifecycleState + "/" + in.HealthStatus
}

// TestUnhealthy: the OnFailure= command abandons a pending launch with the
// reason run left, marks an instance past its launch Unhealthy when
// ZooKeeper gave up, holds a refusal first, and outside a group says there
// is no one to tell and succeeds.
func TestUnhealthy(t *testing.T) {
	r := newGroupRig(t)
	cfg := writeConfig(t, ensembleYAML+"health: {refused_hold: 1500ms}\n")
	failure := func(dir string, refused bool) {
		b, _ := json.Marshal(Failure{Command: "run", Reason: "claim failed: no volume is tagged zkaas:node=2", Refused: refused})
		if err := os.WriteFile(filepath.Join(dir, "failure.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("pending launch: abandoned with run's reason", func(t *testing.T) {
		id := r.launch("zk-a")
		dir := t.TempDir()
		failure(dir, false)
		stdout, stderr, code := runBinary(t, r.env(id), "unhealthy", "-unit", "zkaas-firstboot.service", "-state-dir", dir, "-config", cfg)
		if code != 0 || !strings.Contains(stdout, "abandoned the launch of "+id+" in group zk-a (claim failed: no volume is tagged zkaas:node=2)") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
		}
		if s := r.state(id); !strings.HasPrefix(s, "Terminating") && s != "gone" {
			t.Errorf("after ABANDON %s is %s, want terminating", id, s)
		}
	})

	t.Run("refusal: held, then abandoned", func(t *testing.T) {
		id := r.launch("zk-b")
		dir := t.TempDir()
		failure(dir, true)
		start := time.Now()
		stdout, stderr, code := runBinary(t, r.env(id), "unhealthy", "-unit", "zkaas-firstboot.service", "-state-dir", dir, "-config", cfg)
		if code != 0 || !strings.Contains(stdout, "abandoned the launch of "+id) {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
		}
		if took := time.Since(start); took < 1500*time.Millisecond {
			t.Errorf("reported after %s, before the 1.5s refused_hold", took)
		}
	})

	t.Run("in service, zookeeper gave up: unhealthy", func(t *testing.T) {
		id := r.launch("zk-c")
		if _, err := r.autoscaler.CompleteLifecycleAction(t.Context(), &autoscaling.CompleteLifecycleActionInput{
			AutoScalingGroupName: aws.String("zk-c"), LifecycleHookName: aws.String("zkaas-launch"),
			InstanceId: aws.String(id), LifecycleActionResult: aws.String("CONTINUE"),
		}); err != nil {
			t.Fatal(err)
		}
		if s := r.state(id); s != "InService/Healthy" {
			t.Fatalf("%s is %s, want InService/Healthy", id, s)
		}
		stdout, stderr, code := runBinary(t, r.env(id), "unhealthy", "-unit", "zookeeper.service", "-state-dir", t.TempDir(), "-config", cfg)
		if code != 0 || !strings.Contains(stdout, "marked "+id+" Unhealthy in group zk-c (zookeeper.service failed: systemd gave up restarting it)") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
		}
		if s := r.state(id); !strings.Contains(s, "Unhealthy") && !strings.HasPrefix(s, "Terminating") && s != "gone" {
			t.Errorf("%s is %s, want Unhealthy (or already being replaced)", id, s)
		}
	})

	t.Run("zookeeper failed because firstboot did: firstboot's instance reports", func(t *testing.T) {
		id := r.launch("zk-d")
		dir := t.TempDir()
		failure(dir, true)
		stdout, stderr, code := runBinary(t, r.env(id), "unhealthy", "-unit", "zookeeper.service", "-state-dir", dir, "-config", cfg)
		if code != 0 || !strings.Contains(stdout, "reported by zkaas-unhealthy@zkaas-firstboot.service") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
		}
		if s := r.state(id); s != "Pending:Wait/Healthy" {
			t.Errorf("%s is %s: zookeeper's unit told the group, not holding for the refusal", id, s)
		}
	})

	t.Run("outside a group", func(t *testing.T) {
		inst, err := r.sim.RunInstance(r.subnet)
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := runBinary(t, r.env(inst.ID), "unhealthy", "-unit", "zookeeper.service", "-state-dir", t.TempDir(), "-config", cfg)
		if code != 0 || !strings.Contains(stdout, "not in an auto scaling group: nothing to tell") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
		}
	})
}

// fakeZooKeeper answers srvr with mode on 127.0.0.1 until the test ends.
func fakeZooKeeper(t *testing.T, mode func() string) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4)
			io.ReadFull(c, buf)
			fmt.Fprintf(c, "Zookeeper version: 3.8.4\nLatency min/avg/max: 0/0.0/0\nMode: %s\nNode count: 5\n", mode())
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// TestReady: the unit after zookeeper.service completes the launch with
// CONTINUE once this node's ZooKeeper serves (not while it is still
// looking), abandons it when ZooKeeper never serves within
// health.ready_timeout, and refuses to run without run's report.
func TestReady(t *testing.T) {
	r := newGroupRig(t)
	report := func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "report.json"), []byte(`{"claim":{"node":1,"ip":"127.0.0.1"}}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("serves after a while: continue", func(t *testing.T) {
		id := r.launch("zk-r1")
		start := time.Now()
		port := fakeZooKeeper(t, func() string {
			if time.Since(start) < 2*time.Second {
				return "looking"
			}
			return "follower"
		})
		cfg := writeConfig(t, ensembleYAML+fmt.Sprintf("zookeeper: {client_port: %d}\nhealth: {ready_timeout: 30s}\n", port))
		dir := t.TempDir()
		report(dir)
		stdout, stderr, code := runBinary(t, r.env(id), "ready", "-user-data", "none", "-state-dir", dir, "-config", cfg)
		if code != 0 || !strings.Contains(stdout, "zookeeper serves (node 1 follower); completed the launch of "+id+" in group zk-r1") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
		}
		if time.Since(start) < 2*time.Second {
			t.Errorf("completed before ZooKeeper served")
		}
		if s := r.state(id); s != "InService/Healthy" {
			t.Errorf("%s is %s, want InService/Healthy", id, s)
		}
	})
	t.Run("never serves: abandoned", func(t *testing.T) {
		id := r.launch("zk-r2")
		port := fakeZooKeeper(t, func() string { return "looking" })
		cfg := writeConfig(t, ensembleYAML+fmt.Sprintf("zookeeper: {client_port: %d}\nhealth: {ready_timeout: 10s}\n", port))
		dir := t.TempDir()
		report(dir)
		stdout, stderr, code := runBinary(t, r.env(id), "ready", "-user-data", "none", "-state-dir", dir, "-config", cfg)
		if code != 1 || !strings.Contains(stderr, "zookeeper did not serve within 10s: node 1 looking") || !strings.Contains(stdout, "abandoned the launch of "+id) {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
		}
	})
	t.Run("no report", func(t *testing.T) {
		_, stderr, code := runBinary(t, nil, "ready", "-user-data", "none", "-state-dir", t.TempDir(), "-config", writeConfig(t, ensembleYAML))
		if code != 1 || !strings.Contains(stderr, "no report of a successful run") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})
}

// TestUserDataConfig: validate checks a user-data document as the instance
// would read it (plain, MIME part, a pin over the baked file), naming user
// data and the line; run refuses a bad one before any AWS call and leaves
// a refusal for unhealthy.
func TestUserDataConfig(t *testing.T) {
	baked := writeConfig(t, ensembleYAML)
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "user-data")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mime := "Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n--b\nContent-Type: text/cloud-config\n\n#cloud-config\n--b\nContent-Type: text/x-zkaas-ensemble\n\n" +
		strings.Replace(ensembleYAML, "e2e", "from-mime", 1) + "\n--b--\n"
	for _, tc := range []struct {
		name, userData string
		code           int
		out            string // in stdout (code 0) or stderr
	}{
		{"plain", strings.Replace(ensembleYAML, "e2e", "from-ud", 1), 0, "user data: ok (3 nodes)"},
		{"MIME part", mime, 0, "ok (3 nodes)"},
		{"pin", "node: 2\n", 0, "(node pinned by user data): ok (3 nodes)"},
		{"pin of no node", "node: 7\n", 2, "line 1: node: 7 is not a node of ensemble e2e"},
		{"typo", ensembleYAML + "zookeper: {}\n", 2, "user data: 1 problem(s)"},
		{"cloud-init only: the baked file", "#cloud-config\npackages: [htop]\n", 0, "ok (3 nodes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runBinary(t, nil, "validate", "-config", baked, "-user-data", write(tc.userData))
			got := stdout
			if tc.code != 0 {
				got = stderr
			}
			if code != tc.code || !strings.Contains(got, tc.out) {
				t.Fatalf("exit %d, want %d with %q\nstdout %s\nstderr %s", code, tc.code, tc.out, stdout, stderr)
			}
		})
	}
	t.Run("run refuses before any AWS call", func(t *testing.T) {
		dir := t.TempDir()
		// No IMDS and no EC2 endpoint exist: any call would fail differently.
		env := []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1", "AWS_ENDPOINT_URL=http://127.0.0.1:1"}
		_, stderr, code := runBinary(t, env, "run", "-config", baked, "-user-data", write("node: 7\n"), "-state-dir", dir)
		if code != 2 || !strings.Contains(stderr, "node: 7 is not a node") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		b, err := os.ReadFile(filepath.Join(dir, "failure.json"))
		var f Failure
		if err != nil || json.Unmarshal(b, &f) != nil || !f.Refused || !strings.Contains(f.Reason, "node: 7 is not a node of ensemble e2e") {
			t.Errorf("failure left for unhealthy: %s (%v)", b, err)
		}
	})
	t.Run("a broken config's own refused_hold is kept", func(t *testing.T) {
		dir := t.TempDir()
		env := []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1", "AWS_ENDPOINT_URL=http://127.0.0.1:1"}
		broken := ensembleYAML + "health: {refused_hold: 15s}\nzookeper: {}\n"
		if _, stderr, code := runBinary(t, env, "run", "-config", baked, "-user-data", write(broken), "-state-dir", dir); code != 2 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		b, err := os.ReadFile(filepath.Join(dir, "failure.json"))
		var f Failure
		if err != nil || json.Unmarshal(b, &f) != nil || !f.Refused || f.Hold != "15s" {
			t.Errorf("failure left for unhealthy: %s (%v), want hold 15s", b, err)
		}
	})
}

package asgsim_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/smithy-go"

	"github.com/zkaas/zkaas/localcloud/asgsim"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeEC2 is an in-memory EC2: instances are running as soon as they are
// launched (or pending for one State call with startPending) and
// terminated as soon as they are terminated.
type fakeEC2 struct {
	mu           sync.Mutex
	subnets      map[string]string // subnet -> AZ
	templates    map[string]asgsim.LaunchTemplate
	instances    map[string]*fakeInstance
	seq          int
	startPending bool
	launchErr    error
}

type fakeInstance struct {
	id, subnet, az, state string
	tags                  map[string]string
	template              asgsim.LaunchTemplate
}

func newFakeEC2() *fakeEC2 {
	return &fakeEC2{
		subnets: map[string]string{"subnet-a": "us-east-1a", "subnet-b": "us-east-1b", "subnet-c": "us-east-1c"},
		templates: map[string]asgsim.LaunchTemplate{
			"lt-0123456789abcdef0": {ID: "lt-0123456789abcdef0", Name: "zk", Version: "2",
				Data: asgsim.TemplateData{ImageID: "ami-1", InstanceType: "t3.small", InstanceTags: map[string]string{"from": "template"}}},
		},
		instances: map[string]*fakeInstance{},
	}
}

func (f *fakeEC2) SubnetAZ(_ context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if az, ok := f.subnets[id]; ok {
		return az, nil
	}
	return "", fmt.Errorf("The subnet ID '%s' does not exist", id)
}

func (f *fakeEC2) LaunchTemplate(_ context.Context, ref asgsim.LaunchTemplateRef) (asgsim.LaunchTemplate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, lt := range f.templates {
		if lt.ID == ref.ID || (ref.ID == "" && lt.Name == ref.Name) {
			return lt, nil
		}
	}
	if ref.ID != "" {
		return asgsim.LaunchTemplate{}, fmt.Errorf("The specified launch template, with template ID %s, does not exist.", ref.ID)
	}
	return asgsim.LaunchTemplate{}, fmt.Errorf("The specified launch template, with template name %s, does not exist.", ref.Name)
}

func (f *fakeEC2) Launch(_ context.Context, spec asgsim.LaunchSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.launchErr != nil {
		return "", f.launchErr
	}
	f.seq++
	id := fmt.Sprintf("i-%017x", f.seq)
	st := "running"
	if f.startPending {
		st = "pending"
	}
	f.instances[id] = &fakeInstance{id: id, subnet: spec.Subnet, az: spec.AZ, state: st, tags: maps.Clone(spec.Tags), template: spec.Template}
	return id, nil
}

func (f *fakeEC2) Terminate(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in := f.instances[id]; in != nil {
		in.state = "terminated"
	}
	return nil
}

func (f *fakeEC2) State(_ context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.instances[id]
	if in == nil {
		return "", asgsim.ErrInstanceNotFound
	}
	st := in.state
	if st == "pending" {
		in.state = "running"
	}
	return st, nil
}

// kill terminates an instance behind the group's back.
func (f *fakeEC2) kill(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[id].state = "terminated"
}

func (f *fakeEC2) get(id string) fakeInstance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.instances[id]
}

type env struct {
	t     *testing.T
	svc   *asgsim.Service
	clock *clock
	ec2   *fakeEC2
	asg   *autoscaling.Client
}

func setup(t *testing.T, mod ...func(*asgsim.Options)) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, ec2: newFakeEC2()}
	opts := asgsim.Options{EC2: e.ec2, Now: e.clock.Now, Seed: 1}
	for _, m := range mod {
		m(&opts)
	}
	e.svc = asgsim.New(opts)
	srv := httptest.NewServer(e.svc)
	t.Cleanup(srv.Close)
	e.asg = autoscaling.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	}, func(o *autoscaling.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.RetryMaxAttempts = 1
	})
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// reconcile runs n controller passes.
func (e *env) reconcile(n int) {
	e.t.Helper()
	for range n {
		if err := e.svc.Reconcile(ctx(e.t)); err != nil {
			e.t.Fatal(err)
		}
	}
}

// create makes a group over the given subnets from the fake template.
func (e *env) create(name string, desired int32, subnets string, mod ...func(*autoscaling.CreateAutoScalingGroupInput)) {
	e.t.Helper()
	in := &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name),
		LaunchTemplate:       &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String("lt-0123456789abcdef0"), Version: aws.String("$Latest")},
		MinSize:              aws.Int32(0), MaxSize: aws.Int32(10), DesiredCapacity: aws.Int32(desired),
		VPCZoneIdentifier: aws.String(subnets),
	}
	for _, m := range mod {
		m(in)
	}
	if _, err := e.asg.CreateAutoScalingGroup(ctx(e.t), in); err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
}

func (e *env) group(name string) types.AutoScalingGroup {
	e.t.Helper()
	out, err := e.asg.DescribeAutoScalingGroups(ctx(e.t), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(out.AutoScalingGroups) != 1 {
		e.t.Fatalf("describe %s: %d groups", name, len(out.AutoScalingGroups))
	}
	return out.AutoScalingGroups[0]
}

// instances returns the group's instances by id, as DescribeAutoScalingGroups shows them.
func (e *env) instances(name string) []types.Instance {
	e.t.Helper()
	list := e.group(name).Instances
	slices.SortFunc(list, func(a, b types.Instance) int { return compare(aws.ToString(a.InstanceId), aws.ToString(b.InstanceId)) })
	return list
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// states returns "id=state/health" per instance.
func (e *env) states(name string) map[string]string {
	m := map[string]string{}
	for _, in := range e.instances(name) {
		m[aws.ToString(in.InstanceId)] = string(in.LifecycleState) + "/" + aws.ToString(in.HealthStatus)
	}
	return m
}

// perAZ counts the group's InService instances by AZ.
func (e *env) perAZ(name string) map[string]int {
	m := map[string]int{}
	for _, in := range e.instances(name) {
		if in.LifecycleState == types.LifecycleStateInService {
			m[aws.ToString(in.AvailabilityZone)]++
		}
	}
	return m
}

func (e *env) inService(name string) []string {
	var ids []string
	for _, in := range e.instances(name) {
		if in.LifecycleState == types.LifecycleStateInService {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	return ids
}

func (e *env) activities(name string) []types.Activity {
	e.t.Helper()
	out, err := e.asg.DescribeScalingActivities(ctx(e.t), &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String(name)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Activities
}

// wantError checks err's Auto Scaling code and message (message "" = any)
// and that it came as HTTP 400.
func wantError(t *testing.T, err error, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	if ae.ErrorCode() != code || (msg != "" && ae.ErrorMessage() != msg) {
		t.Fatalf("want %s %q, got %s %q", code, msg, ae.ErrorCode(), ae.ErrorMessage())
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 400 {
		t.Fatalf("%s: want HTTP 400, got %d", code, re.HTTPStatusCode())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

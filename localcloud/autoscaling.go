package localcloud

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/zkaas/zkaas/localcloud/asgsim"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// AutoScalingAddress is where the Auto Scaling simulator (asgsim) answers
// inside the VPC, on port 80: an address of its own next to EC2Address,
// as each AWS service has an endpoint host of its own. Instances reach it
// through AWS_ENDPOINT_URL_AUTO_SCALING (Environ), the SDK's standard
// service-specific endpoint variable
// (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
const AutoScalingAddress = "10.0.0.3"

// defaultGroupInterval is how often the group controller runs when
// Options.GroupInterval is 0.
const defaultGroupInterval = time.Second

// AutoScaling is the local region's Amazon EC2 Auto Scaling: its API is
// served at AutoScalingEndpoint, and its group controller runs every
// Options.GroupInterval for the Cloud's lifetime, launching each group's
// instances as real instances of this Cloud (machines under systemd with
// BootSystemd) and terminating them as Terminate does.
func (c *Cloud) AutoScaling() *asgsim.Service { return c.asg }

// AutoScalingEndpoint is the Auto Scaling API's URL, reachable from
// instances and through HTTPClient.
func (c *Cloud) AutoScalingEndpoint() string { return "http://" + AutoScalingAddress }

// AutoScalingClient is the real SDK client for the Auto Scaling API, from
// the harness (inside the VPC, as the operator's tools would call AWS).
func (c *Cloud) AutoScalingClient() *autoscaling.Client {
	return autoscaling.New(autoscaling.Options{
		Region:       c.Region(),
		BaseEndpoint: aws.String(c.AutoScalingEndpoint()),
		HTTPClient:   c.HTTPClient(),
		Credentials:  credentials.NewStaticCredentialsProvider("harness", "localcloud", ""),
	})
}

// EC2Client is the real SDK client for the EC2 API from the harness,
// signing as caller (the access key id EC2Calls counts by).
func (c *Cloud) EC2Client(caller string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       c.Region(),
		BaseEndpoint: aws.String(c.EC2Endpoint()),
		HTTPClient:   c.HTTPClient(),
		Credentials:  credentials.NewStaticCredentialsProvider(caller, "localcloud", ""),
	})
}

// Instance returns the running instance with the id, launched by Launch or
// by a group.
func (c *Cloud) Instance(id string) (*Instance, bool) {
	c.instances.mu.Lock()
	defer c.instances.mu.Unlock()
	inst, ok := c.instances.byID[id]
	return inst, ok
}

// GroupInstance waits until the instance a group launched has started
// (running in the simulator, network and IMDS up and, with BootSystemd,
// PID 1 running: as Launch returns) and returns it, or the error its start
// failed with. An id no group launched is an error.
func (c *Cloud) GroupInstance(ctx context.Context, id string) (*Instance, error) {
	c.groupMu.Lock()
	l := c.groupLaunches[id]
	c.groupMu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("instance %s: not launched by an Auto Scaling group of this local cloud", id)
	}
	select {
	case <-l.done:
		return l.inst, l.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for %s to start: %w", id, ctx.Err())
	}
}

// groupLaunch is one instance a group launched, starting in the
// background.
type groupLaunch struct {
	done chan struct{}
	inst *Instance
	err  error
}

// startAutoScaling creates the Auto Scaling service, serves it inside the
// VPC and runs its controller until teardown.
func (c *Cloud) startAutoScaling() error {
	c.groupLaunches = map[string]*groupLaunch{}
	c.asg = asgsim.New(asgsim.Options{
		Region: c.Region(), EC2: &groupEC2{EC2Sim: asgsim.NewEC2Sim(c.sim), c: c},
		Seed: c.opts.EC2.Seed, Logger: c.log.With("component", "asgsim"),
	})
	if err := c.vpc.serve("autoscaling", AutoScalingAddress, c.asg); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.groupCtx, c.stopGroups = ctx, cancel
	done := make(chan struct{})
	c.groupsDone = done
	go func() {
		defer close(done)
		c.asg.Run(ctx, c.opts.GroupInterval)
	}()
	return nil
}

// stopAutoScaling stops the controller and waits for it: no launch or
// termination is decided afterwards. Launches in progress see groupCtx
// cancelled.
func (c *Cloud) stopAutoScaling() {
	if c.stopGroups == nil {
		return
	}
	c.stopGroups()
	<-c.groupsDone
}

// groupEC2 is the group controller's EC2 (asgsim.EC2) over this Cloud:
// subnets and launch templates from the simulator, launches as real
// instances, terminations as Terminate.
type groupEC2 struct {
	*asgsim.EC2Sim // SubnetAZ, LaunchTemplate, State
	c              *Cloud
}

var _ asgsim.EC2 = (*groupEC2)(nil)

// ec2Message is EC2's message of a simulator error, which Auto Scaling
// quotes in its activities.
func ec2Message(err error) error {
	var ae *ec2sim.APIError
	if errors.As(err, &ae) {
		return errors.New(ae.Message)
	}
	return err
}

// Launch implements asgsim.EC2 as RunInstances does: the instance exists
// (pending, then running) when it returns, and the machine boots in the
// background — the controller does not wait for it, as Auto Scaling does
// not wait for an OS. Its IMDS serves the template version's user data and
// the instance's tags. A start that fails terminates the instance, which
// the group then sees.
func (g *groupEC2) Launch(ctx context.Context, spec asgsim.LaunchSpec) (string, error) {
	c := g.c
	sub, ok := c.vpc.subnetByID(spec.Subnet)
	if !ok {
		return "", fmt.Errorf("The subnet ID '%s' does not exist", spec.Subnet)
	}
	_, v, err := c.sim.ResolveLaunchTemplate(spec.Template.ID, "", spec.Template.Version)
	if err != nil {
		return "", ec2Message(err)
	}
	var userData []byte
	if v.Data.UserData != "" {
		if userData, err = v.Data.DecodedUserData(); err != nil {
			return "", fmt.Errorf("user data of %s version %d: %w", spec.Template.ID, v.Number, err)
		}
	}
	if err := c.begin(); err != nil {
		return "", err
	}
	si, err := c.sim.RunInstanceFromTemplate(spec.Subnet, v.Data, spec.Tags)
	if err != nil {
		c.busy.Done()
		return "", ec2Message(err)
	}
	l := &groupLaunch{done: make(chan struct{})}
	c.groupMu.Lock()
	c.groupLaunches[si.ID] = l
	c.groupMu.Unlock()
	c.log.Info("group launch", "step", "launch", "group", spec.Group, "instance", si.ID, "az", spec.AZ, "template", spec.Template.ID, "version", v.Number)
	go func() {
		defer c.busy.Done()
		defer close(l.done)
		l.inst, l.err = c.start(c.groupCtx, sub, si, LaunchOptions{UserData: userData, Tags: si.Tags})
	}()
	return si.ID, nil
}

// Terminate implements asgsim.EC2: a clean termination (Terminate: the
// machine shuts down, then EC2 terminates it and detaches its ENIs and
// volumes), in the background. One still starting is terminated once its
// start returns; one already gone (crashed) only in the simulator.
func (g *groupEC2) Terminate(_ context.Context, id string) error {
	c := g.c
	if err := c.begin(); err != nil {
		return err
	}
	c.groupMu.Lock()
	l := c.groupLaunches[id]
	c.groupMu.Unlock()
	go func() {
		defer c.busy.Done()
		if l != nil {
			<-l.done
		}
		if inst, ok := c.Instance(id); ok {
			if err := c.Terminate(context.Background(), inst); err != nil {
				c.log.Warn("group termination", "step", "terminate", "instance", id, "error", err)
			}
			return
		}
		if si, ok := c.sim.Instance(id); ok && si.State != ec2sim.StateShuttingDown && si.State != ec2sim.StateTerminated {
			if err := c.sim.TerminateInstance(id); err != nil {
				c.log.Warn("group termination", "step", "terminate", "instance", id, "error", err)
			}
		}
	}()
	return nil
}

// groupState is the part of Cloud the Auto Scaling service keeps.
type groupState struct {
	asg        *asgsim.Service
	groupCtx   context.Context // cancelled when the Cloud closes
	stopGroups context.CancelFunc
	groupsDone chan struct{}

	groupMu       sync.Mutex
	groupLaunches map[string]*groupLaunch // by instance id
}

// SubnetID is the id of the AZ's subnet where instances launch (its first):
// what an Auto Scaling group's VPCZoneIdentifier names.
func (c *Cloud) SubnetID(az string) (string, error) {
	s, err := c.vpc.subnet(az)
	if err != nil {
		return "", err
	}
	return s.id, nil
}

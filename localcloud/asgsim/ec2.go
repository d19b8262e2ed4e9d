package asgsim

import (
	"context"
	"errors"
)

// EC2 is what the group controller needs from EC2. The local cloud
// implements it to boot a real machine for each launch; NewEC2Sim adapts
// ec2sim's Go API for tests. Methods are called without the Service's lock
// held, and may be called concurrently: Reconcile (one pass at a time)
// calls all of them, and the CreateAutoScalingGroup and
// UpdateAutoScalingGroup handlers call SubnetAZ and LaunchTemplate to
// validate a group.
type EC2 interface {
	// SubnetAZ returns the Availability Zone of a subnet, or an error whose
	// message is EC2's (it is shown in the ValidationError, "The subnet ID
	// 'subnet-…' does not exist").
	SubnetAZ(ctx context.Context, subnetID string) (string, error)
	// LaunchTemplate resolves a template reference (by id or name; version
	// a number, "$Latest" or "$Default", "" meaning "$Default") to one
	// version. An error's message is EC2's ("The specified launch template,
	// with template ID lt-…, does not exist.").
	LaunchTemplate(ctx context.Context, ref LaunchTemplateRef) (LaunchTemplate, error)
	// Launch starts one instance as RunInstances with the template would,
	// in the subnet, with the tags on the instance (the group's propagated
	// tags and aws:autoscaling:groupName, merged over the template's
	// instance tags), and returns its id.
	Launch(ctx context.Context, spec LaunchSpec) (instanceID string, err error)
	// Terminate starts terminating an instance; terminating one that is
	// already gone is not an error.
	Terminate(ctx context.Context, instanceID string) error
	// State returns the instance's EC2 state name (pending, running,
	// shutting-down, terminated, stopping, stopped), or ErrInstanceNotFound.
	State(ctx context.Context, instanceID string) (string, error)
}

// ErrInstanceNotFound is what EC2.State returns for an instance EC2 no
// longer knows; the controller treats it as terminated.
var ErrInstanceNotFound = errors.New("instance not found")

// LaunchTemplateRef is a group's LaunchTemplate parameter
// (LaunchTemplateSpecification): an id or a name, and a version.
type LaunchTemplateRef struct {
	ID, Name, Version string
}

// LaunchTemplate is one resolved version of a launch template.
type LaunchTemplate struct {
	ID, Name string
	Version  string // the version number, "1", "2", ...
	Data     TemplateData
}

// TemplateData is the part of a launch template version's
// LaunchTemplateData that a launch uses.
type TemplateData struct {
	ImageID            string
	InstanceType       string
	UserData           string // base64, as EC2 stores it
	IAMInstanceProfile string // ARN or name
	SecurityGroupIDs   []string
	HTTPTokens         string // "required" | "optional" | ""
	HTTPPutHopLimit    int32
	// InstanceTags are the template's TagSpecifications for instances.
	InstanceTags map[string]string
}

// LaunchSpec is one launch the controller asks for.
type LaunchSpec struct {
	Group    string
	Subnet   string
	AZ       string
	Template LaunchTemplate
	// Tags go on the instance: the template's instance tags, then the
	// group's tags with PropagateAtLaunch, then aws:autoscaling:groupName
	// (which Amazon EC2 Auto Scaling adds to every instance it launches).
	Tags map[string]string
}

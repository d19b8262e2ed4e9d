package asgsim

import (
	"context"
	"errors"
	"strconv"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// EC2Sim adapts ec2sim's Go API to EC2: subnets and launch templates from
// the simulator, launches with RunInstanceFromTemplate (the template
// version's instance type, its instance tags and the group's), EC2 states
// from Instance. It is what tests use; the local cloud implements EC2 over
// its own machines.
type EC2Sim struct{ Sim *ec2sim.Sim }

// NewEC2Sim returns an EC2 backed by sim.
func NewEC2Sim(sim *ec2sim.Sim) *EC2Sim { return &EC2Sim{Sim: sim} }

var _ EC2 = (*EC2Sim)(nil)

// apiMessage is EC2's message of an ec2sim error, which Auto Scaling
// quotes in its own.
func apiMessage(err error) error {
	var ae *ec2sim.APIError
	if errors.As(err, &ae) {
		return errors.New(ae.Message)
	}
	return err
}

// SubnetAZ implements EC2.
func (e *EC2Sim) SubnetAZ(_ context.Context, subnetID string) (string, error) {
	az, err := e.Sim.SubnetAZ(subnetID)
	return az, apiMessage(err)
}

// LaunchTemplate implements EC2.
func (e *EC2Sim) LaunchTemplate(_ context.Context, ref LaunchTemplateRef) (LaunchTemplate, error) {
	t, v, err := e.Sim.ResolveLaunchTemplate(ref.ID, ref.Name, ref.Version)
	if err != nil {
		return LaunchTemplate{}, apiMessage(err)
	}
	return LaunchTemplate{ID: t.ID, Name: t.Name, Version: strconv.FormatInt(v.Number, 10), Data: templateData(v.Data)}, nil
}

func templateData(d ec2sim.LaunchTemplateData) TemplateData {
	out := TemplateData{ImageID: d.ImageID, InstanceType: d.InstanceType, UserData: d.UserData,
		SecurityGroupIDs: d.SecurityGroupIDs, InstanceTags: d.InstanceTags()}
	if p := d.IAMInstanceProfile; p != nil {
		out.IAMInstanceProfile = p.ARN
		if out.IAMInstanceProfile == "" {
			out.IAMInstanceProfile = p.Name
		}
	}
	if m := d.MetadataOptions; m != nil {
		out.HTTPTokens, out.HTTPPutHopLimit = m.HTTPTokens, m.HTTPPutHopLimit
	}
	if len(out.SecurityGroupIDs) == 0 {
		for _, n := range d.NetworkInterfaces {
			if n.DeviceIndex == 0 {
				out.SecurityGroupIDs = n.SecurityGroupIDs
			}
		}
	}
	return out
}

// Launch implements EC2: the template version is read again from the
// simulator so the instance gets all of its data (kept by ec2sim for
// InstanceLaunchData), not only the part TemplateData carries.
func (e *EC2Sim) Launch(_ context.Context, spec LaunchSpec) (string, error) {
	_, v, err := e.Sim.ResolveLaunchTemplate(spec.Template.ID, "", spec.Template.Version)
	if err != nil {
		return "", apiMessage(err)
	}
	inst, err := e.Sim.RunInstanceFromTemplate(spec.Subnet, v.Data, spec.Tags)
	if err != nil {
		return "", apiMessage(err)
	}
	return inst.ID, nil
}

// Terminate implements EC2.
func (e *EC2Sim) Terminate(_ context.Context, id string) error {
	if _, ok := e.Sim.Instance(id); !ok {
		return nil
	}
	return apiMessage(e.Sim.TerminateInstance(id))
}

// State implements EC2.
func (e *EC2Sim) State(_ context.Context, id string) (string, error) {
	inst, ok := e.Sim.Instance(id)
	if !ok {
		return "", ErrInstanceNotFound
	}
	return inst.State, nil
}

package ec2sim

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"
)

var instanceKind = &kind[Instance]{
	prefix:     "i-",
	malformed:  "InvalidInstanceID.Malformed",
	idParam:    "InstanceId",
	idsWithMax: "instancesSet",
	maxResults: 1000,
	idOf:       func(i Instance) string { return i.ID },
	tagsOf:     func(i Instance) map[string]string { return i.Tags },
	notFound: func(id string) *APIError {
		return clientError(CodeInvalidInstanceIDNotFound, "The instance ID '%s' does not exist", id)
	},
	filters: filterTable[Instance]{
		"instance-id":         func(i Instance) []string { return one(i.ID) },
		"instance-state-name": func(i Instance) []string { return one(i.State) },
		"instance-state-code": func(i Instance) []string { return one(strconv.Itoa(int(StateCode(i.State)))) },
		"availability-zone":   func(i Instance) []string { return one(i.AZ) },
		"subnet-id":           func(i Instance) []string { return one(i.SubnetID) },
		"vpc-id":              func(i Instance) []string { return one(i.VPCID) },
		"private-ip-address":  func(i Instance) []string { return one(i.PrivateIP) },
		"reservation-id":      func(i Instance) []string { return one(i.ReservationID) },
		"instance-type":       func(i Instance) []string { return one(i.InstanceType) },
	},
}

// Fixed launch parameters of every simulated instance.
const (
	imageID     = "ami-0123456789abcdef0"
	rootSizeGiB = 8
)

// describeInstances renders each instance with its network interfaces and
// block devices as of the same moment, so one call shows a consistent
// (possibly stale) picture of both attachments: what a claimer polls.
func (s *Sim) describeInstances(q query, now time.Time) (result, error) {
	t, gc := s.describeTime(apiInstances, now), s.gcTime(now)
	list, next, err := instanceKind.describe(s.instances, q, t, gc)
	if err != nil {
		return nil, err
	}
	enis, vols := s.enis.asOf(t, gc), s.volumes.asOf(t, gc)
	for i := range enis {
		enis[i] = enis[i].masked()
	}
	for i := range vols {
		vols[i] = vols[i].masked()
	}
	out := &describeInstancesResponse{NextToken: next}
	for _, inst := range list {
		out.Reservations.Items = append(out.Reservations.Items, xmlReservation{
			ReservationID: inst.ReservationID, OwnerID: ownerID,
			Instances: set[xmlInstance]{Items: []xmlInstance{s.xmlInstance(inst, enis, vols)}},
		})
	}
	return out, nil
}

func (s *Sim) xmlInstance(inst Instance, enis []NetworkInterface, vols []Volume) xmlInstance {
	x := xmlInstance{
		ID: inst.ID, ImageID: imageID, State: xmlState{Code: StateCode(inst.State), Name: inst.State},
		PrivateDNS: s.privateDNS(inst.PrivateIP), InstanceType: inst.InstanceType, LaunchTime: xmlTime(inst.LaunchTime),
		Placement: xmlPlacement{AZ: inst.AZ, Tenancy: "default"}, SubnetID: inst.SubnetID, VPCID: inst.VPCID,
		PrivateIP: inst.PrivateIP, SourceDestCheck: true, Architecture: "x86_64", RootDeviceType: "ebs",
		RootDeviceName: RootDevice, VirtualizationType: "hvm", TagSet: tagSet(inst.Tags), Hypervisor: "xen",
		ENASupport: true,
	}
	if inst.State == StateTerminated {
		// EC2 drops the address and DNS name of a terminated instance.
		x.PrivateIP, x.PrivateDNS = "", ""
	}
	var mine []NetworkInterface
	for _, n := range enis {
		if n.Attachment != nil && n.Attachment.InstanceID == inst.ID {
			mine = append(mine, n)
		}
	}
	slices.SortFunc(mine, func(a, b NetworkInterface) int {
		return cmp.Compare(a.Attachment.DeviceIndex, b.Attachment.DeviceIndex)
	})
	for _, n := range mine {
		x.NetworkInterfaces.Items = append(x.NetworkInterfaces.Items, s.xmlENI(n, true))
	}
	for _, v := range vols {
		if a := v.Attachment; a != nil && a.InstanceID == inst.ID {
			x.BlockDevices.Items = append(x.BlockDevices.Items, xmlBlockDevice{DeviceName: a.Device, EBS: xmlEBS{
				VolumeID: v.ID, Status: a.State, AttachTime: xmlTime(a.AttachTime), DeleteOnTermination: a.DeleteOnTermination,
			}})
		}
	}
	slices.SortFunc(x.BlockDevices.Items, func(a, b xmlBlockDevice) int { return cmp.Compare(a.DeviceName, b.DeviceName) })
	return x
}

// RunInstance launches an instance of Options.InstanceType (by default
// DefaultInstanceType) in the subnet with a primary ENI (device index 0, the subnet's next free address, a random
// 02:... MAC, deleted on termination) and an 8 GiB root volume at
// RootDevice (also deleted on termination). It is pending for
// Latency.InstanceStart, then running; with no start delay it is running at
// once.
func (s *Sim) RunInstance(subnetID string) (Instance, error) {
	return s.RunInstanceOfType(subnetID, s.opts.InstanceType)
}

// RunInstanceOfType is RunInstance with an instance type, which limits how
// many network interfaces the instance can have (MaxNetworkInterfaces).
func (s *Sim) RunInstanceOfType(subnetID, instanceType string) (Instance, error) {
	if instanceType == "" {
		instanceType = s.opts.InstanceType
	}
	if err := checkInstanceType(instanceType); err != nil {
		return Instance{}, fmt.Errorf("run instance: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := subnetKind.find(s.subnets, subnetID)
	if err != nil {
		return Instance{}, fmt.Errorf("run instance: %w", err)
	}
	ip, err := s.allocateIP(sub, "")
	if err != nil {
		return Instance{}, fmt.Errorf("run instance in %s: %w", subnetID, err)
	}
	now := time.Now()
	lag := s.retain
	inst := Instance{
		ID: s.newID("i-"), ReservationID: s.newID("r-"), InstanceType: instanceType, SubnetID: sub.ID, VPCID: sub.VPCID, AZ: sub.AZ,
		PrivateIP: ip.String(), MAC: s.newMAC(), State: StatePending, LaunchTime: now,
	}
	if s.opts.Latency.InstanceStart == 0 {
		inst.State = StateRunning
	}
	eni := NetworkInterface{
		ID: s.newID("eni-"), SubnetID: sub.ID, VPCID: sub.VPCID, AZ: sub.AZ, PrivateIP: inst.PrivateIP, MAC: inst.MAC,
		Status: StatusInUse,
		Attachment: &ENIAttachment{ID: s.newID("eni-attach-"), InstanceID: inst.ID, DeviceIndex: 0,
			Status: AttachAttached, DeleteOnTermination: true, AttachTime: now},
	}
	s.gen++
	root := Volume{
		ID: s.newID("vol-"), AZ: sub.AZ, SizeGiB: rootSizeGiB, State: StatusInUse, CreateTime: now,
		Attachment: &VolumeAttachment{InstanceID: inst.ID, Device: RootDevice, State: AttachAttached,
			DeleteOnTermination: true, AttachTime: now, gen: s.gen},
	}
	inst.PrimaryENI, inst.RootVolume = eni.ID, root.ID
	s.instances.put(inst.ID, inst, now, lag)
	s.enis.put(eni.ID, eni, now, lag)
	s.volumes.put(root.ID, root, now, lag)
	if inst.State == StatePending {
		id := inst.ID
		s.after(s.opts.Latency.InstanceStart, func() { s.startInstance(id) })
	}
	return inst.clone(), nil
}

func (s *Sim) startInstance(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.instances.get(id)
	if !ok || inst.State != StatePending {
		return
	}
	inst = inst.clone()
	inst.State = StateRunning
	s.instances.put(id, inst, time.Now(), s.retain)
}

// TerminateInstance starts terminating an instance: shutting-down now,
// terminated after Latency.InstanceTerminate. At that point its primary ENI,
// root volume and anything else marked DeleteOnTermination are deleted, and
// its other ENIs and volumes start detaching (available after the detach
// delay), as EC2 does. Terminating a terminating instance is a no-op.
func (s *Sim) TerminateInstance(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, err := instanceKind.find(s.instances, id)
	if err != nil {
		return fmt.Errorf("terminate instance: %w", err)
	}
	if inst.State == StateShuttingDown || inst.State == StateTerminated {
		return nil
	}
	inst = inst.clone()
	inst.State = StateShuttingDown
	s.instances.put(id, inst, time.Now(), s.retain)
	s.after(s.opts.Latency.InstanceTerminate, func() { s.finishTerminate(id) })
	return nil
}

func (s *Sim) finishTerminate(id string) {
	s.mu.Lock()
	inst, ok := s.instances.get(id)
	if !ok || inst.State != StateShuttingDown {
		s.mu.Unlock()
		return
	}
	now, lag := time.Now(), s.retain
	inst = inst.clone()
	inst.State = StateTerminated
	s.instances.put(id, inst, now, lag)
	delete(s.lostIndex, id)
	delete(s.heldDevice, id)
	var goneENIs []ENIEvent
	var goneVolumes []VolumeEvent
	for _, n := range s.enis.current() {
		a := n.Attachment
		switch {
		case a == nil || a.InstanceID != id:
		case a.DeleteOnTermination:
			s.enis.remove(n.ID, now, lag)
			if a.DeviceIndex != 0 {
				goneENIs = append(goneENIs, eniEvent(n))
			}
		case a.Status != AttachDetaching:
			s.startENIDetach(n, now, false)
		}
	}
	for _, v := range s.volumes.current() {
		a := v.Attachment
		switch {
		case a == nil || a.InstanceID != id:
		case a.DeleteOnTermination:
			s.volumes.remove(v.ID, now, lag)
			if v.ID != inst.RootVolume {
				goneVolumes = append(goneVolumes, volumeEvent(v))
			}
		case a.State != AttachDetaching:
			s.startVolumeDetach(v, now, false)
		}
	}
	s.mu.Unlock()
	if hook := s.opts.Hooks.ENIDetached; hook != nil {
		for _, ev := range goneENIs {
			hook(ev)
		}
	}
	if hook := s.opts.Hooks.VolumeDetached; hook != nil {
		for _, ev := range goneVolumes {
			hook(ev)
		}
	}
}

// StopInstance stops a running instance: stopping now, stopped after
// Latency.InstanceStop. Its attachments stay, as on EC2 (EBS-backed
// instances keep their volumes and network interfaces). Once stopped, the
// device indexes forced ENI detaches lost are usable again
// (Faults.ForcedDetachIndexLossRate: DetachNetworkInterface's docs say
// they may not be "without first stopping and starting the instance"),
// and held device names are released. Stopping a stopping or stopped
// instance is a no-op. It changes only the simulator's state: a local
// cloud's machine keeps running.
func (s *Sim) StopInstance(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, err := instanceKind.find(s.instances, id)
	if err != nil {
		return fmt.Errorf("stop instance: %w", err)
	}
	switch inst.State {
	case StateStopping, StateStopped:
		return nil
	case StatePending:
		// As EC2 answers StopInstances for a pending instance
		// (cloud-custodian/cloud-custodian#6014).
		return fmt.Errorf("stop instance: %w", clientError(CodeIncorrectInstanceState, "Instance '%s' cannot be stopped as it has never reached the 'running' state.", id))
	case StateRunning:
	default:
		return fmt.Errorf("stop instance: %w", clientError(CodeIncorrectInstanceState, "This instance '%s' is not in a state from which it can be stopped.", id))
	}
	inst = inst.clone()
	inst.State = StateStopping
	s.instances.put(id, inst, time.Now(), s.retain)
	s.after(s.opts.Latency.InstanceStop, func() { s.finishStop(id) })
	return nil
}

func (s *Sim) finishStop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.instances.get(id)
	if !ok || inst.State != StateStopping {
		return
	}
	inst = inst.clone()
	inst.State = StateStopped
	s.instances.put(id, inst, time.Now(), s.retain)
	delete(s.lostIndex, id)
	delete(s.heldDevice, id)
}

// StartInstance starts a stopped instance: pending, then running after
// Latency.InstanceStart (at once without a start delay). Starting a pending
// or running instance is a no-op.
func (s *Sim) StartInstance(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, err := instanceKind.find(s.instances, id)
	if err != nil {
		return fmt.Errorf("start instance: %w", err)
	}
	switch inst.State {
	case StatePending, StateRunning:
		return nil
	case StateStopped:
	default:
		return fmt.Errorf("start instance: %w", clientError(CodeIncorrectInstanceState, "The instance '%s' is not in a state from which it can be started.", id))
	}
	inst = inst.clone()
	inst.State = StatePending
	if s.opts.Latency.InstanceStart == 0 {
		inst.State = StateRunning
	}
	s.instances.put(id, inst, time.Now(), s.retain)
	if inst.State == StatePending {
		s.after(s.opts.Latency.InstanceStart, func() { s.startInstance(id) })
	}
	return nil
}

// RebootInstance reboots a running instance as far as the simulator models
// it: the device names forced volume detaches left held are released
// (Faults.ForcedDetachDeviceHoldRate). Device indexes lost to forced ENI
// detaches stay lost: EC2 documents only stopping and starting the
// instance for those (StopInstance). Nothing else changes; the instance stays running.
func (s *Sim) RebootInstance(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, err := instanceKind.find(s.instances, id)
	if err != nil {
		return fmt.Errorf("reboot instance: %w", err)
	}
	if inst.State != StateRunning {
		return fmt.Errorf("reboot instance: %w", clientError(CodeIncorrectInstanceState, "The instance '%s' is not in a state from which it can be rebooted.", id))
	}
	delete(s.heldDevice, id)
	return nil
}

// Instance returns the true current state of an instance (not lagged).
func (s *Sim) Instance(id string) (Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.instances.get(id)
	return inst.clone(), ok
}

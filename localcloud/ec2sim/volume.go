package ec2sim

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var volumeKind = &kind[Volume]{
	prefix:     "vol-",
	malformed:  "InvalidVolumeID.Malformed",
	idParam:    "VolumeId",
	maxResults: 500,
	idOf:       func(v Volume) string { return v.ID },
	mask:       Volume.masked,
	tagsOf:     func(v Volume) map[string]string { return v.Tags },
	notFound: func(id string) *APIError {
		return clientError(CodeInvalidVolumeNotFound, "The volume '%s' does not exist.", id)
	},
	filters: filterTable[Volume]{
		"volume-id":         func(v Volume) []string { return one(v.ID) },
		"availability-zone": func(v Volume) []string { return one(v.AZ) },
		"status":            func(v Volume) []string { return one(v.State) },
		"size":              func(v Volume) []string { return one(strconv.Itoa(int(v.SizeGiB))) },
		"volume-type":       func(Volume) []string { return one(volumeType) },
		"attachment.instance-id": func(v Volume) []string {
			return volumeAttachmentField(v, func(a *VolumeAttachment) string { return a.InstanceID })
		},
		"attachment.status": func(v Volume) []string {
			return volumeAttachmentField(v, func(a *VolumeAttachment) string { return a.State })
		},
		"attachment.device": func(v Volume) []string {
			return volumeAttachmentField(v, func(a *VolumeAttachment) string { return a.Device })
		},
		"attachment.delete-on-termination": func(v Volume) []string {
			return volumeAttachmentField(v, func(a *VolumeAttachment) string { return strconv.FormatBool(a.DeleteOnTermination) })
		},
	},
}

// volumeType is the only type the simulator creates, with gp3's baseline.
const (
	volumeType       = "gp3"
	volumeIOPS       = 3000
	volumeThroughput = 125
)

func volumeAttachmentField(v Volume, f func(*VolumeAttachment) string) []string {
	if v.Attachment == nil {
		return nil
	}
	return one(f(v.Attachment))
}

func (s *Sim) describeVolumes(q query, now time.Time) (result, error) {
	list, next, err := volumeKind.describe(s.volumes, q, s.describeTime(apiVolumes, now), s.gcTime(now))
	if err != nil {
		return nil, err
	}
	out := &describeVolumesResponse{NextToken: next}
	for _, v := range list {
		x := xmlVolume{
			ID: v.ID, Size: v.SizeGiB, AZ: v.AZ, Status: v.State, CreateTime: xmlTime(v.CreateTime),
			TagSet: tagSet(v.Tags), VolumeType: volumeType, IOPS: volumeIOPS, Throughput: volumeThroughput,
		}
		if v.Attachment != nil {
			x.Attachments.Items = []xmlVolumeAttachment{xmlAttachment(v)}
		}
		out.Volumes.Items = append(out.Volumes.Items, x)
	}
	return out, nil
}

func xmlAttachment(v Volume) xmlVolumeAttachment {
	a := v.Attachment
	return xmlVolumeAttachment{VolumeID: v.ID, InstanceID: a.InstanceID, Device: a.Device, Status: a.State,
		AttachTime: xmlTime(a.AttachTime), DeleteOnTermination: a.DeleteOnTermination}
}

// deviceRE is the Linux EBS device names EC2 accepts.
var deviceRE = regexp.MustCompile(`^/dev/(sd|xvd)[a-z]{1,2}([1-9]|1[0-5])?$`)

// deviceSlot is the attachment point a device name occupies: /dev/sdf and
// /dev/xvdf are the same slot, and so are /dev/sda1 and /dev/xvda.
func deviceSlot(dev string) string {
	d := strings.TrimPrefix(dev, "/dev/")
	d = strings.TrimPrefix(strings.TrimPrefix(d, "xvd"), "sd")
	return strings.TrimRight(d, "0123456789")
}

func (s *Sim) attachVolume(q query, now time.Time) (result, error) {
	volID, err := q.required("VolumeId")
	if err != nil {
		return nil, err
	}
	instID, err := q.required("InstanceId")
	if err != nil {
		return nil, err
	}
	device, err := q.required("Device")
	if err != nil {
		return nil, err
	}
	v, err := findForMutation(s, volumeKind, s.volumes, volID, now)
	if err != nil {
		return nil, err
	}
	inst, err := findForMutation(s, instanceKind, s.instances, instID, now)
	if err != nil {
		return nil, err
	}
	if !deviceRE.MatchString(device) {
		return nil, clientError(CodeInvalidParameterValue, "Value (%s) for parameter device is invalid. %s is not a valid EBS device name.", device, device)
	}
	if v.Attachment != nil {
		return nil, clientError(CodeVolumeInUse, "%s is already attached to an instance", volID)
	}
	if v.AZ != inst.AZ {
		return nil, clientError(CodeInvalidVolumeZoneMismatch, "The volume '%s' is not in the same availability zone as instance '%s'", volID, instID)
	}
	// AttachVolume "Attaches an EBS volume to a running or stopped instance"
	// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AttachVolume.html).
	if inst.State != StateRunning && inst.State != StateStopped {
		return nil, clientError(CodeIncorrectState, "Instance '%s' is not 'running'.", instID)
	}
	for _, other := range s.volumes.current() {
		if a := other.Attachment; a != nil && a.InstanceID == instID && deviceSlot(a.Device) == deviceSlot(device) {
			return nil, clientError(CodeInvalidParameterValue, "Invalid value '%s' for unixDevice. Attachment point %s is already in use", device, device)
		}
	}
	if s.fault(s.faults.InUseRaceRate) {
		return nil, clientError(CodeVolumeInUse, "%s is already attached to an instance", volID)
	}
	// A device name a forced detach left held (Faults.ForcedDetachDeviceHoldRate)
	// takes the attach and never finishes it.
	held := s.heldDevice[instID][deviceSlot(device)]
	s.gen++
	att := &VolumeAttachment{InstanceID: instID, Device: device, State: AttachAttaching, AttachTime: now,
		gen: s.gen, stuck: s.takeStuck(volID) || held, hidden: s.takeHidden(volID)}
	v = v.clone()
	v.State = StatusInUse
	v.Attachment = att
	s.volumes.put(v.ID, v, now, s.retain)
	if !att.stuck {
		gen := att.gen
		s.after(s.opts.Latency.VolumeAttach, func() { s.completeVolumeAttach(volID, gen) })
	}
	return &volumeAttachmentResponse{xmlVolumeAttachment: xmlAttachment(v)}, nil
}

// pendingVolume returns the volume if attachment gen is still on it in the
// given state. Call with s.mu held.
func (s *Sim) pendingVolume(volID string, gen uint64, state string) (Volume, bool) {
	v, ok := s.volumes.get(volID)
	if !ok || v.Attachment == nil || v.Attachment.gen != gen || v.Attachment.State != state {
		return Volume{}, false
	}
	return v, true
}

func volumeEvent(v Volume) VolumeEvent {
	return VolumeEvent{VolumeID: v.ID, InstanceID: v.Attachment.InstanceID, Device: v.Attachment.Device, Forced: v.Attachment.forced}
}

func (s *Sim) completeVolumeAttach(volID string, gen uint64) {
	s.mu.Lock()
	v, ok := s.pendingVolume(volID, gen, AttachAttaching)
	s.mu.Unlock()
	if !ok {
		return
	}
	if hook := s.opts.Hooks.VolumeAttached; hook != nil {
		if err := hook(volumeEvent(v)); err != nil {
			s.log.Warn("volume attach hook failed: attachment stays attaching",
				"volume", volID, "instance", v.Attachment.InstanceID, "device", v.Attachment.Device, "err", err)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok = s.pendingVolume(volID, gen, AttachAttaching); !ok {
		return
	}
	v = v.clone()
	v.Attachment.State = AttachAttached
	s.volumes.put(v.ID, v, time.Now(), s.retain)
	if hook := s.opts.Hooks.VolumeAttachedInAPI; hook != nil {
		ev := volumeEvent(v)
		s.mu.Unlock()
		defer s.mu.Lock()
		hook(ev)
	}
}

func (s *Sim) detachVolume(q query, now time.Time) (result, error) {
	volID, err := q.required("VolumeId")
	if err != nil {
		return nil, err
	}
	v, err := findForMutation(s, volumeKind, s.volumes, volID, now)
	if err != nil {
		return nil, err
	}
	a := v.Attachment
	if a == nil {
		return nil, clientError(CodeIncorrectState, "Volume '%s' is in the '%s' state.", volID, v.State)
	}
	if inst := q.str("InstanceId"); inst != "" && inst != a.InstanceID {
		return nil, clientError(CodeInvalidAttachmentNotFoundVol, "Volume '%s' is not attached to instance '%s'", volID, inst)
	}
	if dev := q.str("Device"); dev != "" && deviceSlot(dev) != deviceSlot(a.Device) {
		return nil, clientError(CodeInvalidAttachmentNotFoundVol, "Volume '%s' is not attached at device '%s'", volID, dev)
	}
	if inst, ok := s.instances.get(a.InstanceID); ok && inst.RootVolume == volID && inst.State != StateTerminated {
		return nil, clientError(CodeIncorrectState, "Unable to detach root volume '%s' from instance '%s'", volID, a.InstanceID)
	}
	force, _, err := q.bool("Force")
	if err != nil {
		return nil, err
	}
	if force && s.fault(s.faults.ForcedDetachDeviceHoldRate) {
		if s.heldDevice[a.InstanceID] == nil {
			s.heldDevice[a.InstanceID] = map[string]bool{}
		}
		s.heldDevice[a.InstanceID][deviceSlot(a.Device)] = true
		s.log.Info("forced detach: the block device driver keeps the device name until the instance reboots",
			"volume", volID, "instance", a.InstanceID, "device", a.Device)
	}
	if a.State != AttachDetaching {
		v = s.startVolumeDetach(v, now, force)
	} else if force && !a.forced {
		v = v.clone()
		v.Attachment.forced = true
		s.volumes.put(v.ID, v, now, s.retain)
	}
	return &volumeAttachmentResponse{xmlVolumeAttachment: xmlAttachment(v)}, nil
}

// startVolumeDetach moves an attachment (attaching, stuck or attached) to
// detaching and returns the new state. Call with s.mu held.
func (s *Sim) startVolumeDetach(v Volume, now time.Time, forced bool) Volume {
	v = v.clone()
	v.Attachment.State = AttachDetaching
	v.Attachment.stuck = false
	v.Attachment.forced = forced
	s.volumes.put(v.ID, v, now, s.retain)
	volID, gen := v.ID, v.Attachment.gen
	s.after(s.opts.Latency.VolumeDetach, func() { s.completeVolumeDetach(volID, gen) })
	return v
}

func (s *Sim) completeVolumeDetach(volID string, gen uint64) {
	s.mu.Lock()
	v, ok := s.pendingVolume(volID, gen, AttachDetaching)
	if !ok {
		s.mu.Unlock()
		return
	}
	ev := volumeEvent(v)
	v = v.clone()
	v.State = StatusAvailable
	v.Attachment = nil
	s.volumes.put(v.ID, v, time.Now(), s.retain)
	s.mu.Unlock()
	if hook := s.opts.Hooks.VolumeDetached; hook != nil {
		hook(ev)
	}
}

// CreateVolume creates an available gp3 volume in the AZ.
func (s *Sim) CreateVolume(az string, sizeGiB int32, tags map[string]string) (Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkAZ(az); err != nil {
		return Volume{}, fmt.Errorf("create volume: %w", err)
	}
	if sizeGiB < 1 || sizeGiB > 16384 {
		return Volume{}, fmt.Errorf("create volume in %s: size %d GiB is outside 1..16384", az, sizeGiB)
	}
	now := time.Now()
	v := Volume{ID: s.newID("vol-"), AZ: az, SizeGiB: sizeGiB, State: StatusAvailable, CreateTime: now, Tags: maps.Clone(tags)}
	s.volumes.put(v.ID, v, now, s.retain)
	return v.clone(), nil
}

// Volume returns the true current state of a volume (not lagged).
func (s *Sim) Volume(id string) (Volume, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.volumes.get(id)
	return v.clone(), ok
}

package ec2sim

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
)

var eniKind = &kind[NetworkInterface]{
	prefix:     "eni-",
	malformed:  "InvalidNetworkInterfaceID.Malformed",
	idParam:    "NetworkInterfaceId",
	idsWithMax: "NetworkInterfaceIds",
	maxResults: 1000,
	idOf:       func(n NetworkInterface) string { return n.ID },
	mask:       NetworkInterface.masked,
	tagsOf:     func(n NetworkInterface) map[string]string { return n.Tags },
	notFound: func(id string) *APIError {
		return clientError(CodeInvalidENIIDNotFound, "The networkInterface ID '%s' does not exist", id)
	},
	filters: filterTable[NetworkInterface]{
		"network-interface-id": func(n NetworkInterface) []string { return one(n.ID) },
		"availability-zone":    func(n NetworkInterface) []string { return one(n.AZ) },
		"status":               func(n NetworkInterface) []string { return one(n.Status) },
		"subnet-id":            func(n NetworkInterface) []string { return one(n.SubnetID) },
		"vpc-id":               func(n NetworkInterface) []string { return one(n.VPCID) },
		"private-ip-address":   func(n NetworkInterface) []string { return one(n.PrivateIP) },
		"mac-address":          func(n NetworkInterface) []string { return one(n.MAC) },
		"description":          func(n NetworkInterface) []string { return one(n.Description) },
		"attachment.instance-id": func(n NetworkInterface) []string {
			return eniAttachmentField(n, func(a *ENIAttachment) string { return a.InstanceID })
		},
		"attachment.status": func(n NetworkInterface) []string {
			return eniAttachmentField(n, func(a *ENIAttachment) string { return a.Status })
		},
		"attachment.attachment-id": func(n NetworkInterface) []string {
			return eniAttachmentField(n, func(a *ENIAttachment) string { return a.ID })
		},
		"attachment.device-index": func(n NetworkInterface) []string {
			return eniAttachmentField(n, func(a *ENIAttachment) string { return strconv.Itoa(int(a.DeviceIndex)) })
		},
	},
}

func eniAttachmentField(n NetworkInterface, f func(*ENIAttachment) string) []string {
	if n.Attachment == nil {
		return nil
	}
	return one(f(n.Attachment))
}

func (s *Sim) describeNetworkInterfaces(q query, now time.Time) (result, error) {
	list, next, err := eniKind.describe(s.enis, q, s.describeTime(apiENIs, now), s.gcTime(now))
	if err != nil {
		return nil, err
	}
	out := &describeENIsResponse{NextToken: next}
	for _, n := range list {
		out.ENIs.Items = append(out.ENIs.Items, s.xmlENI(n, false))
	}
	return out, nil
}

// xmlENI renders an ENI; inInstance renders it as an item of an instance's
// networkInterfaceSet, which EC2 sends with fewer fields.
func (s *Sim) xmlENI(n NetworkInterface, inInstance bool) xmlENI {
	dns := s.privateDNS(n.PrivateIP)
	x := xmlENI{
		ID: n.ID, SubnetID: n.SubnetID, VPCID: n.VPCID, Description: n.Description, OwnerID: ownerID,
		Status: n.Status, MAC: n.MAC, PrivateIP: n.PrivateIP, PrivateDNS: dns, SourceDestCheck: true,
		PrivateIPs:    set[xmlPrivateIP]{Items: []xmlPrivateIP{{PrivateIP: n.PrivateIP, PrivateDNS: dns, Primary: true}}},
		InterfaceType: "interface",
	}
	if !inInstance {
		x.AZ = n.AZ
		x.RequesterManaged = "false"
		x.TagSet = tagSet(n.Tags)
	}
	if a := n.Attachment; a != nil {
		x.Attachment = &xmlENIAttachment{
			AttachmentID: a.ID, DeviceIndex: a.DeviceIndex, Status: a.Status,
			AttachTime: xmlTime(a.AttachTime), DeleteOnTermination: a.DeleteOnTermination,
		}
		if !inInstance {
			x.Attachment.InstanceID = a.InstanceID
			x.Attachment.InstanceOwnerID = ownerID
		}
	}
	return x
}

func (s *Sim) privateDNS(ip string) string {
	host := "ip-" + strings.ReplaceAll(ip, ".", "-")
	if s.opts.Region == "us-east-1" {
		return host + ".ec2.internal"
	}
	return host + "." + s.opts.Region + ".compute.internal"
}

func (s *Sim) attachNetworkInterface(q query, now time.Time) (result, error) {
	eniID, err := q.required("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	instID, err := q.required("InstanceId")
	if err != nil {
		return nil, err
	}
	index, ok, err := q.int32("DeviceIndex")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errMissing("DeviceIndex")
	}
	if card, _, err := q.int32("NetworkCardIndex"); err != nil || card != 0 {
		if err != nil {
			return nil, err
		}
		return nil, clientError(CodeInvalidParameterValue, "Network card index %d is not supported by this instance type", card)
	}
	n, err := findForMutation(s, eniKind, s.enis, eniID, now)
	if err != nil {
		return nil, err
	}
	inst, err := findForMutation(s, instanceKind, s.instances, instID, now)
	if err != nil {
		return nil, err
	}
	// "You can attach a network interface to an instance when it's running
	// (hot attach), when it's stopped (warm attach), or when the instance is
	// being launched (cold attach)." (Network interface attachments,
	// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/network-interface-attachments.html)
	if inst.State != StateRunning && inst.State != StateStopped {
		// EC2's wording for an instance in the wrong state names the state,
		// as in "The pending instance 'i-...' is not in a valid state for
		// this operation." (reported for AssociateAddress in
		// bevacqua/grunt-ec2#15; IncorrectInstanceState with "The
		// pending-instance-creation instance to which 'eni-...' is attached
		// is not in a valid state for this operation" in
		// hashicorp/terraform-provider-aws#19699): reports of real
		// responses, not documentation; the exact text EC2 sends for
		// AttachNetworkInterface on a pending instance is not confirmed.
		return nil, clientError(CodeIncorrectInstanceState, "The %s instance '%s' is not in a valid state for this operation.", inst.State, instID)
	}
	if n.Attachment != nil {
		code := CodeInvalidParameterValue
		if s.fault(s.faults.ENIInUseCodeRate) {
			code = CodeInvalidENIInUse
		}
		return nil, errENIInUse(code, eniID)
	}
	if n.AZ != inst.AZ {
		return nil, clientError(CodeInvalidParameterCombo, "You may not attach a network interface to an instance if they are not in the same availability zone")
	}
	// The device indexes in use: attaching, attached and detaching
	// interfaces (each holds its device until it is gone), and the ones a
	// forced detach left unusable (Faults.ForcedDetachIndexLossRate).
	used := maps.Clone(s.lostIndex[instID])
	if used == nil {
		used = map[int32]bool{}
	}
	for _, other := range s.enis.current() {
		if a := other.Attachment; a != nil && a.InstanceID == instID {
			used[a.DeviceIndex] = true
		}
	}
	if used[index] {
		return nil, errIndexTaken(instID, index)
	}
	// The instance type caps the interfaces.
	if len(used) >= inst.maxENIs() {
		return nil, errENILimit(len(used)+1, inst.InstanceType)
	}
	if s.fault(s.faults.InUseRaceRate) {
		return nil, errENIInUse(CodeInvalidENIInUse, eniID)
	}
	att := &ENIAttachment{
		ID: s.newID("eni-attach-"), InstanceID: instID, DeviceIndex: index, Status: AttachAttaching,
		// EC2's default for an ENI attached after launch.
		DeleteOnTermination: false,
		AttachTime:          now,
		stuck:               s.takeStuck(eniID),
		hidden:              s.takeHidden(eniID),
	}
	n = n.clone()
	n.Status = StatusInUse
	n.Attachment = att
	s.enis.put(n.ID, n, now, s.retain)
	if !att.stuck {
		s.after(s.opts.Latency.ENIAttach, func() { s.completeENIAttach(eniID, att.ID) })
	}
	return &attachENIResponse{AttachmentID: att.ID}, nil
}

// errIndexTaken is EC2's answer to an attach at a device index the
// instance already has an interface at.
func errIndexTaken(instID string, index int32) *APIError {
	return clientError(CodeInvalidParameterValue, "Instance '%s' already has an interface attached at device index '%d'.", instID, index)
}

// takeHidden reports whether an attach of id is hidden from Describe
// (HideNextAttach). Call with s.mu held.
func (s *Sim) takeHidden(id string) bool {
	if s.hide[id] {
		delete(s.hide, id)
		return true
	}
	return false
}

// takeStuck decides whether an attach of id sticks in attaching. Call with
// s.mu held.
func (s *Sim) takeStuck(id string) bool {
	if s.stick[id] {
		delete(s.stick, id)
		return true
	}
	return s.fault(s.faults.StuckAttachRate)
}

// pendingENI returns the ENI if attachment attID is still on it in the
// given status. Call with s.mu held.
func (s *Sim) pendingENI(eniID, attID, status string) (NetworkInterface, bool) {
	n, ok := s.enis.get(eniID)
	if !ok || n.Attachment == nil || n.Attachment.ID != attID || n.Attachment.Status != status {
		return NetworkInterface{}, false
	}
	return n, true
}

func eniEvent(n NetworkInterface) ENIEvent {
	return ENIEvent{NetworkInterfaceID: n.ID, MAC: n.MAC, PrivateIP: n.PrivateIP,
		InstanceID: n.Attachment.InstanceID, DeviceIndex: n.Attachment.DeviceIndex, Forced: n.Attachment.forced}
}

func (s *Sim) completeENIAttach(eniID, attID string) {
	s.mu.Lock()
	n, ok := s.pendingENI(eniID, attID, AttachAttaching)
	s.mu.Unlock()
	if !ok {
		return
	}
	if hook := s.opts.Hooks.ENIAttached; hook != nil {
		if err := hook(eniEvent(n)); err != nil {
			s.log.Warn("ENI attach hook failed: attachment stays attaching",
				"eni", eniID, "attachment", attID, "instance", n.Attachment.InstanceID, "err", err)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The attachment may have been detached while the hook ran.
	if n, ok = s.pendingENI(eniID, attID, AttachAttaching); !ok {
		return
	}
	n = n.clone()
	n.Attachment.Status = AttachAttached
	s.enis.put(n.ID, n, time.Now(), s.retain)
	if hook := s.opts.Hooks.ENIAttachedInAPI; hook != nil {
		ev := eniEvent(n)
		s.mu.Unlock()
		defer s.mu.Lock()
		hook(ev)
	}
}

func (s *Sim) detachNetworkInterface(q query, now time.Time) (result, error) {
	attID, err := q.required("AttachmentId")
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(attID, "eni-attach-") {
		return nil, clientError("InvalidNetworkInterfaceAttachmentId.Malformed", "Invalid id: \"%s\" (expecting \"eni-attach-...\")", attID)
	}
	var n NetworkInterface
	found := false
	for _, cand := range s.enis.current() {
		if cand.Attachment != nil && cand.Attachment.ID == attID {
			n, found = cand, true
			break
		}
	}
	if !found {
		return nil, clientError(CodeInvalidAttachmentNotFound, "The attachment ID '%s' does not exist", attID)
	}
	if n.Attachment.DeviceIndex == 0 {
		return nil, clientError(CodeOperationNotPermitted, "The network interface at device index 0 and networkCard index 0 cannot be detached.")
	}
	force, _, err := q.bool("Force")
	if err != nil {
		return nil, err
	}
	if force && s.fault(s.faults.ForcedDetachIndexLossRate) {
		a := n.Attachment
		if s.lostIndex[a.InstanceID] == nil {
			s.lostIndex[a.InstanceID] = map[int32]bool{}
		}
		s.lostIndex[a.InstanceID][a.DeviceIndex] = true
		s.log.Info("forced detach: device index stays unusable until the instance is stopped and started",
			"eni", n.ID, "instance", a.InstanceID, "device_index", a.DeviceIndex)
	}
	if n.Attachment.Status != AttachDetaching {
		s.startENIDetach(n, now, force)
	} else if force && !n.Attachment.forced {
		n = n.clone()
		n.Attachment.forced = true
		s.enis.put(n.ID, n, now, s.retain)
	}
	return &returnResponse{Return: true}, nil
}

// startENIDetach moves an attachment (attaching, stuck or attached) to
// detaching. Call with s.mu held.
func (s *Sim) startENIDetach(n NetworkInterface, now time.Time, forced bool) {
	n = n.clone()
	n.Attachment.Status = AttachDetaching
	n.Attachment.stuck = false
	n.Attachment.forced = forced
	s.enis.put(n.ID, n, now, s.retain)
	eniID, attID := n.ID, n.Attachment.ID
	s.after(s.opts.Latency.ENIDetach, func() { s.completeENIDetach(eniID, attID) })
}

func (s *Sim) completeENIDetach(eniID, attID string) {
	s.mu.Lock()
	n, ok := s.pendingENI(eniID, attID, AttachDetaching)
	if !ok {
		s.mu.Unlock()
		return
	}
	ev := eniEvent(n)
	n = n.clone()
	n.Status = StatusAvailable
	n.Attachment = nil
	s.enis.put(n.ID, n, time.Now(), s.retain)
	s.mu.Unlock()
	if hook := s.opts.Hooks.ENIDetached; hook != nil {
		hook(ev)
	}
}

// modifyNetworkInterfaceAttribute supports the attribute zkaas changes:
// Attachment.DeleteOnTermination.
func (s *Sim) modifyNetworkInterfaceAttribute(q query, now time.Time) (result, error) {
	eniID, err := q.required("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	n, err := findForMutation(s, eniKind, s.enis, eniID, now)
	if err != nil {
		return nil, err
	}
	attID := q.str("Attachment.AttachmentId")
	dot, hasDOT, err := q.bool("Attachment.DeleteOnTermination")
	if err != nil {
		return nil, err
	}
	if attID == "" && !hasDOT {
		return nil, clientError(CodeUnsupportedOperation, "the simulator models only the Attachment attribute of ModifyNetworkInterfaceAttribute")
	}
	if attID == "" {
		return nil, errMissing("Attachment.AttachmentId")
	}
	if n.Attachment == nil || n.Attachment.ID != attID {
		return nil, clientError(CodeInvalidAttachmentNotFound, "The attachment ID '%s' does not exist", attID)
	}
	if hasDOT {
		n = n.clone()
		n.Attachment.DeleteOnTermination = dot
		s.enis.put(n.ID, n, now, s.retain)
	}
	return &returnResponse{Return: true}, nil
}

// CreateNetworkInterface creates an available ENI in the subnet. An empty
// privateIP takes the subnet's next free address; otherwise it must be a
// usable, unused address of the subnet.
func (s *Sim) CreateNetworkInterface(subnetID, privateIP string, tags map[string]string) (NetworkInterface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := subnetKind.find(s.subnets, subnetID)
	if err != nil {
		return NetworkInterface{}, fmt.Errorf("create network interface: %w", err)
	}
	ip, err := s.allocateIP(sub, privateIP)
	if err != nil {
		return NetworkInterface{}, fmt.Errorf("create network interface in %s: %w", subnetID, err)
	}
	n := NetworkInterface{
		ID: s.newID("eni-"), SubnetID: sub.ID, VPCID: sub.VPCID, AZ: sub.AZ,
		PrivateIP: ip.String(), MAC: s.newMAC(), Status: StatusAvailable, Tags: maps.Clone(tags),
	}
	s.enis.put(n.ID, n, time.Now(), s.retain)
	return n.clone(), nil
}

// NetworkInterface returns the true current state of an ENI (not lagged).
func (s *Sim) NetworkInterface(id string) (NetworkInterface, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.enis.get(id)
	return n.clone(), ok
}

package ec2sim

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The create and delete calls of the operator command: CreateNetworkInterface,
// DeleteNetworkInterface, CreateVolume, DeleteVolume, and the parts of
// Describe/Attach/Modify that show or check what they add (an ENI's
// security groups, a volume's type, IOPS, throughput and encryption, a
// volume still creating).

// VolumeOptions are CreateVolume's attributes beyond AZ and size.
type VolumeOptions struct {
	Type       string `json:"volumeType"` // gp3, gp2, io1, io2, st1, sc1, standard
	IOPS       int32  `json:"iops,omitempty"`
	Throughput int32  `json:"throughput,omitempty"` // MiB/s, gp3 only
	Encrypted  bool   `json:"encrypted,omitempty"`
	KMSKeyID   string `json:"kmsKeyId,omitempty"`
	SnapshotID string `json:"snapshotId,omitempty"`
}

// defaultVolumeOptions are what volumes made by the Go API (CreateVolume,
// seeds, root volumes) report: gp3 at its baseline.
var defaultVolumeOptions = VolumeOptions{Type: volumeType, IOPS: volumeIOPS, Throughput: volumeThroughput}

// volumeLimits are CreateVolume's bounds per type
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html):
// Size "gp2: 1 - 16,384 GiB; gp3: 1 - 65,536 GiB; io1: 4 - 16,384 GiB;
// io2: 4 - 65,536 GiB; st1 and sc1: 125 - 16,384 GiB; standard: 1 - 1024
// GiB"; Iops "gp3: 3,000 - 80,000 IOPS; io1: 100 - 64,000 IOPS; io2: 100 -
// 256,000 IOPS ... This parameter is required for io1 and io2 volumes. The
// default for gp3 volumes is 3,000 IOPS. This parameter is not supported
// for gp2, st1, sc1, or standard volumes."; Throughput "Supported for gp3
// volumes only ... Valid Range: 125 - 2000 MiB/s". The IOPS-per-GiB and
// MiB/s-per-IOPS ratios are the EBS volume types page's
// (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-volume-types.html):
// gp3 500 IOPS per GiB and 0.25 MiB/s per IOPS, io1 50, io2 1,000.
type volumeLimit struct {
	minSize, maxSize int32
	minIOPS, maxIOPS int32 // 0: Iops not accepted
	iopsPerGiB       int32
	iopsRequired     bool
}

var volumeLimits = map[string]volumeLimit{
	"gp3":      {minSize: 1, maxSize: 65536, minIOPS: 3000, maxIOPS: 80000, iopsPerGiB: 500},
	"gp2":      {minSize: 1, maxSize: 16384},
	"io1":      {minSize: 4, maxSize: 16384, minIOPS: 100, maxIOPS: 64000, iopsPerGiB: 50, iopsRequired: true},
	"io2":      {minSize: 4, maxSize: 65536, minIOPS: 100, maxIOPS: 256000, iopsPerGiB: 1000, iopsRequired: true},
	"st1":      {minSize: 125, maxSize: 16384},
	"sc1":      {minSize: 125, maxSize: 16384},
	"standard": {minSize: 1, maxSize: 1024},
}

// defaultKMSKey is the ARN EC2 reports for a volume encrypted with the
// account's default key (alias/aws/ebs).
func (s *Sim) defaultKMSKey() string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/00000000-0000-4000-8000-000000000ebs", s.opts.Region, ownerID)
}

// kmsKeyARN is the key ARN EC2 reports for the KmsKeyId a caller gave:
// KmsKeyId "You can specify the KMS key using any of the following: Key
// ID ..., Key alias ..., Key ARN ..., Alias ARN" and the volume's
// kmsKeyId is "The Amazon Resource Name (ARN) of the KMS key" (Volume).
// The simulator has no KMS: an alias stands for a key whose id is derived
// from the alias name, so the same alias always gives the same ARN.
func (s *Sim) kmsKeyARN(key string) string {
	prefix := fmt.Sprintf("arn:aws:kms:%s:%s:", s.opts.Region, ownerID)
	name := key
	if rest, ok := strings.CutPrefix(key, "arn:aws:kms:"); ok {
		_, res, _ := strings.Cut(rest, ":") // region
		_, res, _ = strings.Cut(res, ":")   // account
		if strings.HasPrefix(res, "key/") {
			return key
		}
		name = res
	}
	if alias, ok := strings.CutPrefix(name, "alias/"); ok {
		h := fnv.New128a()
		h.Write([]byte(alias))
		b := h.Sum(nil)
		return prefix + fmt.Sprintf("key/%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	}
	return prefix + "key/" + name
}

// checkVolumeOptions applies CreateVolume's validation; size 0 means "from
// the snapshot". It returns the options with defaults filled in and the
// size. Call with s.mu held.
func (s *Sim) checkVolumeOptions(size int32, o VolumeOptions, hasIOPS, hasThroughput bool) (VolumeOptions, int32, error) {
	if o.Type == "" {
		// VolumeType: "Default: gp2".
		o.Type = "gp2"
	}
	lim, ok := volumeLimits[o.Type]
	if !ok {
		return o, 0, clientError(CodeInvalidParameterValue, "Value (%s) for parameter volumeType is invalid. Valid values: standard, io1, io2, gp2, sc1, st1, gp3", o.Type)
	}
	if o.SnapshotID != "" {
		snap, ok := s.ext().snapshots[o.SnapshotID]
		if !ok {
			return o, 0, clientError(CodeInvalidSnapshotNotFound, "The snapshot '%s' does not exist.", o.SnapshotID)
		}
		if size == 0 {
			size = snap.SizeGiB
		} else if size < snap.SizeGiB {
			return o, 0, clientError(CodeInvalidParameterValue, "Volume of %dGiB is smaller than snapshot '%s', expect size >= %dGiB", size, o.SnapshotID, snap.SizeGiB)
		}
	}
	if size == 0 {
		// "You must specify either a snapshot ID or a volume size."
		return o, 0, clientError(CodeMissingParameter, "The request must contain the parameter size or snapshotId")
	}
	if size < lim.minSize {
		return o, 0, clientError(CodeInvalidParameterValue, "Volume of %dGiB is too small; minimum is %dGiB.", size, lim.minSize)
	}
	if size > lim.maxSize {
		return o, 0, clientError(CodeInvalidParameterValue, "Volume of %dGiB is too large; maximum is %dGiB.", size, lim.maxSize)
	}
	switch {
	case hasIOPS && lim.maxIOPS == 0:
		return o, 0, clientError(CodeInvalidParameterCombo, "The parameter iops is not supported for %s volumes.", o.Type)
	case !hasIOPS && lim.iopsRequired:
		return o, 0, clientError(CodeInvalidParameterCombo, "The parameter iops must be specified for %s volumes.", o.Type)
	case !hasIOPS && o.Type == "gp3":
		o.IOPS = 3000
	case !hasIOPS && o.Type == "gp2":
		// gp2's baseline: 3 IOPS per GiB, at least 100, at most 16,000.
		o.IOPS = min(max(3*size, 100), 16000)
	}
	if hasIOPS {
		if o.IOPS < lim.minIOPS {
			return o, 0, clientError(CodeInvalidParameterValue, "Volume iops of %d is too low; minimum is %d.", o.IOPS, lim.minIOPS)
		}
		if o.IOPS > lim.maxIOPS {
			return o, 0, clientError(CodeInvalidParameterValue, "Volume iops of %d is too high; maximum is %d.", o.IOPS, lim.maxIOPS)
		}
		if ratio := float64(o.IOPS) / float64(size); ratio > float64(lim.iopsPerGiB) {
			return o, 0, clientError(CodeInvalidParameterValue, "Iops to volume size ratio of %f is too high; maximum is %f.", ratio, float64(lim.iopsPerGiB))
		}
	}
	if hasThroughput {
		if o.Type != "gp3" {
			return o, 0, clientError(CodeInvalidParameterCombo, "The parameter throughput is not supported for %s volumes.", o.Type)
		}
		if o.Throughput < 125 || o.Throughput > 2000 {
			return o, 0, clientError(CodeInvalidParameterValue, "Throughput of %d MiBps is out of range; valid values are 125 to 2000 MiBps.", o.Throughput)
		}
		if ratio := float64(o.Throughput) / float64(o.IOPS); ratio > 0.25 {
			return o, 0, clientError(CodeInvalidParameterValue, "Throughput (MiBps) to iops ratio of %f is too high; maximum is 0.250000 MiBps per iops.", ratio)
		}
	} else if o.Type == "gp3" {
		o.Throughput = 125
	}
	if o.KMSKeyID != "" && !o.Encrypted {
		// KmsKeyId: "If KmsKeyId is specified, the encrypted state must be true."
		return o, 0, clientError(CodeInvalidParameterDependency, "The parameter KmsKeyId requires the parameter Encrypted to be set.")
	}
	if o.Encrypted && o.KMSKeyID == "" {
		o.KMSKeyID = s.defaultKMSKey()
	} else if o.KMSKeyID != "" {
		o.KMSKeyID = s.kmsKeyARN(o.KMSKeyID)
	}
	return o, size, nil
}

// createVolume is CreateVolume
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html).
// The volume is "creating" in the answer and becomes "available" after
// SetVolumeCreateDelay (default: at once, but after the answer).
func (s *Sim) createVolume(q query, now time.Time) (result, error) {
	az := q.str("AvailabilityZone")
	if az == "" {
		if q.has("AvailabilityZoneId") {
			return nil, clientError(CodeUnsupportedOperation, "the simulator takes AvailabilityZone, not AvailabilityZoneId")
		}
		return nil, errMissing("AvailabilityZone")
	}
	if err := s.checkAZ(az); err != nil {
		return nil, err
	}
	size, _, err := q.int32("Size")
	if err != nil {
		return nil, err
	}
	iops, hasIOPS, err := q.int32("Iops")
	if err != nil {
		return nil, err
	}
	tput, hasTput, err := q.int32("Throughput")
	if err != nil {
		return nil, err
	}
	enc, _, err := q.bool("Encrypted")
	if err != nil {
		return nil, err
	}
	if multi, _, _ := q.bool("MultiAttachEnabled"); multi {
		return nil, clientError(CodeUnsupportedOperation, "the simulator does not model Multi-Attach")
	}
	o := VolumeOptions{Type: q.str("VolumeType"), IOPS: iops, Throughput: tput, Encrypted: enc,
		KMSKeyID: q.str("KmsKeyId"), SnapshotID: q.str("SnapshotId")}
	o, size, err = s.checkVolumeOptions(size, o, hasIOPS, hasTput)
	if err != nil {
		return nil, err
	}
	tags, err := tagSpecs(q, "volume")
	if err != nil {
		return nil, err
	}
	v := s.addVolume(az, size, o, tags, now)
	return &createVolumeResponse{xmlVolumeFull: s.xmlVolumeFull(v)}, nil
}

// addVolume stores a new creating volume and schedules it available. Call
// with s.mu held.
func (s *Sim) addVolume(az string, size int32, o VolumeOptions, tags map[string]string, now time.Time) Volume {
	v := Volume{ID: s.newID("vol-"), AZ: az, SizeGiB: size, State: "creating", CreateTime: now, Tags: maps.Clone(tags)}
	s.volumes.put(v.ID, v, now, s.retain)
	s.ext().volumeAttrs[v.ID] = o
	id := v.ID
	s.after(s.ext().createDelay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		cur, ok := s.volumes.get(id)
		if !ok || cur.State != "creating" {
			return
		}
		cur = cur.clone()
		cur.State = StatusAvailable
		s.volumes.put(id, cur, time.Now(), s.retain)
	})
	return v
}

// deleteVolume is DeleteVolume
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteVolume.html):
// "The volume must be in the available state (not attached to an
// instance)."
func (s *Sim) deleteVolume(q query, now time.Time) (result, error) {
	id, err := q.required("VolumeId")
	if err != nil {
		return nil, err
	}
	v, err := findForMutation(s, volumeKind, s.volumes, id, now)
	if err != nil {
		return nil, err
	}
	if v.Attachment != nil {
		return nil, clientError(CodeVolumeInUse, "Volume %s is currently attached to %s", id, v.Attachment.InstanceID)
	}
	s.volumes.remove(id, now, s.retain)
	delete(s.ext().volumeAttrs, id)
	delete(s.ext().modifications, id)
	return &returnResponse{Return: true}, nil
}

// attachVolumeChecked is AttachVolume refusing a volume that is still
// creating: "The volume and instance must be within the same Availability
// Zone and the volume must be in the available state" (attach an EBS
// volume, https://docs.aws.amazon.com/ebs/latest/userguide/ebs-attaching-volume.html).
func (s *Sim) attachVolumeChecked(q query, now time.Time) (result, error) {
	if v, ok := s.volumes.get(q.str("VolumeId")); ok && v.State == "creating" {
		return nil, clientError(CodeIncorrectState, "%s is not 'available'.", v.ID)
	}
	return s.attachVolume(q, now)
}

// volumeOptions returns a volume's attributes. Call with s.mu held.
func (s *Sim) volumeOptions(id string) VolumeOptions {
	if o, ok := s.ext().volumeAttrs[id]; ok {
		return o
	}
	return defaultVolumeOptions
}

// describeVolumesFull is DescribeVolumes with each volume's own type, IOPS,
// throughput, encryption and snapshot, and the filters on them.
func (s *Sim) describeVolumesFull(q query, now time.Time) (result, error) {
	k := *volumeKind
	k.filters = maps.Clone(volumeKind.filters)
	k.filters["volume-type"] = func(v Volume) []string { return one(s.volumeOptions(v.ID).Type) }
	k.filters["encrypted"] = func(v Volume) []string { return one(strconv.FormatBool(s.volumeOptions(v.ID).Encrypted)) }
	k.filters["snapshot-id"] = func(v Volume) []string { return one(s.volumeOptions(v.ID).SnapshotID) }
	k.filters["create-time"] = func(v Volume) []string { return one(xmlTime(v.CreateTime)) }
	list, next, err := k.describe(s.volumes, q, s.describeTime(apiVolumes, now), s.gcTime(now))
	if err != nil {
		return nil, err
	}
	out := &describeVolumesFullResponse{NextToken: next}
	for _, v := range list {
		out.Volumes.Items = append(out.Volumes.Items, s.xmlVolumeFull(v))
	}
	return out, nil
}

type xmlVolumeFull struct {
	ID          string                   `xml:"volumeId"`
	Size        int32                    `xml:"size"`
	SnapshotID  string                   `xml:"snapshotId"`
	AZ          string                   `xml:"availabilityZone"`
	Status      string                   `xml:"status"`
	CreateTime  string                   `xml:"createTime"`
	Attachments set[xmlVolumeAttachment] `xml:"attachmentSet"`
	TagSet      *set[xmlTag]             `xml:"tagSet,omitempty"`
	VolumeType  string                   `xml:"volumeType"`
	IOPS        int32                    `xml:"iops,omitempty"`
	Throughput  int32                    `xml:"throughput,omitempty"`
	Encrypted   bool                     `xml:"encrypted"`
	KMSKeyID    string                   `xml:"kmsKeyId,omitempty"`
	MultiAttach bool                     `xml:"multiAttachEnabled"`
}

func (s *Sim) xmlVolumeFull(v Volume) xmlVolumeFull {
	o := s.volumeOptions(v.ID)
	x := xmlVolumeFull{ID: v.ID, Size: v.SizeGiB, SnapshotID: o.SnapshotID, AZ: v.AZ, Status: v.State,
		CreateTime: xmlTime(v.CreateTime), TagSet: tagSet(v.Tags), VolumeType: o.Type, IOPS: o.IOPS,
		Throughput: o.Throughput, Encrypted: o.Encrypted, KMSKeyID: o.KMSKeyID}
	if v.Attachment != nil {
		x.Attachments.Items = []xmlVolumeAttachment{xmlAttachment(v)}
	}
	return x
}

type createVolumeResponse struct {
	reqID
	xmlVolumeFull
}

type describeVolumesFullResponse struct {
	reqID
	Volumes   set[xmlVolumeFull] `xml:"volumeSet"`
	NextToken string             `xml:"nextToken,omitempty"`
}

// readGroups checks SecurityGroupId.N for an ENI in vpc: each must exist
// (InvalidGroup.NotFound), at most five (the "Security groups per network
// interface" quota). Call with s.mu held.
func (s *Sim) readGroups(ids []string, vpc string) ([]string, error) {
	var out []string
	for _, id := range ids {
		g, err := s.findGroup(id)
		if err != nil {
			return nil, err
		}
		if g.VPCID != vpc {
			return nil, clientError(CodeInvalidParameterValue, "Security group %s and subnet belong to different networks.", id)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) > maxGroupsPerENI {
		return nil, clientError(CodeSecurityGroupsPerENIExceeded, "The maximum number of security groups per interface has been reached.")
	}
	return out, nil
}

// createNetworkInterface is CreateNetworkInterface
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateNetworkInterface.html):
// SubnetId, PrivateIpAddress ("The primary private IPv4 address of the
// network interface. If you don't specify an IPv4 address, Amazon EC2
// selects one for you from the subnet's IPv4 CIDR range"; EC2 reserves the
// first four addresses and the last one of every subnet, Subnet CIDR
// blocks, https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html),
// SecurityGroupId.N ("If you don't specify a security group, the default
// security group for the VPC is used"), Description and TagSpecifications.
func (s *Sim) createNetworkInterface(q query, now time.Time) (result, error) {
	subID, err := q.required("SubnetId")
	if err != nil {
		return nil, err
	}
	sub, err := findForMutation(s, subnetKind, s.subnets, subID, now)
	if err != nil {
		return nil, err
	}
	if q.has("SecondaryPrivateIpAddressCount") || len(q.indexes("PrivateIpAddresses")) > 0 || q.has("InterfaceType") {
		return nil, clientError(CodeUnsupportedOperation, "the simulator models one private IPv4 address per interface of type interface")
	}
	desc := q.str("Description")
	if len(desc) > 255 {
		return nil, clientError(CodeInvalidParameterValue, "Description exceeds the maximum length of 255 characters")
	}
	groups, err := s.readGroups(q.ids("SecurityGroupId"), sub.VPCID)
	if err != nil {
		return nil, err
	}
	tags, err := tagSpecs(q, "network-interface")
	if err != nil {
		return nil, err
	}
	ip, err := s.allocateIP(sub, q.str("PrivateIpAddress"))
	if err != nil {
		return nil, err
	}
	n := NetworkInterface{
		ID: s.newID("eni-"), SubnetID: sub.ID, VPCID: sub.VPCID, AZ: sub.AZ, PrivateIP: ip.String(),
		MAC: s.newMAC(), Description: desc, Status: StatusAvailable, Tags: tags,
	}
	s.enis.put(n.ID, n, now, s.retain)
	if len(groups) > 0 {
		s.ext().eniGroups[n.ID] = groups
	}
	return &createENIResponse{ENI: s.xmlENIFull(n)}, nil
}

// deleteNetworkInterface is DeleteNetworkInterface
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteNetworkInterface.html):
// "You must detach the network interface before you can delete it."
func (s *Sim) deleteNetworkInterface(q query, now time.Time) (result, error) {
	id, err := q.required("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	n, err := findForMutation(s, eniKind, s.enis, id, now)
	if err != nil {
		return nil, err
	}
	if n.Attachment != nil {
		// Real answers are InvalidParameterValue "Network interface 'eni-…'
		// is currently in use." (quoted in gruntwork-io/cloud-nuke#431 and
		// #1132); EC2's error list also has InvalidNetworkInterface.InUse,
		// which Faults.ENIInUseCodeRate draws, as for attaches.
		code := CodeInvalidParameterValue
		if s.fault(s.faults.ENIInUseCodeRate) {
			code = CodeInvalidENIInUse
		}
		return nil, clientError(code, "Network interface '%s' is currently in use.", id)
	}
	s.enis.remove(id, now, s.retain)
	delete(s.ext().eniGroups, id)
	return &returnResponse{Return: true}, nil
}

// modifyNetworkInterfaceGroups is ModifyNetworkInterfaceAttribute with
// SecurityGroupId.N ("Changes the security groups for the network
// interface. The new set of groups you specify replaces the current set.",
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyNetworkInterfaceAttribute.html)
// or Description.Value; the Attachment attribute goes to eni.go.
func (s *Sim) modifyNetworkInterfaceGroups(q query, now time.Time) (result, error) {
	ids := q.ids("SecurityGroupId")
	_, hasDesc := q.form["Description.Value"]
	if len(ids) == 0 && !hasDesc {
		return s.modifyNetworkInterfaceAttribute(q, now)
	}
	id, err := q.required("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	n, err := findForMutation(s, eniKind, s.enis, id, now)
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		groups, err := s.readGroups(ids, n.VPCID)
		if err != nil {
			return nil, err
		}
		s.ext().eniGroups[id] = groups
	}
	if hasDesc {
		n = n.clone()
		n.Description = q.str("Description.Value")
		s.enis.put(n.ID, n, now, s.retain)
	}
	return &returnResponse{Return: true}, nil
}

type xmlGroupIdentifier struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

// xmlENIFull is an ENI with its security groups.
type xmlENIFull struct {
	xmlENI
	Groups set[xmlGroupIdentifier] `xml:"groupSet"`
}

func (s *Sim) xmlENIFull(n NetworkInterface) xmlENIFull {
	x := xmlENIFull{xmlENI: s.xmlENI(n, false)}
	for _, id := range s.groupsOf(n.ID) {
		g := s.ext().groups[id]
		x.Groups.Items = append(x.Groups.Items, xmlGroupIdentifier{GroupID: id, GroupName: g.Name})
	}
	return x
}

// describeNetworkInterfacesFull is DescribeNetworkInterfaces with each
// ENI's security groups and the group-id and group-name filters.
func (s *Sim) describeNetworkInterfacesFull(q query, now time.Time) (result, error) {
	k := *eniKind
	k.filters = maps.Clone(eniKind.filters)
	k.filters["group-id"] = func(n NetworkInterface) []string { return slices.Clone(s.groupsOf(n.ID)) }
	k.filters["group-name"] = func(n NetworkInterface) []string {
		var out []string
		for _, id := range s.groupsOf(n.ID) {
			out = append(out, s.ext().groups[id].Name)
		}
		return out
	}
	list, next, err := k.describe(s.enis, q, s.describeTime(apiENIs, now), s.gcTime(now))
	if err != nil {
		return nil, err
	}
	out := &describeENIsFullResponse{NextToken: next}
	for _, n := range list {
		out.ENIs.Items = append(out.ENIs.Items, s.xmlENIFull(n))
	}
	return out, nil
}

type createENIResponse struct {
	reqID
	ENI xmlENIFull `xml:"networkInterface"`
}

type describeENIsFullResponse struct {
	reqID
	ENIs      set[xmlENIFull] `xml:"networkInterfaceSet"`
	NextToken string          `xml:"nextToken,omitempty"`
}

// The Go API.

// CreateVolumeWith creates a volume as the CreateVolume call does (same
// validation; size 0 takes the snapshot's), creating until
// SetVolumeCreateDelay has passed.
func (s *Sim) CreateVolumeWith(az string, sizeGiB int32, o VolumeOptions, tags map[string]string) (Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkAZ(az); err != nil {
		return Volume{}, fmt.Errorf("create volume: %w", err)
	}
	o, size, err := s.checkVolumeOptions(sizeGiB, o, o.IOPS != 0, o.Throughput != 0)
	if err != nil {
		return Volume{}, fmt.Errorf("create volume in %s: %w", az, err)
	}
	return s.addVolume(az, size, o, tags, time.Now()).clone(), nil
}

// VolumeAttributes returns what a volume was created with (gp3 at its
// baseline for volumes of the Go API's CreateVolume).
func (s *Sim) VolumeAttributes(id string) VolumeOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.volumeOptions(id)
}

// SetVolumeCreateDelay is how long a volume from CreateVolume stays
// creating (default 0: available right after the answer).
func (s *Sim) SetVolumeCreateDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ext().createDelay = d
}

// AddSnapshot registers a completed snapshot CreateVolume can restore
// (SnapshotId) and returns its id.
func (s *Sim) AddSnapshot(sizeGiB int32) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.newID("snap-")
	s.ext().snapshots[id] = Snapshot{ID: id, SizeGiB: sizeGiB, StartTime: time.Now()}
	return id
}

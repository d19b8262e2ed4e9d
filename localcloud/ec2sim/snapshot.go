package ec2sim

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Snapshots (DescribeSnapshots over a registry the Go API fills:
// AddSnapshot, TakeSnapshot, as Data Lifecycle Manager would) and
// ModifyVolume. Neither lags.

// Snapshot is a completed EBS snapshot.
type Snapshot struct {
	ID          string            `json:"snapshotId"`
	VolumeID    string            `json:"volumeId,omitempty"` // "" for a snapshot of no known volume
	SizeGiB     int32             `json:"volumeSize"`
	StartTime   time.Time         `json:"startTime"`
	Description string            `json:"description,omitempty"`
	Encrypted   bool              `json:"encrypted,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// TakeSnapshot records a completed snapshot of a volume (its size,
// encryption and the given tags) and returns it: what a DLM policy's run
// would leave behind.
func (s *Sim) TakeSnapshot(volumeID, description string, tags map[string]string) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := volumeKind.find(s.volumes, volumeID)
	if err != nil {
		return Snapshot{}, fmt.Errorf("take snapshot: %w", err)
	}
	snap := Snapshot{ID: s.newID("snap-"), VolumeID: v.ID, SizeGiB: v.SizeGiB, StartTime: time.Now(),
		Description: description, Encrypted: s.volumeOptions(v.ID).Encrypted, Tags: maps.Clone(tags)}
	s.ext().snapshots[snap.ID] = snap
	return snap, nil
}

var snapshotFilters = filterTable[Snapshot]{
	"snapshot-id": func(p Snapshot) []string { return one(p.ID) },
	"volume-id":   func(p Snapshot) []string { return one(p.VolumeID) },
	"status":      func(Snapshot) []string { return one("completed") },
	"owner-id":    func(Snapshot) []string { return one(ownerID) },
	"description": func(p Snapshot) []string { return one(p.Description) },
	"volume-size": func(p Snapshot) []string { return one(strconv.Itoa(int(p.SizeGiB))) },
	"encrypted":   func(p Snapshot) []string { return one(strconv.FormatBool(p.Encrypted)) },
	"start-time":  func(p Snapshot) []string { return one(xmlTime(p.StartTime)) },
	"progress":    func(Snapshot) []string { return one("100%") },
}

type xmlSnapshot struct {
	ID          string       `xml:"snapshotId"`
	VolumeID    string       `xml:"volumeId"`
	Status      string       `xml:"status"`
	StartTime   string       `xml:"startTime"`
	Progress    string       `xml:"progress"`
	OwnerID     string       `xml:"ownerId"`
	VolumeSize  int32        `xml:"volumeSize"`
	Description string       `xml:"description"`
	Encrypted   bool         `xml:"encrypted"`
	TagSet      *set[xmlTag] `xml:"tagSet,omitempty"`
	StorageTier string       `xml:"storageTier"`
}

type describeSnapshotsResponse struct {
	reqID
	Snapshots set[xmlSnapshot] `xml:"snapshotSet"`
	NextToken string           `xml:"nextToken,omitempty"`
}

// describeSnapshots is DescribeSnapshots
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSnapshots.html):
// SnapshotId.N, Owner.N (self or the account id; others own nothing
// here), filters, MaxResults 5..1000 (not with ids).
func (s *Sim) describeSnapshots(q query, _ time.Time) (result, error) {
	ids := q.ids("SnapshotId")
	if len(ids) > 0 && q.has("MaxResults") {
		return nil, clientError(CodeInvalidParameterCombo, "The parameter snapshotSet cannot be used with the parameter maxResults")
	}
	p, err := q.page(1000)
	if err != nil {
		return nil, err
	}
	match, err := compileFilters(q.filters(), snapshotFilters, func(p Snapshot) map[string]string { return p.Tags })
	if err != nil {
		return nil, err
	}
	st := s.ext()
	var items []Snapshot
	if len(ids) > 0 {
		for _, id := range ids {
			snap, ok := st.snapshots[id]
			if !ok {
				if rest, found := strings.CutPrefix(id, "snap-"); !found || strings.Trim(rest, "0123456789abcdef") != "" {
					return nil, clientError("InvalidSnapshotID.Malformed", "Invalid id: \"%s\" (expecting \"snap-...\")", id)
				}
				return nil, clientError(CodeInvalidSnapshotNotFound, "The snapshot '%s' does not exist.", id)
			}
			items = append(items, snap)
		}
	} else {
		for _, id := range slices.Sorted(maps.Keys(st.snapshots)) {
			items = append(items, st.snapshots[id])
		}
	}
	if owners := q.ids("Owner"); len(owners) > 0 && !slices.Contains(owners, "self") && !slices.Contains(owners, ownerID) {
		items = nil
	}
	slices.SortFunc(items, func(a, b Snapshot) int { return strings.Compare(a.ID, b.ID) })
	items = slices.DeleteFunc(items, func(p Snapshot) bool { return !match(p) })
	page, next := paginate(items, func(p Snapshot) string { return p.ID }, p)
	out := &describeSnapshotsResponse{NextToken: next}
	for _, sn := range page {
		out.Snapshots.Items = append(out.Snapshots.Items, xmlSnapshot{ID: sn.ID, VolumeID: sn.VolumeID, Status: "completed",
			StartTime: xmlTime(sn.StartTime), Progress: "100%", OwnerID: ownerID, VolumeSize: sn.SizeGiB,
			Description: sn.Description, Encrypted: sn.Encrypted, TagSet: tagSet(sn.Tags), StorageTier: "standard"})
	}
	return out, nil
}

// Modifications: "You can modify a volume up to four times within a
// rolling 24-hour period, as long as the volume is in the in-use or
// available state and all previous modifications for that volume are
// completed" (Amazon EBS Elastic Volumes requirements, as changed in
// January 2026; before, one modification per six hours). The simulator
// finishes a modification after SetVolumeCreateDelay.
const maxModificationsPerDay = 4

type volumeModification struct {
	state   string // modifying, completed
	started time.Time
	from    VolumeOptions
	fromGiB int32
	to      VolumeOptions
	toGiB   int32
}

type xmlVolumeModification struct {
	VolumeID        string `xml:"volumeId"`
	State           string `xml:"modificationState"`
	TargetSize      int32  `xml:"targetSize"`
	TargetIOPS      int32  `xml:"targetIops,omitempty"`
	TargetType      string `xml:"targetVolumeType"`
	TargetThrough   int32  `xml:"targetThroughput,omitempty"`
	OriginalSize    int32  `xml:"originalSize"`
	OriginalIOPS    int32  `xml:"originalIops,omitempty"`
	OriginalType    string `xml:"originalVolumeType"`
	OriginalThrough int32  `xml:"originalThroughput,omitempty"`
	Progress        int64  `xml:"progress"`
	StartTime       string `xml:"startTime"`
}

type modifyVolumeResponse struct {
	reqID
	Modification xmlVolumeModification `xml:"volumeModification"`
}

// modifyVolume is ModifyVolume
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyVolume.html):
// Size ("The target size of the volume, in GiB. The target volume size
// must be greater than or equal to the existing size of the volume."),
// VolumeType, Iops, Throughput, with CreateVolume's bounds for the target.
func (s *Sim) modifyVolume(q query, now time.Time) (result, error) {
	id, err := q.required("VolumeId")
	if err != nil {
		return nil, err
	}
	v, err := findForMutation(s, volumeKind, s.volumes, id, now)
	if err != nil {
		return nil, err
	}
	if v.State != StatusAvailable && v.State != StatusInUse {
		return nil, clientError(CodeIncorrectState, "Volume '%s' is in the '%s' state.", id, v.State)
	}
	st := s.ext()
	mods := st.modifications[id]
	recent := 0
	for _, m := range mods {
		if m.state != "completed" {
			return nil, clientError("IncorrectModificationState", "Volume %s cannot be modified in modification state %s", id, strings.ToUpper(m.state))
		}
		if now.Sub(m.started) < 24*time.Hour {
			recent++
		}
	}
	if recent >= maxModificationsPerDay {
		return nil, clientError("VolumeModificationRateExceeded", "You've reached the maximum modification rate per volume limit. Wait until a modification in the last 24 hours is older than 24 hours.")
	}
	from := s.volumeOptions(id)
	size, hasSize, err := q.int32("Size")
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
	typ := q.str("VolumeType")
	if !hasSize && !hasIOPS && !hasTput && typ == "" {
		return nil, clientError(CodeMissingParameter, "The request must contain at least one of the parameters size, volumeType, iops, throughput")
	}
	if !hasSize {
		size = v.SizeGiB
	}
	if size < v.SizeGiB {
		return nil, clientError(CodeInvalidParameterValue, "New size cannot be smaller than existing size")
	}
	to := from
	if typ != "" && typ != from.Type {
		// "If you change the volume type to io1, io2, or gp3, the default
		// is 3,000" (Iops); Throughput "Otherwise, the default value is 125".
		to = VolumeOptions{Type: typ, Encrypted: from.Encrypted, KMSKeyID: from.KMSKeyID, SnapshotID: from.SnapshotID}
		if !hasIOPS && (typ == "gp3" || typ == "io1" || typ == "io2") {
			iops, hasIOPS = 3000, true
		}
	} else if !hasIOPS && (to.Type == "gp3" || to.Type == "io1" || to.Type == "io2") {
		iops, hasIOPS = from.IOPS, true
	}
	if hasIOPS {
		to.IOPS = iops
	}
	if !hasTput && to.Type == "gp3" && from.Type == "gp3" {
		tput, hasTput = from.Throughput, true
	}
	if hasTput {
		to.Throughput = tput
	}
	if !hasIOPS {
		to.IOPS = 0
	}
	to, size, err = s.checkVolumeOptions(size, to, hasIOPS, hasTput)
	if err != nil {
		return nil, err
	}
	m := &volumeModification{state: "modifying", started: now, from: from, fromGiB: v.SizeGiB, to: to, toGiB: size}
	st.modifications[id] = append(mods, m)
	v = v.clone()
	v.SizeGiB = size
	s.volumes.put(id, v, now, s.retain)
	st.volumeAttrs[id] = to
	s.after(st.createDelay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		m.state = "completed"
	})
	return &modifyVolumeResponse{Modification: xmlVolumeModification{VolumeID: id, State: m.state,
		TargetSize: size, TargetIOPS: to.IOPS, TargetType: to.Type, TargetThrough: to.Throughput,
		OriginalSize: m.fromGiB, OriginalIOPS: from.IOPS, OriginalType: from.Type, OriginalThrough: from.Throughput,
		StartTime: xmlTime(now)}}, nil
}

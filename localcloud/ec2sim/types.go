package ec2sim

import (
	"maps"
	"time"
)

// Instance states, named and numbered as EC2 reports them in instanceState.
// Stopping and stopped are reached only through the Go/admin StopInstance.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
	StateStopping     = "stopping"
	StateStopped      = "stopped"
)

var stateCodes = map[string]int32{
	StatePending:      0,
	StateRunning:      16,
	StateShuttingDown: 32,
	StateTerminated:   48,
	StateStopping:     64,
	StateStopped:      80,
}

// StateCode returns EC2's numeric code for an instance state name.
func StateCode(name string) int32 { return stateCodes[name] }

// Resource and attachment statuses, as EC2 spells them.
const (
	StatusAvailable = "available" // ENI status and volume state
	StatusInUse     = "in-use"    // ENI status and volume state

	AttachAttaching = "attaching" // attachment status (ENI) / state (volume)
	AttachAttached  = "attached"
	AttachDetaching = "detaching"
)

// Subnet is one subnet of the simulator's single VPC.
type Subnet struct {
	ID    string            `json:"subnetId"`
	VPCID string            `json:"vpcId"`
	AZ    string            `json:"availabilityZone"`
	CIDR  string            `json:"cidrBlock"`
	Tags  map[string]string `json:"tags,omitempty"`
}

// Instance is the simulator's view of an EC2 instance. Its network
// interfaces and volumes are not listed here: they live on the ENIs and
// volumes (Attachment.InstanceID), exactly as EC2 derives them.
type Instance struct {
	ID            string            `json:"instanceId"`
	ReservationID string            `json:"reservationId"`
	InstanceType  string            `json:"instanceType"` // DefaultInstanceType unless launched with another
	SubnetID      string            `json:"subnetId"`
	VPCID         string            `json:"vpcId"`
	AZ            string            `json:"availabilityZone"`
	PrivateIP     string            `json:"privateIpAddress"` // of the primary ENI
	MAC           string            `json:"macAddress"`       // of the primary ENI
	PrimaryENI    string            `json:"primaryNetworkInterfaceId"`
	RootVolume    string            `json:"rootVolumeId"` // attached at RootDevice
	State         string            `json:"state"`        // StatePending, StateRunning, ...
	LaunchTime    time.Time         `json:"launchTime"`
	Tags          map[string]string `json:"tags,omitempty"`
}

// RootDevice is where every simulated instance has its root volume, as on
// current Amazon Linux and Debian AMIs.
const RootDevice = "/dev/xvda"

// NetworkInterface is an ENI. Status is StatusAvailable or StatusInUse;
// Attachment is nil exactly when the ENI is available.
type NetworkInterface struct {
	ID          string            `json:"networkInterfaceId"`
	SubnetID    string            `json:"subnetId"`
	VPCID       string            `json:"vpcId"`
	AZ          string            `json:"availabilityZone"`
	PrivateIP   string            `json:"privateIpAddress"`
	MAC         string            `json:"macAddress"`
	Description string            `json:"description,omitempty"`
	Status      string            `json:"status"`
	Tags        map[string]string `json:"tags,omitempty"`
	Attachment  *ENIAttachment    `json:"attachment,omitempty"`
}

// ENIAttachment is an ENI's attachment to an instance. Status is one of
// AttachAttaching, AttachAttached, AttachDetaching.
type ENIAttachment struct {
	ID                  string    `json:"attachmentId"`
	InstanceID          string    `json:"instanceId"`
	DeviceIndex         int32     `json:"deviceIndex"`
	Status              string    `json:"status"`
	DeleteOnTermination bool      `json:"deleteOnTermination"`
	AttachTime          time.Time `json:"attachTime"`

	stuck  bool // never leaves attaching on its own (fault injection)
	hidden bool // never shown by Describe (HideNextAttach)
	forced bool // detaching because of a forced detach
}

// Volume is an EBS volume. State is StatusAvailable or StatusInUse;
// Attachment is nil exactly when the volume is available.
type Volume struct {
	ID         string            `json:"volumeId"`
	AZ         string            `json:"availabilityZone"`
	SizeGiB    int32             `json:"sizeGiB"`
	State      string            `json:"state"`
	CreateTime time.Time         `json:"createTime"`
	Tags       map[string]string `json:"tags,omitempty"`
	Attachment *VolumeAttachment `json:"attachment,omitempty"`
}

// VolumeAttachment is a volume's attachment to an instance. State is one of
// AttachAttaching, AttachAttached, AttachDetaching.
type VolumeAttachment struct {
	InstanceID          string    `json:"instanceId"`
	Device              string    `json:"device"`
	State               string    `json:"state"`
	DeleteOnTermination bool      `json:"deleteOnTermination"`
	AttachTime          time.Time `json:"attachTime"`

	// gen tells a pending timer whether the attachment it was started for
	// is still the current one (volumes have no attachment id in EC2).
	gen    uint64
	stuck  bool
	hidden bool // never shown by Describe (HideNextAttach)
	forced bool // detaching because of a forced detach
}

// masked methods return a resource as Describe shows it: an attachment
// hidden by HideNextAttach is not there.

func (n NetworkInterface) masked() NetworkInterface {
	if n.Attachment == nil || !n.Attachment.hidden {
		return n
	}
	n.Attachment, n.Status = nil, StatusAvailable
	return n
}

func (v Volume) masked() Volume {
	if v.Attachment == nil || !v.Attachment.hidden {
		return v
	}
	v.Attachment, v.State = nil, StatusAvailable
	return v
}

// clone methods: stored versions are immutable, so every mutation starts
// from a deep copy.

func (s Subnet) clone() Subnet { s.Tags = maps.Clone(s.Tags); return s }

func (i Instance) clone() Instance { i.Tags = maps.Clone(i.Tags); return i }

func (n NetworkInterface) clone() NetworkInterface {
	n.Tags = maps.Clone(n.Tags)
	if n.Attachment != nil {
		a := *n.Attachment
		n.Attachment = &a
	}
	return n
}

func (v Volume) clone() Volume {
	v.Tags = maps.Clone(v.Tags)
	if v.Attachment != nil {
		a := *v.Attachment
		v.Attachment = &a
	}
	return v
}

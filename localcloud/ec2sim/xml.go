package ec2sim

import (
	"encoding/xml"
	"maps"
	"net/http"
	"slices"
	"time"
)

// The element names below are the ones aws-sdk-go-v2's ec2query
// deserializers read (awsEc2query_deserializeDocument*), in the order EC2
// itself sends them. Sets are always emitted, even empty, as EC2 does.

const xmlns = "http://ec2.amazonaws.com/doc/2016-11-15/"

// ownerID is the simulated account.
const ownerID = "123456789012"

// result is a successful response body; the request id is filled in last.
type result interface{ setRequestID(string) }

type reqID struct {
	RequestID string `xml:"requestId"`
}

func (r *reqID) setRequestID(id string) { r.RequestID = id }

type set[T any] struct {
	Items []T `xml:"item"`
}

type empty struct{}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

// tagSet returns nil for no tags: EC2 leaves tagSet out then.
func tagSet(tags map[string]string) *set[xmlTag] {
	if len(tags) == 0 {
		return nil
	}
	s := &set[xmlTag]{}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		s.Items = append(s.Items, xmlTag{Key: k, Value: tags[k]})
	}
	return s
}

func xmlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

type xmlENIAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	InstanceID          string `xml:"instanceId,omitempty"`      // not inside DescribeInstances
	InstanceOwnerID     string `xml:"instanceOwnerId,omitempty"` // not inside DescribeInstances
	DeviceIndex         int32  `xml:"deviceIndex"`
	NetworkCardIndex    int32  `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlPrivateIP struct {
	PrivateIP  string `xml:"privateIpAddress"`
	PrivateDNS string `xml:"privateDnsName"`
	Primary    bool   `xml:"primary"`
}

type xmlENI struct {
	ID               string            `xml:"networkInterfaceId"`
	SubnetID         string            `xml:"subnetId"`
	VPCID            string            `xml:"vpcId"`
	AZ               string            `xml:"availabilityZone,omitempty"` // not inside DescribeInstances
	Description      string            `xml:"description"`
	OwnerID          string            `xml:"ownerId"`
	RequesterManaged string            `xml:"requesterManaged,omitempty"` // not inside DescribeInstances
	Status           string            `xml:"status"`
	MAC              string            `xml:"macAddress"`
	PrivateIP        string            `xml:"privateIpAddress"`
	PrivateDNS       string            `xml:"privateDnsName"`
	SourceDestCheck  bool              `xml:"sourceDestCheck"`
	Groups           set[empty]        `xml:"groupSet"`
	Attachment       *xmlENIAttachment `xml:"attachment,omitempty"`
	TagSet           *set[xmlTag]      `xml:"tagSet,omitempty"`
	PrivateIPs       set[xmlPrivateIP] `xml:"privateIpAddressesSet"`
	IPv6Addresses    set[empty]        `xml:"ipv6AddressesSet"`
	InterfaceType    string            `xml:"interfaceType"`
}

type xmlVolumeAttachment struct {
	VolumeID            string `xml:"volumeId"`
	InstanceID          string `xml:"instanceId"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlVolume struct {
	ID          string                   `xml:"volumeId"`
	Size        int32                    `xml:"size"`
	SnapshotID  string                   `xml:"snapshotId"`
	AZ          string                   `xml:"availabilityZone"`
	Status      string                   `xml:"status"`
	CreateTime  string                   `xml:"createTime"`
	Attachments set[xmlVolumeAttachment] `xml:"attachmentSet"`
	TagSet      *set[xmlTag]             `xml:"tagSet,omitempty"`
	VolumeType  string                   `xml:"volumeType"`
	IOPS        int32                    `xml:"iops"`
	Throughput  int32                    `xml:"throughput"`
	Encrypted   bool                     `xml:"encrypted"`
	MultiAttach bool                     `xml:"multiAttachEnabled"`
}

type xmlState struct {
	Code int32  `xml:"code"`
	Name string `xml:"name"`
}

type xmlPlacement struct {
	AZ      string `xml:"availabilityZone"`
	Tenancy string `xml:"tenancy"`
}

type xmlEBS struct {
	VolumeID            string `xml:"volumeId"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlBlockDevice struct {
	DeviceName string `xml:"deviceName"`
	EBS        xmlEBS `xml:"ebs"`
}

type xmlInstance struct {
	ID                 string              `xml:"instanceId"`
	ImageID            string              `xml:"imageId"`
	State              xmlState            `xml:"instanceState"`
	PrivateDNS         string              `xml:"privateDnsName"`
	DNSName            string              `xml:"dnsName"`
	Reason             string              `xml:"reason"`
	AMILaunchIndex     int                 `xml:"amiLaunchIndex"`
	ProductCodes       set[empty]          `xml:"productCodes"`
	InstanceType       string              `xml:"instanceType"`
	LaunchTime         string              `xml:"launchTime"`
	Placement          xmlPlacement        `xml:"placement"`
	SubnetID           string              `xml:"subnetId"`
	VPCID              string              `xml:"vpcId"`
	PrivateIP          string              `xml:"privateIpAddress,omitempty"`
	SourceDestCheck    bool                `xml:"sourceDestCheck"`
	Groups             set[empty]          `xml:"groupSet"`
	Architecture       string              `xml:"architecture"`
	RootDeviceType     string              `xml:"rootDeviceType"`
	RootDeviceName     string              `xml:"rootDeviceName"`
	BlockDevices       set[xmlBlockDevice] `xml:"blockDeviceMapping"`
	VirtualizationType string              `xml:"virtualizationType"`
	TagSet             *set[xmlTag]        `xml:"tagSet,omitempty"`
	Hypervisor         string              `xml:"hypervisor"`
	NetworkInterfaces  set[xmlENI]         `xml:"networkInterfaceSet"`
	EBSOptimized       bool                `xml:"ebsOptimized"`
	ENASupport         bool                `xml:"enaSupport"`
}

type xmlReservation struct {
	ReservationID string           `xml:"reservationId"`
	OwnerID       string           `xml:"ownerId"`
	Groups        set[empty]       `xml:"groupSet"`
	Instances     set[xmlInstance] `xml:"instancesSet"`
}

type xmlSubnet struct {
	ID                  string       `xml:"subnetId"`
	ARN                 string       `xml:"subnetArn"`
	State               string       `xml:"state"`
	OwnerID             string       `xml:"ownerId"`
	VPCID               string       `xml:"vpcId"`
	CIDR                string       `xml:"cidrBlock"`
	IPv6CIDRs           set[empty]   `xml:"ipv6CidrBlockAssociationSet"`
	AvailableIPs        int          `xml:"availableIpAddressCount"`
	AZ                  string       `xml:"availabilityZone"`
	DefaultForAZ        bool         `xml:"defaultForAz"`
	MapPublicIPOnLaunch bool         `xml:"mapPublicIpOnLaunch"`
	AssignIPv6          bool         `xml:"assignIpv6AddressOnCreation"`
	TagSet              *set[xmlTag] `xml:"tagSet,omitempty"`
}

// Response bodies, one per action.

type describeENIsResponse struct {
	reqID
	ENIs      set[xmlENI] `xml:"networkInterfaceSet"`
	NextToken string      `xml:"nextToken,omitempty"`
}

type attachENIResponse struct {
	reqID
	AttachmentID     string `xml:"attachmentId"`
	NetworkCardIndex int32  `xml:"networkCardIndex"`
}

// returnResponse is the body of actions that only report success.
type returnResponse struct {
	reqID
	Return bool `xml:"return"`
}

type describeVolumesResponse struct {
	reqID
	Volumes   set[xmlVolume] `xml:"volumeSet"`
	NextToken string         `xml:"nextToken,omitempty"`
}

type volumeAttachmentResponse struct {
	reqID
	xmlVolumeAttachment
}

type describeInstancesResponse struct {
	reqID
	Reservations set[xmlReservation] `xml:"reservationSet"`
	NextToken    string              `xml:"nextToken,omitempty"`
}

type describeSubnetsResponse struct {
	reqID
	Subnets   set[xmlSubnet] `xml:"subnetSet"`
	NextToken string         `xml:"nextToken,omitempty"`
}

// writeResult writes a success body as <ActionResponse xmlns=...>.
func writeResult(w http.ResponseWriter, action, requestID string, body result) {
	body.setRequestID(requestID)
	start := xml.StartElement{
		Name: xml.Name{Local: action + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: xmlns}},
	}
	writeXML(w, http.StatusOK, requestID, start, body)
}

type xmlErrorResponse struct {
	Errors    []xmlError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// writeError writes EC2's error shape: <Response><Errors><Error>...
func writeError(w http.ResponseWriter, requestID string, e *APIError) {
	body := xmlErrorResponse{Errors: []xmlError{{Code: e.Code, Message: e.Message}}, RequestID: requestID}
	writeXML(w, e.Status, requestID, xml.StartElement{Name: xml.Name{Local: "Response"}}, body)
}

func writeXML(w http.ResponseWriter, status int, requestID string, start xml.StartElement, body any) {
	out, err := xml.Marshal(wrapped{start: start, body: body})
	if err != nil {
		// Only a programming error in the types above can get here.
		http.Error(w, "ec2sim: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("x-amzn-RequestId", requestID)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

// wrapped encodes body under a root element chosen at run time.
type wrapped struct {
	start xml.StartElement
	body  any
}

func (w wrapped) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return e.EncodeElement(w.body, w.start)
}

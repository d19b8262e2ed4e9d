package ec2sim

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DescribeVpcs, DescribeInstanceTypes and DescribeImages, and the
// DescribeSubnets filters the operator's subnet lookup uses. These read the
// current state (no lag).

func init() {
	// DescribeSubnets filters beyond subnet.go's
	// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSubnets.html):
	// "cidr-block - The IPv4 CIDR block of the subnet. The CIDR block you
	// specify must exactly match the subnet's CIDR block ... (You can also
	// use cidr or cidrBlock as the filter names.)"
	subnetKind.filters["cidr"] = subnetKind.filters["cidr-block"]
	subnetKind.filters["cidrBlock"] = subnetKind.filters["cidr-block"]
	subnetKind.filters["availabilityZone"] = subnetKind.filters["availability-zone"]
	subnetKind.filters["owner-id"] = func(Subnet) []string { return one(ownerID) }
	subnetKind.filters["default-for-az"] = func(Subnet) []string { return one("false") }
}

// vpcCIDR is the VPC's CIDR block: 10.0.0.0/16 when every subnet is inside
// it (the local cloud's layout), else the smallest block holding them all.
// Call with s.mu held.
func (s *Sim) vpcCIDR() string {
	p := netip.MustParsePrefix("10.0.0.0/16")
	subs := s.subnets.current()
	for bits := 16; bits >= 0; bits-- {
		p = netip.PrefixFrom(p.Addr(), bits).Masked()
		if len(subs) > 0 {
			p = netip.PrefixFrom(netip.MustParsePrefix(subs[0].CIDR).Addr(), bits).Masked()
		}
		if !slices.ContainsFunc(subs, func(sub Subnet) bool { return !p.Contains(netip.MustParsePrefix(sub.CIDR).Addr()) }) {
			return p.String()
		}
	}
	return p.String()
}

type xmlCidrState struct {
	State string `xml:"state"`
}

type xmlVPC struct {
	ID           string              `xml:"vpcId"`
	OwnerID      string              `xml:"ownerId"`
	State        string              `xml:"state"`
	CIDR         string              `xml:"cidrBlock"`
	Associations set[xmlVPCCidrItem] `xml:"cidrBlockAssociationSet"`
	DHCPOptions  string              `xml:"dhcpOptionsId"`
	Tenancy      string              `xml:"instanceTenancy"`
	IsDefault    bool                `xml:"isDefault"`
}

type xmlVPCCidrItem struct {
	AssociationID string       `xml:"associationId"`
	CIDR          string       `xml:"cidrBlock"`
	State         xmlCidrState `xml:"cidrBlockState"`
}

type describeVpcsResponse struct {
	reqID
	VPCs      set[xmlVPC] `xml:"vpcSet"`
	NextToken string      `xml:"nextToken,omitempty"`
}

// describeVpcs is DescribeVpcs
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeVpcs.html)
// for the simulator's one VPC, which is not a default VPC: VpcId.N,
// filters vpc-id, cidr, cidr-block-association.cidr-block, state,
// is-default, owner-id.
func (s *Sim) describeVpcs(q query, _ time.Time) (result, error) {
	if _, err := q.page(1000); err != nil {
		return nil, err
	}
	cidr := s.vpcCIDR()
	table := filterTable[string]{
		"vpc-id":                            func(id string) []string { return one(id) },
		"cidr":                              func(string) []string { return one(cidr) },
		"cidr-block-association.cidr-block": func(string) []string { return one(cidr) },
		"cidr-block-association.state":      func(string) []string { return one("associated") },
		"state":                             func(string) []string { return one("available") },
		"is-default":                        func(string) []string { return one("false") },
		"owner-id":                          func(string) []string { return one(ownerID) },
		"dhcp-options-id":                   func(string) []string { return one("dopt-0123456789abcdef0") },
	}
	match, err := compileFilters(q.filters(), table, func(string) map[string]string { return nil })
	if err != nil {
		return nil, err
	}
	for _, id := range q.ids("VpcId") {
		if id != s.vpcID {
			if !strings.HasPrefix(id, "vpc-") {
				return nil, clientError("InvalidVpcID.Malformed", "Invalid id: \"%s\" (expecting \"vpc-...\")", id)
			}
			return nil, clientError(CodeInvalidVpcIDNotFound, "The vpc ID '%s' does not exist", id)
		}
	}
	out := &describeVpcsResponse{}
	if match(s.vpcID) {
		out.VPCs.Items = append(out.VPCs.Items, xmlVPC{
			ID: s.vpcID, OwnerID: ownerID, State: "available", CIDR: cidr,
			Associations: set[xmlVPCCidrItem]{Items: []xmlVPCCidrItem{{
				AssociationID: "vpc-cidr-assoc-" + strings.TrimPrefix(s.vpcID, "vpc-"), CIDR: cidr,
				State: xmlCidrState{State: "associated"}}}},
			DHCPOptions: "dopt-0123456789abcdef0", Tenancy: "default",
		})
	}
	return out, nil
}

// VPCID returns the id of the simulator's VPC.
func (s *Sim) VPCID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vpcID
}

// instanceTypeInfo is what DescribeInstanceTypes reports beyond the
// interface limit (instancetypes.go): vCPUs, memory and architecture, from
// the EC2 instance types pages
// (https://docs.aws.amazon.com/ec2/latest/instancetypes/gp.html and co.).
type instanceTypeInfo struct {
	vcpus  int32
	memMiB int64
	arch   string
}

var instanceTypeInfos = map[string]instanceTypeInfo{
	"t2.nano": {1, 512, "x86_64"}, "t2.micro": {1, 1024, "x86_64"}, "t2.small": {1, 2048, "x86_64"},
	"t2.medium": {2, 4096, "x86_64"}, "t2.large": {2, 8192, "x86_64"}, "t2.xlarge": {4, 16384, "x86_64"}, "t2.2xlarge": {8, 32768, "x86_64"},
	"t3.nano": {2, 512, "x86_64"}, "t3.micro": {2, 1024, "x86_64"}, "t3.small": {2, 2048, "x86_64"}, "t3.medium": {2, 4096, "x86_64"},
	"t3.large": {2, 8192, "x86_64"}, "t3.xlarge": {4, 16384, "x86_64"}, "t3.2xlarge": {8, 32768, "x86_64"},
	"t3a.micro": {2, 1024, "x86_64"}, "t3a.small": {2, 2048, "x86_64"}, "t3a.medium": {2, 4096, "x86_64"}, "t3a.large": {2, 8192, "x86_64"},
	"t4g.micro": {2, 1024, "arm64"}, "t4g.small": {2, 2048, "arm64"}, "t4g.medium": {2, 4096, "arm64"}, "t4g.large": {2, 8192, "arm64"},
	"m5.large": {2, 8192, "x86_64"}, "m5.xlarge": {4, 16384, "x86_64"}, "m5.2xlarge": {8, 32768, "x86_64"}, "m5.4xlarge": {16, 65536, "x86_64"},
	"m6i.large": {2, 8192, "x86_64"}, "m6i.xlarge": {4, 16384, "x86_64"}, "m6i.2xlarge": {8, 32768, "x86_64"},
	"m6g.medium": {1, 4096, "arm64"}, "m6g.large": {2, 8192, "arm64"}, "m6g.xlarge": {4, 16384, "arm64"},
	"c5.large": {2, 4096, "x86_64"}, "c5.xlarge": {4, 8192, "x86_64"}, "c5.2xlarge": {8, 16384, "x86_64"},
	"c6i.large": {2, 4096, "x86_64"}, "c6i.xlarge": {4, 8192, "x86_64"},
	"r5.large": {2, 16384, "x86_64"}, "r5.xlarge": {4, 32768, "x86_64"}, "r5.2xlarge": {8, 65536, "x86_64"},
	"r6i.large": {2, 16384, "x86_64"}, "r6i.xlarge": {4, 32768, "x86_64"},
}

type xmlInstanceType struct {
	Type       string `xml:"instanceType"`
	Current    bool   `xml:"currentGeneration"`
	Burstable  bool   `xml:"burstablePerformanceSupported"`
	Hypervisor string `xml:"hypervisor"`
	Processor  struct {
		Archs set[string] `xml:"supportedArchitectures"`
	} `xml:"processorInfo"`
	VCPU struct {
		Default int32 `xml:"defaultVCpus"`
	} `xml:"vCpuInfo"`
	Memory struct {
		SizeMiB int64 `xml:"sizeInMiB"`
	} `xml:"memoryInfo"`
	Network struct {
		MaxENIs     int32               `xml:"maximumNetworkInterfaces"`
		MaxCards    int32               `xml:"maximumNetworkCards"`
		DefaultCard int32               `xml:"defaultNetworkCardIndex"`
		IPv4PerENI  int32               `xml:"ipv4AddressesPerInterface"`
		ENASupport  string              `xml:"enaSupport"`
		Cards       set[xmlNetworkCard] `xml:"networkCards"`
	} `xml:"networkInfo"`
	RootDeviceTypes set[string] `xml:"supportedRootDeviceTypes"`
}

type xmlNetworkCard struct {
	Index   int32 `xml:"networkCardIndex"`
	MaxENIs int32 `xml:"maximumNetworkInterfaces"`
}

type describeInstanceTypesResponse struct {
	reqID
	Types     set[xmlInstanceType] `xml:"instanceTypeSet"`
	NextToken string               `xml:"nextToken,omitempty"`
}

// describeInstanceTypes is DescribeInstanceTypes
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypes.html)
// over the simulator's table: InstanceType.N, filters instance-type,
// processor-info.supported-architecture, network-info.maximum-network-interfaces,
// vcpu-info.default-vcpus, memory-info.size-in-mib, current-generation;
// MaxResults 5..100.
func (s *Sim) describeInstanceTypes(q query, _ time.Time) (result, error) {
	p, err := q.page(100)
	if err != nil {
		return nil, err
	}
	info := func(t string) instanceTypeInfo { return instanceTypeInfos[t] }
	table := filterTable[string]{
		"instance-type":                         func(t string) []string { return one(t) },
		"processor-info.supported-architecture": func(t string) []string { return one(info(t).arch) },
		"network-info.maximum-network-interfaces": func(t string) []string {
			return one(strconv.Itoa(maxNetworkInterfaces[t]))
		},
		"vcpu-info.default-vcpus":         func(t string) []string { return one(strconv.Itoa(int(info(t).vcpus))) },
		"memory-info.size-in-mib":         func(t string) []string { return one(strconv.FormatInt(info(t).memMiB, 10)) },
		"current-generation":              func(t string) []string { return one(strconv.FormatBool(!strings.HasPrefix(t, "t2."))) },
		"burstable-performance-supported": func(t string) []string { return one(strconv.FormatBool(strings.HasPrefix(t, "t"))) },
	}
	match, err := compileFilters(q.filters(), table, func(string) map[string]string { return nil })
	if err != nil {
		return nil, err
	}
	var types []string
	if want := q.ids("InstanceType"); len(want) > 0 {
		var bad []string
		for _, t := range want {
			if _, ok := maxNetworkInterfaces[t]; !ok {
				bad = append(bad, t)
			}
		}
		if len(bad) > 0 {
			return nil, clientError(CodeInvalidInstanceType, "The following supplied instance types do not exist: [%s]", strings.Join(bad, ", "))
		}
		types = want
	} else {
		types = slices.Collect(maps.Keys(maxNetworkInterfaces))
	}
	slices.Sort(types)
	types = slices.DeleteFunc(types, func(t string) bool { return !match(t) })
	page, next := paginate(types, func(t string) string { return t }, p)
	out := &describeInstanceTypesResponse{NextToken: next}
	for _, t := range page {
		x := xmlInstanceType{Type: t, Current: !strings.HasPrefix(t, "t2."), Burstable: strings.HasPrefix(t, "t"), Hypervisor: "nitro"}
		if strings.HasPrefix(t, "t2.") {
			x.Hypervisor = "xen"
		}
		in := info(t)
		x.Processor.Archs.Items = []string{in.arch}
		x.VCPU.Default = in.vcpus
		x.Memory.SizeMiB = in.memMiB
		n := int32(maxNetworkInterfaces[t])
		x.Network.MaxENIs, x.Network.MaxCards, x.Network.IPv4PerENI, x.Network.ENASupport = n, 1, 6, "required"
		x.Network.Cards.Items = []xmlNetworkCard{{Index: 0, MaxENIs: n}}
		x.RootDeviceTypes.Items = []string{"ebs"}
		out.Types.Items = append(out.Types.Items, x)
	}
	return out, nil
}

// Image is one machine image of the registry DescribeImages reads.
type Image struct {
	ID           string            `json:"imageId"`
	Name         string            `json:"name"`
	Architecture string            `json:"architecture"` // x86_64 or arm64
	State        string            `json:"state"`        // "" is available
	Description  string            `json:"description,omitempty"`
	CreationDate time.Time         `json:"creationDate"`
	Tags         map[string]string `json:"tags,omitempty"`
}

// RegisterImage adds an image to the registry (as a finished bake would)
// and returns it; an empty ID draws one, an empty State is "available", an
// empty Architecture "x86_64". The image ami-0123456789abcdef0 (what every
// simulated instance reports) is there from the start.
func (s *Sim) RegisterImage(img Image) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if img.ID == "" {
		img.ID = s.newID("ami-")
	}
	if err := checkImageID(img.ID); err != nil {
		return Image{}, fmt.Errorf("register image: %w", err)
	}
	if img.State == "" {
		img.State = "available"
	}
	if img.Architecture == "" {
		img.Architecture = "x86_64"
	}
	if img.Architecture != "x86_64" && img.Architecture != "arm64" {
		return Image{}, fmt.Errorf("register image: architecture %q is not x86_64 or arm64", img.Architecture)
	}
	// RegisterImage's Name: "Constraints: 3-128 alphanumeric characters,
	// parentheses (()), square brackets ([]), spaces ( ), periods (.),
	// slashes (/), dashes (-), single quotes ('), at-signs (@), or
	// underscores(_)" (API_RegisterImage.html).
	if len(img.Name) < 3 || len(img.Name) > 128 {
		return Image{}, fmt.Errorf("register image: name %q is not 3 to 128 characters", img.Name)
	}
	for _, other := range s.ext().images {
		if other.Name == img.Name && other.ID != img.ID {
			return Image{}, fmt.Errorf("register image: %w", clientError("InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s", img.Name, other.ID))
		}
	}
	if img.CreationDate.IsZero() {
		img.CreationDate = time.Now()
	}
	img.Tags = maps.Clone(img.Tags)
	s.ext().images[img.ID] = img
	return img, nil
}

func checkImageID(id string) error {
	rest, ok := strings.CutPrefix(id, "ami-")
	if !ok || (len(rest) != 8 && len(rest) != 17) || strings.Trim(rest, "0123456789abcdef") != "" {
		return clientError(CodeInvalidImageIDMalformed, "Invalid id: \"%s\" (expecting \"ami-...\")", id)
	}
	return nil
}

var imageFilters = filterTable[Image]{
	"image-id":         func(i Image) []string { return one(i.ID) },
	"name":             func(i Image) []string { return one(i.Name) },
	"architecture":     func(i Image) []string { return one(i.Architecture) },
	"state":            func(i Image) []string { return one(i.State) },
	"owner-id":         func(Image) []string { return one(ownerID) },
	"image-type":       func(Image) []string { return one("machine") },
	"root-device-type": func(Image) []string { return one("ebs") },
	"is-public":        func(Image) []string { return one("false") },
	"description":      func(i Image) []string { return one(i.Description) },
}

type xmlImage struct {
	ID             string       `xml:"imageId"`
	Location       string       `xml:"imageLocation"`
	State          string       `xml:"imageState"`
	OwnerID        string       `xml:"imageOwnerId"`
	CreationDate   string       `xml:"creationDate"`
	IsPublic       bool         `xml:"isPublic"`
	Architecture   string       `xml:"architecture"`
	ImageType      string       `xml:"imageType"`
	Name           string       `xml:"name"`
	Description    string       `xml:"description,omitempty"`
	RootDeviceType string       `xml:"rootDeviceType"`
	RootDeviceName string       `xml:"rootDeviceName"`
	Virtualization string       `xml:"virtualizationType"`
	Hypervisor     string       `xml:"hypervisor"`
	ENASupport     bool         `xml:"enaSupport"`
	TagSet         *set[xmlTag] `xml:"tagSet,omitempty"`
	BootMode       string       `xml:"bootMode"`
	IMDSSupport    string       `xml:"imdsSupport"`
}

type describeImagesResponse struct {
	reqID
	Images    set[xmlImage] `xml:"imagesSet"`
	NextToken string        `xml:"nextToken,omitempty"`
}

// describeImages is DescribeImages
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html)
// over the registry: ImageId.N, Owner.N (self, the account id; amazon and
// other accounts own nothing here), filters, MaxResults 5..1000 (not with
// ids).
func (s *Sim) describeImages(q query, _ time.Time) (result, error) {
	ids := q.ids("ImageId")
	if len(ids) > 0 && q.has("MaxResults") {
		return nil, clientError(CodeInvalidParameterCombo, "The parameter imageIdsSet cannot be used with the parameter maxResults")
	}
	p, err := q.page(1000)
	if err != nil {
		return nil, err
	}
	match, err := compileFilters(q.filters(), imageFilters, func(i Image) map[string]string { return i.Tags })
	if err != nil {
		return nil, err
	}
	st := s.ext()
	var items []Image
	if len(ids) > 0 {
		for _, id := range ids {
			if err := checkImageID(id); err != nil {
				return nil, err
			}
			img, ok := st.images[id]
			if !ok {
				return nil, clientError(CodeInvalidImageIDNotFound, "The image id '[%s]' does not exist", id)
			}
			items = append(items, img)
		}
	} else {
		for _, id := range slices.Sorted(maps.Keys(st.images)) {
			items = append(items, st.images[id])
		}
	}
	if owners := q.ids("Owner"); len(owners) > 0 && !slices.Contains(owners, "self") && !slices.Contains(owners, ownerID) {
		items = nil
	}
	slices.SortFunc(items, func(a, b Image) int { return strings.Compare(a.ID, b.ID) })
	items = slices.DeleteFunc(items, func(i Image) bool { return !match(i) })
	page, next := paginate(items, func(i Image) string { return i.ID }, p)
	out := &describeImagesResponse{NextToken: next}
	for _, i := range page {
		out.Images.Items = append(out.Images.Items, xmlImage{
			ID: i.ID, Location: ownerID + "/" + i.Name, State: i.State, OwnerID: ownerID, CreationDate: xmlTime(i.CreationDate),
			Architecture: i.Architecture, ImageType: "machine", Name: i.Name, Description: i.Description,
			RootDeviceType: "ebs", RootDeviceName: RootDevice, Virtualization: "hvm", Hypervisor: "xen", ENASupport: true,
			TagSet: tagSet(i.Tags), BootMode: "uefi-preferred", IMDSSupport: "v2.0",
		})
	}
	return out, nil
}

// operatorActions are the calls of this file, create.go and
// securitygroup.go for the dispatch table (sim.go).
var operatorActions = map[string]action{
	"CreateNetworkInterface":          {mutating: true, run: guarded("CreateNetworkInterface", (*Sim).createNetworkInterface)},
	"DeleteNetworkInterface":          {mutating: true, run: guarded("DeleteNetworkInterface", (*Sim).deleteNetworkInterface)},
	"ModifyNetworkInterfaceAttribute": {mutating: true, run: guarded("ModifyNetworkInterfaceAttribute", (*Sim).modifyNetworkInterfaceGroups)},
	"DescribeNetworkInterfaces":       {idParam: "NetworkInterfaceId", run: guarded("DescribeNetworkInterfaces", (*Sim).describeNetworkInterfacesFull)},
	"CreateVolume":                    {mutating: true, run: guarded("CreateVolume", (*Sim).createVolume)},
	"DeleteVolume":                    {mutating: true, run: guarded("DeleteVolume", (*Sim).deleteVolume)},
	"AttachVolume":                    {mutating: true, run: guarded("AttachVolume", (*Sim).attachVolumeChecked)},
	"DescribeVolumes":                 {idParam: "VolumeId", run: guarded("DescribeVolumes", (*Sim).describeVolumesFull)},
	"CreateSecurityGroup":             {mutating: true, run: guarded("CreateSecurityGroup", (*Sim).createSecurityGroup)},
	"DeleteSecurityGroup":             {mutating: true, run: guarded("DeleteSecurityGroup", (*Sim).deleteSecurityGroup)},
	"DescribeSecurityGroups":          {idParam: "GroupId", run: guarded("DescribeSecurityGroups", (*Sim).describeSecurityGroups)},
	"DescribeSecurityGroupRules":      {idParam: "SecurityGroupRuleId", run: guarded("DescribeSecurityGroupRules", (*Sim).describeSecurityGroupRules)},
	"AuthorizeSecurityGroupIngress": {mutating: true, run: guarded("AuthorizeSecurityGroupIngress",
		func(s *Sim, q query, _ time.Time) (result, error) { return s.authorize(q, false) })},
	"AuthorizeSecurityGroupEgress": {mutating: true, run: guarded("AuthorizeSecurityGroupEgress",
		func(s *Sim, q query, _ time.Time) (result, error) { return s.authorize(q, true) })},
	"RevokeSecurityGroupIngress": {mutating: true, run: guarded("RevokeSecurityGroupIngress",
		func(s *Sim, q query, _ time.Time) (result, error) { return s.revoke(q, false) })},
	"RevokeSecurityGroupEgress": {mutating: true, run: guarded("RevokeSecurityGroupEgress",
		func(s *Sim, q query, _ time.Time) (result, error) { return s.revoke(q, true) })},
	"DescribeVpcs":          {idParam: "VpcId", run: guarded("DescribeVpcs", (*Sim).describeVpcs)},
	"DescribeInstanceTypes": {idParam: "InstanceType", run: guarded("DescribeInstanceTypes", (*Sim).describeInstanceTypes)},
	"DescribeImages":        {idParam: "ImageId", run: guarded("DescribeImages", (*Sim).describeImages)},
	"CreateTags":            {mutating: true, run: guarded("CreateTags", (*Sim).createTagsAll)},
	"DescribeSnapshots":     {idParam: "SnapshotId", run: guarded("DescribeSnapshots", (*Sim).describeSnapshots)},
	"ModifyVolume":          {mutating: true, run: guarded("ModifyVolume", (*Sim).modifyVolume)},
}

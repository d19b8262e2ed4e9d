package ec2sim

import (
	"fmt"
	"net/netip"
	"time"
)

var subnetKind = &kind[Subnet]{
	prefix:     "subnet-",
	malformed:  "InvalidSubnetID.Malformed",
	idParam:    "SubnetId",
	maxResults: 1000,
	idOf:       func(s Subnet) string { return s.ID },
	tagsOf:     func(s Subnet) map[string]string { return s.Tags },
	notFound: func(id string) *APIError {
		return clientError(CodeInvalidSubnetIDNotFound, "The subnet ID '%s' does not exist", id)
	},
	filters: filterTable[Subnet]{
		"subnet-id":         func(s Subnet) []string { return one(s.ID) },
		"availability-zone": func(s Subnet) []string { return one(s.AZ) },
		"cidr-block":        func(s Subnet) []string { return one(s.CIDR) },
		"vpc-id":            func(s Subnet) []string { return one(s.VPCID) },
		"state":             func(Subnet) []string { return one("available") },
	},
}

func (s *Sim) describeSubnets(q query, now time.Time) (result, error) {
	list, next, err := subnetKind.describe(s.subnets, q, s.describeTime(apiSubnets, now), s.gcTime(now))
	if err != nil {
		return nil, err
	}
	out := &describeSubnetsResponse{NextToken: next}
	for _, sub := range list {
		out.Subnets.Items = append(out.Subnets.Items, xmlSubnet{
			ID: sub.ID, ARN: fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", s.opts.Region, ownerID, sub.ID),
			State: "available", OwnerID: ownerID, VPCID: sub.VPCID, CIDR: sub.CIDR,
			AvailableIPs: s.availableIPs(sub), AZ: sub.AZ, TagSet: tagSet(sub.Tags),
		})
	}
	return out, nil
}

// CreateSubnet adds a subnet to the VPC. The AZ must be in the region
// ("us-east-1a"), the CIDR a /16 to /28 not overlapping another subnet.
func (s *Sim) CreateSubnet(az, cidr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkAZ(az); err != nil {
		return "", fmt.Errorf("create subnet %s: %w", cidr, err)
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() || p.Masked() != p || p.Bits() < 16 || p.Bits() > 28 {
		return "", fmt.Errorf("create subnet: cidr %q is not an IPv4 network /16 to /28", cidr)
	}
	for _, other := range s.subnets.current() {
		if op := netip.MustParsePrefix(other.CIDR); op.Overlaps(p) {
			return "", fmt.Errorf("create subnet %s: overlaps %s (%s)", cidr, other.ID, other.CIDR)
		}
	}
	sub := Subnet{ID: s.newID("subnet-"), VPCID: s.vpcID, AZ: az, CIDR: cidr}
	s.subnets.put(sub.ID, sub, time.Now(), s.retain)
	return sub.ID, nil
}

// checkAZ accepts the region's zones: the region name plus one letter.
func (s *Sim) checkAZ(az string) error {
	r := s.opts.Region
	if len(az) != len(r)+1 || az[:len(r)] != r || az[len(r)] < 'a' || az[len(r)] > 'z' {
		return clientError(CodeInvalidParameterValue, "Invalid availability zone: [%s]", az)
	}
	return nil
}

// usable is the range of host addresses of a subnet: EC2 reserves the
// network address, the next three and the broadcast address.
func usable(sub Subnet) (first, last netip.Addr) {
	p := netip.MustParsePrefix(sub.CIDR)
	first = p.Addr().Next().Next().Next().Next()
	b := p.Addr().As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n |= 1<<(32-p.Bits()) - 1
	last = netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).Prev()
	return first, last
}

// usedIPs returns the addresses ENIs of the subnet hold now. Call with
// s.mu held.
func (s *Sim) usedIPs(subnetID string) map[netip.Addr]bool {
	used := map[netip.Addr]bool{}
	for _, n := range s.enis.current() {
		if n.SubnetID == subnetID {
			used[netip.MustParseAddr(n.PrivateIP)] = true
		}
	}
	return used
}

// allocateIP checks a requested address, or picks the lowest free one when
// want is empty. Call with s.mu held.
func (s *Sim) allocateIP(sub Subnet, want string) (netip.Addr, error) {
	first, last := usable(sub)
	used := s.usedIPs(sub.ID)
	if want == "" {
		for ip := first; ip.Compare(last) <= 0; ip = ip.Next() {
			if !used[ip] {
				return ip, nil
			}
		}
		return netip.Addr{}, clientError("InsufficientFreeAddressesInSubnet", "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", sub.ID)
	}
	ip, err := netip.ParseAddr(want)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, clientError(CodeInvalidParameterValue, "Invalid value '%s' for IP address", want)
	}
	if !netip.MustParsePrefix(sub.CIDR).Contains(ip) {
		return netip.Addr{}, clientError(CodeInvalidParameterValue, "Address %s does not fall within the subnet's address range", want)
	}
	if ip.Compare(first) < 0 || ip.Compare(last) > 0 {
		return netip.Addr{}, clientError(CodeInvalidParameterValue, "Address %s is in subnet's reserved address range", want)
	}
	if used[ip] {
		return netip.Addr{}, clientError("InvalidIPAddress.InUse", "The specified address is already in use.")
	}
	return ip, nil
}

// availableIPs is DescribeSubnets' availableIpAddressCount, as of now.
// Call with s.mu held.
func (s *Sim) availableIPs(sub Subnet) int {
	p := netip.MustParsePrefix(sub.CIDR)
	return 1<<(32-p.Bits()) - 5 - len(s.usedIPs(sub.ID))
}

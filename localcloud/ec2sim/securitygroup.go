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

// Security groups: CreateSecurityGroup, DescribeSecurityGroups,
// AuthorizeSecurityGroupIngress/Egress, RevokeSecurityGroupIngress/Egress,
// DescribeSecurityGroupRules and DeleteSecurityGroup, for VPC security
// groups with IPv4 CIDR and security-group peers. The VPC has a security
// group named "default" from the start ("Each VPC has a default security
// group", https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html),
// which ENIs created without groups get. Not modelled: IPv6 ranges and
// prefix lists (refused), the default VPC (the simulator's one VPC is not
// a default VPC, so group names alone do not identify a group), stale
// group references across VPCs, ModifySecurityGroupRules. Security groups
// are read as they are now: Describe does not lag for them.

// SecurityGroup is one VPC security group with its rules.
type SecurityGroup struct {
	ID          string              `json:"groupId"`
	Name        string              `json:"groupName"`
	Description string              `json:"description"`
	VPCID       string              `json:"vpcId"`
	Tags        map[string]string   `json:"tags,omitempty"`
	Rules       []SecurityGroupRule `json:"rules"` // by rule id
}

// SecurityGroupRule is one inbound or outbound rule. Protocol is "tcp",
// "udp", "icmp", "icmpv6", "-1" (all) or a protocol number; FromPort and
// ToPort are -1 for all (and for "-1"). Exactly one of CIDR and GroupID is
// set.
type SecurityGroupRule struct {
	ID          string            `json:"securityGroupRuleId"`
	GroupID     string            `json:"groupId"` // the group the rule belongs to
	Egress      bool              `json:"isEgress"`
	Protocol    string            `json:"ipProtocol"`
	FromPort    int32             `json:"fromPort"`
	ToPort      int32             `json:"toPort"`
	CIDR        string            `json:"cidrIpv4,omitempty"`
	PeerGroupID string            `json:"referencedGroupId,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

func (g SecurityGroup) clone() SecurityGroup {
	g.Tags = maps.Clone(g.Tags)
	g.Rules = slices.Clone(g.Rules)
	for i := range g.Rules {
		g.Rules[i].Tags = maps.Clone(g.Rules[i].Tags)
	}
	return g
}

// same reports whether two rules grant the same thing (EC2 refuses a second
// one as InvalidPermission.Duplicate and matches revokes this way).
func (r SecurityGroupRule) same(o SecurityGroupRule) bool {
	return r.Egress == o.Egress && r.Protocol == o.Protocol && r.FromPort == o.FromPort && r.ToPort == o.ToPort &&
		r.CIDR == o.CIDR && r.PeerGroupID == o.PeerGroupID
}

// describe is the rule as EC2 words it in InvalidPermission.Duplicate:
// `the specified rule "peer: sg-…, TCP, from port: 1, to port: 65535,
// ALLOW" already exists` (a real answer quoted in rubber/rubber#483).
func (r SecurityGroupRule) describe() string {
	peer := r.CIDR
	if r.PeerGroupID != "" {
		peer = r.PeerGroupID
	}
	switch r.Protocol {
	case "-1":
		return fmt.Sprintf("peer: %s, ALL, ALLOW", peer)
	case "tcp", "udp":
		return fmt.Sprintf("peer: %s, %s, from port: %d, to port: %d, ALLOW", peer, strings.ToUpper(r.Protocol), r.FromPort, r.ToPort)
	case "icmp", "icmpv6":
		return fmt.Sprintf("peer: %s, %s, type: %d, code: %d, ALLOW", peer, strings.ToUpper(r.Protocol), r.FromPort, r.ToPort)
	}
	return fmt.Sprintf("peer: %s, %s, ALLOW", peer, r.Protocol)
}

// maxRulesPerDirection is the default quota "Inbound or outbound rules per
// security group: 60" (Amazon VPC quotas,
// https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html).
const maxRulesPerDirection = 60

// maxGroupsPerENI is the default quota "Security groups per network
// interface: 5" (same page).
const maxGroupsPerENI = 5

func checkGroupID(id string) error {
	rest, ok := strings.CutPrefix(id, "sg-")
	if !ok || (len(rest) != 8 && len(rest) != 17) || strings.Trim(rest, "0123456789abcdef") != "" {
		return clientError(CodeInvalidGroupIDMalformed, "Invalid id: \"%s\" (expecting \"sg-...\")", id)
	}
	return nil
}

func errGroupNotFound(id string) *APIError {
	return clientError(CodeInvalidGroupNotFound, "The security group '%s' does not exist", id)
}

// ensureDefaultGroup creates the VPC's default group on first use. Its id is
// derived from the VPC id, not drawn, so that ids of other resources do not
// depend on whether security groups were ever touched. Call with s.mu held.
func (s *Sim) ensureDefaultGroup() string {
	st := s.ext()
	if st.defaultGroup != "" {
		return st.defaultGroup
	}
	id := "sg-" + strings.TrimPrefix(s.vpcID, "vpc-")
	g := SecurityGroup{ID: id, Name: "default", Description: "default VPC security group", VPCID: s.vpcID}
	// "A default security group ... Inbound: allows inbound traffic from
	// network interfaces (and their associated instances) that are
	// assigned to the same security group. Outbound: allows all outbound
	// IPv4 traffic" (Default security groups for your VPCs).
	g.Rules = []SecurityGroupRule{
		s.newRule(id, SecurityGroupRule{Protocol: "-1", FromPort: -1, ToPort: -1, PeerGroupID: id}),
		s.newRule(id, SecurityGroupRule{Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: "0.0.0.0/0"}),
	}
	st.groups[id] = g
	st.defaultGroup = id
	return id
}

// newRule gives a rule its id (sgr- and 17 hex digits, from a counter so
// as not to draw from the id stream). Call with s.mu held.
func (s *Sim) newRule(groupID string, r SecurityGroupRule) SecurityGroupRule {
	st := s.ext()
	st.ruleSeq++
	r.ID = fmt.Sprintf("sgr-%017x", st.ruleSeq)
	r.GroupID = groupID
	return r
}

// findGroup returns a group by id. Call with s.mu held.
func (s *Sim) findGroup(id string) (SecurityGroup, error) {
	s.ensureDefaultGroup()
	if err := checkGroupID(id); err != nil {
		return SecurityGroup{}, err
	}
	g, ok := s.ext().groups[id]
	if !ok {
		return SecurityGroup{}, errGroupNotFound(id)
	}
	return g, nil
}

// groupFor resolves the GroupId or GroupName parameter of Authorize,
// Revoke and Delete. A name alone names a group of the default VPC,
// which the simulator does not have.
func (s *Sim) groupFor(q query) (SecurityGroup, error) {
	if id := q.str("GroupId"); id != "" {
		return s.findGroup(id)
	}
	if name := q.str("GroupName"); name != "" {
		// GroupName: "[Default VPC] The name of the security group. For
		// security groups for a default VPC you can specify either the ID
		// or the name of the security group. For security groups for a
		// nondefault VPC, you must specify the ID of the security group."
		// (API_DeleteSecurityGroup.html)
		return SecurityGroup{}, clientError(CodeVPCIDNotSpecified, "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
	}
	return SecurityGroup{}, errMissing("GroupId")
}

// validGroupText checks CreateSecurityGroup's constraint for a VPC group: "Up to
// 255 characters in length. Cannot start with sg-. Valid characters: a-z,
// A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*"
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html);
// the description has the same character set.
func validGroupText(v string) bool {
	if len(v) > 255 {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" ._-:/()#,@[]+=&;{}!$*", r)) {
			return false
		}
	}
	return true
}

// createSecurityGroup is CreateSecurityGroup
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html).
func (s *Sim) createSecurityGroup(q query, now time.Time) (result, error) {
	s.ensureDefaultGroup()
	name, err := q.required("GroupName")
	if err != nil {
		return nil, err
	}
	desc, err := q.required("GroupDescription")
	if err != nil {
		return nil, err
	}
	switch {
	case !validGroupText(name):
		return nil, clientError(CodeInvalidParameterValue, "Value (%s) for parameter GroupName is invalid. Character sets beyond ASCII are not supported.", name)
	case strings.HasPrefix(name, "sg-"):
		// As AWS words it (quoted in pulumi/pulumi-awsx#477).
		return nil, clientError(CodeInvalidParameterValue, "Value (%s) for parameter GroupName is invalid. Group names may not be in the format sg-*.", name)
	case !validGroupText(desc):
		return nil, clientError(CodeInvalidParameterValue, "Value (%s) for parameter GroupDescription is invalid. Character sets beyond ASCII are not supported.", desc)
	}
	vpc := q.str("VpcId")
	if vpc == "" {
		// VpcId: "The ID of the VPC. Required for a nondefault VPC."
		return nil, clientError(CodeVPCIDNotSpecified, "No default VPC for this user")
	}
	if vpc != s.vpcID {
		return nil, clientError(CodeInvalidVpcIDNotFound, "The vpc ID '%s' does not exist", vpc)
	}
	// "default" is taken by the VPC's default group: a duplicate (moto's
	// record of AWS, getmoto/moto#331).
	for _, g := range s.ext().groups {
		if g.VPCID == vpc && g.Name == name {
			return nil, clientError(CodeInvalidGroupDuplicate, "The security group '%s' already exists for VPC '%s'", name, vpc)
		}
	}
	tags, err := tagSpecs(q, "security-group")
	if err != nil {
		return nil, err
	}
	g := SecurityGroup{ID: s.newID("sg-"), Name: name, Description: desc, VPCID: vpc, Tags: tags}
	// "When you create a security group, it has an outbound rule that
	// allows all outbound traffic" (Security group rules,
	// https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html).
	g.Rules = []SecurityGroupRule{s.newRule(g.ID, SecurityGroupRule{Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: "0.0.0.0/0"})}
	s.ext().groups[g.ID] = g
	return &createSecurityGroupResponse{GroupID: g.ID, ARN: s.groupARN(g.ID), TagSet: tagSet(tags)}, nil
}

func (s *Sim) groupARN(id string) string {
	return fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", s.opts.Region, ownerID, id)
}

// canonicalProtocol maps what IpProtocol accepts to its canonical form: "tcp, udp,
// icmp, icmpv6 ... or a number (see Protocol Numbers). Use -1 to specify
// all protocols." (IpPermission,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpPermission.html).
func canonicalProtocol(p string) (string, bool) {
	switch l := strings.ToLower(p); l {
	case "tcp", "6":
		return "tcp", true
	case "udp", "17":
		return "udp", true
	case "icmp", "1":
		return "icmp", true
	case "icmpv6", "58":
		return "icmpv6", true
	case "-1", "all":
		return "-1", true
	default:
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 || n > 255 {
			return "", false
		}
		return l, true
	}
}

// readPermissions reads IpPermissions.N (and the flat CidrIp/IpProtocol/
// FromPort/ToPort form) as one rule per peer.
func (s *Sim) readPermissions(q query, groupID string, egress bool) ([]SecurityGroupRule, error) {
	var prefixes []string
	for _, n := range q.indexes("IpPermissions") {
		prefixes = append(prefixes, "IpPermissions."+strconv.Itoa(n)+".")
	}
	if len(prefixes) == 0 && q.has("IpProtocol") {
		prefixes = append(prefixes, "")
	}
	if len(prefixes) == 0 {
		return nil, clientError(CodeMissingParameter, "No IP permissions specified")
	}
	var rules []SecurityGroupRule
	for _, p := range prefixes {
		raw := q.str(p + "IpProtocol")
		if raw == "" {
			return nil, errMissing(p + "IpProtocol")
		}
		proto, ok := canonicalProtocol(raw)
		if !ok {
			return nil, clientError(CodeInvalidPermissionMalformed, "Unsupported IP protocol \"%s\"  - supported: [all, tcp, udp, icmp, icmpv6, protocol numbers]", raw)
		}
		from, hasFrom, err := q.int32(p + "FromPort")
		if err != nil {
			return nil, err
		}
		to, hasTo, err := q.int32(p + "ToPort")
		if err != nil {
			return nil, err
		}
		switch proto {
		case "tcp", "udp":
			// "If the protocol is TCP or UDP, this is the start of the port
			// range" (IpPermission FromPort).
			if !hasFrom || !hasTo {
				return nil, clientError(CodeInvalidParameterValue, "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.")
			}
			if from < 0 || to > 65535 || from > to {
				return nil, clientError(CodeInvalidParameterValue, "Invalid TCP/UDP port range (%d-%d).", from, to)
			}
		case "icmp", "icmpv6":
			if !hasFrom {
				from = -1
			}
			if !hasTo {
				to = -1
			}
		default:
			// "If you specify -1 ... traffic on all ports is allowed,
			// regardless of any ports you specify" (IpPermission IpProtocol).
			from, to = -1, -1
		}
		base := SecurityGroupRule{Egress: egress, Protocol: proto, FromPort: from, ToPort: to}
		before := len(rules)
		cidrs := func(prefix string) error {
			for _, m := range q.indexes(prefix) {
				mp := prefix + "." + strconv.Itoa(m) + "."
				cidr := q.str(mp + "CidrIp")
				pfx, err := netip.ParsePrefix(cidr)
				if err != nil || !pfx.Addr().Is4() {
					return clientError(CodeInvalidParameterValue, "CIDR block %s is malformed", cidr)
				}
				r := base
				r.CIDR, r.Description = pfx.Masked().String(), q.str(mp+"Description")
				rules = append(rules, r)
			}
			return nil
		}
		if err := cidrs(p + "IpRanges"); err != nil {
			return nil, err
		}
		if p == "" && q.has("CidrIp") {
			pfx, err := netip.ParsePrefix(q.str("CidrIp"))
			if err != nil || !pfx.Addr().Is4() {
				return nil, clientError(CodeInvalidParameterValue, "CIDR block %s is malformed", q.str("CidrIp"))
			}
			r := base
			r.CIDR = pfx.Masked().String()
			rules = append(rules, r)
		}
		for _, m := range q.indexes(p + "Groups") {
			mp := p + "Groups." + strconv.Itoa(m) + "."
			peer := q.str(mp + "GroupId")
			if peer == "" {
				return nil, clientError(CodeInvalidParameterValue, "The security group peer must be given by GroupId in a nondefault VPC")
			}
			if _, err := s.findGroup(peer); err != nil {
				return nil, err
			}
			r := base
			r.PeerGroupID, r.Description = peer, q.str(mp+"Description")
			rules = append(rules, r)
		}
		if len(q.indexes(p+"Ipv6Ranges")) > 0 || len(q.indexes(p+"PrefixListIds")) > 0 {
			return nil, clientError(CodeUnsupportedOperation, "the simulator models IPv4 CIDR ranges and security group peers only")
		}
		if len(rules) == before {
			return nil, clientError(CodeInvalidParameterValue, "The request must contain either a CIDR range or a security group peer for each permission")
		}
	}
	return rules, nil
}

// authorize is AuthorizeSecurityGroupIngress
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AuthorizeSecurityGroupIngress.html)
// and AuthorizeSecurityGroupEgress (API_AuthorizeSecurityGroupEgress.html).
func (s *Sim) authorize(q query, egress bool) (result, error) {
	g, err := s.groupFor(q)
	if err != nil {
		return nil, err
	}
	rules, err := s.readPermissions(q, g.ID, egress)
	if err != nil {
		return nil, err
	}
	tags, err := tagSpecs(q, "security-group-rule")
	if err != nil {
		return nil, err
	}
	count := 0
	for _, r := range g.Rules {
		if r.Egress == egress {
			count++
		}
	}
	for i, r := range rules {
		for _, o := range append(slices.Clone(g.Rules), rules[:i]...) {
			if r.same(o) {
				return nil, clientError(CodeInvalidPermissionDuplicate, "the specified rule \"%s\" already exists", r.describe())
			}
		}
	}
	if count+len(rules) > maxRulesPerDirection {
		return nil, clientError(CodeRulesPerGroupLimitExceeded, "The maximum number of rules per security group has been reached.")
	}
	g = g.clone()
	out := &authorizeResponse{Return: true}
	for _, r := range rules {
		r = s.newRule(g.ID, r)
		r.Tags = maps.Clone(tags)
		g.Rules = append(g.Rules, r)
		out.Rules.Items = append(out.Rules.Items, s.xmlRule(r))
	}
	s.ext().groups[g.ID] = g
	return out, nil
}

// revoke is RevokeSecurityGroupIngress / Egress
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RevokeSecurityGroupIngress.html):
// by SecurityGroupRuleId.N or by IpPermissions. Permissions that match no
// rule come back in unknownIpPermissionSet ("The inbound rules that were
// unknown to the service"); when none matches, EC2 answers
// InvalidPermission.NotFound.
func (s *Sim) revoke(q query, egress bool) (result, error) {
	g, err := s.groupFor(q)
	if err != nil {
		return nil, err
	}
	ids := q.ids("SecurityGroupRuleId")
	var drop map[string]bool
	out := &revokeResponse{Return: true}
	if len(ids) > 0 {
		drop = map[string]bool{}
		for _, id := range ids {
			if !strings.HasPrefix(id, "sgr-") {
				return nil, clientError(CodeInvalidRuleIDMalformed, "Invalid id: \"%s\" (expecting \"sgr-...\")", id)
			}
			i := slices.IndexFunc(g.Rules, func(r SecurityGroupRule) bool { return r.ID == id && r.Egress == egress })
			if i < 0 {
				return nil, clientError(CodeInvalidRuleIDNotFound, "The security group rule ID '%s' does not exist", id)
			}
			drop[id] = true
		}
	} else {
		rules, err := s.readPermissions(q, g.ID, egress)
		if err != nil {
			return nil, err
		}
		drop = map[string]bool{}
		for _, r := range rules {
			i := slices.IndexFunc(g.Rules, r.same)
			if i < 0 {
				out.Unknown.Items = append(out.Unknown.Items, xmlPermissions([]SecurityGroupRule{r})...)
				continue
			}
			drop[g.Rules[i].ID] = true
		}
		if len(drop) == 0 {
			return nil, clientError(CodeInvalidPermissionNotFound, "The specified rule does not exist in this security group.")
		}
	}
	g = g.clone()
	g.Rules = slices.DeleteFunc(g.Rules, func(r SecurityGroupRule) bool {
		if drop[r.ID] {
			x := s.xmlRule(r)
			out.Revoked.Items = append(out.Revoked.Items, xmlRevokedRule{ID: r.ID, GroupID: r.GroupID, Egress: r.Egress,
				Protocol: r.Protocol, FromPort: x.FromPort, ToPort: x.ToPort, CIDR: r.CIDR, PeerGroupID: r.PeerGroupID, Description: r.Description})
			return true
		}
		return false
	})
	s.ext().groups[g.ID] = g
	return out, nil
}

// deleteSecurityGroup is DeleteSecurityGroup
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSecurityGroup.html):
// "If you attempt to delete a security group that is associated with an
// instance or network interface, is referenced by another security group
// in the same VPC, or has a VPC association, the operation fails with
// DependencyViolation."
func (s *Sim) deleteSecurityGroup(q query, _ time.Time) (result, error) {
	g, err := s.groupFor(q)
	if err != nil {
		return nil, err
	}
	st := s.ext()
	if g.ID == st.defaultGroup {
		return nil, clientError(CodeCannotDelete, "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", g.ID)
	}
	dependent := clientError(CodeDependencyViolation, "resource %s has a dependent object", g.ID)
	for _, n := range s.enis.current() {
		if slices.Contains(s.groupsOf(n.ID), g.ID) {
			return nil, dependent
		}
	}
	for _, other := range st.groups {
		if other.ID == g.ID {
			continue
		}
		for _, r := range other.Rules {
			if r.PeerGroupID == g.ID {
				return nil, dependent
			}
		}
	}
	delete(st.groups, g.ID)
	return &deleteSecurityGroupResponse{Return: true, GroupID: g.ID}, nil
}

// groupsOf returns an ENI's security groups. Call with s.mu held.
func (s *Sim) groupsOf(eniID string) []string {
	if gs, ok := s.ext().eniGroups[eniID]; ok {
		return gs
	}
	return []string{s.ensureDefaultGroup()}
}

var securityGroupFilters = filterTable[SecurityGroup]{
	"group-id":    func(g SecurityGroup) []string { return one(g.ID) },
	"group-name":  func(g SecurityGroup) []string { return one(g.Name) },
	"vpc-id":      func(g SecurityGroup) []string { return one(g.VPCID) },
	"description": func(g SecurityGroup) []string { return one(g.Description) },
	"owner-id":    func(SecurityGroup) []string { return one(ownerID) },
	"ip-permission.protocol": func(g SecurityGroup) []string {
		return ruleField(g, false, func(r SecurityGroupRule) string { return r.Protocol })
	},
	"ip-permission.from-port": func(g SecurityGroup) []string {
		return ruleField(g, false, func(r SecurityGroupRule) string { return strconv.Itoa(int(r.FromPort)) })
	},
	"ip-permission.to-port": func(g SecurityGroup) []string {
		return ruleField(g, false, func(r SecurityGroupRule) string { return strconv.Itoa(int(r.ToPort)) })
	},
	"ip-permission.cidr": func(g SecurityGroup) []string {
		return ruleField(g, false, func(r SecurityGroupRule) string { return r.CIDR })
	},
	"ip-permission.group-id": func(g SecurityGroup) []string {
		return ruleField(g, false, func(r SecurityGroupRule) string { return r.PeerGroupID })
	},
	"egress.ip-permission.protocol": func(g SecurityGroup) []string {
		return ruleField(g, true, func(r SecurityGroupRule) string { return r.Protocol })
	},
	"egress.ip-permission.cidr": func(g SecurityGroup) []string {
		return ruleField(g, true, func(r SecurityGroupRule) string { return r.CIDR })
	},
	"egress.ip-permission.group-id": func(g SecurityGroup) []string {
		return ruleField(g, true, func(r SecurityGroupRule) string { return r.PeerGroupID })
	},
}

func ruleField(g SecurityGroup, egress bool, f func(SecurityGroupRule) string) []string {
	var out []string
	for _, r := range g.Rules {
		if v := f(r); r.Egress == egress && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// describeSecurityGroups is DescribeSecurityGroups
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSecurityGroups.html):
// GroupId.N, GroupName.N (default VPC only: none here), filters, MaxResults
// 5..1000 (not with ids) and NextToken.
func (s *Sim) describeSecurityGroups(q query, _ time.Time) (result, error) {
	s.ensureDefaultGroup()
	ids, names := q.ids("GroupId"), q.ids("GroupName")
	if (len(ids) > 0 || len(names) > 0) && q.has("MaxResults") {
		return nil, clientError(CodeInvalidParameterCombo, "The parameter groupIds cannot be used with the parameter maxResults")
	}
	p, err := q.page(1000)
	if err != nil {
		return nil, err
	}
	match, err := compileFilters(q.filters(), securityGroupFilters, func(g SecurityGroup) map[string]string { return g.Tags })
	if err != nil {
		return nil, err
	}
	st := s.ext()
	var items []SecurityGroup
	if len(names) > 0 {
		// "[Default VPC] The names of the security groups."
		return nil, clientError(CodeInvalidGroupNotFound, "The security group '%s' does not exist in default VPC 'none'", names[0])
	}
	if len(ids) > 0 {
		for _, id := range ids {
			g, err := s.findGroup(id)
			if err != nil {
				return nil, err
			}
			items = append(items, g)
		}
	} else {
		for _, id := range slices.Sorted(maps.Keys(st.groups)) {
			items = append(items, st.groups[id])
		}
	}
	slices.SortFunc(items, func(a, b SecurityGroup) int { return strings.Compare(a.ID, b.ID) })
	items = slices.DeleteFunc(items, func(g SecurityGroup) bool { return !match(g) })
	page, next := paginate(items, func(g SecurityGroup) string { return g.ID }, p)
	out := &describeSecurityGroupsResponse{NextToken: next}
	for _, g := range page {
		out.Groups.Items = append(out.Groups.Items, s.xmlGroup(g))
	}
	return out, nil
}

var ruleFilters = filterTable[SecurityGroupRule]{
	"group-id":               func(r SecurityGroupRule) []string { return one(r.GroupID) },
	"security-group-rule-id": func(r SecurityGroupRule) []string { return one(r.ID) },
}

// describeSecurityGroupRules is DescribeSecurityGroupRules
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSecurityGroupRules.html):
// SecurityGroupRuleId.N, filters group-id, security-group-rule-id and
// tags, MaxResults 5..1000.
func (s *Sim) describeSecurityGroupRules(q query, _ time.Time) (result, error) {
	s.ensureDefaultGroup()
	p, err := q.page(1000)
	if err != nil {
		return nil, err
	}
	match, err := compileFilters(q.filters(), ruleFilters, func(r SecurityGroupRule) map[string]string { return r.Tags })
	if err != nil {
		return nil, err
	}
	var all []SecurityGroupRule
	for _, g := range s.ext().groups {
		all = append(all, g.Rules...)
	}
	slices.SortFunc(all, func(a, b SecurityGroupRule) int { return strings.Compare(a.ID, b.ID) })
	if ids := q.ids("SecurityGroupRuleId"); len(ids) > 0 {
		var picked []SecurityGroupRule
		for _, id := range ids {
			i := slices.IndexFunc(all, func(r SecurityGroupRule) bool { return r.ID == id })
			if i < 0 {
				return nil, clientError(CodeInvalidRuleIDNotFound, "The security group rule ID '%s' does not exist", id)
			}
			picked = append(picked, all[i])
		}
		all = picked
		slices.SortFunc(all, func(a, b SecurityGroupRule) int { return strings.Compare(a.ID, b.ID) })
	}
	all = slices.DeleteFunc(all, func(r SecurityGroupRule) bool { return !match(r) })
	page, next := paginate(all, func(r SecurityGroupRule) string { return r.ID }, p)
	out := &describeRulesResponse{NextToken: next}
	for _, r := range page {
		out.Rules.Items = append(out.Rules.Items, s.xmlRule(r))
	}
	return out, nil
}

// SecurityGroups returns every security group's true current state (the
// VPC's default one included), by id.
func (s *Sim) SecurityGroups() []SecurityGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureDefaultGroup()
	st := s.ext()
	out := make([]SecurityGroup, 0, len(st.groups))
	for _, id := range slices.Sorted(maps.Keys(st.groups)) {
		out = append(out, st.groups[id].clone())
	}
	return out
}

// NetworkInterfaceGroups returns the security group ids of an ENI.
func (s *Sim) NetworkInterfaceGroups(eniID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.groupsOf(eniID))
}

// XML.

type xmlIPRange struct {
	CIDR        string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

type xmlGroupPair struct {
	Description string `xml:"description,omitempty"`
	GroupID     string `xml:"groupId"`
	UserID      string `xml:"userId"`
}

type xmlPermission struct {
	Protocol string            `xml:"ipProtocol"`
	FromPort *int32            `xml:"fromPort,omitempty"`
	ToPort   *int32            `xml:"toPort,omitempty"`
	Groups   set[xmlGroupPair] `xml:"groups"`
	IPRanges set[xmlIPRange]   `xml:"ipRanges"`
	IPv6     set[empty]        `xml:"ipv6Ranges"`
	Prefixes set[empty]        `xml:"prefixListIds"`
	key      [3]string         // protocol/from/to, to merge peers of one permission
}

// xmlPermissions folds rules into EC2's IpPermission shape: one permission
// per protocol and port range, its peers listed inside.
func xmlPermissions(rules []SecurityGroupRule) []xmlPermission {
	var out []xmlPermission
	for _, r := range rules {
		key := [3]string{r.Protocol, strconv.Itoa(int(r.FromPort)), strconv.Itoa(int(r.ToPort))}
		i := slices.IndexFunc(out, func(p xmlPermission) bool { return p.key == key })
		if i < 0 {
			p := xmlPermission{Protocol: r.Protocol, key: key}
			if r.Protocol != "-1" {
				from, to := r.FromPort, r.ToPort
				p.FromPort, p.ToPort = &from, &to
			}
			out = append(out, p)
			i = len(out) - 1
		}
		if r.CIDR != "" {
			out[i].IPRanges.Items = append(out[i].IPRanges.Items, xmlIPRange{CIDR: r.CIDR, Description: r.Description})
		} else {
			out[i].Groups.Items = append(out[i].Groups.Items, xmlGroupPair{GroupID: r.PeerGroupID, UserID: ownerID, Description: r.Description})
		}
	}
	return out
}

type xmlSecurityGroup struct {
	OwnerID     string             `xml:"ownerId"`
	GroupID     string             `xml:"groupId"`
	GroupName   string             `xml:"groupName"`
	Description string             `xml:"groupDescription"`
	VPCID       string             `xml:"vpcId"`
	Ingress     set[xmlPermission] `xml:"ipPermissions"`
	Egress      set[xmlPermission] `xml:"ipPermissionsEgress"`
	TagSet      *set[xmlTag]       `xml:"tagSet,omitempty"`
	ARN         string             `xml:"securityGroupArn"`
}

func (s *Sim) xmlGroup(g SecurityGroup) xmlSecurityGroup {
	x := xmlSecurityGroup{OwnerID: ownerID, GroupID: g.ID, GroupName: g.Name, Description: g.Description, VPCID: g.VPCID,
		TagSet: tagSet(g.Tags), ARN: s.groupARN(g.ID)}
	var in, eg []SecurityGroupRule
	for _, r := range g.Rules {
		if r.Egress {
			eg = append(eg, r)
		} else {
			in = append(in, r)
		}
	}
	x.Ingress.Items, x.Egress.Items = xmlPermissions(in), xmlPermissions(eg)
	return x
}

type xmlReferencedGroup struct {
	GroupID string `xml:"groupId"`
	UserID  string `xml:"userId"`
}

type xmlRule struct {
	ID          string              `xml:"securityGroupRuleId"`
	GroupID     string              `xml:"groupId"`
	GroupOwner  string              `xml:"groupOwnerId"`
	Egress      bool                `xml:"isEgress"`
	Protocol    string              `xml:"ipProtocol"`
	FromPort    int32               `xml:"fromPort"`
	ToPort      int32               `xml:"toPort"`
	CIDR        string              `xml:"cidrIpv4,omitempty"`
	Referenced  *xmlReferencedGroup `xml:"referencedGroupInfo,omitempty"`
	Description string              `xml:"description,omitempty"`
	TagSet      *set[xmlTag]        `xml:"tagSet,omitempty"`
	ARN         string              `xml:"securityGroupRuleArn"`
}

func (s *Sim) xmlRule(r SecurityGroupRule) xmlRule {
	x := xmlRule{ID: r.ID, GroupID: r.GroupID, GroupOwner: ownerID, Egress: r.Egress, Protocol: r.Protocol,
		FromPort: r.FromPort, ToPort: r.ToPort, CIDR: r.CIDR, Description: r.Description, TagSet: tagSet(r.Tags),
		ARN: fmt.Sprintf("arn:aws:ec2:%s:%s:security-group-rule/%s", s.opts.Region, ownerID, r.ID)}
	if r.PeerGroupID != "" {
		x.Referenced = &xmlReferencedGroup{GroupID: r.PeerGroupID, UserID: ownerID}
	}
	return x
}

type xmlRevokedRule struct {
	ID          string `xml:"securityGroupRuleId"`
	GroupID     string `xml:"groupId"`
	Egress      bool   `xml:"isEgress"`
	Protocol    string `xml:"ipProtocol"`
	FromPort    int32  `xml:"fromPort"`
	ToPort      int32  `xml:"toPort"`
	CIDR        string `xml:"cidrIpv4,omitempty"`
	PeerGroupID string `xml:"referencedGroupId,omitempty"`
	Description string `xml:"description,omitempty"`
}

type createSecurityGroupResponse struct {
	reqID
	GroupID string       `xml:"groupId"`
	TagSet  *set[xmlTag] `xml:"tagSet,omitempty"`
	ARN     string       `xml:"securityGroupArn"`
}

type authorizeResponse struct {
	reqID
	Return bool         `xml:"return"`
	Rules  set[xmlRule] `xml:"securityGroupRuleSet"`
}

type revokeResponse struct {
	reqID
	Return  bool                `xml:"return"`
	Unknown set[xmlPermission]  `xml:"unknownIpPermissionSet"`
	Revoked set[xmlRevokedRule] `xml:"revokedSecurityGroupRuleSet"`
}

type deleteSecurityGroupResponse struct {
	reqID
	Return  bool   `xml:"return"`
	GroupID string `xml:"groupId"`
}

type describeSecurityGroupsResponse struct {
	reqID
	Groups    set[xmlSecurityGroup] `xml:"securityGroupInfo"`
	NextToken string                `xml:"nextToken,omitempty"`
}

type describeRulesResponse struct {
	reqID
	Rules     set[xmlRule] `xml:"securityGroupRuleSet"`
	NextToken string       `xml:"nextToken,omitempty"`
}

// createTagsAll is CreateTags (tags.go) that also tags security groups,
// security group rules and images, which the operator tags after creating
// them or to adopt them. Every id is checked before anything changes, as
// in EC2 ("CreateTags", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateTags.html).
func (s *Sim) createTagsAll(q query, now time.Time) (result, error) {
	ids := q.ids("ResourceId")
	var mine, rest []string
	for _, id := range ids {
		switch {
		case strings.HasPrefix(id, "sg-"), strings.HasPrefix(id, "sgr-"), strings.HasPrefix(id, "ami-"):
			mine = append(mine, id)
		default:
			rest = append(rest, id)
		}
	}
	if len(mine) == 0 {
		return s.createTags(q, now)
	}
	tags, err := q.tags()
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, errMissing("Tag")
	}
	for _, t := range tags {
		if err := checkTag(t); err != nil {
			return nil, err
		}
	}
	st := s.ext()
	s.ensureDefaultGroup()
	ruleGroup := map[string]string{}
	for _, id := range mine {
		// CreateTags answers a malformed id of any type with InvalidID
		// (as tags.go does for an unknown prefix).
		if _, hex, _ := strings.Cut(id, "-"); (len(hex) != 8 && len(hex) != 17) || strings.Trim(hex, "0123456789abcdef") != "" {
			return nil, clientError(CodeInvalidID, "The ID '%s' is not valid", id)
		}
		switch {
		case strings.HasPrefix(id, "sgr-"):
			found := false
			for _, g := range st.groups {
				if slices.ContainsFunc(g.Rules, func(r SecurityGroupRule) bool { return r.ID == id }) {
					ruleGroup[id], found = g.ID, true
				}
			}
			if !found {
				return nil, clientError(CodeInvalidRuleIDNotFound, "The security group rule ID '%s' does not exist", id)
			}
		case strings.HasPrefix(id, "sg-"):
			if _, err := s.findGroup(id); err != nil {
				return nil, err
			}
		default:
			if err := checkImageID(id); err != nil {
				return nil, err
			}
			if _, ok := st.images[id]; !ok {
				return nil, clientError(CodeInvalidImageIDNotFound, "The image id '[%s]' does not exist", id)
			}
		}
	}
	if len(rest) > 0 {
		// The others go through tags.go, which checks them all first.
		sub := query{form: maps.Clone(q.form)}
		for k := range sub.form {
			if strings.HasPrefix(k, "ResourceId.") {
				delete(sub.form, k)
			}
		}
		for i, id := range rest {
			sub.form.Set("ResourceId."+strconv.Itoa(i+1), id)
		}
		if _, err := s.createTags(sub, now); err != nil {
			return nil, err
		}
	}
	merge := func(m map[string]string) map[string]string {
		m = maps.Clone(m)
		if m == nil {
			m = map[string]string{}
		}
		for _, t := range tags {
			m[t.Key] = t.Value
		}
		return m
	}
	for _, id := range mine {
		switch {
		case strings.HasPrefix(id, "sgr-"):
			g := st.groups[ruleGroup[id]].clone()
			for i := range g.Rules {
				if g.Rules[i].ID == id {
					g.Rules[i].Tags = merge(g.Rules[i].Tags)
				}
			}
			st.groups[g.ID] = g
		case strings.HasPrefix(id, "sg-"):
			g := st.groups[id].clone()
			g.Tags = merge(g.Tags)
			st.groups[id] = g
		default:
			img := st.images[id]
			img.Tags = merge(img.Tags)
			st.images[id] = img
		}
	}
	return &returnResponse{Return: true}, nil
}

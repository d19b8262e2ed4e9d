package iamsim

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

type members[T any] struct {
	Items []T `xml:"member"`
}

type xmlTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func tagList(tags map[string]string) *members[xmlTag] {
	if len(tags) == 0 {
		return nil
	}
	m := &members[xmlTag]{}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		m.Items = append(m.Items, xmlTag{Key: k, Value: tags[k]})
	}
	return m
}

type xmlRole struct {
	Path               string           `xml:"Path"`
	RoleName           string           `xml:"RoleName"`
	RoleID             string           `xml:"RoleId"`
	ARN                string           `xml:"Arn"`
	CreateDate         string           `xml:"CreateDate"`
	AssumeRolePolicy   string           `xml:"AssumeRolePolicyDocument"`
	Description        string           `xml:"Description,omitempty"`
	MaxSessionDuration int              `xml:"MaxSessionDuration"`
	Tags               *members[xmlTag] `xml:"Tags,omitempty"`
}

func xmlRoleOf(r *Role) xmlRole {
	return xmlRole{Path: r.Path, RoleName: r.Name, RoleID: r.ID, ARN: r.ARN, CreateDate: xmlTime(r.CreateDate),
		AssumeRolePolicy: encodePolicy(r.AssumeRolePolicy), Description: r.Description,
		MaxSessionDuration: r.MaxSessionDuration, Tags: tagList(r.Tags)}
}

type xmlProfile struct {
	Path       string           `xml:"Path"`
	Name       string           `xml:"InstanceProfileName"`
	ID         string           `xml:"InstanceProfileId"`
	ARN        string           `xml:"Arn"`
	CreateDate string           `xml:"CreateDate"`
	Roles      members[xmlRole] `xml:"Roles"`
	Tags       *members[xmlTag] `xml:"Tags,omitempty"`
}

func (s *Service) xmlProfileOf(p *InstanceProfile) xmlProfile {
	x := xmlProfile{Path: p.Path, Name: p.Name, ID: p.ID, ARN: p.ARN, CreateDate: xmlTime(p.CreateDate), Tags: tagList(p.Tags)}
	if r := s.roles[strings.ToLower(p.Role)]; r != nil {
		// Roles inside a profile come without their tags.
		xr := xmlRoleOf(r)
		xr.Tags = nil
		x.Roles.Items = []xmlRole{xr}
	}
	return x
}

func (s *Service) role(name string) (*Role, *APIError) {
	if err := checkName(name, "roleName", 64); err != nil {
		return nil, err
	}
	r := s.roles[strings.ToLower(name)]
	if r == nil {
		return nil, errNoSuchEntity("The role with name %s cannot be found.", name)
	}
	return r, nil
}

func (s *Service) profile(name string) (*InstanceProfile, *APIError) {
	if err := checkName(name, "instanceProfileName", 128); err != nil {
		return nil, err
	}
	p := s.profiles[strings.ToLower(name)]
	if p == nil {
		return nil, errNoSuchEntity("Instance Profile %s cannot be found.", name)
	}
	return p, nil
}

// maxTags is "Tags per IAM resource: 50" (IAM and AWS STS quotas,
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
const maxTags = 50

// createRole is CreateRole
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
func (s *Service) createRole(q query, now time.Time) (any, *APIError) {
	name := q.str("RoleName")
	if err := checkName(name, "roleName", 64); err != nil {
		return nil, err
	}
	path, err := checkPath(q.str("Path"))
	if err != nil {
		return nil, err
	}
	doc := q.str("AssumeRolePolicyDocument")
	if doc == "" {
		return nil, errNull("assumeRolePolicyDocument")
	}
	if len(doc) > 131072 {
		return nil, errValidation("...", "assumeRolePolicyDocument", "Member must have length less than or equal to 131072")
	}
	if err := checkPolicy(doc, true); err != nil {
		return nil, err
	}
	desc := q.str("Description")
	if len(desc) > 1000 {
		return nil, errValidation(desc, "description", "Member must have length less than or equal to 1000")
	}
	// MaxSessionDuration: "Valid Range: Minimum value of 3600. Maximum
	// value of 43200." Default 3600.
	maxSession := 3600
	if raw := q.str("MaxSessionDuration"); raw != "" {
		n, convErr := strconv.Atoi(raw)
		if convErr != nil || n < 3600 || n > 43200 {
			return nil, errValidation(raw, "maxSessionDuration", "Member must have value between 3600 and 43200")
		}
		maxSession = n
	}
	tags, err := q.tags()
	if err != nil {
		return nil, err
	}
	if len(tags) > maxTags {
		return nil, errLimit("The number of tags has reached the maximum limit.")
	}
	// "Role names must be unique within the account. Role names are not
	// distinguished by case."
	if s.roles[strings.ToLower(name)] != nil {
		return nil, errExists("Role with name %s already exists.", name)
	}
	r := &Role{Name: name, Path: path, ID: s.newID("AROA"), ARN: "arn:aws:iam::" + AccountID + ":role" + path + name,
		CreateDate: now, AssumeRolePolicy: doc, Description: desc, MaxSessionDuration: maxSession, Tags: tags,
		Policies: map[string]string{}}
	s.roles[strings.ToLower(name)] = r
	return struct {
		Role xmlRole `xml:"Role"`
	}{xmlRoleOf(r)}, nil
}

// getRole is GetRole (API_GetRole.html).
func (s *Service) getRole(q query, _ time.Time) (any, *APIError) {
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	return struct {
		Role xmlRole `xml:"Role"`
	}{xmlRoleOf(r)}, nil
}

// deleteRole is DeleteRole (API_DeleteRole.html): "Unlike the Amazon Web
// Services Management Console, when you delete a role programmatically,
// you must delete the items attached to the role manually, or the deletion
// fails": inline policies (DeleteRolePolicy) and instance profiles
// (RemoveRoleFromInstanceProfile).
func (s *Service) deleteRole(q query, _ time.Time) (any, *APIError) {
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	if len(r.Policies) > 0 {
		return nil, errConflict("Cannot delete entity, must delete policies first.")
	}
	for _, p := range s.profiles {
		if strings.EqualFold(p.Role, r.Name) {
			return nil, errConflict("Cannot delete entity, must remove roles from instance profile first.")
		}
	}
	delete(s.roles, strings.ToLower(r.Name))
	return nil, nil
}

// updateAssumeRolePolicy is UpdateAssumeRolePolicy
// (API_UpdateAssumeRolePolicy.html): replaces the trust policy.
func (s *Service) updateAssumeRolePolicy(q query, _ time.Time) (any, *APIError) {
	doc := q.str("PolicyDocument")
	if doc == "" {
		return nil, errNull("policyDocument")
	}
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	if err := checkPolicy(doc, true); err != nil {
		return nil, err
	}
	r.AssumeRolePolicy = doc
	return nil, nil
}

// tagRole is TagRole (API_TagRole.html): "If a tag with the same key name
// already exists, then that tag is overwritten with the new value."
func (s *Service) tagRole(q query, _ time.Time) (any, *APIError) {
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	tags, err := q.tags()
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, errNull("tags")
	}
	merged := maps.Clone(r.Tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	if len(merged) > maxTags {
		return nil, errLimit("The number of tags has reached the maximum limit.")
	}
	r.Tags = merged
	return nil, nil
}

// untagRole is UntagRole (API_UntagRole.html).
func (s *Service) untagRole(q query, _ time.Time) (any, *APIError) {
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	for _, k := range q.list("TagKeys") {
		delete(r.Tags, k)
	}
	return nil, nil
}

type listResult struct {
	IsTruncated bool   `xml:"IsTruncated"`
	Marker      string `xml:"Marker,omitempty"`
}

// page cuts items by Marker/MaxItems ("MaxItems: Valid Range: Minimum value
// of 1. Maximum value of 1000", default 100); the marker is an index.
func page[T any](q query, items []T) ([]T, listResult, *APIError) {
	maxItems := 100
	if raw := q.str("MaxItems"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 1000 {
			return nil, listResult{}, errValidation(raw, "maxItems", "Member must have value between 1 and 1000")
		}
		maxItems = n
	}
	start := 0
	if m := q.str("Marker"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 || n > len(items) {
			return nil, listResult{}, apiErr(http.StatusBadRequest, CodeInvalidInput, "Invalid Marker.")
		}
		start = n
	}
	items = items[start:]
	if len(items) <= maxItems {
		return items, listResult{}, nil
	}
	return items[:maxItems], listResult{IsTruncated: true, Marker: strconv.Itoa(start + maxItems)}, nil
}

// listRoleTags is ListRoleTags (API_ListRoleTags.html).
func (s *Service) listRoleTags(q query, _ time.Time) (any, *APIError) {
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	var all []xmlTag
	if l := tagList(r.Tags); l != nil {
		all = l.Items
	}
	items, lr, err := page(q, all)
	if err != nil {
		return nil, err
	}
	return struct {
		Tags members[xmlTag] `xml:"Tags"`
		listResult
	}{members[xmlTag]{items}, lr}, nil
}

// maxInlineRolePolicy is "Role policy size cannot exceed 10,240
// characters" (IAM quotas: the aggregate of a role's inline policies,
// whitespace not counted).
const maxInlineRolePolicy = 10240

func policySize(doc string) int {
	n := 0
	for _, r := range doc {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

// putRolePolicy is PutRolePolicy (API_PutRolePolicy.html): adds or
// replaces an inline policy.
func (s *Service) putRolePolicy(q query, _ time.Time) (any, *APIError) {
	name := q.str("PolicyName")
	if err := checkName(name, "policyName", 128); err != nil {
		return nil, err
	}
	doc := q.str("PolicyDocument")
	if doc == "" {
		return nil, errNull("policyDocument")
	}
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	if err := checkPolicy(doc, false); err != nil {
		return nil, err
	}
	total := policySize(doc)
	for n, d := range r.Policies {
		if n != name {
			total += policySize(d)
		}
	}
	if total > maxInlineRolePolicy {
		return nil, errLimit("Maximum policy size of %d bytes exceeded for role %s", maxInlineRolePolicy, r.Name)
	}
	r.Policies[name] = doc
	return nil, nil
}

// getRolePolicy is GetRolePolicy (API_GetRolePolicy.html).
func (s *Service) getRolePolicy(q query, _ time.Time) (any, *APIError) {
	name := q.str("PolicyName")
	if err := checkName(name, "policyName", 128); err != nil {
		return nil, err
	}
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	doc, ok := r.Policies[name]
	if !ok {
		return nil, errNoSuchEntity("The role policy with name %s cannot be found.", name)
	}
	return struct {
		RoleName       string `xml:"RoleName"`
		PolicyName     string `xml:"PolicyName"`
		PolicyDocument string `xml:"PolicyDocument"`
	}{r.Name, name, encodePolicy(doc)}, nil
}

// deleteRolePolicy is DeleteRolePolicy (API_DeleteRolePolicy.html).
func (s *Service) deleteRolePolicy(q query, _ time.Time) (any, *APIError) {
	name := q.str("PolicyName")
	if err := checkName(name, "policyName", 128); err != nil {
		return nil, err
	}
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	if _, ok := r.Policies[name]; !ok {
		return nil, errNoSuchEntity("The role policy with name %s cannot be found.", name)
	}
	delete(r.Policies, name)
	return nil, nil
}

// listRolePolicies is ListRolePolicies (API_ListRolePolicies.html).
func (s *Service) listRolePolicies(q query, _ time.Time) (any, *APIError) {
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	items, lr, err := page(q, slices.Sorted(maps.Keys(r.Policies)))
	if err != nil {
		return nil, err
	}
	return struct {
		PolicyNames members[string] `xml:"PolicyNames"`
		listResult
	}{members[string]{items}, lr}, nil
}

// createInstanceProfile is CreateInstanceProfile
// (API_CreateInstanceProfile.html).
func (s *Service) createInstanceProfile(q query, now time.Time) (any, *APIError) {
	name := q.str("InstanceProfileName")
	if err := checkName(name, "instanceProfileName", 128); err != nil {
		return nil, err
	}
	path, err := checkPath(q.str("Path"))
	if err != nil {
		return nil, err
	}
	tags, err := q.tags()
	if err != nil {
		return nil, err
	}
	if len(tags) > maxTags {
		return nil, errLimit("The number of tags has reached the maximum limit.")
	}
	if s.profiles[strings.ToLower(name)] != nil {
		return nil, errExists("Instance Profile %s already exists.", name)
	}
	p := &InstanceProfile{Name: name, Path: path, ID: s.newID("AIPA"),
		ARN: "arn:aws:iam::" + AccountID + ":instance-profile" + path + name, CreateDate: now, Tags: tags}
	s.profiles[strings.ToLower(name)] = p
	return struct {
		Profile xmlProfile `xml:"InstanceProfile"`
	}{s.xmlProfileOf(p)}, nil
}

// getInstanceProfile is GetInstanceProfile (API_GetInstanceProfile.html).
func (s *Service) getInstanceProfile(q query, _ time.Time) (any, *APIError) {
	p, err := s.profile(q.str("InstanceProfileName"))
	if err != nil {
		return nil, err
	}
	return struct {
		Profile xmlProfile `xml:"InstanceProfile"`
	}{s.xmlProfileOf(p)}, nil
}

// deleteInstanceProfile is DeleteInstanceProfile
// (API_DeleteInstanceProfile.html): "The instance profile must not have an
// associated role."
func (s *Service) deleteInstanceProfile(q query, _ time.Time) (any, *APIError) {
	p, err := s.profile(q.str("InstanceProfileName"))
	if err != nil {
		return nil, err
	}
	if p.Role != "" {
		return nil, errConflict("Cannot delete entity, must remove roles from instance profile first.")
	}
	delete(s.profiles, strings.ToLower(p.Name))
	return nil, nil
}

// addRoleToInstanceProfile is AddRoleToInstanceProfile
// (API_AddRoleToInstanceProfile.html): "The caller of this operation must
// be granted the PassRole permission ... Amazon Web Services limits the
// number of roles per instance profile to one" (Instance profiles,
// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_switch-role-ec2_instance-profiles.html:
// "An instance profile can contain only one IAM role").
func (s *Service) addRoleToInstanceProfile(q query, _ time.Time) (any, *APIError) {
	p, err := s.profile(q.str("InstanceProfileName"))
	if err != nil {
		return nil, err
	}
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	if p.Role != "" {
		return nil, errLimit("Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
	}
	p.Role = r.Name
	return nil, nil
}

// removeRoleFromInstanceProfile is RemoveRoleFromInstanceProfile
// (API_RemoveRoleFromInstanceProfile.html).
func (s *Service) removeRoleFromInstanceProfile(q query, _ time.Time) (any, *APIError) {
	p, err := s.profile(q.str("InstanceProfileName"))
	if err != nil {
		return nil, err
	}
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(p.Role, r.Name) {
		return nil, errNoSuchEntity("The role with name %s cannot be found in instance profile %s.", r.Name, p.Name)
	}
	p.Role = ""
	return nil, nil
}

// listInstanceProfilesForRole is ListInstanceProfilesForRole
// (API_ListInstanceProfilesForRole.html): what must be emptied before
// DeleteRole.
func (s *Service) listInstanceProfilesForRole(q query, _ time.Time) (any, *APIError) {
	r, err := s.role(q.str("RoleName"))
	if err != nil {
		return nil, err
	}
	var all []xmlProfile
	for _, k := range slices.Sorted(maps.Keys(s.profiles)) {
		if p := s.profiles[k]; strings.EqualFold(p.Role, r.Name) {
			all = append(all, s.xmlProfileOf(p))
		}
	}
	items, lr, err := page(q, all)
	if err != nil {
		return nil, err
	}
	return struct {
		Profiles members[xmlProfile] `xml:"InstanceProfiles"`
		listResult
	}{members[xmlProfile]{items}, lr}, nil
}

// The Go API, for tests and harnesses.

// Role returns a copy of the named role (case-insensitive).
func (s *Service) Role(name string) (Role, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roles[strings.ToLower(name)]
	if r == nil {
		return Role{}, false
	}
	c := *r
	c.Tags, c.Policies = maps.Clone(r.Tags), maps.Clone(r.Policies)
	return c, true
}

// InstanceProfile returns a copy of the named profile (case-insensitive).
func (s *Service) InstanceProfile(name string) (InstanceProfile, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.profiles[strings.ToLower(name)]
	if p == nil {
		return InstanceProfile{}, false
	}
	c := *p
	c.Tags = maps.Clone(p.Tags)
	return c, true
}

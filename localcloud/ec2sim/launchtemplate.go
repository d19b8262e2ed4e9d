package ec2sim

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Launch templates: CreateLaunchTemplate, CreateLaunchTemplateVersion,
// DescribeLaunchTemplates, DescribeLaunchTemplateVersions,
// ModifyLaunchTemplate (the default version) and DeleteLaunchTemplate, for
// the parts of LaunchTemplateData a zkaas launch uses: ImageId,
// InstanceType, UserData (base64), MetadataOptions (HttpTokens,
// HttpPutResponseHopLimit, HttpEndpoint), IamInstanceProfile,
// SecurityGroupIds, TagSpecifications and NetworkInterfaces. Error codes
// are EC2's, from "Error codes for the Amazon EC2 API"
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
// Launch templates are read as they are now: Describe calls do not lag for
// them.

// LaunchTemplate is one launch template with all its versions.
type LaunchTemplate struct {
	ID             string                  `json:"launchTemplateId"`
	Name           string                  `json:"launchTemplateName"`
	CreateTime     time.Time               `json:"createTime"`
	DefaultVersion int64                   `json:"defaultVersionNumber"`
	LatestVersion  int64                   `json:"latestVersionNumber"`
	Tags           map[string]string       `json:"tags,omitempty"`
	Versions       []LaunchTemplateVersion `json:"versions"` // by number, ascending
}

// LaunchTemplateVersion is one immutable version.
type LaunchTemplateVersion struct {
	Number      int64              `json:"versionNumber"`
	Description string             `json:"versionDescription,omitempty"`
	CreateTime  time.Time          `json:"createTime"`
	Data        LaunchTemplateData `json:"launchTemplateData"`
}

// LaunchTemplateData is the modelled part of EC2's LaunchTemplateData
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RequestLaunchTemplateData.html).
type LaunchTemplateData struct {
	ImageID            string                  `json:"imageId,omitempty"`
	InstanceType       string                  `json:"instanceType,omitempty"`
	UserData           string                  `json:"userData,omitempty"` // base64, as sent
	IAMInstanceProfile *IAMInstanceProfile     `json:"iamInstanceProfile,omitempty"`
	MetadataOptions    *MetadataOptions        `json:"metadataOptions,omitempty"`
	SecurityGroupIDs   []string                `json:"securityGroupIds,omitempty"`
	TagSpecifications  []TagSpecification      `json:"tagSpecifications,omitempty"`
	NetworkInterfaces  []LaunchTemplateENISpec `json:"networkInterfaces,omitempty"`
}

// IAMInstanceProfile names an instance profile by ARN or name.
type IAMInstanceProfile struct {
	ARN  string `json:"arn,omitempty"`
	Name string `json:"name,omitempty"`
}

// MetadataOptions are the instance's IMDS settings
// (API_LaunchTemplateInstanceMetadataOptionsRequest.html).
type MetadataOptions struct {
	HTTPTokens      string `json:"httpTokens,omitempty"`              // optional | required
	HTTPPutHopLimit int32  `json:"httpPutResponseHopLimit,omitempty"` // 1..64
	HTTPEndpoint    string `json:"httpEndpoint,omitempty"`            // enabled | disabled
}

// TagSpecification tags resources created at launch.
type TagSpecification struct {
	ResourceType string            `json:"resourceType"`
	Tags         map[string]string `json:"tags"`
}

// LaunchTemplateENISpec is one NetworkInterfaces entry.
type LaunchTemplateENISpec struct {
	DeviceIndex         int32    `json:"deviceIndex"`
	SubnetID            string   `json:"subnetId,omitempty"`
	NetworkInterfaceID  string   `json:"networkInterfaceId,omitempty"`
	Description         string   `json:"description,omitempty"`
	SecurityGroupIDs    []string `json:"groups,omitempty"`
	AssociatePublicIP   *bool    `json:"associatePublicIpAddress,omitempty"`
	DeleteOnTermination *bool    `json:"deleteOnTermination,omitempty"`
}

// DecodedUserData returns the user data as the instance sees it in IMDS.
func (d LaunchTemplateData) DecodedUserData() ([]byte, error) {
	return base64.StdEncoding.DecodeString(d.UserData)
}

// InstanceTags returns the tags the data's TagSpecifications put on an
// instance.
func (d LaunchTemplateData) InstanceTags() map[string]string {
	out := map[string]string{}
	for _, ts := range d.TagSpecifications {
		if ts.ResourceType == "instance" {
			maps.Copy(out, ts.Tags)
		}
	}
	return out
}

func (d LaunchTemplateData) clone() LaunchTemplateData {
	if d.IAMInstanceProfile != nil {
		p := *d.IAMInstanceProfile
		d.IAMInstanceProfile = &p
	}
	if d.MetadataOptions != nil {
		m := *d.MetadataOptions
		d.MetadataOptions = &m
	}
	d.SecurityGroupIDs = slices.Clone(d.SecurityGroupIDs)
	d.TagSpecifications = slices.Clone(d.TagSpecifications)
	for i := range d.TagSpecifications {
		d.TagSpecifications[i].Tags = maps.Clone(d.TagSpecifications[i].Tags)
	}
	d.NetworkInterfaces = slices.Clone(d.NetworkInterfaces)
	for i := range d.NetworkInterfaces {
		d.NetworkInterfaces[i].SecurityGroupIDs = slices.Clone(d.NetworkInterfaces[i].SecurityGroupIDs)
	}
	return d
}

func (t LaunchTemplate) clone() LaunchTemplate {
	t.Tags = maps.Clone(t.Tags)
	t.Versions = slices.Clone(t.Versions)
	for i := range t.Versions {
		t.Versions[i].Data = t.Versions[i].Data.clone()
	}
	return t
}

// version returns the numbered version.
func (t LaunchTemplate) version(n int64) (LaunchTemplateVersion, bool) {
	i, ok := slices.BinarySearchFunc(t.Versions, n, func(v LaunchTemplateVersion, n int64) int { return cmp.Compare(v.Number, n) })
	if !ok {
		return LaunchTemplateVersion{}, false
	}
	return t.Versions[i], true
}

// ltState is a Sim's launch templates and what instances were launched
// from.
type ltState struct {
	byID     map[string]LaunchTemplate
	launched map[string]LaunchTemplateData // instance id -> data it was launched with
}

// templates returns s's launch template state. Call with s.mu held.
func (s *Sim) templates() *ltState {
	if s.lt == nil {
		s.lt = &ltState{byID: map[string]LaunchTemplate{}, launched: map[string]LaunchTemplateData{}}
	}
	return s.lt
}

// Error codes of launch template calls.
const (
	CodeInvalidLaunchTemplateIDMalformed       = "InvalidLaunchTemplateId.Malformed"
	CodeInvalidLaunchTemplateIDNotFound        = "InvalidLaunchTemplateId.NotFound"
	CodeInvalidLaunchTemplateIDVersionNotFound = "InvalidLaunchTemplateId.VersionNotFound"
	CodeInvalidLaunchTemplateNameExists        = "InvalidLaunchTemplateName.AlreadyExistsException"
	CodeInvalidLaunchTemplateNameMalformed     = "InvalidLaunchTemplateName.MalformedException"
	CodeInvalidLaunchTemplateNameNotFound      = "InvalidLaunchTemplateName.NotFoundException"
	CodeInvalidUserDataMalformed               = "InvalidUserData.Malformed"
)

// launchTemplateName is CreateLaunchTemplate's constraint: "Length
// Constraints: Minimum length of 3. Maximum length of 128. Pattern:
// [a-zA-Z0-9\(\)\.\-/_]+"
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html).
var launchTemplateName = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)

func errTemplateIDNotFound(id string) *APIError {
	return clientError(CodeInvalidLaunchTemplateIDNotFound, "The specified launch template, with template ID %s, does not exist.", id)
}

func errTemplateNameNotFound(name string) *APIError {
	return clientError(CodeInvalidLaunchTemplateNameNotFound, "The specified launch template, with template name %s, does not exist.", name)
}

func errVersionNotFound(v, id string) *APIError {
	return clientError(CodeInvalidLaunchTemplateIDVersionNotFound, "Could not find launch template version %s for launch template %s. The specified launch template version does not exist.", v, id)
}

func checkTemplateID(id string) *APIError {
	rest, ok := strings.CutPrefix(id, "lt-")
	if !ok || len(rest) != 17 || strings.Trim(rest, "0123456789abcdef") != "" {
		return clientError(CodeInvalidLaunchTemplateIDMalformed, "The specified ID for the launch template (%s) is malformed. Ensure that you specify the launch template ID in the form lt-xxxxxxxxxxxxxxxxx.", id)
	}
	return nil
}

// findTemplate finds a template by id or name (one of them). Call with
// s.mu held.
func (s *Sim) findTemplate(id, name string) (LaunchTemplate, *APIError) {
	st := s.templates()
	switch {
	case id != "" && name != "":
		return LaunchTemplate{}, clientError(CodeInvalidParameterCombo, "Both a launch template ID and a launch template name were specified. Specify only one.")
	case id != "":
		if err := checkTemplateID(id); err != nil {
			return LaunchTemplate{}, err
		}
		t, ok := st.byID[id]
		if !ok {
			return LaunchTemplate{}, errTemplateIDNotFound(id)
		}
		return t, nil
	case name != "":
		for _, t := range st.byID {
			if t.Name == name {
				return t, nil
			}
		}
		return LaunchTemplate{}, errTemplateNameNotFound(name)
	}
	return LaunchTemplate{}, clientError(CodeMissingParameter, "The request must contain the parameter launchTemplateName or launchTemplateId")
}

// resolveVersion turns a version ("3", "$Latest", "$Default", "" =
// $Default) into a number of t.
func resolveVersion(t LaunchTemplate, v string) (LaunchTemplateVersion, *APIError) {
	var n int64
	switch v {
	case "", "$Default":
		n = t.DefaultVersion
	case "$Latest":
		n = t.LatestVersion
	default:
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil || n < 1 {
			return LaunchTemplateVersion{}, clientError(CodeInvalidParameterValue, "Invalid value '%s' for version. Specify a version number, $Latest or $Default.", v)
		}
	}
	ver, ok := t.version(n)
	if !ok {
		return LaunchTemplateVersion{}, errVersionNotFound(v, t.ID)
	}
	return ver, nil
}

// readTemplateData reads LaunchTemplateData.* over base (for a new version
// based on SourceVersion): each given top-level field replaces the base's.
func readTemplateData(q query, base LaunchTemplateData) (LaunchTemplateData, bool, error) {
	d := base.clone()
	given := false
	p := "LaunchTemplateData."
	for key := range q.form {
		if strings.HasPrefix(key, p) {
			given = true
			break
		}
	}
	if v := q.str(p + "ImageId"); v != "" {
		d.ImageID = v
	}
	if v := q.str(p + "InstanceType"); v != "" {
		if err := checkInstanceType(v); err != nil {
			return d, given, err
		}
		d.InstanceType = v
	}
	if q.has(p + "UserData") {
		v := q.str(p + "UserData")
		// UserData: "The user data must be base64-encoded."
		if _, err := base64.StdEncoding.DecodeString(v); err != nil {
			return d, given, clientError(CodeInvalidUserDataMalformed, "Invalid BASE64 encoding of user data.")
		}
		d.UserData = v
	}
	if arn, name := q.str(p+"IamInstanceProfile.Arn"), q.str(p+"IamInstanceProfile.Name"); arn != "" || name != "" {
		d.IAMInstanceProfile = &IAMInstanceProfile{ARN: arn, Name: name}
	}
	mp := p + "MetadataOptions."
	if q.has(mp+"HttpTokens") || q.has(mp+"HttpPutResponseHopLimit") || q.has(mp+"HttpEndpoint") {
		m := &MetadataOptions{HTTPTokens: q.str(mp + "HttpTokens"), HTTPEndpoint: q.str(mp + "HttpEndpoint")}
		if m.HTTPTokens != "" && m.HTTPTokens != "optional" && m.HTTPTokens != "required" {
			return d, given, clientError(CodeInvalidParameterValue, "Invalid value '%s' for HttpTokens. Valid values are optional, required.", m.HTTPTokens)
		}
		if m.HTTPEndpoint != "" && m.HTTPEndpoint != "enabled" && m.HTTPEndpoint != "disabled" {
			return d, given, clientError(CodeInvalidParameterValue, "Invalid value '%s' for HttpEndpoint. Valid values are enabled, disabled.", m.HTTPEndpoint)
		}
		hop, ok, err := q.int32(mp + "HttpPutResponseHopLimit")
		if err != nil {
			return d, given, err
		}
		// HttpPutResponseHopLimit: "Possible values: Integers from 1 to 64".
		if ok && (hop < 1 || hop > 64) {
			return d, given, clientError(CodeInvalidParameterValue, "The HttpPutResponseHopLimit must be between 1 and 64.")
		}
		m.HTTPPutHopLimit = hop
		d.MetadataOptions = m
	}
	if sgs := q.list(p + "SecurityGroupId"); len(sgs) > 0 {
		d.SecurityGroupIDs = sgs
	}
	if ns := q.indexes(p + "TagSpecification"); len(ns) > 0 {
		d.TagSpecifications = nil
		for _, n := range ns {
			tp := p + "TagSpecification." + strconv.Itoa(n)
			ts := TagSpecification{ResourceType: q.str(tp + ".ResourceType"), Tags: map[string]string{}}
			switch ts.ResourceType {
			case "instance", "volume", "network-interface", "spot-instances-request":
			default:
				return d, given, clientError(CodeInvalidParameterValue, "'%s' is not a valid taggable resource type for this operation.", ts.ResourceType)
			}
			tags, err := query{form: subForm(q, tp+".")}.tags()
			if err != nil {
				return d, given, err
			}
			for _, t := range tags {
				if strings.HasPrefix(t.Key, "aws:") {
					return d, given, clientError(CodeInvalidParameterValue, "Tag keys starting with 'aws:' are reserved for internal use")
				}
				ts.Tags[t.Key] = t.Value
			}
			d.TagSpecifications = append(d.TagSpecifications, ts)
		}
	}
	if ns := q.indexes(p + "NetworkInterface"); len(ns) > 0 {
		d.NetworkInterfaces = nil
		for _, n := range ns {
			np := p + "NetworkInterface." + strconv.Itoa(n) + "."
			e := LaunchTemplateENISpec{SubnetID: q.str(np + "SubnetId"), NetworkInterfaceID: q.str(np + "NetworkInterfaceId"),
				Description: q.str(np + "Description"), SecurityGroupIDs: q.list(np + "SecurityGroupId")}
			idx, _, err := q.int32(np + "DeviceIndex")
			if err != nil {
				return d, given, err
			}
			e.DeviceIndex = idx
			if b, ok, err := q.bool(np + "AssociatePublicIpAddress"); err != nil {
				return d, given, err
			} else if ok {
				e.AssociatePublicIP = &b
			}
			if b, ok, err := q.bool(np + "DeleteOnTermination"); err != nil {
				return d, given, err
			} else if ok {
				e.DeleteOnTermination = &b
			}
			d.NetworkInterfaces = append(d.NetworkInterfaces, e)
		}
		// "If you specify a network interface, you must specify any
		// security groups as part of the network interface, and not in the
		// SecurityGroupIds parameter" (RunInstances, SecurityGroupIds).
		if len(d.SecurityGroupIDs) > 0 && slices.ContainsFunc(d.NetworkInterfaces, func(e LaunchTemplateENISpec) bool { return e.DeviceIndex == 0 }) {
			return d, given, clientError(CodeInvalidParameterCombo, "Network interfaces and an instance-level security groups may not be specified on the same request")
		}
	}
	return d, given, nil
}

// subForm returns the keys under prefix with the prefix cut, so that
// query.tags can read "Tag.N.Key" below a TagSpecification.
func subForm(q query, prefix string) map[string][]string {
	out := map[string][]string{}
	for k, v := range q.form {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = v
		}
	}
	return out
}

// createLaunchTemplate is CreateLaunchTemplate
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html).
func (s *Sim) createLaunchTemplate(q query, now time.Time) (result, error) {
	name, err := q.required("LaunchTemplateName")
	if err != nil {
		return nil, err
	}
	if !launchTemplateName.MatchString(name) {
		return nil, clientError(CodeInvalidLaunchTemplateNameMalformed, "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'")
	}
	st := s.templates()
	for _, t := range st.byID {
		if t.Name == name {
			return nil, clientError(CodeInvalidLaunchTemplateNameExists, "Launch template name already in use.")
		}
	}
	data, given, err := readTemplateData(q, LaunchTemplateData{})
	if err != nil {
		return nil, err
	}
	if !given {
		return nil, errMissing("LaunchTemplateData")
	}
	tags := map[string]string{}
	for _, n := range q.indexes("TagSpecification") {
		tp := "TagSpecification." + strconv.Itoa(n)
		if rt := q.str(tp + ".ResourceType"); rt != "launch-template" {
			return nil, clientError(CodeInvalidParameterValue, "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		ts, err := query{form: subForm(q, tp+".")}.tags()
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			tags[t.Key] = t.Value
		}
	}
	t := LaunchTemplate{
		ID: s.newID("lt-"), Name: name, CreateTime: now, DefaultVersion: 1, LatestVersion: 1, Tags: tags,
		Versions: []LaunchTemplateVersion{{Number: 1, Description: q.str("VersionDescription"), CreateTime: now, Data: data}},
	}
	st.byID[t.ID] = t
	return &launchTemplateResponse{Template: xmlTemplate(t)}, nil
}

// createLaunchTemplateVersion is CreateLaunchTemplateVersion
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplateVersion.html):
// with SourceVersion, the new version "inherits the same launch parameters
// as the source version, except for parameters that you specify in
// LaunchTemplateData".
func (s *Sim) createLaunchTemplateVersion(q query, now time.Time) (result, error) {
	t, apiErr := s.findTemplate(q.str("LaunchTemplateId"), q.str("LaunchTemplateName"))
	if apiErr != nil {
		return nil, apiErr
	}
	var base LaunchTemplateData
	if sv := q.str("SourceVersion"); sv != "" {
		src, apiErr := resolveVersion(t, sv)
		if apiErr != nil {
			return nil, apiErr
		}
		base = src.Data
	}
	data, given, err := readTemplateData(q, base)
	if err != nil {
		return nil, err
	}
	if !given {
		return nil, errMissing("LaunchTemplateData")
	}
	t = t.clone()
	t.LatestVersion++
	v := LaunchTemplateVersion{Number: t.LatestVersion, Description: q.str("VersionDescription"), CreateTime: now, Data: data}
	t.Versions = append(t.Versions, v)
	s.templates().byID[t.ID] = t
	return &launchTemplateVersionResponse{Version: xmlVersion(t, v)}, nil
}

// describeLaunchTemplates is DescribeLaunchTemplates
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLaunchTemplates.html):
// by LaunchTemplateId.N or LaunchTemplateName.N, Filter (create-time,
// launch-template-name, tag:<key>, tag-key), MaxResults 1 to 200.
func (s *Sim) describeLaunchTemplates(q query, _ time.Time) (result, error) {
	st := s.templates()
	ids, names := q.ids("LaunchTemplateId"), q.ids("LaunchTemplateName")
	var list []LaunchTemplate
	for _, id := range ids {
		if err := checkTemplateID(id); err != nil {
			return nil, err
		}
		t, ok := st.byID[id]
		if !ok {
			return nil, errTemplateIDNotFound(id)
		}
		list = append(list, t)
	}
	for _, name := range names {
		t, err := s.findTemplate("", name)
		if err != nil {
			// DescribeLaunchTemplates' own wording for a name.
			return nil, clientError(CodeInvalidLaunchTemplateNameNotFound, "At least one of the launch templates specified in the request does not exist.")
		}
		list = append(list, t)
	}
	if len(ids) == 0 && len(names) == 0 {
		list = slices.Collect(maps.Values(st.byID))
	}
	slices.SortFunc(list, func(a, b LaunchTemplate) int { return cmp.Compare(a.ID, b.ID) })
	list = slices.CompactFunc(list, func(a, b LaunchTemplate) bool { return a.ID == b.ID })
	match, err := compileFilters(q.filters(), filterTable[LaunchTemplate]{
		"launch-template-name": func(t LaunchTemplate) []string { return one(t.Name) },
		"create-time":          func(t LaunchTemplate) []string { return one(xmlTime(t.CreateTime)) },
	}, func(t LaunchTemplate) map[string]string { return t.Tags })
	if err != nil {
		return nil, err
	}
	list = slices.DeleteFunc(list, func(t LaunchTemplate) bool { return !match(t) })
	p, err := templatePage(q)
	if err != nil {
		return nil, err
	}
	page, next := paginate(list, func(t LaunchTemplate) string { return t.ID }, p)
	out := &describeLaunchTemplatesResponse{NextToken: next}
	for _, t := range page {
		out.Templates.Items = append(out.Templates.Items, xmlTemplate(t))
	}
	return out, nil
}

// templatePage reads MaxResults (1 to 200 for launch templates, where
// other Describe calls want at least 5) and NextToken.
func templatePage(q query) (page, error) {
	var p page
	if raw := q.str("MaxResults"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 200 {
			return p, clientError(CodeInvalidParameterValue, "Value ( %s ) for parameter maxResults is invalid. Expecting a value between 1 and 200.", raw)
		}
		p.max = n
	}
	if tok := q.str("NextToken"); tok != "" {
		after, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(after) == 0 {
			return p, clientError(CodeInvalidPaginationToken, "Invalid pagination token: '%s'", tok)
		}
		p.after = string(after)
	}
	return p, nil
}

// describeLaunchTemplateVersions is DescribeLaunchTemplateVersions
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLaunchTemplateVersions.html):
// one template's versions, all or LaunchTemplateVersion.N (numbers,
// $Latest, $Default) or MinVersion..MaxVersion; without a template, only
// $Latest and/or $Default, of every template.
func (s *Sim) describeLaunchTemplateVersions(q query, _ time.Time) (result, error) {
	want := q.list("LaunchTemplateVersion")
	id, name := q.str("LaunchTemplateId"), q.str("LaunchTemplateName")
	var templates []LaunchTemplate
	if id == "" && name == "" {
		for _, v := range want {
			if v != "$Latest" && v != "$Default" {
				return nil, clientError(CodeMissingParameter, "The request must contain the parameter launchTemplateName or launchTemplateId")
			}
		}
		if len(want) == 0 {
			return nil, clientError(CodeMissingParameter, "The request must contain the parameter launchTemplateName or launchTemplateId")
		}
		templates = slices.Collect(maps.Values(s.templates().byID))
		slices.SortFunc(templates, func(a, b LaunchTemplate) int { return cmp.Compare(a.ID, b.ID) })
	} else {
		t, err := s.findTemplate(id, name)
		if err != nil {
			return nil, err
		}
		templates = []LaunchTemplate{t}
	}
	minV, _, err := int64Param(q, "MinVersion")
	if err != nil {
		return nil, err
	}
	maxV, hasMax, err := int64Param(q, "MaxVersion")
	if err != nil {
		return nil, err
	}
	type row struct {
		t LaunchTemplate
		v LaunchTemplateVersion
	}
	var rows []row
	for _, t := range templates {
		if len(want) > 0 {
			for _, w := range want {
				v, err := resolveVersion(t, w)
				if err != nil {
					return nil, err
				}
				if !slices.ContainsFunc(rows, func(r row) bool { return r.t.ID == t.ID && r.v.Number == v.Number }) {
					rows = append(rows, row{t, v})
				}
			}
			continue
		}
		for _, v := range t.Versions {
			if v.Number >= minV && (!hasMax || v.Number <= maxV) {
				rows = append(rows, row{t, v})
			}
		}
	}
	p, err := templatePage(q)
	if err != nil {
		return nil, err
	}
	key := func(r row) string { return fmt.Sprintf("%s/%020d", r.t.ID, r.v.Number) }
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(key(a), key(b)) })
	page, next := paginate(rows, key, p)
	out := &describeLaunchTemplateVersionsResponse{NextToken: next}
	for _, r := range page {
		out.Versions.Items = append(out.Versions.Items, xmlVersion(r.t, r.v))
	}
	return out, nil
}

func int64Param(q query, name string) (int64, bool, error) {
	raw := q.str(name)
	if raw == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, false, clientError(CodeInvalidParameterValue, "Invalid value '%s' for %s", raw, name)
	}
	return n, true, nil
}

// modifyLaunchTemplate is ModifyLaunchTemplate
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyLaunchTemplate.html):
// SetDefaultVersion ("DefaultVersion" in the SDK).
func (s *Sim) modifyLaunchTemplate(q query, _ time.Time) (result, error) {
	t, apiErr := s.findTemplate(q.str("LaunchTemplateId"), q.str("LaunchTemplateName"))
	if apiErr != nil {
		return nil, apiErr
	}
	if dv := q.str("SetDefaultVersion"); dv != "" {
		n, err := strconv.ParseInt(dv, 10, 64)
		if _, ok := t.version(n); err != nil || !ok {
			return nil, errVersionNotFound(dv, t.ID)
		}
		t = t.clone()
		t.DefaultVersion = n
		s.templates().byID[t.ID] = t
	}
	return &launchTemplateResponse{Template: xmlTemplate(t)}, nil
}

// deleteLaunchTemplate is DeleteLaunchTemplate
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteLaunchTemplate.html):
// all versions go.
func (s *Sim) deleteLaunchTemplate(q query, _ time.Time) (result, error) {
	t, apiErr := s.findTemplate(q.str("LaunchTemplateId"), q.str("LaunchTemplateName"))
	if apiErr != nil {
		return nil, apiErr
	}
	delete(s.templates().byID, t.ID)
	return &launchTemplateResponse{Template: xmlTemplate(t)}, nil
}

// XML, with the element names aws-sdk-go-v2's ec2query deserializers read.

type xmlLaunchTemplate struct {
	ID             string       `xml:"launchTemplateId"`
	Name           string       `xml:"launchTemplateName"`
	CreateTime     string       `xml:"createTime"`
	CreatedBy      string       `xml:"createdBy"`
	DefaultVersion int64        `xml:"defaultVersionNumber"`
	LatestVersion  int64        `xml:"latestVersionNumber"`
	TagSet         *set[xmlTag] `xml:"tagSet,omitempty"`
}

type xmlLTMetadata struct {
	HTTPTokens   string `xml:"httpTokens,omitempty"`
	HopLimit     int32  `xml:"httpPutResponseHopLimit,omitempty"`
	HTTPEndpoint string `xml:"httpEndpoint,omitempty"`
	State        string `xml:"state"`
}

type xmlLTProfile struct {
	ARN  string `xml:"arn,omitempty"`
	Name string `xml:"name,omitempty"`
}

type xmlLTTagSpec struct {
	ResourceType string       `xml:"resourceType"`
	TagSet       *set[xmlTag] `xml:"tagSet,omitempty"`
}

type xmlLTENI struct {
	AssociatePublicIP   *bool    `xml:"associatePublicIpAddress,omitempty"`
	DeleteOnTermination *bool    `xml:"deleteOnTermination,omitempty"`
	Description         string   `xml:"description,omitempty"`
	DeviceIndex         int32    `xml:"deviceIndex"`
	Groups              []string `xml:"groupSet>groupId"`
	NetworkInterfaceID  string   `xml:"networkInterfaceId,omitempty"`
	SubnetID            string   `xml:"subnetId,omitempty"`
}

type xmlLTData struct {
	IAMInstanceProfile *xmlLTProfile      `xml:"iamInstanceProfile,omitempty"`
	ImageID            string             `xml:"imageId,omitempty"`
	InstanceType       string             `xml:"instanceType,omitempty"`
	MetadataOptions    *xmlLTMetadata     `xml:"metadataOptions,omitempty"`
	NetworkInterfaces  *set[xmlLTENI]     `xml:"networkInterfaceSet,omitempty"`
	SecurityGroupIDs   *set[string]       `xml:"securityGroupIdSet,omitempty"`
	TagSpecifications  *set[xmlLTTagSpec] `xml:"tagSpecificationSet,omitempty"`
	UserData           string             `xml:"userData,omitempty"`
}

type xmlLTVersion struct {
	ID             string    `xml:"launchTemplateId"`
	Name           string    `xml:"launchTemplateName"`
	Number         int64     `xml:"versionNumber"`
	Description    string    `xml:"versionDescription,omitempty"`
	CreateTime     string    `xml:"createTime"`
	CreatedBy      string    `xml:"createdBy"`
	DefaultVersion bool      `xml:"defaultVersion"`
	Data           xmlLTData `xml:"launchTemplateData"`
}

func createdBy() string { return "arn:aws:iam::" + ownerID + ":root" }

func xmlTemplate(t LaunchTemplate) xmlLaunchTemplate {
	return xmlLaunchTemplate{ID: t.ID, Name: t.Name, CreateTime: xmlTime(t.CreateTime), CreatedBy: createdBy(),
		DefaultVersion: t.DefaultVersion, LatestVersion: t.LatestVersion, TagSet: tagSet(t.Tags)}
}

func xmlVersion(t LaunchTemplate, v LaunchTemplateVersion) xmlLTVersion {
	d := v.Data
	x := xmlLTVersion{ID: t.ID, Name: t.Name, Number: v.Number, Description: v.Description, CreateTime: xmlTime(v.CreateTime),
		CreatedBy: createdBy(), DefaultVersion: v.Number == t.DefaultVersion,
		Data: xmlLTData{ImageID: d.ImageID, InstanceType: d.InstanceType, UserData: d.UserData}}
	if p := d.IAMInstanceProfile; p != nil {
		x.Data.IAMInstanceProfile = &xmlLTProfile{ARN: p.ARN, Name: p.Name}
	}
	if m := d.MetadataOptions; m != nil {
		x.Data.MetadataOptions = &xmlLTMetadata{HTTPTokens: m.HTTPTokens, HopLimit: m.HTTPPutHopLimit, HTTPEndpoint: m.HTTPEndpoint, State: "applied"}
	}
	if len(d.SecurityGroupIDs) > 0 {
		x.Data.SecurityGroupIDs = &set[string]{Items: d.SecurityGroupIDs}
	}
	if len(d.TagSpecifications) > 0 {
		x.Data.TagSpecifications = &set[xmlLTTagSpec]{}
		for _, ts := range d.TagSpecifications {
			x.Data.TagSpecifications.Items = append(x.Data.TagSpecifications.Items, xmlLTTagSpec{ResourceType: ts.ResourceType, TagSet: tagSet(ts.Tags)})
		}
	}
	if len(d.NetworkInterfaces) > 0 {
		x.Data.NetworkInterfaces = &set[xmlLTENI]{}
		for _, e := range d.NetworkInterfaces {
			x.Data.NetworkInterfaces.Items = append(x.Data.NetworkInterfaces.Items, xmlLTENI{
				AssociatePublicIP: e.AssociatePublicIP, DeleteOnTermination: e.DeleteOnTermination, Description: e.Description,
				DeviceIndex: e.DeviceIndex, Groups: e.SecurityGroupIDs, NetworkInterfaceID: e.NetworkInterfaceID, SubnetID: e.SubnetID,
			})
		}
	}
	return x
}

type launchTemplateResponse struct {
	reqID
	Template xmlLaunchTemplate `xml:"launchTemplate"`
}

type launchTemplateVersionResponse struct {
	reqID
	Version xmlLTVersion `xml:"launchTemplateVersion"`
}

type describeLaunchTemplatesResponse struct {
	reqID
	Templates set[xmlLaunchTemplate] `xml:"launchTemplates"`
	NextToken string                 `xml:"nextToken,omitempty"`
}

type describeLaunchTemplateVersionsResponse struct {
	reqID
	Versions  set[xmlLTVersion] `xml:"launchTemplateVersionSet"`
	NextToken string            `xml:"nextToken,omitempty"`
}

// launchTemplateActions are the launch template calls for the dispatch
// table.
var launchTemplateActions = map[string]action{
	"CreateLaunchTemplate":           {mutating: true, run: (*Sim).createLaunchTemplate},
	"CreateLaunchTemplateVersion":    {mutating: true, run: (*Sim).createLaunchTemplateVersion},
	"DescribeLaunchTemplates":        {idParam: "LaunchTemplateId", run: (*Sim).describeLaunchTemplates},
	"DescribeLaunchTemplateVersions": {idParam: "LaunchTemplateVersion", run: (*Sim).describeLaunchTemplateVersions},
	"ModifyLaunchTemplate":           {mutating: true, run: (*Sim).modifyLaunchTemplate},
	"DeleteLaunchTemplate":           {mutating: true, run: (*Sim).deleteLaunchTemplate},
}

// The Go API, for harnesses and the Auto Scaling simulator.

// CreateLaunchTemplate creates a template with one version, as the API call
// does, for harnesses (no latency, no throttling).
func (s *Sim) CreateLaunchTemplate(name string, data LaunchTemplateData) (LaunchTemplate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.templates()
	if !launchTemplateName.MatchString(name) {
		return LaunchTemplate{}, fmt.Errorf("create launch template: %w", clientError(CodeInvalidLaunchTemplateNameMalformed, "invalid launch template name %q", name))
	}
	for _, t := range st.byID {
		if t.Name == name {
			return LaunchTemplate{}, fmt.Errorf("create launch template: %w", clientError(CodeInvalidLaunchTemplateNameExists, "Launch template name already in use."))
		}
	}
	if _, err := base64.StdEncoding.DecodeString(data.UserData); err != nil {
		return LaunchTemplate{}, fmt.Errorf("create launch template: %w", clientError(CodeInvalidUserDataMalformed, "Invalid BASE64 encoding of user data."))
	}
	now := time.Now()
	t := LaunchTemplate{ID: s.newID("lt-"), Name: name, CreateTime: now, DefaultVersion: 1, LatestVersion: 1,
		Versions: []LaunchTemplateVersion{{Number: 1, CreateTime: now, Data: data.clone()}}}
	st.byID[t.ID] = t
	return t.clone(), nil
}

// ResolveLaunchTemplate returns a template (by id or by name) and one of
// its versions ("3", "$Latest", "$Default"; "" is $Default), or EC2's error
// (an *APIError inside).
func (s *Sim) ResolveLaunchTemplate(id, name, version string) (LaunchTemplate, LaunchTemplateVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, apiErr := s.findTemplate(id, name)
	if apiErr != nil {
		return LaunchTemplate{}, LaunchTemplateVersion{}, apiErr
	}
	v, apiErr := resolveVersion(t, version)
	if apiErr != nil {
		return LaunchTemplate{}, LaunchTemplateVersion{}, apiErr
	}
	return t.clone(), LaunchTemplateVersion{Number: v.Number, Description: v.Description, CreateTime: v.CreateTime, Data: v.Data.clone()}, nil
}

// SubnetAZ returns a subnet's Availability Zone, or EC2's not-found error.
func (s *Sim) SubnetAZ(id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := subnetKind.find(s.subnets, id)
	if err != nil {
		return "", err
	}
	return sub.AZ, nil
}

// RunInstanceFromTemplate launches an instance as RunInstances with a
// launch template version does: in subnetID (which, as an Auto Scaling
// group's subnet does, overrides the template's network interface subnet),
// of the data's instance type (Options.InstanceType if none), with the
// data's instance TagSpecifications and then tags as its tags. Unlike
// CreateTags, tags may use the aws: prefix: the caller is AWS (Auto
// Scaling's aws:autoscaling:groupName). The data is kept for
// InstanceLaunchData (user data for a local cloud's IMDS).
func (s *Sim) RunInstanceFromTemplate(subnetID string, data LaunchTemplateData, tags map[string]string) (Instance, error) {
	itype := data.InstanceType
	if itype == "" {
		itype = s.opts.InstanceType
	}
	inst, err := s.RunInstanceOfType(subnetID, itype)
	if err != nil {
		return Instance{}, err
	}
	all := data.InstanceTags()
	maps.Copy(all, tags)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.templates().launched[inst.ID] = data.clone()
	if len(all) == 0 {
		return inst, nil
	}
	// Tagged at launch, as TagSpecifications are: every recorded version
	// of the new instance carries the tags, so no Describe within its lag
	// ever shows it untagged.
	h := s.instances.m[inst.ID]
	if h == nil {
		return inst, nil
	}
	for i := range h.vs {
		if !h.vs[i].gone {
			v := h.vs[i].v.clone()
			v.Tags = maps.Clone(all)
			h.vs[i].v = v
		}
	}
	inst.Tags = all
	return inst, nil
}

// InstanceLaunchData returns the launch template data an instance was
// launched with by RunInstanceFromTemplate.
func (s *Sim) InstanceLaunchData(instanceID string) (LaunchTemplateData, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.templates().launched[instanceID]
	return d.clone(), ok
}

// Package deploy turns an ensemble config and its deploy section into the
// desired AWS resources of the ensemble: what `zkaas plan` compares with
// what exists and `zkaas up` creates. It is pure: no SDK, no calls.
//
// Every resource has a kind and a name unique within the ensemble; the name
// is what finds it again (a tag, or the resource's own unique name for IAM,
// launch templates and groups), so an `up` that stopped midway resumes
// instead of duplicating.
package deploy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/iampolicy"
)

// Tags every resource zkaas creates carries besides the ensemble's own
// identity tags: ManagedBy says it is zkaas's to change and delete, Name
// which resource of the ensemble it is.
const (
	TagManagedBy = "zkaas:managed-by"
	ManagedBy    = "zkaas"
	TagResource  = "zkaas:resource"
	// HookName is the launch lifecycle hook firstboot's health stage
	// completes (it completes hooks whose name starts with "zkaas").
	HookName = "zkaas-launch"
	// Margin is added to the boot's own bounds for the grace period and
	// the hook's heartbeat: instance start, image boot and ZooKeeper's JVM
	// start before firstboot's clock runs.
	Margin = 5 * time.Minute
	// maxHeartbeat is Auto Scaling's limit on a hook's heartbeat timeout
	// (30..7200 s): https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutLifecycleHook.html
	maxHeartbeat = 2 * time.Hour
	// maxUserData is EC2's limit on user data before base64:
	// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html
	maxUserData = 16 << 10
)

// Kind is a resource type.
type Kind string

// The kinds, in the order up creates them (down deletes in reverse).
const (
	KindSecurityGroup  Kind = "security-group"
	KindENI            Kind = "network-interface"
	KindVolume         Kind = "volume"
	KindRole           Kind = "iam-role"
	KindProfile        Kind = "instance-profile"
	KindTemplate       Kind = "launch-template"
	KindGroup          Kind = "auto-scaling-group"
	KindSnapshotPolicy Kind = "snapshot-policy"
)

// Order is the dependency order of the kinds.
var Order = []Kind{KindSecurityGroup, KindENI, KindVolume, KindRole, KindProfile, KindTemplate, KindGroup, KindSnapshotPolicy}

// Data reports whether resources of kind k hold the ensemble's identity and
// data: down keeps them unless told otherwise.
func (k Kind) Data() bool { return k == KindENI || k == KindVolume }

// Resource is one desired resource. Spec is one of the *Spec types below.
type Resource struct {
	Kind Kind
	Name string
	Spec any
}

func (r Resource) String() string { return string(r.Kind) + " " + r.Name }

// SecurityGroupSpec is a VPC security group and its ingress rules; egress
// stays EC2's default (all outbound).
type SecurityGroupSpec struct {
	GroupName   string
	Description string
	Ingress     []Rule
}

// Rule admits one TCP port from a CIDR, a security group id, or a group of
// this ensemble by name (SelfGroup: the group itself).
type Rule struct {
	Port        int
	CIDR        string
	GroupID     string
	SelfGroup   bool
	Description string
}

// sourceRules admit port from each CIDR, then from each security group.
func sourceRules(port int, prefixes []netip.Prefix, groups []string, desc string) []Rule {
	var out []Rule
	for _, p := range prefixes {
		out = append(out, Rule{Port: port, CIDR: p.String(), Description: desc})
	}
	for _, g := range groups {
		out = append(out, Rule{Port: port, GroupID: g, Description: desc})
	}
	return out
}

func (r Rule) String() string {
	from := r.CIDR
	switch {
	case r.GroupID != "":
		from = r.GroupID
	case r.SelfGroup:
		from = "itself"
	}
	return fmt.Sprintf("tcp/%d from %s", r.Port, from)
}

// ENISpec is a node's network interface: its fixed IP in its AZ's subnet
// (Subnet empty: looked up by AZ and IP), in the nodes' security group.
type ENISpec struct {
	Node          int
	AZ            string
	IP            netip.Addr
	Subnet        string
	SecurityGroup string // resource name
	Description   string
}

// VolumeSpec is a node's data volume.
type VolumeSpec struct {
	Node int
	AZ   string
	ensemble.DeployVolume
}

// RoleSpec is the instance role with firstboot's policy inline.
type RoleSpec struct {
	RoleName     string
	AssumePolicy string // JSON
	PolicyName   string
	Policy       string // JSON
}

// ProfileSpec is the instance profile holding the role.
type ProfileSpec struct {
	ProfileName string
	Role        string // role name
}

// TemplateSpec is a launch template: IMDSv2 required with a hop limit of 1
// (the instance's own processes only, not containers behind a bridge), the
// ensemble config as user data.
type TemplateSpec struct {
	TemplateName  string
	ImageID       string
	InstanceType  string
	Profile       string // instance profile name
	SecurityGroup string // resource name, for the primary interface
	UserData      []byte // raw MIME, not base64
	HopLimit      int
	Node          int // pinned node, 0 for a per-AZ template
}

// GroupSpec is an Auto Scaling group over one AZ's subnet.
type GroupSpec struct {
	GroupName string
	AZ        string
	Subnet    string // empty: the subnet of the AZ's nodes
	Template  string // template name
	Size      int
	Grace     time.Duration
	Hook      Hook
	Suspended []string
	Node      int
}

// Hook is the launch lifecycle hook.
type Hook struct {
	Name          string
	Heartbeat     time.Duration
	DefaultResult string
}

// SnapshotPolicySpec is a DLM policy: a daily snapshot of the ensemble's
// volumes, Retain kept.
type SnapshotPolicySpec struct {
	Description   string
	ExecutionRole string
	Retain        int
	TargetTags    map[string]string
}

// Desired is the whole ensemble in AWS.
type Desired struct {
	Ensemble string
	Region   string
	Tags     map[string]string // on every resource zkaas creates
	// NodeTag is the identity tag key (claim.tags.node) ENIs and volumes
	// also carry, with their node id.
	NodeTag string
	// EnsembleTag is the key of the ensemble tag (claim.tags.ensemble).
	EnsembleTag string
	Resources   []Resource
}

// Find returns the desired resource of kind k named name.
func (d *Desired) Find(k Kind, name string) (Resource, bool) {
	for _, r := range d.Resources {
		if r.Kind == k && r.Name == name {
			return r, true
		}
	}
	return Resource{}, false
}

// Names of the ensemble's resources.
const (
	NodesGroup    = "nodes"
	InstanceGroup = "instances"
)

// NodeName names node n's ENI and volume.
func NodeName(n int) string { return "node-" + strconv.Itoa(n) }

// For computes the desired state of cfg; raw is the config file's bytes,
// which travel as user data. cfg must have passed ensemble validation.
func For(cfg ensemble.Config, raw []byte) (Desired, error) {
	if !cfg.HasDeploy() {
		return Desired{}, errors.New("the config has no deploy section: add deploy.image_id and deploy.instance_type (see README, Deploying on AWS)")
	}
	if cfg.Node != 0 {
		return Desired{}, fmt.Errorf("node: %d is set: a deploy config describes every node; per-node groups pin the node in each template's user data", cfg.Node)
	}
	d := cfg.Deploy
	ens := cfg.Ensemble
	prefix := "zkaas-" + ens
	out := Desired{Ensemble: ens, Region: cfg.Region(), NodeTag: cfg.Claim.Tags.Node, EnsembleTag: cfg.Claim.Tags.Ensemble, Tags: map[string]string{
		cfg.Claim.Tags.Ensemble: ens,
		TagManagedBy:            ManagedBy,
	}}
	add := func(k Kind, name string, spec any) {
		out.Resources = append(out.Resources, Resource{Kind: k, Name: name, Spec: spec})
	}
	z := cfg.ZooKeeper
	var ingress []Rule
	// With zookeeper.tls serving clients over TLS only, nothing listens on
	// client_port: the group does not open it either (tls.go opens the
	// secure port, to the same clients and the peers).
	plaintext := !z.TLS.PlaintextClosed()
	if plaintext {
		ingress = append(ingress, sourceRules(z.ClientPort, d.ClientPrefixes(), d.Client.SecurityGroups, "ZooKeeper clients")...)
	}
	ingress = append(ingress, metricsRules(cfg)...)
	ingress = append(ingress, tlsRules(cfg)...) // tls.go
	// The nodes reach each other's client port too (zkCli on a node, the
	// quorum probe of a booting node), quorum and election only between them.
	if plaintext {
		ingress = append(ingress, Rule{Port: z.ClientPort, SelfGroup: true, Description: "ZooKeeper peers (client port)"})
	}
	ingress = append(ingress,
		Rule{Port: z.QuorumPort, SelfGroup: true, Description: "ZooKeeper quorum"},
		Rule{Port: z.ElectionPort, SelfGroup: true, Description: "ZooKeeper leader election"})
	add(KindSecurityGroup, NodesGroup, SecurityGroupSpec{GroupName: prefix + "-nodes",
		Description: "zkaas " + ens + ": the nodes ENIs", Ingress: ingress})
	// The primary interface carries only the instance's own calls out.
	add(KindSecurityGroup, InstanceGroup, SecurityGroupSpec{GroupName: prefix + "-instances",
		Description: "zkaas " + ens + ": instance primary interfaces, no ingress"})
	nodes := slices.Clone(cfg.Nodes)
	slices.SortFunc(nodes, func(a, b ensemble.Node) int { return a.ID - b.ID })
	for _, n := range nodes {
		sub, _ := d.SubnetOf(n.AZ)
		add(KindENI, NodeName(n.ID), ENISpec{Node: n.ID, AZ: n.AZ, IP: n.IP, Subnet: sub, SecurityGroup: NodesGroup,
			Description: fmt.Sprintf("zkaas %s node %d", ens, n.ID)})
	}
	for _, n := range nodes {
		add(KindVolume, NodeName(n.ID), VolumeSpec{Node: n.ID, AZ: n.AZ, DeployVolume: d.Volume})
	}
	profile := d.InstanceProfile
	if profile == "" {
		profile = cfg.RoleName()
		pol := string(iampolicy.For(cfg).JSON())
		add(KindRole, cfg.RoleName(), RoleSpec{RoleName: cfg.RoleName(), AssumePolicy: AssumeEC2, PolicyName: "zkaas-firstboot", Policy: pol})
		add(KindProfile, profile, ProfileSpec{ProfileName: profile, Role: cfg.RoleName()})
	}
	grace := cfg.Claim.Deadline.D() + cfg.Health.ReadyTimeout.D() + Margin
	hook := Hook{Name: HookName, Heartbeat: min(cfg.Claim.Deadline.D()+Margin, maxHeartbeat), DefaultResult: "ABANDON"}
	// AZRebalance would terminate a node to even out AZs; a slot-based
	// ensemble's AZs are fixed by its ENIs:
	// https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-suspend-resume-processes.html
	suspended := []string{"AZRebalance"}
	tmpl := func(name string, node int) error {
		ud, err := UserData(raw, node)
		if err != nil {
			return err
		}
		add(KindTemplate, name, TemplateSpec{TemplateName: name, ImageID: d.ImageID, InstanceType: d.InstanceType,
			Profile: profile, SecurityGroup: InstanceGroup, UserData: ud, HopLimit: 1, Node: node})
		return nil
	}
	switch d.Groups {
	case ensemble.GroupsPerNode:
		for _, n := range nodes {
			name := fmt.Sprintf("%s-node-%d", prefix, n.ID)
			if err := tmpl(name, n.ID); err != nil {
				return Desired{}, err
			}
			sub, _ := d.SubnetOf(n.AZ)
			add(KindGroup, name, GroupSpec{GroupName: name, AZ: n.AZ, Subnet: sub, Template: name, Size: 1,
				Grace: grace, Hook: hook, Suspended: suspended, Node: n.ID})
		}
	default:
		if err := tmpl(prefix, 0); err != nil {
			return Desired{}, err
		}
		var azs []string
		count := map[string]int{}
		for _, n := range nodes {
			if count[n.AZ] == 0 {
				azs = append(azs, n.AZ)
			}
			count[n.AZ]++
		}
		slices.Sort(azs)
		for _, az := range azs {
			name := prefix + "-" + az
			sub, _ := d.SubnetOf(az)
			add(KindGroup, name, GroupSpec{GroupName: name, AZ: az, Subnet: sub, Template: prefix, Size: count[az],
				Grace: grace, Hook: hook, Suspended: suspended})
		}
	}
	if d.Snapshots.Daily {
		add(KindSnapshotPolicy, prefix+"-daily", SnapshotPolicySpec{
			Description:   prefix + " daily",
			ExecutionRole: d.Snapshots.ExecutionRole, Retain: d.Snapshots.Retain,
			TargetTags: map[string]string{cfg.Claim.Tags.Ensemble: ens}})
	}
	return out, nil
}

// AssumeEC2 lets EC2 instances assume the role.
const AssumeEC2 = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// boundary separates the user data's MIME parts; fixed, so the same config
// renders the same bytes and a second up sees no change.
const boundary = "zkaas-ensemble-boundary"

// UserData wraps the config as the one text/x-zkaas-ensemble part of a MIME
// multipart document (cloud-init skips the part; firstboot finds it with
// ensemble.FromUserData). node > 0 pins that node: "node: N" goes first in
// the document, which must not set node itself.
func UserData(raw []byte, node int) ([]byte, error) {
	doc := raw
	if node > 0 {
		// After a leading document marker, or the pin would be a
		// document of its own and the file two.
		body := bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
		var head []byte
		if rest, ok := bytes.CutPrefix(body, []byte("---")); ok && (len(rest) == 0 || rest[0] == '\n' || rest[0] == '\r' || rest[0] == ' ') {
			line, tail, _ := bytes.Cut(body, []byte("\n"))
			head, body = slices.Concat(line, []byte("\n")), tail
		}
		// slices.Concat makes a fresh slice: appending to a subslice of
		// raw would write into the caller's bytes.
		doc = slices.Concat(head, []byte(fmt.Sprintf("node: %d\n", node)), body)
	}
	var b bytes.Buffer
	b.WriteString("Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\nMIME-Version: 1.0\r\n\r\n")
	b.WriteString("--" + boundary + "\r\n")
	b.WriteString("Content-Type: " + ensemble.ContentType + "; charset=\"utf-8\"\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"ensemble.yaml\"\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(doc)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--" + boundary + "--\r\n")
	if b.Len() > maxUserData {
		return nil, fmt.Errorf("user data is %d bytes, more than EC2's %d: shorten the config (comments travel too)", b.Len(), maxUserData)
	}
	return b.Bytes(), nil
}

// TagList renders tags sorted by key, for messages and tests.
func TagList(tags map[string]string) string {
	var kv []string
	for k, v := range tags {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

package ensemble

import (
	"fmt"
	"net/netip"
	"regexp"
)

// Deploy is what the operator command (zkaas plan/up) needs beyond what a
// node needs at boot: where the ENIs go, what the volumes are, what the
// instances run, who may reach the client port. firstboot ignores it; it
// travels in user data with the rest of the config and is validated there
// too, so a node and the operator never disagree about one file.
type Deploy struct {
	// Subnets names the subnet of each AZ. An AZ left out is looked up:
	// the subnet of that AZ whose CIDR holds the node's IP.
	Subnets      []SubnetRef  `yaml:"subnets"`
	InstanceType string       `yaml:"instance_type"`
	ImageID      string       `yaml:"image_id"`
	Volume       DeployVolume `yaml:"volume"`
	Client       ClientAccess `yaml:"client"`
	// Metrics is who may scrape the metrics ports (metrics.go).
	Metrics ClientAccess `yaml:"metrics"`
	// InstanceProfile is an existing instance profile's name; empty means
	// zkaas creates a role and profile with firstboot's policy.
	InstanceProfile string    `yaml:"instance_profile"`
	Snapshots       Snapshots `yaml:"snapshots"`
	// Groups lays out the Auto Scaling groups: GroupsPerAZ (one group per
	// AZ, sized to that AZ's nodes; an instance claims any free node of its
	// AZ) or GroupsPerNode (one group of one per node, its node pinned in
	// user data).
	Groups string `yaml:"groups"`
}

// The group layouts of Deploy.Groups.
const (
	GroupsPerAZ   = "per_az"
	GroupsPerNode = "per_node"
)

// SubnetRef names the subnet of one AZ.
type SubnetRef struct {
	AZ string `yaml:"az"`
	ID string `yaml:"id"`
}

// DeployVolume is each node's EBS volume as CreateVolume makes it.
type DeployVolume struct {
	Type string `yaml:"type"`
	// SizeGiB, IOPS and Throughput (MiB/s) have per-type ranges; 0 IOPS
	// or throughput means the type's baseline.
	SizeGiB    int    `yaml:"size_gib"`
	IOPS       int    `yaml:"iops"`
	Throughput int    `yaml:"throughput"`
	Encrypted  bool   `yaml:"encrypted"`
	KMSKeyID   string `yaml:"kms_key_id"`
}

// ClientAccess is who may reach the client port. Quorum and election ports
// are open only between the ensemble's own ENIs.
type ClientAccess struct {
	CIDRs          []string `yaml:"cidrs"`
	SecurityGroups []string `yaml:"security_groups"`
}

// Snapshots are optional daily snapshots of the data volumes by Data
// Lifecycle Manager.
type Snapshots struct {
	Daily  bool `yaml:"daily"`
	Retain int  `yaml:"retain"`
	// ExecutionRole is the IAM role DLM acts as; AWS's default one is made
	// by `aws dlm create-default-role`.
	ExecutionRole string `yaml:"execution_role"`
}

// DefaultDeploy is what an omitted deploy field falls back to: an
// encrypted gp3 volume at its baseline, a group per AZ.
func DefaultDeploy() Deploy {
	return Deploy{
		Volume:    DeployVolume{Type: "gp3", SizeGiB: 20, Encrypted: true},
		Snapshots: Snapshots{Retain: 7, ExecutionRole: "AWSDataLifecycleManagerDefaultRole"},
		Groups:    GroupsPerAZ,
	}
}

// HasDeploy reports whether the file had a deploy section: plan and up
// refuse a config without one.
func (c *Config) HasDeploy() bool { return c.Deploy.ImageID != "" }

// SubnetOf returns the subnet the config names for az, if any.
func (d *Deploy) SubnetOf(az string) (string, bool) {
	for _, s := range d.Subnets {
		if s.AZ == az {
			return s.ID, true
		}
	}
	return "", false
}

// ClientPrefixes returns Client.CIDRs parsed (validated by then).
func (d *Deploy) ClientPrefixes() []netip.Prefix { return d.Client.prefixes() }

// prefixes returns CIDRs parsed and masked (validated by then: access).
func (a ClientAccess) prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, c := range a.CIDRs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// access validates the ClientAccess at field (deploy.client,
// deploy.metrics); openAll ends the refusal of a /0 CIDR ("<cidr> opens
// ...").
func (v *validator) access(field string, a ClientAccess, openAll string) {
	for i, cidr := range a.CIDRs {
		f := fmt.Sprintf("%s.cidrs[%d]", field, i)
		p, err := netip.ParsePrefix(cidr)
		switch {
		case err != nil || !p.Addr().Is4():
			v.errorf(f, "%q is not an IPv4 CIDR such as 10.0.0.0/16", cidr)
		case p.Bits() == 0:
			v.errorf(f, "%s %s", cidr, openAll)
		}
	}
	for i, sg := range a.SecurityGroups {
		if !sgIDRe.MatchString(sg) {
			v.errorf(fmt.Sprintf("%s.security_groups[%d]", field, i), "%q is not a security group id such as sg-0123456789abcdef0", sg)
		}
	}
}

var (
	// EC2 ids: a prefix and 8 (old) or 17 hex digits.
	subnetIDRe = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	sgIDRe     = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	amiRe      = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	// family, optional generation/attributes, a dot, a size: m6i.large,
	// c7gn.16xlarge, u-6tb1.metal.
	instanceTypeRe = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9-]+$`)
	// IAM names: https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateInstanceProfile.html
	iamNameRe = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	// A KMS key id, alias or ARN.
	kmsRe = regexp.MustCompile(`^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+|alias/[A-Za-z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`)
)

// volumeLimit is one EBS volume type's ranges, from "Amazon EBS volume
// types" (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-volume-types.html)
// and CreateVolume's parameters
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html).
type volumeLimit struct {
	minSize, maxSize int
	minIOPS, maxIOPS int // 0: IOPS cannot be set
	iopsPerGiB       int
	iopsRequired     bool
	maxThroughput    int // 0: throughput cannot be set
}

var volumeLimits = map[string]volumeLimit{
	"gp3":      {minSize: 1, maxSize: 65536, minIOPS: 3000, maxIOPS: 80000, iopsPerGiB: 500, maxThroughput: 2000},
	"gp2":      {minSize: 1, maxSize: 16384},
	"io1":      {minSize: 4, maxSize: 16384, minIOPS: 100, maxIOPS: 64000, iopsPerGiB: 50, iopsRequired: true},
	"io2":      {minSize: 4, maxSize: 65536, minIOPS: 100, maxIOPS: 256000, iopsPerGiB: 1000, iopsRequired: true},
	"st1":      {minSize: 125, maxSize: 16384},
	"sc1":      {minSize: 125, maxSize: 16384},
	"standard": {minSize: 1, maxSize: 1024},
}

// maxRoleName is IAM's limit on role names; the role zkaas creates is
// "zkaas-<ensemble>".
const maxRoleName = 64

// RoleName is the IAM role and instance profile zkaas creates when the
// config names none.
func (c *Config) RoleName() string { return "zkaas-" + c.Ensemble }

func (v *validator) deploy(c *Config) {
	if _, ok := v.lines["deploy"]; !ok {
		return // plan and up say so; a node does not need it
	}
	d := &c.Deploy
	if d.ImageID == "" {
		v.errorf("deploy.image_id", "required: the AMI baked with packer (ami-…)")
	} else if !amiRe.MatchString(d.ImageID) {
		v.errorf("deploy.image_id", "%q is not an AMI id such as ami-0123456789abcdef0", d.ImageID)
	}
	if d.InstanceType == "" {
		v.errorf("deploy.instance_type", "required: an instance type that holds two network interfaces, such as m6i.large")
	} else if !instanceTypeRe.MatchString(d.InstanceType) {
		v.errorf("deploy.instance_type", "%q is not an instance type such as m6i.large", d.InstanceType)
	}
	azs := map[string]bool{}
	for _, n := range c.Nodes {
		azs[n.AZ] = true
	}
	seen := map[string]int{}
	for i, s := range d.Subnets {
		f := fmt.Sprintf("deploy.subnets[%d]", i)
		switch {
		case !azs[s.AZ]:
			v.errorf(f+".az", "%q is the AZ of no node", s.AZ)
		case seen[s.AZ] > 0:
			v.errorf(f+".az", "%s is also deploy.subnets[%d]", s.AZ, seen[s.AZ]-1)
		default:
			seen[s.AZ] = i + 1
		}
		if !subnetIDRe.MatchString(s.ID) {
			v.errorf(f+".id", "%q is not a subnet id such as subnet-0123456789abcdef0", s.ID)
		}
	}
	v.deployVolume(&d.Volume)
	v.access("deploy.client", d.Client, "opens the client port to every address: ZooKeeper has no authentication by default")
	if len(d.Client.CIDRs)+len(d.Client.SecurityGroups) == 0 {
		v.warnf("deploy.client", "no CIDR or security group may reach the client port: only the nodes themselves can")
	}
	if d.InstanceProfile != "" && !iamNameRe.MatchString(d.InstanceProfile) {
		v.errorf("deploy.instance_profile", "%q is not an instance profile name (1-128 of letters, digits and +=,.@_-)", d.InstanceProfile)
	}
	if d.InstanceProfile == "" && len(c.RoleName()) > maxRoleName {
		v.errorf("ensemble", "%q is too long for the IAM role %s zkaas creates (at most %d characters): shorten it or name deploy.instance_profile", c.Ensemble, c.RoleName(), maxRoleName)
	}
	if d.Snapshots.Daily {
		// DLM's count-based retention keeps 1..1000 snapshots:
		// https://docs.aws.amazon.com/dlm/latest/APIReference/API_RetainRule.html
		if r := d.Snapshots.Retain; r < 1 || r > 1000 {
			v.errorf("deploy.snapshots.retain", "%d: want 1..1000 snapshots", r)
		}
		if !iamNameRe.MatchString(d.Snapshots.ExecutionRole) {
			v.errorf("deploy.snapshots.execution_role", "%q is not an IAM role name", d.Snapshots.ExecutionRole)
		}
	}
	if d.Groups != GroupsPerAZ && d.Groups != GroupsPerNode {
		v.errorf("deploy.groups", "%q: want %s or %s", d.Groups, GroupsPerAZ, GroupsPerNode)
	}
	if d.Groups == GroupsPerAZ && c.Node != 0 {
		v.errorf("node", "a pinned node and deploy.groups %s contradict: every instance of an AZ's group would be node %d", GroupsPerAZ, c.Node)
	}
}

func (v *validator) deployVolume(dv *DeployVolume) {
	lim, ok := volumeLimits[dv.Type]
	if !ok {
		v.errorf("deploy.volume.type", "%q: want gp3, gp2, io1, io2, st1, sc1 or standard", dv.Type)
		return
	}
	if dv.SizeGiB < lim.minSize || dv.SizeGiB > lim.maxSize {
		v.errorf("deploy.volume.size_gib", "%d GiB: a %s volume is %d..%d GiB", dv.SizeGiB, dv.Type, lim.minSize, lim.maxSize)
	}
	switch {
	case lim.maxIOPS == 0 && dv.IOPS != 0:
		v.errorf("deploy.volume.iops", "a %s volume's IOPS cannot be set (only gp3, io1, io2)", dv.Type)
	case lim.iopsRequired && dv.IOPS == 0:
		v.errorf("deploy.volume.iops", "required for a %s volume (%d..%d)", dv.Type, lim.minIOPS, lim.maxIOPS)
	case dv.IOPS != 0 && (dv.IOPS < lim.minIOPS || dv.IOPS > lim.maxIOPS):
		v.errorf("deploy.volume.iops", "%d: a %s volume has %d..%d IOPS", dv.IOPS, dv.Type, lim.minIOPS, lim.maxIOPS)
	case dv.IOPS != 0 && dv.SizeGiB > 0 && dv.IOPS > lim.iopsPerGiB*dv.SizeGiB:
		v.errorf("deploy.volume.iops", "%d: a %s volume has at most %d IOPS per GiB (%d for %d GiB)", dv.IOPS, dv.Type, lim.iopsPerGiB, lim.iopsPerGiB*dv.SizeGiB, dv.SizeGiB)
	}
	switch {
	case lim.maxThroughput == 0 && dv.Throughput != 0:
		v.errorf("deploy.volume.throughput", "a %s volume's throughput cannot be set (only gp3)", dv.Type)
	case dv.Throughput != 0 && (dv.Throughput < 125 || dv.Throughput > lim.maxThroughput):
		v.errorf("deploy.volume.throughput", "%d MiB/s: a %s volume has 125..%d", dv.Throughput, dv.Type, lim.maxThroughput)
	case dv.Throughput != 0 && dv.Throughput*4 > max(dv.IOPS, lim.minIOPS):
		// gp3: at most 0.25 MiB/s per provisioned IOPS.
		v.errorf("deploy.volume.throughput", "%d MiB/s needs at least %d IOPS (0.25 MiB/s per IOPS)", dv.Throughput, dv.Throughput*4)
	}
	if dv.KMSKeyID != "" {
		if !dv.Encrypted {
			v.errorf("deploy.volume.kms_key_id", "a KMS key needs deploy.volume.encrypted: true")
		}
		if !kmsRe.MatchString(dv.KMSKeyID) {
			v.errorf("deploy.volume.kms_key_id", "%q is not a KMS key id, alias or ARN", dv.KMSKeyID)
		}
	}
}

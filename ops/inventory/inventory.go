// Package inventory is what exists for an ensemble, as plain data: the
// ENIs and volumes by node, the instances holding them, the groups, the
// templates and security groups. ops/aws reads it in one pass; status and
// doctor are pure functions of it (and of ZooKeeper's answers), so each is
// tested on fixtures without a cloud.
package inventory

import (
	"net/netip"
	"slices"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/ops/deploy"
)

// ENI is a node's network interface as EC2 shows it.
type ENI struct {
	ID, AZ, Subnet, Description, Status string
	Node                                int
	IP                                  netip.Addr
	Groups                              []string
	Instance                            string // attached to, or ""
	Tags                                map[string]string
}

// Volume is a node's data volume as EC2 shows it.
type Volume struct {
	ID, AZ, State string
	Node          int
	Spec          ensemble.DeployVolume
	Instance      string
	Tags          map[string]string
	LastSnapshot  time.Time // zero: none known
}

// Group is an Auto Scaling group of the ensemble.
type Group struct {
	Name            string
	Spec            deploy.GroupSpec
	Instances       []GroupInstance
	Tags            map[string]string
	HealthCheckType string
}

// GroupInstance is an instance as its group sees it.
type GroupInstance struct {
	ID, AZ, Lifecycle, Health string
	// Template and Version are the launch template and the version
	// number it was launched from.
	Template, Version string
}

// Instance is an EC2 instance holding (or having held) a slot.
type Instance struct {
	ID, State, Type, AZ string
	Tags                map[string]string
}

// Template is a launch template's default version.
type Template struct {
	ID, Name     string
	InstanceType string
	HTTPTokens   string // "required" for IMDSv2 only
	HopLimit     int
	Groups       []string
}

// SecurityGroup is a security group's ingress.
type SecurityGroup struct {
	ID, Name string
	Ingress  []Rule
}

// Rule admits TCP ports From..To (0..65535 for all traffic) from a CIDR or
// a security group.
type Rule struct {
	From, To      int
	CIDR, GroupID string
}

// Admits reports whether the group lets port in from ip or from a member
// of one of the groups in from.
func (g SecurityGroup) Admits(port int, ip netip.Addr, from []string) bool {
	for _, r := range g.Ingress {
		if port < r.From || port > r.To {
			continue
		}
		if r.GroupID != "" && slices.Contains(from, r.GroupID) {
			return true
		}
		if p, err := netip.ParsePrefix(r.CIDR); err == nil && p.Contains(ip) {
			return true
		}
	}
	return false
}

// Snapshot is everything read for one ensemble.
type Snapshot struct {
	ENIs           []ENI
	Volumes        []Volume
	Groups         []Group
	Instances      map[string]Instance // by id, the holders of ENIs and volumes and the groups' members
	Subnets        map[string]netip.Prefix
	SecurityGroups map[string]SecurityGroup
	Templates      []Template
	// MaxENIs is each instance type's network interface limit (the
	// primary counts), from DescribeInstanceTypes.
	MaxENIs map[string]int
	// DryRun holds, per API action, the error a DryRun call returned
	// ("" = the caller may).
	DryRun map[string]string
}

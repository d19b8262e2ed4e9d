package plan

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/zkaas/zkaas/ops/deploy"
)

// compare says what up would do to ex to make it r (resolved), and why.
func compare(r deploy.Resource, ex Existing) (Action, []string) {
	var upd, conf []string
	if !ex.Managed && !r.Kind.Data() {
		// A role, profile or group of the same name that zkaas did not
		// make: taking it over could break whoever uses it.
		return Conflict, []string{fmt.Sprintf("exists but was not made by zkaas (no %s=%s tag): remove or rename it", deploy.TagManagedBy, deploy.ManagedBy)}
	}
	differ := func(list *[]string, what string, want, got any) {
		if fmt.Sprint(want) != fmt.Sprint(got) {
			*list = append(*list, fmt.Sprintf("%s %v, want %v", what, got, want))
		}
	}
	switch w := r.Spec.(type) {
	case deploy.SecurityGroupSpec:
		g, _ := ex.Spec.(deploy.SecurityGroupSpec)
		add, drop := RuleDiff(w.Ingress, g.Ingress)
		for _, x := range add {
			upd = append(upd, "add "+x.String())
		}
		for _, x := range drop {
			upd = append(upd, "remove "+x.String())
		}
	case deploy.ENISpec:
		g, _ := ex.Spec.(deploy.ENISpec)
		differ(&conf, "ip", w.IP, g.IP)
		differ(&conf, "subnet", w.Subnet, g.Subnet)
		if ex.Managed {
			differ(&upd, "security group", w.SecurityGroup, g.SecurityGroup)
		}
	case deploy.VolumeSpec:
		g, _ := ex.Spec.(deploy.VolumeSpec)
		differ(&conf, "az", w.AZ, g.AZ)
		if w.SizeGiB < g.SizeGiB {
			conf = append(conf, fmt.Sprintf("size %d GiB, want %d: EBS volumes do not shrink", g.SizeGiB, w.SizeGiB))
		}
		differ(&conf, "encrypted", w.Encrypted, g.Encrypted)
		if w.KMSKeyID != "" {
			differ(&conf, "kms key", w.KMSKeyID, g.KMSKeyID)
		}
		if ex.Managed && len(conf) == 0 {
			// ModifyVolume changes these in place.
			differ(&upd, "type", w.Type, g.Type)
			if w.SizeGiB > g.SizeGiB {
				differ(&upd, "size", w.SizeGiB, g.SizeGiB)
			}
			if w.IOPS != 0 {
				differ(&upd, "iops", w.IOPS, g.IOPS)
			}
			if w.Throughput != 0 {
				differ(&upd, "throughput", w.Throughput, g.Throughput)
			}
		}
	case deploy.RoleSpec:
		g, _ := ex.Spec.(deploy.RoleSpec)
		if !sameJSON(w.Policy, g.Policy) {
			upd = append(upd, "policy "+w.PolicyName+" differs")
		}
		if !sameJSON(w.AssumePolicy, g.AssumePolicy) {
			upd = append(upd, "trust policy differs")
		}
	case deploy.ProfileSpec:
		g, _ := ex.Spec.(deploy.ProfileSpec)
		differ(&upd, "role", w.Role, g.Role)
	case deploy.TemplateSpec:
		g, _ := ex.Spec.(deploy.TemplateSpec)
		differ(&upd, "image", w.ImageID, g.ImageID)
		differ(&upd, "instance type", w.InstanceType, g.InstanceType)
		differ(&upd, "profile", w.Profile, g.Profile)
		differ(&upd, "security group", w.SecurityGroup, g.SecurityGroup)
		differ(&upd, "hop limit", w.HopLimit, g.HopLimit)
		if !bytes.Equal(w.UserData, g.UserData) {
			upd = append(upd, "user data (the config) differs")
		}
	case deploy.GroupSpec:
		g, _ := ex.Spec.(deploy.GroupSpec)
		differ(&conf, "az", w.AZ, g.AZ)
		differ(&upd, "subnet", w.Subnet, g.Subnet)
		differ(&upd, "template", w.Template, g.Template)
		differ(&upd, "size", w.Size, g.Size)
		differ(&upd, "grace", w.Grace, g.Grace)
		differ(&upd, "hook", w.Hook, g.Hook)
		missing := slices.DeleteFunc(slices.Clone(w.Suspended), func(p string) bool { return slices.Contains(g.Suspended, p) })
		if len(missing) > 0 {
			upd = append(upd, fmt.Sprintf("suspend %v", missing))
		}
	case deploy.SnapshotPolicySpec:
		g, _ := ex.Spec.(deploy.SnapshotPolicySpec)
		differ(&upd, "retain", w.Retain, g.Retain)
		differ(&upd, "execution role", w.ExecutionRole, g.ExecutionRole)
		if !maps.Equal(w.TargetTags, g.TargetTags) {
			upd = append(upd, "target tags differ")
		}
	}
	switch {
	case len(conf) > 0:
		return Conflict, append(conf, upd...)
	case len(upd) > 0:
		return Update, upd
	}
	return OK, nil
}

// RuleDiff returns the rules of want missing from got, and those of got
// not in want (descriptions do not count).
func RuleDiff(want, got []deploy.Rule) (add, drop []deploy.Rule) {
	same := func(a, b deploy.Rule) bool {
		return a.Port == b.Port && a.CIDR == b.CIDR && a.GroupID == b.GroupID && a.SelfGroup == b.SelfGroup
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g deploy.Rule) bool { return same(w, g) }) {
			add = append(add, w)
		}
	}
	for _, g := range got {
		if !slices.ContainsFunc(want, func(w deploy.Rule) bool { return same(w, g) }) {
			drop = append(drop, g)
		}
	}
	return add, drop
}

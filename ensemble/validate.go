package ensemble

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/zkaas/zkaas/firstboot/routing"
)

var (
	ensembleRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	// us-east-1a, eu-central-2c, us-gov-west-1b, and Local Zones such as us-west-2-lax-1a.
	azRe     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+(-[a-z]+-[0-9]+)?[a-z]$`)
	deviceRe = regexp.MustCompile(`^/dev/(sd|xvd)[b-z]$`)
	heapRe   = regexp.MustCompile(`^[1-9][0-9]*[mMgG]$`)
)

// fourLetterWords are the commands ZooKeeper 3.5+ knows; "*" allows all.
var fourLetterWords = map[string]bool{
	"conf": true, "cons": true, "crst": true, "dump": true, "envi": true, "ruok": true,
	"srst": true, "srvr": true, "stat": true, "wchs": true, "wchc": true, "wchp": true,
	"dirs": true, "mntr": true, "isro": true, "hash": true, "*": true,
}

type validator struct {
	lines map[string]int
	errs  []FieldError
	warns []FieldError
}

func (v *validator) at(field string) FieldError {
	// A defaulted field has no line; fall back to its parent's line so the
	// operator still knows where to look.
	for p := field; p != ""; {
		if l, ok := v.lines[p]; ok {
			return FieldError{Line: l, Field: field}
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return FieldError{Field: field}
}

func (v *validator) errorf(field, format string, args ...any) {
	e := v.at(field)
	e.Msg = fmt.Sprintf(format, args...)
	v.errs = append(v.errs, e)
}

func (v *validator) warnf(field, format string, args ...any) {
	e := v.at(field)
	e.Msg = fmt.Sprintf(format, args...)
	v.warns = append(v.warns, e)
}

func (v *validator) validate(c *Config) {
	switch {
	case c.Ensemble == "":
		v.errorf("ensemble", "required: the value of the ensemble tag on this ensemble's ENIs and volumes")
	case !ensembleRe.MatchString(c.Ensemble):
		v.errorf("ensemble", "%q must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", c.Ensemble)
	}
	v.nodes(c)
	v.claim(&c.Claim)
	v.volume(&c.Volume)
	v.routing("network.route_table", c.Network.RouteTable, routing.ValidateTable)
	v.routing("network.rule_priority", c.Network.RulePriority, routing.ValidatePriority)
	if m := c.Network.MTU; m < routing.MinMTU || m > routing.MaxMTU {
		v.errorf("network.mtu", "%d must be between %d and %d (EC2's jumbo frame MTU inside a VPC)", m, routing.MinMTU, routing.MaxMTU)
	}
	v.zookeeper(&c.ZooKeeper)
	v.zookeeperSettings(c) // zookeeper_settings.go
	v.tls(c)               // tls.go
	v.sasl(c)              // sasl.go
	v.metrics(c)           // metrics.go
	v.checkPorts(c.ports())
	v.deploy(c)
	if d := c.Health.ReadyTimeout.D(); d < 10*time.Second || d > 2*time.Hour {
		v.errorf("health.ready_timeout", "%s must be between 10s and 2h", c.Health.ReadyTimeout)
	}
	if d := c.Health.RefusedHold.D(); d < 0 || d > time.Hour {
		v.errorf("health.refused_hold", "%s must be between 0s and 1h", c.Health.RefusedHold)
	}
}

func (v *validator) nodes(c *Config) {
	if len(c.Nodes) == 0 {
		v.errorf("nodes", "required: at least one node")
		return
	}
	ids := map[int]int{}
	ips := map[string]int{}
	region, regionNode := "", 0
	for i, n := range c.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		switch {
		case n.ID < 1 || n.ID > 255:
			v.errorf(f+".id", "%d is outside 1..255 (ZooKeeper myid)", n.ID)
		case ids[n.ID] > 0:
			v.errorf(f+".id", "%d is also the id of nodes[%d]", n.ID, ids[n.ID]-1)
		default:
			ids[n.ID] = i + 1
		}
		if !azRe.MatchString(n.AZ) {
			v.errorf(f+".az", "%q is not an availability zone name such as us-east-1a", n.AZ)
		} else if r := regionOf(n.AZ); region == "" {
			region, regionNode = r, i
		} else if r != region {
			v.errorf(f+".az", "%s is in region %s but nodes[%d] is in %s: an ensemble lives in one region", n.AZ, r, regionNode, region)
		}
		switch ip := n.IP; {
		case !ip.IsValid():
			v.errorf(f+".ip", "required: the node's static private IPv4 address")
		case ip.IsUnspecified() || ip.IsLoopback() || ip.IsMulticast() || ip.IsLinkLocalUnicast():
			v.errorf(f+".ip", "%s cannot be an ENI's private address", ip)
		case ips[ip.String()] > 0:
			v.errorf(f+".ip", "%s is also the address of nodes[%d]", ip, ips[ip.String()]-1)
		default:
			ips[ip.String()] = i + 1
		}
	}
	if len(c.Nodes)%2 == 0 {
		v.warnf("nodes", "%d nodes: an even-sized ensemble tolerates no more failures than %d nodes", len(c.Nodes), len(c.Nodes)-1)
	}
	if c.Node != 0 {
		if _, ok := c.NodeByID(c.Node); !ok {
			v.errorf("node", "pinned node %d is not in nodes", c.Node)
		}
	}
}

func (v *validator) claim(c *Claim) {
	if c.Deadline <= 0 || c.Deadline.D() > time.Hour {
		v.errorf("claim.deadline", "%s must be between 1s and 1h", c.Deadline)
	}
	if c.StuckAttach <= 0 || c.StuckAttach >= c.Deadline {
		v.errorf("claim.stuck_attach", "%s must be positive and shorter than claim.deadline (%s)", c.StuckAttach, c.Deadline)
	}
	if c.BootstrapWindow < c.Deadline {
		v.errorf("claim.bootstrap_window", "%s must be at least claim.deadline (%s): every node of a new ensemble formats within it", c.BootstrapWindow, c.Deadline)
	}
	keys := map[string]string{}
	for _, t := range []struct{ field, key string }{
		{"claim.tags.ensemble", c.Tags.Ensemble},
		{"claim.tags.node", c.Tags.Node},
		{"claim.tags.initialized", c.Tags.Initialized},
		{"claim.tags.adopt", c.Tags.Adopt},
	} {
		switch {
		case t.key == "" || len(t.key) > 128:
			v.errorf(t.field, "a tag key must be 1-128 characters")
		case strings.HasPrefix(strings.ToLower(t.key), "aws:"):
			v.errorf(t.field, "%q: the aws: prefix is reserved by AWS", t.key)
		case keys[t.key] != "":
			v.errorf(t.field, "%q is also %s", t.key, keys[t.key])
		default:
			keys[t.key] = t.field
		}
	}
}

func (v *validator) volume(c *Volume) {
	if !deviceRe.MatchString(c.Device) {
		v.errorf("volume.device", "%q is not an EBS device name such as /dev/xvdf or /dev/sdf", c.Device)
	}
	switch mp := c.MountPoint; {
	case !filepath.IsAbs(mp) || filepath.Clean(mp) != mp:
		v.errorf("volume.mount_point", "%q must be a clean absolute path", mp)
	case mp == "/" || mp == "/etc" || mp == "/usr" || mp == "/var" || mp == "/boot":
		v.errorf("volume.mount_point", "%q would hide the operating system", mp)
	}
	if c.FSType != "ext4" && c.FSType != "xfs" {
		v.errorf("volume.fs_type", "%q: want ext4 or xfs", c.FSType)
	}
}

// routing checks a table or priority against the ids other owners of the
// routing policy database use; netcfg owns that knowledge.
func (v *validator) routing(field string, id int, check func(int) error) {
	if err := check(id); err != nil {
		v.errorf(field, "%v", err)
	}
}

// portUse is a TCP port a node listens on, or would once its feature is
// turned on.
type portUse struct {
	field string
	port  int
	on    bool // the feature is enabled: the node listens on it
}

// ports lists every port zkaas binds, in the order a clash is reported
// (the later of two set fields).
func (c *Config) ports() []portUse {
	z := &c.ZooKeeper
	return []portUse{
		{"zookeeper.client_port", z.ClientPort, true},
		{"zookeeper.quorum_port", z.QuorumPort, true},
		{"zookeeper.election_port", z.ElectionPort, true},
		{"zookeeper.admin_server.port", z.AdminServer.Port, z.AdminServer.Enabled},
		{"zookeeper.tls.secure_client_port", z.TLS.SecureClientPort, z.TLS.Client},
		{"metrics.exporter.port", c.Metrics.Exporter.Port, c.Metrics.Exporter.Enabled},
		{"metrics.zookeeper.port", c.Metrics.ZooKeeper.Port, c.Metrics.ZooKeeper.Enabled},
	}
}

// checkPorts refuses a port outside 1..65535 and two uses of one port. A
// disabled feature's port counts only when the YAML sets it: the operator
// chose it, so a clash is a mistake now; a defaulted one is ignored, or a
// config that booted before the feature existed (client_port: 2281, say)
// would be refused for a port nothing listens on. A clash is reported on a
// field the YAML sets, so the message has a line, naming the other
// "(default)" when it was defaulted.
func (v *validator) checkPorts(us []portUse) {
	var seen []portUse
	isSet := func(u portUse) bool { _, ok := v.lines[u.field]; return ok }
	for _, u := range us {
		if u.port < 1 || u.port > 65535 {
			v.errorf(u.field, "%d is not a TCP port", u.port)
			continue
		}
		if !u.on && !isSet(u) {
			continue
		}
		i := slices.IndexFunc(seen, func(o portUse) bool { return o.port == u.port })
		if i < 0 {
			seen = append(seen, u)
			continue
		}
		at, other := u, seen[i]
		if !isSet(u) && isSet(other) {
			at, other = other, u
		}
		name := other.field
		if !isSet(other) {
			name += " (default)"
		}
		v.errorf(at.field, "%d is also %s", u.port, name)
	}
}

func (v *validator) zookeeper(z *ZooKeeper) {
	if z.TickTime < 100 || z.TickTime > 60000 {
		v.errorf("zookeeper.tick_time", "%d ms: want 100..60000", z.TickTime)
	}
	if z.InitLimit < 1 {
		v.errorf("zookeeper.init_limit", "%d: want at least 1 tick", z.InitLimit)
	}
	if z.SyncLimit < 1 {
		v.errorf("zookeeper.sync_limit", "%d: want at least 1 tick", z.SyncLimit)
	}
	if z.Autopurge.SnapRetainCount < 3 {
		v.errorf("zookeeper.autopurge.snap_retain_count", "%d: ZooKeeper keeps at least 3", z.Autopurge.SnapRetainCount)
	}
	if z.Autopurge.PurgeInterval < 0 {
		v.errorf("zookeeper.autopurge.purge_interval", "%d: want hours >= 0 (0 disables)", z.Autopurge.PurgeInterval)
	}
	for i, w := range z.FourLetterWords {
		if !fourLetterWords[w] {
			v.errorf(fmt.Sprintf("zookeeper.four_letter_words[%d]", i), "%q is not a ZooKeeper four-letter word", w)
		}
	}
	if !heapRe.MatchString(z.Heap) {
		v.errorf("zookeeper.heap", "%q is not a JVM heap size such as 512m or 2g", z.Heap)
	}
}

// HardenedWords are the four-letter words a hardened image allows: the
// read-only health and status words; none that dumps sessions, watches or
// environment, or resets counters.
var HardenedWords = []string{"srvr", "ruok", "mntr", "conf", "isro"}

// hardened applies the hardening role's limits (roles/hardening): the
// AdminServer stays off, and only HardenedWords are whitelisted.
func (v *validator) hardened(z *ZooKeeper) {
	v.hardenedSettings(z) // zookeeper_settings.go
	if z.AdminServer.Enabled {
		v.errorf("zookeeper.admin_server.enabled", "this image is hardened: the ZooKeeper AdminServer stays off")
	}
	for i, w := range z.FourLetterWords {
		if fourLetterWords[w] && !slices.Contains(HardenedWords, w) {
			v.errorf(fmt.Sprintf("zookeeper.four_letter_words[%d]", i), "%q: this image is hardened and allows only %s", w, strings.Join(HardenedWords, ", "))
		}
	}
}

func regionOf(az string) string {
	if az == "" {
		return ""
	}
	// The region ends at the first all-digit part: us-east-1a → us-east-1,
	// us-gov-west-1b → us-gov-west-1, and Local Zones (us-west-2-lax-1a)
	// belong to their parent region us-west-2.
	parts := strings.Split(az[:len(az)-1], "-")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			return strings.Join(parts[:i+1], "-")
		}
	}
	return az
}

// Package ensemble loads and validates the ensemble configuration
// (/etc/zkaas/ensemble.yaml). Everything is checked before any side effect:
// Load returns every problem at once, each naming the field and its YAML line,
// so an operator fixes a typo in one edit instead of one boot per mistake.
package ensemble

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/zkaas/zkaas/firstboot/routing"
)

// DefaultPath is where firstboot looks for the ensemble config, and where
// the bake and the local cloud install it.
const DefaultPath = "/etc/zkaas/ensemble.yaml"

// DefaultMountPoint is where the data volume is mounted unless the config
// says otherwise (Volume.MountPoint). zookeeper.service may write there
// without a drop-in (see firstboot/systemd).
const DefaultMountPoint = "/var/lib/zookeeper"

// MaxSize bounds the config file: the real thing is a few hundred bytes, and
// a runaway file (a log redirected by mistake) must not be parsed at boot.
const MaxSize = 1 << 20

// Config is the whole ensemble description shared by every node.
type Config struct {
	// Ensemble is the value of the ensemble tag on every ENI and volume.
	Ensemble string `yaml:"ensemble"`
	// Node pins this instance to one node id (one ASG per node); 0 means
	// "claim any free node of my AZ".
	Node      int       `yaml:"node"`
	Nodes     []Node    `yaml:"nodes"`
	Claim     Claim     `yaml:"claim"`
	Volume    Volume    `yaml:"volume"`
	Network   Network   `yaml:"network"`
	ZooKeeper ZooKeeper `yaml:"zookeeper"`
	Health    Health    `yaml:"health"`
	Metrics   Metrics   `yaml:"metrics"` // see metrics.go
	// Deploy is for the operator command only (see deploy.go).
	Deploy Deploy `yaml:"deploy"`
}

// Health is how a node reports to its Auto Scaling group (package
// firstboot/health).
type Health struct {
	// ReadyTimeout bounds the wait after ZooKeeper starts for it to serve
	// as leader or follower (a replacement with a fresh volume syncs the
	// whole tree first); past it the launch is abandoned.
	ReadyTimeout Duration `yaml:"ready_timeout"`
	// RefusedHold is how long a boot that was refused for a reason every
	// replacement would hit too (a bad config, a volume that may hold
	// someone else's data) waits before it tells the group: it bounds the
	// churn to one instance per hold per node, and keeps the instance and
	// its journal up long enough to be looked at.
	RefusedHold Duration `yaml:"refused_hold"`
}

// Node is one ZooKeeper server: its myid, its AZ and its static private IP
// (the IP of the ENI tagged with its id).
type Node struct {
	ID int        `yaml:"id"`
	AZ string     `yaml:"az"`
	IP netip.Addr `yaml:"ip"`
}

// Claim tunes the EC2 claim: how long a boot may take before it gives up
// (so the ASG replaces the instance) and which tags carry identity.
type Claim struct {
	Deadline Duration `yaml:"deadline"`
	// StuckAttach is how long an attachment may stay "attaching" before it is
	// detached and retried.
	StuckAttach Duration `yaml:"stuck_attach"`
	// BootstrapWindow is how long after the first volume of the ensemble
	// was formatted the ensemble counts as brand new: within it, nodes with
	// fresh volumes may bootstrap together with empty data trees; after it,
	// a fresh volume must sync from a quorum.
	BootstrapWindow Duration `yaml:"bootstrap_window"`
	Tags            Tags     `yaml:"tags"`
}

// Tags are the tag keys that carry identity on ENIs and volumes.
type Tags struct {
	Ensemble    string `yaml:"ensemble"`
	Node        string `yaml:"node"`
	Initialized string `yaml:"initialized"`
	// Adopt is the tag an operator puts on a volume to let its existing
	// filesystem, which has data but no zkaas identity marker, become the
	// node's data: its value must be the node id (see README, "Adopting an
	// existing data volume"). Without it such a volume is refused.
	Adopt string `yaml:"adopt"`
}

// Volume describes the node's EBS data volume.
type Volume struct {
	// Device is the name requested in AttachVolume; on Nitro the kernel
	// names it nvmeXn1 anyway and it is found by volume id.
	Device     string `yaml:"device"`
	MountPoint string `yaml:"mount_point"`
	FSType     string `yaml:"fs_type"`
}

// Network is the policy routing for the node's ENI.
type Network struct {
	RouteTable   int `yaml:"route_table"`
	RulePriority int `yaml:"rule_priority"`
	// MTU of the ENI's link. EC2 supports jumbo frames (9001) for traffic
	// inside a VPC, and sets 9001 on the primary interface by DHCP; a
	// hot-plugged ENI gets no DHCP here, so netcfg sets it. Lower it (to
	// 1500) when peers are reached over a VPN, a Transit Gateway
	// attachment or an internet gateway, where larger packets are dropped.
	// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/network_mtu.html
	MTU int `yaml:"mtu"`
}

// ZooKeeper holds the zoo.cfg settings shared by all servers.
type ZooKeeper struct {
	ClientPort      int         `yaml:"client_port"`
	QuorumPort      int         `yaml:"quorum_port"`
	ElectionPort    int         `yaml:"election_port"`
	TickTime        int         `yaml:"tick_time"` // milliseconds
	InitLimit       int         `yaml:"init_limit"`
	SyncLimit       int         `yaml:"sync_limit"`
	Autopurge       Autopurge   `yaml:"autopurge"`
	FourLetterWords []string    `yaml:"four_letter_words"`
	Heap            string      `yaml:"heap"` // JVM size: 512m, 2g
	AdminServer     AdminServer `yaml:"admin_server"`
	// Extra, JVMFlags and GCLog: see zookeeper_settings.go.
	Extra    Extra    `yaml:"extra"`     // more zoo.cfg keys, type-checked where known
	JVMFlags []string `yaml:"jvm_flags"` // appended to SERVER_JVMFLAGS
	GCLog    bool     `yaml:"gc_log"`    // GC log under <mount_point>/logs
	// TLS and SASL: see tls.go and sasl.go (material from secret.go's
	// references, fetched at boot).
	TLS  TLS  `yaml:"tls"`
	SASL SASL `yaml:"sasl"`
}

// Autopurge maps to autopurge.snapRetainCount and autopurge.purgeInterval.
type Autopurge struct {
	SnapRetainCount int `yaml:"snap_retain_count"`
	PurgeInterval   int `yaml:"purge_interval"` // hours, 0 disables
}

// AdminServer is off by default; when enabled it is bound to localhost.
type AdminServer struct {
	Enabled bool `yaml:"enabled"`
	Port    int  `yaml:"port"`
}

// Duration is a time.Duration written as "90s" or "5m" in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Default returns the configuration every omitted field falls back to.
func Default() Config {
	return Config{
		Claim: Claim{
			Deadline:        Duration(5 * time.Minute),
			StuckAttach:     Duration(60 * time.Second),
			BootstrapWindow: Duration(30 * time.Minute),
			Tags: Tags{
				Ensemble:    "zkaas:ensemble",
				Node:        "zkaas:node",
				Initialized: "zkaas:initialized",
				Adopt:       "zkaas:adopt",
			},
		},
		Volume: Volume{Device: "/dev/xvdf", MountPoint: DefaultMountPoint, FSType: "ext4"},
		Network: Network{
			RouteTable:   routing.DefaultTable,
			RulePriority: routing.DefaultPriority,
			MTU:          routing.DefaultMTU,
		},
		ZooKeeper: ZooKeeper{
			ClientPort:      2181,
			QuorumPort:      2888,
			ElectionPort:    3888,
			TickTime:        2000,
			InitLimit:       10,
			SyncLimit:       5,
			Autopurge:       Autopurge{SnapRetainCount: 3, PurgeInterval: 24},
			FourLetterWords: []string{"srvr", "ruok", "mntr"},
			Heap:            "1g",
			AdminServer:     AdminServer{Enabled: false, Port: 8080},
			GCLog:           true,
			TLS:             defaultTLS(),
			SASL:            defaultSASL(),
		},
		Metrics: defaultMetrics(),
		Health:  Health{ReadyTimeout: Duration(15 * time.Minute), RefusedHold: Duration(10 * time.Minute)},
		Deploy:  DefaultDeploy(),
	}
}

// NodeByID returns the node with the given myid.
func (c *Config) NodeByID(id int) (Node, bool) {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// Region is the AWS region all nodes live in (validated to be one).
func (c *Config) Region() string {
	if len(c.Nodes) == 0 {
		return ""
	}
	return regionOf(c.Nodes[0].AZ)
}

// FieldError is one problem, located in the file.
type FieldError struct {
	Line  int    // 0 when the field is absent from the file
	Field string // dotted path, e.g. nodes[1].ip
	Msg   string
}

func (e FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Msg)
	}
	if e.Field == "" {
		return e.Msg
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Msg)
}

package localcloud

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// Subnet is one subnet of the VPC.
type Subnet struct {
	AZ   string
	CIDR string
}

// DefaultSubnets are one /24 per AZ of us-east-1.
var DefaultSubnets = []Subnet{
	{AZ: "us-east-1a", CIDR: "10.0.1.0/24"},
	{AZ: "us-east-1b", CIDR: "10.0.2.0/24"},
	{AZ: "us-east-1c", CIDR: "10.0.3.0/24"},
}

// Options configures a Cloud. The zero value is three AZs of us-east-1, an
// instant simulator and a temporary state directory.
type Options struct {
	// StateDir keeps the volumes' backing files (<volume-id>.img). When set,
	// they outlive the Cloud; empty means a temporary directory that Close
	// removes. Two live Clouds cannot share one.
	StateDir string
	// Subnets default to DefaultSubnets; their AZs must be in EC2.Region.
	// An AZ may have several: instances launch in its first, and an ENI
	// can be created in another (CreateNetworkInterfaceIn), as EC2 lets an
	// instance hold an ENI of another subnet of its AZ.
	Subnets []Subnet
	// EC2 configures the simulator: region, latency model, consistency lag,
	// throttling, faults, seed. Its Hooks must be empty: they are the
	// Cloud's own. Its Logger defaults to Logger.
	EC2 ec2sim.Options
	// PrivateDirs are host directories each instance sees through an
	// overlay of its own: the host's content as a read-only lower layer,
	// and the instance's writes kept apart from the host and from other
	// instances (like instances booted from one image). Absolute paths
	// without ',' or ':'. Give /etc/zookeeper, /etc/zkaas, ... here.
	PrivateDirs []string
	// RootFS is an image's root directory (see ExtractImage). When set,
	// instances boot from it: each gets a root of its own, an overlay with
	// the image as its read-only lower layer (shared by all instances) and
	// the instance's writes apart; its /dev, /sys, /proc, /run and /tmp are
	// mounted in it, and programs see the image's /usr, /etc, /opt — not the
	// host's. The whole root being private, PrivateDirs must be empty. An
	// absolute path without ',' or ':'; the image must not change while
	// the Cloud runs.
	RootFS string
	// Boot is what runs on instances: BootHost (the zero value: programs
	// the harness starts) or BootSystemd (the image boots with systemd as
	// PID 1; needs RootFS).
	Boot BootMode
	// ShutdownTimeout bounds a machine's clean shutdown (Terminate, and
	// the shutdown half of Reboot) before it is killed; 0 means 90 s.
	ShutdownTimeout time.Duration
	// NICVisibleDelay is when a hot-attached ENI's link appears in the
	// instance, relative to the moment EC2's API reports the attachment
	// attached. On EC2 the two are not ordered: the OS may see the device
	// after the API says attached or before (the EC2 User Guide only says
	// a hot attach may need the OS to bring the interface up itself:
	// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/network-interface-attachments.html).
	// Positive: the link appears that long after the API says attached.
	// Negative: it appears at the end of the simulator's attach latency
	// and the API goes on saying attaching for -NICVisibleDelay more. Zero:
	// both at once (the link a moment before).
	NICVisibleDelay time.Duration
	// DiskVisibleDelay is the same for a volume's block device (its node,
	// by-id link and serial): the NVMe driver discovers an attached volume
	// on its own time (EBS User Guide, "Map Amazon EBS volumes to NVMe
	// device names":
	// https://docs.aws.amazon.com/ebs/latest/userguide/identify-nvme-ebs-device.html).
	DiskVisibleDelay time.Duration
	// IMDSInterfaceLag is how long after the API reports a hot-attached
	// ENI attached the instance's IMDS starts serving its
	// network/interfaces/macs/<mac>/ entries (subnet-id,
	// subnet-ipv4-cidr-block, device-number, local-ipv4s, ...); until then
	// they answer 404, as IMDS does for what it does not have
	// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-metadata.html).
	// Zero serves them as the API says attached. Not negative.
	IMDSInterfaceLag time.Duration
	// GroupInterval is how often the Auto Scaling group controller runs
	// (asgsim's Reconcile): the longest a group takes to notice an
	// instance gone or unhealthy, a launch hook completed or a timeout
	// passed. 0 means 1 s.
	GroupInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func checkOptions(o *Options) error {
	if h := o.EC2.Hooks; h.ENIAttached != nil || h.ENIDetached != nil || h.VolumeAttached != nil || h.VolumeDetached != nil {
		return errors.New("localcloud: Options.EC2.Hooks must be empty: the local cloud sets them")
	}
	if o.EC2.Region == "" {
		o.EC2.Region = "us-east-1"
	}
	if o.Subnets == nil {
		o.Subnets = DefaultSubnets
	}
	vpc := netip.MustParsePrefix(VPCCIDR)
	var seen []netip.Prefix
	for _, s := range o.Subnets {
		p, err := netip.ParsePrefix(s.CIDR)
		if err != nil || p.Masked() != p || !p.Addr().Is4() {
			return fmt.Errorf("localcloud: subnet %q of %s is not an IPv4 network", s.CIDR, s.AZ)
		}
		if !vpc.Contains(p.Addr()) || p.Bits() < vpc.Bits() || p.Overlaps(serviceSubnet) {
			return fmt.Errorf("localcloud: subnet %s of %s must lie inside %s and outside %s (the service subnet)", s.CIDR, s.AZ, VPCCIDR, serviceSubnet)
		}
		for _, q := range seen {
			if q.Overlaps(p) {
				return fmt.Errorf("localcloud: subnet %s of %s overlaps %s", s.CIDR, s.AZ, q)
			}
		}
		seen = append(seen, p)
	}
	for _, d := range o.PrivateDirs {
		if err := checkLowerDir("private dir", d); err != nil {
			return err
		}
	}
	switch o.Boot {
	case BootHost:
	case BootSystemd:
		if o.RootFS == "" {
			return errors.New("localcloud: BootSystemd needs Options.RootFS: the image to boot")
		}
	default:
		return fmt.Errorf("localcloud: unknown boot mode %v", o.Boot)
	}
	if o.IMDSInterfaceLag < 0 {
		return fmt.Errorf("localcloud: IMDSInterfaceLag %s: IMDS cannot know of an ENI before its attach", o.IMDSInterfaceLag)
	}
	if o.GroupInterval == 0 {
		o.GroupInterval = defaultGroupInterval
	}
	if o.GroupInterval < 0 {
		return fmt.Errorf("localcloud: GroupInterval %s is negative", o.GroupInterval)
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = defaultShutdownTimeout
	}
	if o.RootFS != "" {
		if len(o.PrivateDirs) > 0 {
			return errors.New("localcloud: RootFS and PrivateDirs exclude each other: with an image the whole root is private")
		}
		if err := checkLowerDir("root file system", o.RootFS); err != nil {
			return err
		}
	}
	return nil
}

// checkLowerDir checks a directory that becomes an overlay's lower layer:
// overlay options cannot quote ',' or ':', and a layer holding RunRoot
// would hold the upper layers too.
func checkLowerDir(what, d string) error {
	if !filepath.IsAbs(d) || filepath.Clean(d) != d || strings.ContainsAny(d, ",:") {
		return fmt.Errorf("localcloud: %s %q must be a clean absolute path without ',' or ':'", what, d)
	}
	if d == "/" || strings.HasPrefix(RunRoot+"/", d+"/") {
		return fmt.Errorf("localcloud: %s %s would contain %s", what, d, RunRoot)
	}
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		return fmt.Errorf("localcloud: %s %s must be an existing directory on the host", what, d)
	}
	return nil
}

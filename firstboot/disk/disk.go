// Package disk turns the node's attached EBS volume into its mounted data
// directory, every boot, without ever destroying data: find the device by
// the volume id, probe it, format it only when it is provably blank and was
// never initialized, mount it, and check the identity marker on it. A
// filesystem it did not make and that carries no marker is used only when
// it is empty or the operator adopted it (Spec.Adopt, ErrUnmarked).
//
// What a refusal writes: a volume refused for its probe (other filesystem,
// partition table, not blank, unreadable, another node's label) is only
// read. A filesystem of the configured type is looked at before it is
// mounted read-write, first read-only without journal recovery, which
// writes nothing: another node's marker, or one that cannot be read, is
// refused from that look. Only a refusal of the unmarked check (no marker
// in that view) is confirmed by a second read-only look with recovery,
// which replays a dirty journal (ext4) or log (xfs) into the device, as any
// mount would, and otherwise writes nothing. No refusal formats, writes a
// marker, or changes a file.
//
// The model is coreos/ignition's filesystem stage (reuse a filesystem of the
// right type, fail hard on anything else, never wipe silently) and
// aws-ebs-csi-driver's device lookup (by-id link checked against the NVMe
// serial). Unlike several CSI drivers, blkid's "nothing found" is never
// taken alone as permission to format: it is also what blkid says when it
// cannot read the device.
package disk

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/internal/steplog"
)

// ErrRefused marks errors where the volume was left alone because using it
// could lose or mix up data (wrong filesystem, partition table, blank but
// initialized, unreadable, another node's marker, wrong device). Retrying
// will not help; a human has to look. Test with errors.Is.
var ErrRefused = errors.New("refused")

// refusal is an error that is also ErrRefused, without adding "refused" to
// a message that already says "refusing to ...".
// kind, when set, is a second sentinel the refusal also is (ErrUnmarked).
type refusal struct{ err, kind error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() []error {
	if r.kind != nil {
		return []error{r.err, ErrRefused, r.kind}
	}
	return []error{r.err, ErrRefused}
}

func refuse(format string, args ...any) error {
	return &refusal{err: fmt.Errorf(format, args...)}
}

// Spec is the volume to prepare and what it must become.
type Spec struct {
	VolumeID string // vol-0123456789abcdef0
	// Device is the name requested when attaching (/dev/xvdf or /dev/sdf):
	// used on Xen instances; on Nitro the by-id link of VolumeID wins.
	Device     string
	FSType     string // ext4 or xfs
	MountPoint string
	// MountOptions are mount(8)-style options; nil means ["noatime"].
	MountOptions []string
	// Initialized: the volume carries the zkaas:initialized tag, so it was
	// formatted before and must never be formatted again. The caller reads
	// the tag from EC2.
	Initialized bool
	Ensemble    string
	NodeID      int
	// Adopt is the value of the volume's adopt tag, "" when it has none
	// or the caller has not read it. A filesystem without an identity
	// marker that holds data is used only when Adopt is NodeID (the
	// operator's word that it is this node's data); any other value is
	// refused. The caller reads the tag only after Prepare refused with
	// ErrUnmarked. Once the marker is written the tag no longer matters.
	Adopt string
	// AdoptTag is the adopt tag's key, for the refusal's instructions
	// (DefaultAdoptTag when empty).
	AdoptTag string
}

var volumeIDPattern = regexp.MustCompile(`^vol-[0-9a-f]{8,17}$`)

// normalized validates spec and fills defaults.
func (s Spec) normalized() (Spec, error) {
	switch {
	case !volumeIDPattern.MatchString(s.VolumeID):
		return s, fmt.Errorf("invalid volume id %q", s.VolumeID)
	case s.FSType != "ext4" && s.FSType != "xfs":
		return s, fmt.Errorf("volume %s: unsupported filesystem type %q (want ext4 or xfs)", s.VolumeID, s.FSType)
	case !filepath.IsAbs(s.MountPoint):
		return s, fmt.Errorf("volume %s: mount point %q is not an absolute path", s.VolumeID, s.MountPoint)
	case s.Ensemble == "":
		return s, fmt.Errorf("volume %s: empty ensemble name", s.VolumeID)
	case s.NodeID < 1 || s.NodeID > 255:
		return s, fmt.Errorf("volume %s: node id %d outside 1..255", s.VolumeID, s.NodeID)
	}
	s.MountPoint = filepath.Clean(s.MountPoint)
	if s.MountOptions == nil {
		s.MountOptions = []string{"noatime"}
	}
	return s, nil
}

// Result is what Prepare found and did.
type Result struct {
	Device string // canonical device path
	// Formatted: this run created the filesystem. Set even when Prepare
	// then fails, so the caller still tags the volume initialized.
	Formatted bool
	// Mounted: this run mounted the volume (false if it already was).
	Mounted  bool
	Identity Identity // the marker on the volume, when it was read or written
	// Changes describes every change made, in order; empty when the
	// volume was already prepared.
	Changes []string

	probe Probe // what the probe found, for the identity step's messages
}

// Preparer prepares volumes. The zero value uses the real system paths;
// tests point ByIDDir and SysfsRoot at temporary trees and shorten the
// waits.
type Preparer struct {
	ByIDDir       string        // default /dev/disk/by-id
	SysfsRoot     string        // default /sys
	Commands      Commands      // empty fields default to DefaultCommands
	DeviceTimeout time.Duration // how long to wait for the device; default 60s
	PollInterval  time.Duration // default 250ms
	Log           *slog.Logger  // default slog.Default()
}

func (p *Preparer) byIDDir() string   { return cmp.Or(p.ByIDDir, "/dev/disk/by-id") }
func (p *Preparer) sysfsRoot() string { return cmp.Or(p.SysfsRoot, "/sys") }

func (p *Preparer) deviceTimeout() time.Duration { return cmp.Or(p.DeviceTimeout, 60*time.Second) }
func (p *Preparer) pollInterval() time.Duration  { return cmp.Or(p.PollInterval, 250*time.Millisecond) }

func (p *Preparer) logger() *slog.Logger {
	if p.Log == nil {
		return slog.Default()
	}
	return p.Log
}

// Prepare makes the volume the node's mounted data directory:
//
//	probe says                        tagged initialized   action
//	blank (no signature, zeros)       no                   mkfs (no force flag), mount, write marker
//	blank                             yes                  refuse: data may have been lost
//	filesystem of spec.FSType         any                  look read-only, mount, check marker
//	  labelled zk-<another node>                           refuse
//	  no marker, holds data, no adopt tag for this node    refuse (ErrUnmarked)
//	other filesystem / partition table / non-zero data     refuse
//	probe error (unreadable)          any                  refuse
//
// A mount point already holding this device is accepted as is; holding
// anything else, refused. If the identity check fails after this run
// mounted the volume, it is unmounted again: the volume is another node's
// data, and should not stay exposed to anything that starts despite the
// failed unit. What was mounted before this run is left alone.
//
// After a successful Prepare the volume holds a filesystem, so a caller
// should tag it zkaas:initialized whenever it is not tagged yet — not only
// when Formatted is true — so that a crash between mkfs and tagging cannot
// leave a formatted volume untagged.
func (p *Preparer) Prepare(ctx context.Context, spec Spec) (res Result, err error) {
	spec, err = spec.normalized()
	if err != nil {
		return res, err
	}
	start := time.Now()
	log := p.logger().With("step", "disk", "volume", spec.VolumeID)

	err = steplog.Run(ctx, log, "resolve device", func() (err error) {
		res.Device, err = p.ResolveDevice(ctx, spec)
		return err
	})
	if err != nil {
		return res, err
	}
	log = log.With("device", res.Device)

	major, minor, err := deviceNumber(res.Device)
	if err != nil {
		return res, err
	}
	cur, err := mountAt("/proc/self/mountinfo", spec.MountPoint)
	switch {
	case err != nil:
		return res, err
	case cur != nil && cur.Major == major && cur.Minor == minor && cur.Root == "/" &&
		readOnly(cur.Options) && !slices.Contains(spec.MountOptions, "ro"):
		// This device, read-only at our mount point though not configured
		// so: the look of a run that died before mounting read-write (or
		// an operator's inspection, which a boot supersedes). Start over
		// from unmounted.
		if err := unix.Unmount(spec.MountPoint, 0); err != nil {
			return res, fmt.Errorf("volume %s: unmount the read-only mount at %s: %w", spec.VolumeID, spec.MountPoint, err)
		}
		res.Changes = append(res.Changes, "unmounted the read-only mount of "+res.Device+" at "+spec.MountPoint)
		if err := p.formatAndMount(ctx, log, spec, &res); err != nil {
			return res, err
		}
	case cur != nil && cur.Major == major && cur.Minor == minor && cur.Root == "/":
		if cur.FSType != spec.FSType {
			return res, refuse("volume %s (device %s) is mounted at %s as %s, want %s: refusing to use it",
				spec.VolumeID, res.Device, spec.MountPoint, cur.FSType, spec.FSType)
		}
		log.DebugContext(ctx, "already mounted", "mount_point", spec.MountPoint)
		// The label rule holds for a volume mounted by someone else too.
		if res.probe, err = p.Probe(ctx, res.Device); err != nil {
			return res, err
		}
		if err := checkLabel(spec, res.Device, res.probe); err != nil {
			return res, err
		}
	case cur != nil:
		return res, refuse("mount point %s already has %s (%s, device %d:%d, root %s) mounted, not volume %s (device %s): refusing to mount over it",
			spec.MountPoint, cur.Source, cur.FSType, cur.Major, cur.Minor, cur.Root, spec.VolumeID, res.Device)
	default:
		if err := p.formatAndMount(ctx, log, spec, &res); err != nil {
			return res, err
		}
	}

	defer func() {
		if err != nil && res.Mounted {
			if uerr := unix.Unmount(spec.MountPoint, 0); uerr != nil {
				err = errors.Join(err, fmt.Errorf("unmount %s after failure: %w", spec.MountPoint, uerr))
				return
			}
			res.Mounted = false
			res.Changes = append(res.Changes, "unmounted "+spec.MountPoint+" after failure")
			log.WarnContext(ctx, "unmounted after failure", "mount_point", spec.MountPoint)
		}
	}()
	var change string
	err = steplog.Run(ctx, log, "identity", func() (err error) {
		res.Identity, change, err = reconcileIdentity(spec.MountPoint, spec, res.Device, res.probe, res.Formatted, time.Now())
		return err
	})
	if err != nil {
		return res, err
	}
	if change != "" {
		res.Changes = append(res.Changes, change)
	}
	for _, c := range res.Changes {
		log.InfoContext(ctx, "changed", "change", c)
	}
	log.InfoContext(ctx, "disk ready", "mount_point", spec.MountPoint, "changes", len(res.Changes), "duration", time.Since(start))
	return res, nil
}

// formatAndMount probes the unmounted device, formats it if decide says
// so, and mounts it.
func (p *Preparer) formatAndMount(ctx context.Context, log *slog.Logger, spec Spec, res *Result) error {
	dev := res.Device
	var pr Probe
	err := steplog.Run(ctx, log, "probe", func() (err error) {
		pr, err = p.Probe(ctx, dev)
		return err
	})
	if err != nil {
		return &refusal{err: fmt.Errorf("volume %s (device %s): refusing to format or mount a device that cannot be probed: %w", spec.VolumeID, dev, err)}
	}
	log.InfoContext(ctx, "probed", "blank", pr.Blank, "non_zero", pr.NonZero, "fs_type", pr.FSType, "pt_type", pr.PTType, "uuid", pr.UUID, "label", pr.Label)
	res.probe = pr
	format, err := decide(spec, dev, pr)
	if err != nil {
		return err
	}
	if format {
		label := fmt.Sprintf("zk-%d", spec.NodeID)
		argv := p.Commands.withDefaults().mkfsArgs(spec.FSType, label, dev)
		err := steplog.Run(ctx, log, "mkfs", func() error {
			// Not cancellable: a filesystem half written is neither
			// blank nor usable, and would need a human.
			_, err := run(context.WithoutCancel(ctx), argv...)
			return err
		})
		if err != nil {
			return fmt.Errorf("format volume %s (device %s): %w", spec.VolumeID, dev, err)
		}
		res.Formatted = true
		res.Changes = append(res.Changes, fmt.Sprintf("formatted %s as %s (label %s)", dev, spec.FSType, label))
		// Trust mkfs's work only after seeing it.
		if pr, err = p.Probe(ctx, dev); err != nil || pr.FSType != spec.FSType {
			return fmt.Errorf("volume %s (device %s): after mkfs found %q, want %s (probe error: %v)", spec.VolumeID, dev, pr.FSType, spec.FSType, err)
		}
		res.probe = pr
	}
	if err := os.MkdirAll(spec.MountPoint, 0o755); err != nil {
		return fmt.Errorf("volume %s: create mount point: %w", spec.VolumeID, err)
	}
	if !format {
		// A filesystem this run did not make: look before mounting it
		// read-write, so that refusing it (another node's marker, data
		// without a marker) changes no file (look says what it writes).
		if err := steplog.Run(ctx, log, "look", func() error { return look(ctx, log, spec, dev, pr) }); err != nil {
			return err
		}
	}
	flags, data := splitMountOptions(spec.MountOptions)
	err = steplog.Run(ctx, log, "mount", func() error {
		return unix.Mount(dev, spec.MountPoint, spec.FSType, flags, data)
	})
	if err != nil {
		return fmt.Errorf("mount volume %s (device %s, %s) at %s with %q: %w",
			spec.VolumeID, dev, spec.FSType, spec.MountPoint, strings.Join(spec.MountOptions, ","), err)
	}
	res.Mounted = true
	res.Changes = append(res.Changes, fmt.Sprintf("mounted %s at %s (%s, %s)", dev, spec.MountPoint, spec.FSType, strings.Join(spec.MountOptions, ",")))
	return nil
}

// decide is the format decision: true means format, an error means refuse,
// false with no error means mount what is there. Formatting needs all of:
// a readable device (the caller only gets here with a successful probe), no
// signature and zeros wherever the blank check looks, and no
// zkaas:initialized tag. A filesystem of the wanted type is reused whatever
// its UUID (as ignition does) unless its label names another node: whose
// data it is, is the identity marker's question, and for an unmarked one
// checkUnmarked's.
func decide(spec Spec, dev string, pr Probe) (bool, error) {
	switch {
	case pr.PTType != "":
		return false, refuse("volume %s (device %s) has a %s partition table: refusing to use a partitioned volume (want a whole-device %s filesystem)",
			spec.VolumeID, dev, pr.PTType, spec.FSType)
	case pr.FSType == spec.FSType:
		return false, checkLabel(spec, dev, pr)
	case pr.FSType != "":
		return false, refuse("volume %s (device %s) holds a %s filesystem (uuid %s, label %q), want %s: refusing to mount or format it",
			spec.VolumeID, dev, pr.FSType, pr.UUID, pr.Label, spec.FSType)
	case !pr.Blank:
		return false, refuse("volume %s (device %s) has no known filesystem signature but is not blank (%s): refusing to format what may be data (an unknown or encrypted filesystem, or one whose primary superblock was wiped?)",
			spec.VolumeID, dev, cmp.Or(pr.NonZero, "non-zero data"))
	case spec.Initialized:
		return false, refuse("volume %s (device %s) is tagged zkaas:initialized but has no filesystem: refusing to format (data may have been lost); restore from snapshot or remove the tag",
			spec.VolumeID, dev)
	default:
		return true, nil
	}
}

// readOnly reports whether mountinfo's per-mount options say "ro".
func readOnly(opts string) bool {
	return slices.Contains(strings.Split(opts, ","), "ro")
}

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
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnmarked marks the refusal of a filesystem of the configured type that
// has no identity marker and holds data: it may be anyone's, so it is
// adopted only when the operator says so with the adopt tag (Spec.Adopt).
// It is also ErrRefused. A caller that did not read the adopt tag yet reads
// it when, and only when, Prepare answers this, and calls Prepare again:
// the tag costs nothing on a normal boot.
var ErrUnmarked = errors.New("unmarked filesystem with data")

// DefaultAdoptTag is the adopt tag's key when Spec.AdoptTag is empty (the
// default of ensemble's claim.tags.adopt).
const DefaultAdoptTag = "zkaas:adopt"

// nodeLabel is the label mkfs gives a node's filesystem here (zk-<node>).
var nodeLabel = regexp.MustCompile(`^zk-([0-9]+)$`)

// checkLabel refuses a filesystem labelled for another node: it was made
// for that node's data, whatever marker or tag it carries now (a marker can
// be copied, a tag set on the wrong volume). Labels not of this form are
// not ours and say nothing.
func checkLabel(spec Spec, dev string, pr Probe) error {
	m := nodeLabel.FindStringSubmatch(pr.Label)
	if m == nil {
		return nil
	}
	if n, err := strconv.Atoi(m[1]); err == nil && n == spec.NodeID {
		return nil
	}
	return refuse("volume %s (device %s) holds a %s filesystem (uuid %s) labelled %q, the label of another node's filesystem, but is attached as node %d: refusing to use another node's volume (check the volume's node tag; if it really is node %d's data now, relabel it first: e2label or xfs_admin -L zk-%d)",
		spec.VolumeID, dev, pr.FSType, pr.UUID, pr.Label, spec.NodeID, spec.NodeID, spec.NodeID)
}

// checkUnmarked decides about a filesystem of the configured type, mounted
// at mnt, that has no identity marker: it is taken (the marker then
// written) when it is as mkfs leaves it — a crash between mkfs and the
// marker leaves exactly that — or when the adopt tag names this node. The
// answer is how it was taken, for the change log, or the refusal.
func checkUnmarked(mnt string, spec Spec, dev string, pr Probe) (string, error) {
	tag := cmp.Or(spec.AdoptTag, DefaultAdoptTag)
	hint := fmt.Sprintf("aws ec2 create-tags --resources %s --tags Key=%s,Value=%d", spec.VolumeID, tag, spec.NodeID)
	if spec.Adopt != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(spec.Adopt)); err != nil || n != spec.NodeID {
			return "", refuse("volume %s (device %s) is tagged %s=%s, but is attached as node %d: refusing to adopt it for a node the tag does not name (if it is this node's data: %s)",
				spec.VolumeID, dev, tag, spec.Adopt, spec.NodeID, hint)
		}
		return fmt.Sprintf("adopted by tag %s=%s", tag, spec.Adopt), nil
	}
	entries, empty, err := topLevel(mnt, spec.FSType)
	if err != nil {
		return "", fmt.Errorf("volume %s: list %s: %w", spec.VolumeID, mnt, err)
	}
	if empty {
		return "empty filesystem", nil
	}
	shown := entries
	more := ""
	if len(shown) > 5 {
		more = fmt.Sprintf(" and %d more", len(shown)-5)
		shown = shown[:5]
	}
	return "", &refusal{err: fmt.Errorf("volume %s (device %s) holds a %s filesystem (label %q, uuid %s) with data but no identity marker (top level: %s%s): refusing to use data zkaas did not create; if it is node %d's ZooKeeper data for ensemble %q, adopt it with: %s",
		spec.VolumeID, dev, pr.FSType, pr.Label, pr.UUID, strings.Join(shown, ", "), more, spec.NodeID, spec.Ensemble, hint),
		kind: ErrUnmarked}
}

// topLevel lists the root of the filesystem mounted at mnt, sorted, and
// says whether it holds only what mkfs creates: for ext4 an empty
// lost+found directory, for xfs nothing. A temporary file left by a marker
// write that crashed (see fsutil.WriteFile) is ours and does not count.
func topLevel(mnt, fsType string) ([]string, bool, error) {
	des, err := os.ReadDir(mnt)
	if err != nil {
		return nil, false, err
	}
	var names []string
	empty := true
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, "."+MarkerName+".tmp") {
			continue
		}
		names = append(names, name)
		if fsType == "ext4" && name == "lost+found" && de.IsDir() {
			sub, err := os.ReadDir(filepath.Join(mnt, name))
			if err != nil {
				return nil, false, err
			}
			if len(sub) == 0 {
				continue
			}
		}
		empty = false
	}
	slices.Sort(names)
	return names, empty, nil
}

// look checks the unmounted filesystem on dev before it is mounted
// read-write: a read-only mount without journal recovery (ext4 and xfs both
// call it norecovery; even a plain read-only xfs mount writes its log),
// the marker or the unmarked check, unmount. That look writes nothing.
//
// A marker the norecovery view shows decides there: this node's is
// accepted, another node's, or one that is unreadable or not a regular
// file, is refused from it, and the device is left byte for byte as it
// was. Only when that view shows no marker and the unmarked check refuses
// (data without a marker, or an adopt tag for another node) is the refusal
// confirmed by a second read-only look with journal recovery: a journal
// not replayed may hide the newest changes, the marker itself included (an
// xfs whose instance died shows nothing at all without its log). That look
// lets the kernel replay a dirty journal or log into the filesystem — the
// writes any mount makes, changing no file's content — and writes nothing
// when the journal is clean. It costs nothing on the normal path, where
// the first look passes.
func look(ctx context.Context, log *slog.Logger, spec Spec, dev string, pr Probe) error {
	marked, err := lookOnce(spec, dev, pr, false)
	if err == nil || marked {
		return err
	}
	log.InfoContext(ctx, "read-only look without journal recovery found no identity marker and refused the volume; looking again with recovery", "error", err)
	_, err = lookOnce(spec, dev, pr, true)
	return err
}

// lookOnce is one read-only look. marked is true when the answer came from
// an identity marker (or from failing to read one), false when it came
// from the unmarked check, whose refusal a view with recovery may lift.
func lookOnce(spec Spec, dev string, pr Probe, recovery bool) (marked bool, err error) {
	data := "norecovery"
	if recovery {
		data = ""
	}
	const flags = unix.MS_RDONLY | unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC
	if err := unix.Mount(dev, spec.MountPoint, spec.FSType, flags, data); err != nil {
		return false, fmt.Errorf("mount volume %s (device %s, %s) read-only at %s to look at it: %w", spec.VolumeID, dev, spec.FSType, spec.MountPoint, err)
	}
	defer func() {
		if uerr := unix.Unmount(spec.MountPoint, 0); uerr != nil {
			err = errors.Join(err, fmt.Errorf("volume %s: unmount the read-only look at %s: %w", spec.VolumeID, spec.MountPoint, uerr))
		}
	}()
	_, exists, err := readIdentity(spec.MountPoint, spec)
	if err != nil || exists {
		return true, err
	}
	_, err = checkUnmarked(spec.MountPoint, spec, dev, pr)
	return false, err
}

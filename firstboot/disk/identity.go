package disk

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/internal/fsutil"
)

// MarkerName is the identity marker's file name at the root of the volume.
const MarkerName = ".zkaas-identity"

// Identity is the marker that ties a volume's data to one node of one
// ensemble. It lives on the volume itself, so it travels with the data
// through detach, re-attach and snapshot restore.
type Identity struct {
	Ensemble string `json:"ensemble"`
	NodeID   int    `json:"node_id"`
	VolumeID string `json:"volume_id"`
	// FirstFormatted is when this program formatted the volume; absent on
	// a volume that already had a filesystem when the marker was first
	// written, because then the true time is unknown.
	FirstFormatted time.Time `json:"first_formatted,omitzero"`
}

// reconcileIdentity checks or writes the marker under mountPoint and
// returns the identity now on the volume and a description of what it
// changed ("" for nothing). dev and pr (the probe of dev) are for the
// decision about, and the message on, a filesystem without a marker.
//
// Identity is ensemble + node id. The volume id is recorded but not part of
// it: restoring a snapshot of node N's volume — the recovery this package's
// own error messages recommend — gives a new volume id, and the claim step
// only attaches a volume tagged for node N, so the new id is updated in the
// marker (and logged by the caller) rather than refused. A volume of
// another node or ensemble is refused whatever its id. A filesystem that
// this run did not format and that has no marker gets one only if
// checkUnmarked allows it (empty, or adopted by tag).
func reconcileIdentity(mountPoint string, spec Spec, dev string, pr Probe, formatted bool, now time.Time) (Identity, string, error) {
	path := filepath.Join(mountPoint, MarkerName)
	want := Identity{Ensemble: spec.Ensemble, NodeID: spec.NodeID, VolumeID: spec.VolumeID}
	have, exists, err := readIdentity(mountPoint, spec)
	switch {
	case err != nil:
		return have, "", err
	case !exists:
		change := "wrote identity marker " + path
		if formatted {
			want.FirstFormatted = now.UTC().Truncate(time.Second)
		} else {
			how, err := checkUnmarked(mountPoint, spec, dev, pr)
			if err != nil {
				return Identity{}, "", err
			}
			change += " on existing filesystem (no marker found; " + how + ")"
		}
		if err := writeMarker(path, want); err != nil {
			return Identity{}, "", err
		}
		return want, change, nil
	case have.VolumeID == want.VolumeID:
		return have, "", nil
	}
	old := have.VolumeID
	have.VolumeID = want.VolumeID
	if err := writeMarker(path, have); err != nil {
		return Identity{}, "", err
	}
	return have, fmt.Sprintf("identity marker %s: volume id %s -> %s (volume restored from a snapshot)", path, old, want.VolumeID), nil
}

// readIdentity reads the marker under mountPoint: exists is false when
// there is none; an error when it cannot be read, and a refusal when it is
// not a regular file, is not a marker, or names another node or ensemble.
// It never writes.
func readIdentity(mountPoint string, spec Spec) (have Identity, exists bool, err error) {
	path := filepath.Join(mountPoint, MarkerName)
	// Lstat first: ReadFile would follow a symlink off the volume, fail
	// with EISDIR on a directory, and block forever on a FIFO. None of
	// these is ours, and retrying will not change them.
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Identity{}, false, nil
	case err != nil:
		return Identity{}, false, fmt.Errorf("read identity marker of volume %s: %w", spec.VolumeID, err)
	case !fi.Mode().IsRegular():
		return Identity{}, true, refuse("volume %s: identity marker %s is not a regular file (%s): refusing to guess whose data this is; remove or fix it by hand",
			spec.VolumeID, path, fileKind(fi.Mode()))
	}
	b, err := os.ReadFile(path)
	var errno unix.Errno
	switch {
	case errors.As(err, &errno) && (errno == unix.EISDIR || errno == unix.ELOOP || errno == unix.ENOTDIR || errno == unix.ENXIO):
		// Replaced under us by something that is not a file.
		return Identity{}, true, refuse("volume %s: identity marker %s is unreadable (%v): refusing to guess whose data this is", spec.VolumeID, path, err)
	case err != nil:
		return Identity{}, true, fmt.Errorf("read identity marker of volume %s: %w", spec.VolumeID, err)
	}
	if err := json.Unmarshal(b, &have); err != nil {
		// We write the marker atomically, so a damaged one was not torn by
		// us: refuse rather than guess whose data this is.
		return Identity{}, true, refuse("volume %s: identity marker %s is unreadable (%v): refusing to guess whose data this is", spec.VolumeID, path, err)
	}
	if have.Ensemble != spec.Ensemble || have.NodeID != spec.NodeID {
		return have, true, refuse("volume %s holds the data of ensemble %q node %d (marker %s), not ensemble %q node %d: refusing to use another node's data",
			spec.VolumeID, have.Ensemble, have.NodeID, path, spec.Ensemble, spec.NodeID)
	}
	return have, true, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	default:
		return "mode " + m.String()
	}
}

// writeMarker replaces path atomically and durably: a temporary file in the
// same directory, fsync, rename, fsync of the directory. A crash leaves the
// old marker or the new one, never a torn one.
func writeMarker(path string, id Identity) error {
	data, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	if _, err := fsutil.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write identity marker of %s: %w", id.VolumeID, err)
	}
	return nil
}

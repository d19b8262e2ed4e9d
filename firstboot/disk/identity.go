package disk

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
// changed ("" for nothing).
//
// Identity is ensemble + node id. The volume id is recorded but not part of
// it: restoring a snapshot of node N's volume — the recovery this package's
// own error messages recommend — gives a new volume id, and the claim step
// only attaches a volume tagged for node N, so the new id is updated in the
// marker (and logged by the caller) rather than refused. A volume of
// another node or ensemble is refused whatever its id.
func reconcileIdentity(mountPoint string, spec Spec, formatted bool, now time.Time) (Identity, string, error) {
	path := filepath.Join(mountPoint, MarkerName)
	want := Identity{Ensemble: spec.Ensemble, NodeID: spec.NodeID, VolumeID: spec.VolumeID}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		change := "wrote identity marker " + path + " on existing filesystem (no marker found)"
		if formatted {
			want.FirstFormatted = now.UTC().Truncate(time.Second)
			change = "wrote identity marker " + path
		}
		if err := writeMarker(path, want); err != nil {
			return Identity{}, "", err
		}
		return want, change, nil
	case err != nil:
		return Identity{}, "", fmt.Errorf("read identity marker of volume %s: %w", spec.VolumeID, err)
	}

	var have Identity
	if err := json.Unmarshal(b, &have); err != nil {
		// We write the marker atomically, so a damaged one was not torn by
		// us: refuse rather than guess whose data this is.
		return Identity{}, "", refuse("volume %s: identity marker %s is unreadable (%v): refusing to guess whose data this is", spec.VolumeID, path, err)
	}
	if have.Ensemble != want.Ensemble || have.NodeID != want.NodeID {
		return have, "", refuse("volume %s holds the data of ensemble %q node %d (marker %s), not ensemble %q node %d: refusing to use another node's data",
			spec.VolumeID, have.Ensemble, have.NodeID, path, want.Ensemble, want.NodeID)
	}
	if have.VolumeID == want.VolumeID {
		return have, "", nil
	}
	old := have.VolumeID
	have.VolumeID = want.VolumeID
	if err := writeMarker(path, have); err != nil {
		return Identity{}, "", err
	}
	return have, fmt.Sprintf("identity marker %s: volume id %s -> %s (volume restored from a snapshot)", path, old, want.VolumeID), nil
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

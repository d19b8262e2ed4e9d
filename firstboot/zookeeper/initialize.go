package zookeeper

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zkaas/zkaas/internal/fsutil"
)

// ErrUnsafeEmptyTree is wrapped by DecideInitialize's refusals: this node's
// data tree is empty, the ensemble may hold data it lacks, and no quorum is
// reachable to sync from. The caller may probe again until its deadline —
// the others may simply still be booting — but must not start ZooKeeper
// with an initialize marker.
var ErrUnsafeEmptyTree = errors.New("refusing to trust an empty data tree")

// PeerVolume is what the zkaas:initialized tag says about one node's volume.
type PeerVolume struct {
	NodeID   int
	VolumeID string
	// InitializedAt is the tag's RFC 3339 time; zero means the volume was
	// never formatted.
	InitializedAt time.Time
}

// InitInput is everything DecideInitialize looks at.
type InitInput struct {
	NodeID int
	// FormattedNow: our volume was blank and firstboot formatted it in this
	// boot.
	FormattedNow bool
	// HasData: the data dirs hold ZooKeeper state (see HasData).
	HasData bool
	// Self is our own volume; its InitializedAt matters only when the tree is
	// empty on a volume formatted in an earlier boot.
	Self PeerVolume
	// Others are the other nodes' volumes.
	Others []PeerVolume
	// QuorumReachable: a majority of the ensemble answered srvr as leader or
	// follower (Quorum.Reachable).
	QuorumReachable bool
	Now             time.Time
	// BootstrapWindow is how long after its first volume was formatted an
	// ensemble counts as brand new: every node of a new ensemble formats its
	// volume within it.
	BootstrapWindow time.Duration
}

// InitDecision is whether to write the initialize marker, and why, in one
// line for the log.
type InitDecision struct {
	Initialize bool
	Reason     string
}

// DecideInitialize decides whether ZooKeeper may trust this node's empty data
// tree. Trusting it (the initialize marker) gives the node zxid 0 and a vote:
// right for a brand-new ensemble, where no node has data and nobody could
// start otherwise, and a way to lose committed transactions anywhere else
// (an empty voter plus a lagging one make a majority that elects the
// laggard). Not trusting it is always safe but, without a quorum to sync
// from, the node cannot serve; that case is refused so the failure is loud.
//
// An empty tree on a volume formatted in an earlier boot happens when an
// instance died between formatting and ZooKeeper's first start, or when
// someone emptied the directories. It is trusted only when the volume itself
// was initialized within the bootstrap window (the first case, while the
// ensemble is still new); otherwise a quorum to sync from is required.
func DecideInitialize(in InitInput) (InitDecision, error) {
	if in.BootstrapWindow < 0 || in.Now.IsZero() {
		return InitDecision{}, fmt.Errorf("node %d: need the current time and a bootstrap window >= 0 (got %v, %s)", in.NodeID, in.Now, in.BootstrapWindow)
	}
	if in.HasData {
		if in.FormattedNow {
			// Nothing but ZooKeeper writes there, and it has not run since
			// the format: the wrong device, or a wrong "formatted" report.
			return InitDecision{}, fmt.Errorf("node %d: volume %s was formatted in this boot but already holds ZooKeeper data: refusing to guess which is wrong", in.NodeID, in.Self.VolumeID)
		}
		return InitDecision{Reason: "data tree present: ZooKeeper starts from it"}, nil
	}
	if in.QuorumReachable {
		return InitDecision{Reason: "empty data tree and a quorum is serving: ZooKeeper starts untrusted (zxid -1) and syncs from the leader"}, nil
	}
	cutoff := in.Now.Add(-in.BootstrapWindow)
	for _, o := range in.Others {
		if !o.InitializedAt.IsZero() && o.InitializedAt.Before(cutoff) {
			return InitDecision{}, fmt.Errorf("node %d: %w: node %d's volume %s was initialized at %s, before the %s bootstrap window, so the ensemble holds data this node lacks; no quorum is reachable to sync from, and an empty voter could elect a leader missing committed transactions",
				in.NodeID, ErrUnsafeEmptyTree, o.NodeID, o.VolumeID, o.InitializedAt.UTC().Format(time.RFC3339), in.BootstrapWindow)
		}
	}
	if !in.FormattedNow {
		switch at := in.Self.InitializedAt; {
		case at.IsZero():
			return InitDecision{}, fmt.Errorf("node %d: %w: volume %s was not formatted in this boot, has no initialized tag and no ZooKeeper data, and no quorum is reachable to sync from",
				in.NodeID, ErrUnsafeEmptyTree, in.Self.VolumeID)
		case at.Before(cutoff):
			return InitDecision{}, fmt.Errorf("node %d: %w: volume %s was initialized at %s, before the %s bootstrap window, yet holds no ZooKeeper data (emptied, or ZooKeeper never ran on it); no quorum is reachable to sync from",
				in.NodeID, ErrUnsafeEmptyTree, in.Self.VolumeID, at.UTC().Format(time.RFC3339), in.BootstrapWindow)
		}
	}
	return InitDecision{Initialize: true, Reason: "brand-new ensemble: no volume is older than the bootstrap window and no quorum exists; the empty data tree is trusted once"}, nil
}

// epochFiles are where QuorumPeer records the epochs it accepted from a
// leader, in the snapshot directory (DataDir/version-2); the .tmp names are
// its atomic-write leftovers.
var epochFiles = []string{"currentEpoch", "acceptedEpoch", "currentEpoch.tmp", "acceptedEpoch.tmp"}

// untrustedEpoch is what a server that loaded an untrusted empty tree writes
// to its epoch files before it ever meets a leader.
const untrustedEpoch = -1

// HasData reports whether ZooKeeper has state in the layout: a snapshot
// (DataDir/version-2), a transaction log (DataLogDir/version-2), or an epoch
// file recording an epoch accepted from a leader. Epoch files holding -1 do
// not count: ZooKeeper writes them when it starts with an untrusted empty
// tree. Missing directories mean no data; any other error is returned,
// never read as "empty".
func HasData(l Layout) (bool, error) {
	// Either kind in either directory counts: a misplaced file is still data,
	// and "no data" is the answer that can lead to trusting an empty tree.
	for _, dir := range []string{filepath.Join(l.DataDir, versionDir), filepath.Join(l.DataLogDir, versionDir)} {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("look for ZooKeeper data: %w", err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "snapshot.") || strings.HasPrefix(e.Name(), "log.") {
				return true, nil
			}
		}
	}
	_, accepted, err := epochs(l)
	return accepted != "", err
}

// epochs reads the epoch files: stale lists those holding -1, accepted names
// the first holding a real epoch.
func epochs(l Layout) (stale []string, accepted string, err error) {
	for _, name := range epochFiles {
		path := filepath.Join(l.DataDir, versionDir, name)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("read ZooKeeper epoch: %w", err)
		}
		epoch, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("ZooKeeper epoch file %s: %w", path, err)
		}
		if epoch != untrustedEpoch {
			return nil, fmt.Sprintf("%s=%d", path, epoch), nil
		}
		stale = append(stale, path)
	}
	return stale, "", nil
}

// SetInitializeMarker makes the initialize marker present or absent and
// reports whether it changed anything. Removing matters as much as writing:
// a marker left by an earlier boot whose ZooKeeper never started must not
// outlive the decision that wrote it.
//
// Writing also removes epoch files holding -1, left by an earlier untrusted
// start: ZooKeeper refuses to load a trusted tree (zxid 0) whose current
// epoch is -1 ("The current epoch, ffffffffffffffff, is older than the last
// zxid, 0") and would never start. An epoch file holding a real epoch means
// the node once followed a leader: that is data, and the marker is refused.
func SetInitializeMarker(l Layout, present bool, zk Owner) (bool, error) {
	path := l.InitializePath()
	if !present {
		err := os.Remove(path)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("remove initialize marker: %w", err)
		}
		return true, fsutil.SyncDir(l.DataLogDir)
	}
	stale, accepted, err := epochs(l)
	if err != nil {
		return false, err
	}
	if accepted != "" {
		return false, fmt.Errorf("%w: %s records an epoch accepted from a leader", ErrUnsafeEmptyTree, accepted)
	}
	changed := false
	for _, p := range stale {
		if err := os.Remove(p); err != nil {
			return changed, fmt.Errorf("remove stale epoch file: %w", err)
		}
		changed = true
	}
	if changed {
		if err := fsutil.SyncDir(filepath.Dir(stale[0])); err != nil {
			return changed, err
		}
	}
	// ZooKeeper only checks that the file exists and deletes it; the text is
	// for whoever finds it first.
	wrote, err := writeOwned(path, []byte("written by zkaas-firstboot: trust the empty data tree of a brand-new ensemble once\n"), dataFileMode, zk)
	return changed || wrote, err
}

package boot

import (
	"testing"
	"time"

	"github.com/zkaas/zkaas/firstboot/claim"
)

// TestPeerVolume: a peer's initialized time comes from its tag; a peer
// restored from a snapshot without the tag (EC2 does not copy tags) counts
// as holding old data, never as brand new.
func TestPeerVolume(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		in   claim.PeerInit
		want time.Time
	}{
		{"tagged", claim.PeerInit{Node: 1, Volume: "vol-1", Initialized: at.Format(time.RFC3339)}, at},
		{"never initialized", claim.PeerInit{Node: 1, Volume: "vol-1"}, time.Time{}},
		{"restored from a snapshot", claim.PeerInit{Node: 1, Volume: "vol-1", Snapshot: "snap-1"}, restoredLongAgo},
		{"tag wins over snapshot", claim.PeerInit{Node: 1, Volume: "vol-1", Snapshot: "snap-1", Initialized: at.Format(time.RFC3339)}, at},
		{"garbage tag, no snapshot", claim.PeerInit{Node: 1, Volume: "vol-1", Initialized: "yes"}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := peerVolume(tt.in)
			if !got.InitializedAt.Equal(tt.want) || got.NodeID != 1 || got.VolumeID != "vol-1" {
				t.Errorf("peerVolume = %+v, want initialized %v", got, tt.want)
			}
		})
	}
}

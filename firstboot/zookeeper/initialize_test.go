package zookeeper

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDecideInitialize(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	const window = 30 * time.Minute
	self := func(at time.Time) PeerVolume { return PeerVolume{NodeID: 1, VolumeID: "vol-1", InitializedAt: at} }
	never := func(id int) PeerVolume { return PeerVolume{NodeID: id, VolumeID: "vol-" + strconv.Itoa(id)} }
	at := func(id int, t time.Time) PeerVolume {
		p := never(id)
		p.InitializedAt = t
		return p
	}
	recent, old := now.Add(-5*time.Minute), now.Add(-48*time.Hour)

	tests := []struct {
		name string
		in   InitInput
		// want is the decision; wantErr, if set, a substring of the error,
		// and unsafe whether it wraps ErrUnsafeEmptyTree.
		want    bool
		wantErr string
		unsafe  bool
	}{
		{
			name: "volume with data starts normally",
			in:   InitInput{HasData: true, Self: self(old), Others: []PeerVolume{at(2, old), at(3, old)}},
		},
		{
			name: "volume with data starts normally even without a quorum or a tag",
			in:   InitInput{HasData: true, Others: []PeerVolume{never(2)}},
		},
		{
			name:    "formatted now yet holding data is refused",
			in:      InitInput{FormattedNow: true, HasData: true, Self: self(now)},
			wantErr: "volume vol-1 was formatted in this boot but already holds ZooKeeper data",
		},
		{
			name: "formatted now, others serve a quorum: sync from the leader",
			in:   InitInput{FormattedNow: true, Self: self(now), Others: []PeerVolume{at(2, old), at(3, old)}, QuorumReachable: true},
		},
		{
			name: "formatted now, no quorum, no other volume ever formatted: new ensemble",
			in:   InitInput{FormattedNow: true, Self: self(now), Others: []PeerVolume{never(2), never(3)}},
			want: true,
		},
		{
			name: "formatted now, no quorum, others formatted within the window: new ensemble",
			in:   InitInput{FormattedNow: true, Self: self(now), Others: []PeerVolume{at(2, recent), never(3), at(4, now.Add(-window)), at(5, now.Add(time.Minute))}},
			want: true,
		},
		{
			name: "single-node ensemble formatted now: new ensemble",
			in:   InitInput{FormattedNow: true, Self: self(now)},
			want: true,
		},
		{
			name:    "formatted now, no quorum, another volume older than the window: refused",
			in:      InitInput{FormattedNow: true, Self: self(now), Others: []PeerVolume{at(2, recent), at(3, old)}},
			wantErr: "node 3's volume vol-3 was initialized at 2025-05-30T12:00:00Z, before the 30m0s bootstrap window",
			unsafe:  true,
		},
		{
			name:    "zero window: any initialized peer means the ensemble has data",
			in:      InitInput{FormattedNow: true, Self: self(now), Others: []PeerVolume{at(2, now.Add(-time.Second))}},
			wantErr: "node 2's volume vol-2",
			unsafe:  true,
		},
		{
			name: "emptied volume with a quorum: sync from the leader",
			in:   InitInput{Self: self(old), Others: []PeerVolume{at(2, old), at(3, old)}, QuorumReachable: true},
		},
		{
			name: "earlier boot formatted the volume but ZooKeeper never ran, ensemble still new: new ensemble",
			in:   InitInput{Self: self(recent), Others: []PeerVolume{at(2, recent), never(3)}},
			want: true,
		},
		{
			name:    "emptied volume older than the window, no quorum: refused",
			in:      InitInput{Self: self(old), Others: []PeerVolume{never(2), never(3)}},
			wantErr: "volume vol-1 was initialized at 2025-05-30T12:00:00Z, before the 30m0s bootstrap window, yet holds no ZooKeeper data",
			unsafe:  true,
		},
		{
			name:    "emptied volume without an initialized tag, no quorum: refused",
			in:      InitInput{Self: self(time.Time{}), Others: []PeerVolume{never(2)}},
			wantErr: "has no initialized tag and no ZooKeeper data",
			unsafe:  true,
		},
		{
			name:    "recent emptied volume but an old peer, no quorum: refused naming the peer",
			in:      InitInput{Self: self(recent), Others: []PeerVolume{at(2, old)}},
			wantErr: "node 2's volume vol-2",
			unsafe:  true,
		},
		{
			name:    "negative window",
			in:      InitInput{FormattedNow: true, BootstrapWindow: -time.Second},
			wantErr: "bootstrap window",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.NodeID = 1
			if in.Now.IsZero() {
				in.Now = now
			}
			if in.BootstrapWindow == 0 && !strings.HasPrefix(tt.name, "zero window") {
				in.BootstrapWindow = window
			}
			got, err := DecideInitialize(in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if errors.Is(err, ErrUnsafeEmptyTree) != tt.unsafe {
					t.Errorf("errors.Is(err, ErrUnsafeEmptyTree) = %v, want %v", !tt.unsafe, tt.unsafe)
				}
				if got.Initialize {
					t.Error("refusal also says initialize")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Initialize != tt.want || got.Reason == "" {
				t.Errorf("decision = %+v, want Initialize=%v with a reason", got, tt.want)
			}
		})
	}
}

func TestDecideInitializeNeedsTime(t *testing.T) {
	if _, err := DecideInitialize(InitInput{FormattedNow: true, BootstrapWindow: time.Minute}); err == nil {
		t.Fatal("a zero Now was accepted: every peer would look recent")
	}
}

// layoutWith creates files (path relative to the layout root → content; a
// path ending in / is a directory) under a fresh default layout.
func layoutWith(t *testing.T, files map[string]string) Layout {
	t.Helper()
	dir := t.TempDir()
	for f, content := range files {
		p := filepath.Join(dir, f)
		if strings.HasSuffix(f, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return DefaultLayout(dir)
}

func TestHasData(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    bool
		wantErr bool
	}{
		{name: "no directories"},
		{name: "empty version-2 dirs", files: map[string]string{"data/version-2/": "", "datalog/version-2/": ""}},
		{name: "what an untrusted start leaves", files: map[string]string{
			"data/version-2/currentEpoch": "-1", "data/version-2/acceptedEpoch": "-1\n", "data/myid": "1\n", "datalog/version-2/": "",
		}},
		{name: "snapshot", files: map[string]string{"data/version-2/snapshot.0": "x"}, want: true},
		{name: "compressed snapshot", files: map[string]string{"data/version-2/snapshot.1a2b.snappy": "x"}, want: true},
		{name: "transaction log", files: map[string]string{"datalog/version-2/log.100000001": "x"}, want: true},
		{name: "snapshot in the log dir", files: map[string]string{"datalog/version-2/snapshot.0": "x"}, want: true},
		{name: "epoch accepted from a leader", files: map[string]string{"data/version-2/currentEpoch": "-1", "data/version-2/acceptedEpoch": "3"}, want: true},
		{name: "half-written epoch", files: map[string]string{"data/version-2/currentEpoch.tmp": "2"}, want: true},
		{name: "unreadable epoch", files: map[string]string{"data/version-2/currentEpoch": "garbage"}, wantErr: true},
		// version-2 that cannot be listed must not read as "no data".
		{name: "version-2 is a file", files: map[string]string{"data/version-2": ""}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HasData(layoutWith(t, tt.files))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("HasData = %v, %v; want %v (error: %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSetInitializeMarker(t *testing.T) {
	requireRoot(t)
	l := layoutWith(t, map[string]string{"datalog/": ""})
	steps := []struct {
		present, wantChanged bool
	}{
		{true, true}, {true, false}, {false, true}, {false, false},
	}
	for i, s := range steps {
		changed, err := SetInitializeMarker(l, s.present, testZK)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if changed != s.wantChanged {
			t.Errorf("step %d (present=%v): changed = %v, want %v", i, s.present, changed, s.wantChanged)
		}
		_, err = os.Stat(filepath.Join(l.DataLogDir, "initialize"))
		if exists := err == nil; exists != s.present {
			t.Errorf("step %d: marker exists = %v, want %v", i, exists, s.present)
		}
		if s.present {
			assertOwned(t, l.InitializePath(), 0o644, testZK)
		}
	}
}

func TestSetInitializeMarkerEpochs(t *testing.T) {
	requireRoot(t)
	t.Run("stale epochs of an untrusted start are removed", func(t *testing.T) {
		l := layoutWith(t, map[string]string{"data/version-2/currentEpoch": "-1", "data/version-2/acceptedEpoch": "-1", "datalog/": ""})
		if changed, err := SetInitializeMarker(l, true, testZK); err != nil || !changed {
			t.Fatalf("SetInitializeMarker = %v, %v", changed, err)
		}
		for _, f := range []string{"currentEpoch", "acceptedEpoch"} {
			if _, err := os.Stat(filepath.Join(l.DataDir, "version-2", f)); !os.IsNotExist(err) {
				t.Errorf("%s still present (stat: %v): ZooKeeper would refuse the trusted tree", f, err)
			}
		}
	})
	t.Run("an accepted epoch refuses the marker", func(t *testing.T) {
		l := layoutWith(t, map[string]string{"data/version-2/currentEpoch": "-1", "data/version-2/acceptedEpoch": "4", "datalog/": ""})
		_, err := SetInitializeMarker(l, true, testZK)
		if !errors.Is(err, ErrUnsafeEmptyTree) || !strings.Contains(err.Error(), "acceptedEpoch=4") {
			t.Fatalf("err = %v, want ErrUnsafeEmptyTree naming acceptedEpoch=4", err)
		}
		if _, err := os.Stat(l.InitializePath()); !os.IsNotExist(err) {
			t.Error("marker written despite the accepted epoch")
		}
		if _, err := os.Stat(filepath.Join(l.DataDir, "version-2", "currentEpoch")); err != nil {
			t.Error("epoch files touched despite the refusal")
		}
	})
}

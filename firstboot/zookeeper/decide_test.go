package zookeeper

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDecider: the re-probe loop around DecideInitialize, with its inputs
// injected: peers and quorum are read afresh on every attempt, a refusal is
// retried on the backoff until ctx ends, anything else ends it at once.
func TestDecider(t *testing.T) {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	const window = 30 * time.Minute
	old := PeerVolume{NodeID: 2, VolumeID: "vol-2", InitializedAt: start.Add(-48 * time.Hour)}
	fresh := InitInput{NodeID: 1, FormattedNow: true, Self: PeerVolume{NodeID: 1, VolumeID: "vol-1", InitializedAt: start}, BootstrapWindow: window}
	withData := fresh
	withData.FormattedNow, withData.HasData = false, true
	tests := []struct {
		name string
		in   InitInput
		// peers and quorum are what the n-th attempt sees (the last entry
		// repeats).
		peers   [][]PeerVolume
		quorum  []bool
		peerErr error
		cancel  int // cancel ctx after this many waits (0: never)
		want    InitDecision
		wantErr string
		// attempts is how often peers were listed; waits the backoff calls.
		attempts, waits int
	}{
		{name: "data present: no peers consulted", in: withData,
			want: InitDecision{Reason: "data tree present: ZooKeeper starts from it"}},
		{name: "brand new: trusted at once", in: fresh, peers: [][]PeerVolume{{{NodeID: 2, VolumeID: "vol-2"}}}, quorum: []bool{false},
			want: InitDecision{Initialize: true, Reason: "brand-new ensemble: no volume is older than the bootstrap window and no quorum exists; the empty data tree is trusted once"}, attempts: 1},
		{name: "old peer, quorum comes on the third probe", in: fresh, peers: [][]PeerVolume{{old}}, quorum: []bool{false, false, true},
			want:     InitDecision{Reason: "empty data tree and a quorum is serving: ZooKeeper starts untrusted (zxid -1) and syncs from the leader"},
			attempts: 3, waits: 2},
		{name: "the old peer's volume is retired between attempts: listed afresh", in: fresh,
			peers: [][]PeerVolume{{old}, {{NodeID: 2, VolumeID: "vol-9"}}}, quorum: []bool{false},
			want: InitDecision{Initialize: true, Reason: "brand-new ensemble: no volume is older than the bootstrap window and no quorum exists; the empty data tree is trusted once"}, attempts: 2, waits: 1},
		{name: "never a quorum: refused when ctx ends", in: fresh, peers: [][]PeerVolume{{old}}, quorum: []bool{false},
			cancel: 2, wantErr: "refusing to trust an empty data tree", attempts: 2, waits: 2},
		{name: "listing fails: returned at once", in: fresh, peerErr: errors.New("describe volumes of ensemble e: boom"),
			wantErr: "boom", attempts: 1},
		{name: "not an unsafe tree: not retried", in: InitInput{NodeID: 1, HasData: true, FormattedNow: true, Self: PeerVolume{VolumeID: "vol-1"}, BootstrapWindow: window},
			wantErr: "already holds ZooKeeper data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			var attempts, waits int
			now := start
			d := Decider{
				PeerVolumes: func(context.Context) ([]PeerVolume, error) {
					attempts++
					if tt.peerErr != nil {
						return nil, tt.peerErr
					}
					return tt.peers[min(attempts, len(tt.peers))-1], nil
				},
				Probe: func(context.Context) Quorum {
					return Quorum{Reachable: tt.quorum[min(attempts, len(tt.quorum))-1]}
				},
				Now: func() time.Time { return now },
				Backoff: func(attempt int) time.Duration {
					if attempt != waits {
						t.Errorf("backoff for attempt %d, want %d", attempt, waits)
					}
					waits++
					return time.Hour // never really waited: After is immediate
				},
				After: func(d time.Duration) <-chan time.Time {
					now = now.Add(d)
					if tt.cancel != 0 && waits == tt.cancel {
						cancel(errors.New("claim.deadline 2m passed"))
						return nil // blocks: only ctx ends the wait
					}
					c := make(chan time.Time, 1)
					c <- now
					return c
				},
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			got, err := d.Decide(ctx, tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("Decide = %+v, %v; want %+v", got, err, tt.want)
			}
			if attempts != tt.attempts || waits != tt.waits {
				t.Errorf("%d attempts, %d waits; want %d, %d", attempts, waits, tt.attempts, tt.waits)
			}
		})
	}
}

// TestDeciderGivesUpWithCause: at the deadline the refusal says why it gave
// up and still wraps ErrUnsafeEmptyTree.
func TestDeciderGivesUpWithCause(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("claim.deadline 2m passed"))
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	d := Decider{
		PeerVolumes: func(context.Context) ([]PeerVolume, error) {
			return []PeerVolume{{NodeID: 2, VolumeID: "vol-2", InitializedAt: now.Add(-48 * time.Hour)}}, nil
		},
		Probe: func(context.Context) Quorum { return Quorum{} },
		Now:   func() time.Time { return now },
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	_, err := d.Decide(ctx, InitInput{NodeID: 1, FormattedNow: true, BootstrapWindow: time.Hour})
	if !errors.Is(err, ErrUnsafeEmptyTree) || !strings.Contains(err.Error(), "gave up: claim.deadline 2m passed") {
		t.Errorf("err = %v", err)
	}
}

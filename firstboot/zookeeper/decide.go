package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Decider makes DecideInitialize's decision for a boot: it gathers the
// inputs that can change while the boot waits — the other nodes' volumes
// and whether a quorum serves — and, while the answer is
// ErrUnsafeEmptyTree (the others may simply still be booting), gathers
// them again until ctx ends. Every input is injected, so the loop is tested
// without EC2, a network or a wall clock; DecideInitialize stays pure.
type Decider struct {
	// PeerVolumes lists the other nodes' volumes as they are now: fresh,
	// since a listing taken before this boot formatted anything would not do.
	// PeerVolumes and Probe are required.
	PeerVolumes func(context.Context) ([]PeerVolume, error)
	// Probe asks the other nodes whether a quorum serves (ProbeQuorum).
	Probe func(context.Context) Quorum
	// Now is the clock for the bootstrap window (default time.Now).
	Now func() time.Time
	// Backoff is the pause after the given (0-based) refused attempt
	// (default: attempt+1 seconds, at most 10).
	Backoff func(attempt int) time.Duration
	// After waits (default time.After); tests return a ready channel.
	After func(time.Duration) <-chan time.Time
	Log   *slog.Logger // default slog.Default()
}

// DefaultBackoff is Decider's default pause: 1s, 2s, … up to 10s, so a
// node waiting for its peers to boot notices them within seconds without
// hammering EC2's Describe budget.
func DefaultBackoff(attempt int) time.Duration {
	return min(time.Duration(attempt+1)*time.Second, 10*time.Second)
}

// Decide returns DecideInitialize's answer for in, whose Others, Now and
// QuorumReachable it fills. With data present the peers are not consulted.
// An error other than ErrUnsafeEmptyTree ends it at once; when ctx ends
// first, the last refusal is returned with ctx's cause.
func (d Decider) Decide(ctx context.Context, in InitInput) (InitDecision, error) {
	now, backoff, after, log := d.Now, d.Backoff, d.After, d.Log
	if now == nil {
		now = time.Now
	}
	if backoff == nil {
		backoff = DefaultBackoff
	}
	if after == nil {
		after = time.After
	}
	if log == nil {
		log = slog.Default()
	}
	for attempt := 0; ; attempt++ {
		in.Now = now()
		if !in.HasData {
			// An empty tree: the decision rests on the peers' volumes as
			// they are now, and on whether a quorum serves.
			others, err := d.PeerVolumes(ctx)
			if err != nil {
				return InitDecision{}, err
			}
			in.Others = others
			q := d.Probe(ctx)
			in.QuorumReachable = q.Reachable
			log.Info("quorum probe", "step", "zookeeper", "quorum", q.String())
		}
		dec, err := DecideInitialize(in)
		if !errors.Is(err, ErrUnsafeEmptyTree) {
			return dec, err
		}
		log.Warn("empty data tree and no quorum yet; probing again", "step", "zookeeper", "err", err)
		select {
		case <-ctx.Done():
			return InitDecision{}, fmt.Errorf("%w (gave up: %v)", err, context.Cause(ctx))
		case <-after(backoff(attempt)):
		}
	}
}

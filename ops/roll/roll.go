// Package roll replaces an ensemble's instances one node at a time onto
// the launch template's current version: followers first, the leader
// last, each step only when every node serves and the followers have
// caught up, each replacement awaited until it serves as the same node
// and has caught up. It stops at the first step that does not converge,
// with the ensemble as it was minus nothing (the replaced node's ENI and
// volume wait for its next instance); run again to resume: nodes already
// on the current version are skipped.
//
// Pure orchestration over two narrow interfaces; ops/aws implements the
// cloud (TerminateInstanceInAutoScalingGroup without decrementing, so the
// group launches the replacement), ops/zk the servers' answers.
package roll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/zkaas/zkaas/ops/zk"
)

// Node is a node's current holder.
type Node struct {
	ID       int
	Instance string // holding the node's ENI, "" while none does
	// Current: the instance was launched from the template's default
	// version.
	Current bool
}

// Cloud is what the roll needs from AWS.
type Cloud interface {
	Nodes(ctx context.Context) ([]Node, error)
	// Replace terminates instance in its group without decrementing the
	// desired capacity.
	Replace(ctx context.Context, instance string) error
}

// ZooKeeper answers srvr for every node, by node id.
type ZooKeeper interface {
	Stats(ctx context.Context) (map[int]zk.Stat, map[int]error)
}

// Options bound the roll.
type Options struct {
	// Poll is how often a step looks for its replacement serving (default
	// 1s). A look is three filtered Describe calls (the ENIs, the groups,
	// the templates) and one srvr per node: at 1s far below EC2's and
	// Auto Scaling's request rates, and it keeps the roll within a second
	// per node of the replacements themselves (at 5s every step of a fast
	// replacement waited for the next look: BenchmarkFiveNodeRoll measured
	// 1.9× five replace floors). Once the replacement holds the node,
	// HealthPoll takes over.
	Poll time.Duration
	// HealthPoll is how often a step asks the nodes (srvr, no AWS call)
	// once the replacement holds the node (default 200ms): the wait for
	// ZooKeeper to serve and sync is the step's longest part, and asking
	// ZooKeeper costs the account nothing.
	HealthPoll time.Duration
	// StepTimeout bounds one node's replacement, from the terminate to
	// serving and caught up (default 30m: claim deadline + sync).
	StepTimeout time.Duration
	// MaxLag is how many transactions a follower may trail the leader and
	// count as caught up (default 1000).
	MaxLag uint64
	Log    *slog.Logger
}

// ErrUnhealthy: the ensemble is not healthy enough to take a node out.
var ErrUnhealthy = errors.New("ensemble not healthy")

// Health says whether every node serves, who leads, and who lags.
func Health(ids []int, stats map[int]zk.Stat, errs map[int]error, maxLag uint64) (leader int, err error) {
	var problems []error
	var leaders []int
	for _, id := range ids {
		st, ok := stats[id]
		switch {
		case !ok:
			problems = append(problems, fmt.Errorf("node %d does not answer: %v", id, errs[id]))
		case st.Mode == "leader":
			leaders = append(leaders, id)
		case st.Mode != "follower":
			problems = append(problems, fmt.Errorf("node %d is %s", id, st.Mode))
		}
	}
	if len(leaders) != 1 {
		problems = append(problems, fmt.Errorf("%d leaders %v", len(leaders), leaders))
	} else {
		leader = leaders[0]
		l := stats[leader]
		for _, id := range ids {
			st, ok := stats[id]
			if ok && st.Mode == "follower" && zk.Lag(l, st) > maxLag {
				problems = append(problems, fmt.Errorf("node %d at zxid 0x%x trails the leader's 0x%x", id, st.Zxid, l.Zxid))
			}
		}
	}
	if len(problems) > 0 {
		return 0, fmt.Errorf("%w: %w", ErrUnhealthy, errors.Join(problems...))
	}
	return leader, nil
}

// Run rolls every node not on the current version. It returns the nodes
// replaced.
func Run(ctx context.Context, c Cloud, z ZooKeeper, o Options) ([]int, error) {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.HealthPoll <= 0 {
		o.HealthPoll = 200 * time.Millisecond
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = 30 * time.Minute
	}
	if o.MaxLag == 0 {
		o.MaxLag = 1000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	var done []int
	for {
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return done, err
		}
		ids := make([]int, 0, len(nodes))
		for _, n := range nodes {
			ids = append(ids, n.ID)
		}
		slices.Sort(ids)
		stats, errs := z.Stats(ctx)
		leader, err := Health(ids, stats, errs, o.MaxLag)
		if err != nil {
			return done, fmt.Errorf("before the next step: %w (nothing was replaced in this step)", err)
		}
		next := pick(nodes, leader)
		if next == nil {
			return done, nil
		}
		start := time.Now()
		o.Log.Info("replacing", "step", fmt.Sprintf("node %d", next.ID), "instance", next.Instance, "leader", next.ID == leader)
		if err := c.Replace(ctx, next.Instance); err != nil {
			return done, fmt.Errorf("replace node %d's instance %s: %w", next.ID, next.Instance, err)
		}
		if err := await(ctx, c, z, *next, ids, o); err != nil {
			return done, fmt.Errorf("node %d: %w; stopped: the other nodes were not touched, run roll again once it serves", next.ID, err)
		}
		o.Log.Info("replaced", "step", fmt.Sprintf("node %d", next.ID), "duration", time.Since(start))
		done = append(done, next.ID)
	}
}

// pick returns the next node to replace: the lowest follower not on the
// current version, then the leader.
func pick(nodes []Node, leader int) *Node {
	slices.SortFunc(nodes, func(a, b Node) int { return a.ID - b.ID })
	var lead *Node
	for i := range nodes {
		n := &nodes[i]
		if n.Current || n.Instance == "" {
			continue
		}
		if n.ID == leader {
			lead = n
			continue
		}
		return n
	}
	return lead
}

// await waits until a current-version instance holds the node and the
// whole ensemble is healthy again: first it looks at AWS every Poll for the
// replacement holding the node's ENI, then it asks the nodes every
// HealthPoll until they are healthy (re-checking the holder each Poll, in
// case the replacement is itself replaced).
func await(ctx context.Context, c Cloud, z ZooKeeper, old Node, ids []int, o Options) error {
	ctx, cancel := context.WithTimeout(ctx, o.StepTimeout)
	defer cancel()
	var last error
	held, checked := "", time.Time{}
	for {
		if held == "" || time.Since(checked) >= o.Poll {
			held, checked = "", time.Now()
			nodes, err := c.Nodes(ctx)
			if err == nil {
				last = fmt.Errorf("no replacement holds it yet")
				for _, n := range nodes {
					if n.ID == old.ID && n.Instance != "" && n.Instance != old.Instance && n.Current {
						held = n.Instance
					}
				}
			} else {
				last = err
			}
		}
		wait := o.Poll
		if held != "" {
			stats, errs := z.Stats(ctx)
			if _, err := Health(ids, stats, errs, o.MaxLag); err != nil {
				last = fmt.Errorf("replacement %s holds it: %w", held, err)
			} else {
				return nil
			}
			wait = o.HealthPoll
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not back within %s: %w", o.StepTimeout, last)
		case <-time.After(wait):
		}
	}
}

package roll

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ops/zk"
)

// ensemble is a simulated ensemble: a replaced node comes back (a new
// current instance, serving, caught up) after `back` polls; replacing the
// leader elects the lowest serving node and starts a new epoch.
type ensemble struct {
	mu        sync.Mutex
	nodes     map[int]*member
	leader    int
	epoch     uint32
	polls     int
	seq       int
	back      int
	neverBack map[int]bool
	lagging   map[int]bool
	// quiet: no writes since the last election, so srvr shows the leader
	// at <epoch>:0 and the followers still in the epoch before.
	quiet    bool
	replaced []int
	maxDown  int
}

type member struct {
	instance string
	current  bool
	serving  bool
	readyAt  int
}

func newEnsemble(n, leader int) *ensemble {
	e := &ensemble{nodes: map[int]*member{}, leader: leader, epoch: 1, back: 2, neverBack: map[int]bool{}, lagging: map[int]bool{}}
	for id := 1; id <= n; id++ {
		e.nodes[id] = &member{instance: fmt.Sprintf("i-old%d", id), serving: true}
	}
	return e
}

func (e *ensemble) Nodes(context.Context) ([]Node, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.polls++
	var out []Node
	for id, m := range e.nodes {
		if m.instance == "" && !e.neverBack[id] && e.polls >= m.readyAt {
			e.seq++
			m.instance, m.current, m.serving = fmt.Sprintf("i-new%d", e.seq), true, true
		}
		out = append(out, Node{ID: id, Instance: m.instance, Current: m.current})
	}
	return out, nil
}

func (e *ensemble) Replace(_ context.Context, inst string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, m := range e.nodes {
		if m.instance == inst {
			m.instance, m.serving, m.readyAt = "", false, e.polls+e.back
			e.replaced = append(e.replaced, id)
			down := 0
			for _, o := range e.nodes {
				if !o.serving {
					down++
				}
			}
			e.maxDown = max(e.maxDown, down)
			if id == e.leader {
				e.leader = 0
				for o := 1; o <= len(e.nodes); o++ {
					if e.nodes[o].serving {
						e.leader = o
						break
					}
				}
				e.epoch++
			}
			return nil
		}
	}
	return errors.New("InvalidInstanceID.NotFound")
}

func (e *ensemble) Stats(context.Context) (map[int]zk.Stat, map[int]error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	stats, errs := map[int]zk.Stat{}, map[int]error{}
	for id, m := range e.nodes {
		if !m.serving {
			errs[id] = errors.New("connection refused")
			continue
		}
		st := zk.Stat{Mode: "follower", Zxid: uint64(e.epoch)<<32 | 5000}
		if e.quiet {
			st.Zxid = uint64(e.epoch-1)<<32 | 5000
		}
		if id == e.leader {
			st.Mode = "leader"
			if e.quiet {
				st.Zxid = uint64(e.epoch) << 32
			}
		}
		if e.lagging[id] {
			st.Zxid -= 2000
		}
		stats[id] = st
	}
	return stats, errs
}

var fast = Options{Poll: time.Millisecond, StepTimeout: 200 * time.Millisecond}

func TestFollowersFirstLeaderLast(t *testing.T) {
	for _, tt := range []struct {
		n, leader int
		want      []int
	}{{3, 1, []int{2, 3, 1}}, {3, 2, []int{1, 3, 2}}, {5, 3, []int{1, 2, 4, 5, 3}}} {
		t.Run(fmt.Sprint(tt.n, tt.leader), func(t *testing.T) {
			e := newEnsemble(tt.n, tt.leader)
			done, err := Run(context.Background(), e, e, fast)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(done, tt.want) || !slices.Equal(e.replaced, tt.want) {
				t.Errorf("replaced %v (reported %v), want %v", e.replaced, done, tt.want)
			}
			if e.maxDown != 1 {
				t.Errorf("%d nodes down at once", e.maxDown)
			}
			// A second roll has nothing to do.
			if done, err := Run(context.Background(), e, e, fast); err != nil || len(done) != 0 {
				t.Errorf("second roll: %v %v", done, err)
			}
		})
	}
}

// TestQuietEnsemble: with no write since the election (a fresh
// ensemble, or right after the leader's replacement) the followers' srvr
// zxid is in the epoch before the leader's, and they are caught up all
// the same: the roll goes on, and its last step (the leader) converges.
func TestQuietEnsemble(t *testing.T) {
	e := newEnsemble(3, 1)
	e.quiet = true
	done, err := Run(context.Background(), e, e, fast)
	if err != nil || !slices.Equal(done, []int{2, 3, 1}) {
		t.Errorf("roll of a quiet ensemble: replaced %v, %v; want [2 3 1]", done, err)
	}
}

func TestStopsAndResumes(t *testing.T) {
	e := newEnsemble(3, 1)
	e.neverBack[3] = true
	done, err := Run(context.Background(), e, e, fast)
	if err == nil || !strings.Contains(err.Error(), "node 3: not back within") {
		t.Fatalf("err %v", err)
	}
	if !slices.Equal(done, []int{2}) || !slices.Equal(e.replaced, []int{2, 3}) {
		t.Errorf("done %v replaced %v: the leader must not be touched after a failed step", done, e.replaced)
	}
	// While node 3 is still missing, a new roll refuses to take another out.
	if _, err := Run(context.Background(), e, e, fast); !errors.Is(err, ErrUnhealthy) || len(e.replaced) != 2 {
		t.Errorf("roll with a node missing: %v, replaced %v", err, e.replaced)
	}
	// Node 3 comes back: the roll resumes with the leader only.
	e.neverBack[3] = false
	done, err = Run(context.Background(), e, e, fast)
	if err != nil || !slices.Equal(done, []int{1}) {
		t.Errorf("resumed roll: %v %v", done, err)
	}
}

func TestRefusesUnhealthy(t *testing.T) {
	e := newEnsemble(3, 1)
	e.lagging[2] = true
	if _, err := Run(context.Background(), e, e, fast); !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "node 2 at zxid") {
		t.Errorf("err %v", err)
	}
	if len(e.replaced) != 0 {
		t.Errorf("replaced %v while a follower lags", e.replaced)
	}
}

// syncing answers "connection refused" for the replaced node's first n
// srvr rounds after it is back: the replacement holds the ENI but its
// ZooKeeper is still starting and syncing.
type syncing struct {
	*ensemble
	mu     sync.Mutex
	left   int
	rounds int
}

func (s *syncing) Stats(ctx context.Context) (map[int]zk.Stat, map[int]error) {
	stats, errs := s.ensemble.Stats(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rounds++
	s.ensemble.mu.Lock()
	defer s.ensemble.mu.Unlock()
	for id, m := range s.ensemble.nodes {
		if strings.HasPrefix(m.instance, "i-new") && s.left > 0 {
			s.left--
			delete(stats, id)
			errs[id] = errors.New("connection refused")
		}
	}
	return stats, errs
}

// TestAwaitAsksZooKeeperBetweenLooks: once a replacement holds the node,
// a step asks ZooKeeper every HealthPoll and AWS only every Poll, so a
// replacement that serves soon after it claimed the node ends the step
// then, not at AWS's next look.
func TestAwaitAsksZooKeeperBetweenLooks(t *testing.T) {
	e := newEnsemble(3, 1)
	e.back = 0
	z := &syncing{ensemble: e, left: 5}
	o := Options{Poll: time.Hour, HealthPoll: time.Millisecond, StepTimeout: 5 * time.Second}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// One follower only: the ensemble's other nodes are made current.
	for id, m := range e.nodes {
		m.current = id != 2
	}
	done, err := Run(ctx, e, z, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(done, []int{2}) {
		t.Fatalf("replaced %v, want [2]", done)
	}
	// Run's look before the step, await's first look, Run's look after:
	// AWS three times; ZooKeeper until the replacement served.
	if e.polls != 3 || z.rounds < 6 {
		t.Errorf("AWS looked %d times (want 3), ZooKeeper asked %d times (want ≥ 6)", e.polls, z.rounds)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("the step took %s: it waited for AWS's next look (Poll %s)", took, o.Poll)
	}
}

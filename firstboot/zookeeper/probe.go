package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Modes a srvr answer reports. ModeNotServing stands for ZooKeeper's "This
// ZooKeeper instance is not currently serving requests" (looking for a
// leader, or syncing).
const (
	ModeLeader     = "leader"
	ModeFollower   = "follower"
	ModeNotServing = "not serving"
)

// maxSrvrAnswer bounds what is read from a peer: a real answer is ~250 bytes.
const maxSrvrAnswer = 64 << 10

// Quorum is what the other nodes said.
type Quorum struct {
	// Reachable: at least Needed peers serve as leader or follower.
	Reachable bool
	Serving   int
	// Needed is a majority of the whole ensemble (the peers and this node).
	// This node is not serving, so the peers must supply all of it.
	Needed int
	// Modes holds each answering peer's mode; Errors each silent one's error.
	Modes  map[netip.AddrPort]string
	Errors map[netip.AddrPort]error
}

// String summarizes the probe in one line, peers in address order.
func (q Quorum) String() string {
	addrs := make([]netip.AddrPort, 0, len(q.Modes)+len(q.Errors))
	for a := range q.Modes {
		addrs = append(addrs, a)
	}
	for a := range q.Errors {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.AddrPort.Compare)
	var b strings.Builder
	fmt.Fprintf(&b, "%d serving, %d needed:", q.Serving, q.Needed)
	for _, a := range addrs {
		if m, ok := q.Modes[a]; ok {
			fmt.Fprintf(&b, " %s=%s", a, m)
		} else {
			fmt.Fprintf(&b, " %s=error(%v)", a, q.Errors[a])
		}
	}
	return b.String()
}

// Prober asks peers for their mode with srvr. The zero value is usable.
type Prober struct {
	// PerPeerTimeout bounds one attempt on one peer (default 2s).
	PerPeerTimeout time.Duration
	// Attempts per peer (default 2): a peer in the middle of an election or
	// a dropped SYN gets one more chance, no more.
	Attempts int
	// Pause between attempts (default 250ms).
	Pause time.Duration
	// Dial opens the connection (default net.Dialer); tests dial inside a
	// network namespace.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// ProbeQuorum asks the other nodes' client ports, in parallel, whether they
// serve. Bounded by ctx and perPeerTimeout.
func ProbeQuorum(ctx context.Context, peers []netip.AddrPort, perPeerTimeout time.Duration) Quorum {
	return Prober{PerPeerTimeout: perPeerTimeout}.Probe(ctx, peers)
}

// Probe is ProbeQuorum with p's settings.
func (p Prober) Probe(ctx context.Context, peers []netip.AddrPort) Quorum {
	if p.PerPeerTimeout <= 0 {
		p.PerPeerTimeout = 2 * time.Second
	}
	if p.Attempts <= 0 {
		p.Attempts = 2
	}
	if p.Pause <= 0 {
		p.Pause = 250 * time.Millisecond
	}
	if p.Dial == nil {
		p.Dial = (&net.Dialer{}).DialContext
	}
	distinct := slices.Clone(peers)
	slices.SortFunc(distinct, netip.AddrPort.Compare)
	distinct = slices.Compact(distinct)

	q := Quorum{
		Needed: (len(distinct)+1)/2 + 1,
		Modes:  map[netip.AddrPort]string{},
		Errors: map[netip.AddrPort]error{},
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, peer := range distinct {
		wg.Go(func() {
			mode, err := p.peerMode(ctx, peer)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				q.Errors[peer] = err
				return
			}
			q.Modes[peer] = mode
			if mode == ModeLeader || mode == ModeFollower {
				q.Serving++
			}
		})
	}
	wg.Wait()
	q.Reachable = q.Serving >= q.Needed
	return q
}

// peerMode asks one peer, retrying errors and transient non-serving answers
// up to p.Attempts times.
func (p Prober) peerMode(ctx context.Context, peer netip.AddrPort) (string, error) {
	var mode string
	var err error
	for attempt := 1; attempt <= p.Attempts; attempt++ {
		mode, err = p.srvr(ctx, peer)
		if err == nil && mode != ModeNotServing {
			return mode, nil
		}
		if attempt == p.Attempts {
			break
		}
		select {
		case <-ctx.Done():
			return mode, err
		case <-time.After(p.Pause):
		}
	}
	return mode, err
}

// srvr sends one srvr command and parses the answer.
func (p Prober) srvr(ctx context.Context, peer netip.AddrPort) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.PerPeerTimeout)
	defer cancel()
	conn, err := p.Dial(ctx, "tcp", peer.String())
	if err != nil {
		return "", fmt.Errorf("srvr %s: %w", peer, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return "", fmt.Errorf("srvr %s: %w", peer, err)
	}
	if _, err := io.WriteString(conn, "srvr"); err != nil {
		return "", fmt.Errorf("srvr %s: send: %w", peer, err)
	}
	// The server answers and closes; read to EOF.
	answer, err := io.ReadAll(io.LimitReader(conn, maxSrvrAnswer))
	if err != nil {
		return "", fmt.Errorf("srvr %s: read: %w", peer, err)
	}
	mode, err := parseSrvr(answer)
	if err != nil {
		return "", fmt.Errorf("srvr %s: %w", peer, err)
	}
	return mode, nil
}

// parseSrvr extracts the mode from a srvr answer.
func parseSrvr(answer []byte) (string, error) {
	s := string(answer)
	if strings.Contains(s, "not currently serving requests") {
		return ModeNotServing, nil
	}
	for line := range strings.Lines(s) {
		if mode, ok := strings.CutPrefix(strings.TrimSpace(line), "Mode:"); ok {
			if mode = strings.TrimSpace(mode); mode != "" {
				return mode, nil
			}
		}
	}
	first, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(first) > 120 {
		first = first[:120] + "…"
	}
	if first == "" {
		return "", errors.New("empty answer")
	}
	return "", fmt.Errorf("no Mode line in answer %q", first)
}

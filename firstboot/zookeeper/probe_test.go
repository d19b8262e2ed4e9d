package zookeeper

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkaas/zkaas/internal/realzk"
)

// hang makes a fake peer accept, read the command and never answer.
const hang = "<hang>"

// srvrText returns a ZooKeeper 3.8 answer from testdata, captured from the
// Debian zookeeper 3.8.0 package: a 3-node ensemble's leader and follower, a
// server still looking for a leader, and the refusal of a command missing
// from 4lw.commands.whitelist (captured for mntr; 3.8 never refuses srvr,
// but an older or patched server could).
func srvrText(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "srvr-"+name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// peer starts a fake ZooKeeper client port in ns (every address the probe
// tests use exists only there). Its n-th connection gets answers[n] (the
// last answer repeats).
func peer(t *testing.T, ns realzk.NS, answers ...string) netip.AddrPort {
	t.Helper()
	ln := ns.Listen(t, "127.0.0.1:0")
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			answer := answers[min(n, len(answers)-1)]
			wg.Go(func() {
				defer c.Close()
				cmd := make([]byte, 4)
				if _, err := io.ReadFull(c, cmd); err != nil || string(cmd) != "srvr" {
					return
				}
				if answer == hang {
					<-done
					return
				}
				io.WriteString(c, answer)
			})
		}
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

func TestProbe(t *testing.T) {
	ns := realzk.NewNS(t)
	leader, follower := srvrText(t, "leader"), srvrText(t, "follower")
	looking, refused := srvrText(t, "not-serving"), srvrText(t, "not-whitelisted")
	standalone := strings.Replace(leader, "Mode: leader", "Mode: standalone", 1)
	// Nothing listens on port 1 in a fresh namespace: connection refused.
	closed := netip.MustParseAddrPort("127.0.0.1:1")

	tests := []struct {
		name          string
		peers         []netip.AddrPort
		wantReachable bool
		wantServing   int
		wantNeeded    int
		wantModes     []string // sorted like the peers
		wantErrors    int
	}{
		{
			name:          "3 nodes: leader and follower answer",
			peers:         []netip.AddrPort{peer(t, ns, leader), peer(t, ns, follower)},
			wantReachable: true, wantServing: 2, wantNeeded: 2,
			wantModes: []string{"leader", "follower"},
		},
		{
			name:          "3 nodes: one peer down is not a quorum without us",
			peers:         []netip.AddrPort{peer(t, ns, leader), closed},
			wantReachable: false, wantServing: 1, wantNeeded: 2,
			wantModes: []string{"leader"}, wantErrors: 1,
		},
		{
			name:          "3 nodes: both peers still electing",
			peers:         []netip.AddrPort{peer(t, ns, looking), peer(t, ns, looking)},
			wantReachable: false, wantServing: 0, wantNeeded: 2,
			wantModes: []string{ModeNotServing, ModeNotServing},
		},
		{
			name:          "3 nodes: a peer finishing its election is retried",
			peers:         []netip.AddrPort{peer(t, ns, looking, follower), peer(t, ns, leader)},
			wantReachable: true, wantServing: 2, wantNeeded: 2,
			wantModes: []string{"follower", "leader"},
		},
		{
			name:          "5 nodes: three of four peers serve",
			peers:         []netip.AddrPort{peer(t, ns, leader), peer(t, ns, follower), peer(t, ns, follower), peer(t, ns, looking)},
			wantReachable: true, wantServing: 3, wantNeeded: 3,
			wantModes: []string{"leader", "follower", "follower", ModeNotServing},
		},
		{
			name:          "5 nodes: standalone and refusing peers do not count",
			peers:         []netip.AddrPort{peer(t, ns, leader), peer(t, ns, follower), peer(t, ns, standalone), peer(t, ns, refused)},
			wantReachable: false, wantServing: 2, wantNeeded: 3,
			wantModes: []string{"leader", "follower", "standalone"}, wantErrors: 1,
		},
		{
			name:          "single-node ensemble: nobody else can serve",
			peers:         nil,
			wantReachable: false, wantServing: 0, wantNeeded: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Prober{PerPeerTimeout: time.Second, Pause: 20 * time.Millisecond, Dial: ns.Dial}
			// Duplicates are one peer, not two votes.
			peers := slices.Concat(tt.peers, tt.peers)
			q := p.Probe(t.Context(), peers)
			if q.Reachable != tt.wantReachable || q.Serving != tt.wantServing || q.Needed != tt.wantNeeded {
				t.Errorf("probe = reachable %v, %d serving, %d needed; want %v, %d, %d (%s)",
					q.Reachable, q.Serving, q.Needed, tt.wantReachable, tt.wantServing, tt.wantNeeded, q)
			}
			var modes []string
			for _, a := range tt.peers {
				if m, ok := q.Modes[a]; ok {
					modes = append(modes, m)
				}
			}
			if strings.Join(modes, ",") != strings.Join(tt.wantModes, ",") || len(q.Errors) != tt.wantErrors {
				t.Errorf("modes %q and %d errors, want %q and %d: %s", modes, len(q.Errors), tt.wantModes, tt.wantErrors, q)
			}
		})
	}
}

func TestProbeIsBounded(t *testing.T) {
	ns := realzk.NewNS(t)
	silent := peer(t, ns, hang)
	live := peer(t, ns, srvrText(t, "leader"))

	t.Run("per-peer timeout", func(t *testing.T) {
		p := Prober{PerPeerTimeout: 200 * time.Millisecond, Attempts: 2, Pause: 50 * time.Millisecond, Dial: ns.Dial}
		start := time.Now()
		q := p.Probe(t.Context(), []netip.AddrPort{silent, live})
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("probe took %s with a silent peer, want about 2×200ms", took)
		}
		if q.Modes[live] != ModeLeader || !errors.Is(q.Errors[silent], os.ErrDeadlineExceeded) {
			t.Errorf("probe = %s; want the live leader and a deadline error for the silent peer", q)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		p := Prober{PerPeerTimeout: time.Minute, Attempts: 5, Dial: ns.Dial}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		q := p.Probe(ctx, []netip.AddrPort{silent})
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("probe took %s past a 300ms context deadline", took)
		}
		if q.Reachable || q.Errors[silent] == nil {
			t.Errorf("probe = %s; want the silent peer's error", q)
		}
	})
}

func TestParseSrvr(t *testing.T) {
	tests := []struct {
		name, answer, want, wantErr string
	}{
		{name: "leader", answer: srvrText(t, "leader"), want: ModeLeader},
		{name: "follower", answer: srvrText(t, "follower"), want: ModeFollower},
		{name: "looking", answer: srvrText(t, "not-serving"), want: ModeNotServing},
		{name: "observer, CRLF", answer: "Zxid: 0x5\r\nMode: observer\r\nNode count: 5\r\n", want: "observer"},
		{name: "not whitelisted", answer: srvrText(t, "not-whitelisted"), wantErr: `no Mode line in answer "srvr is not executed`},
		{name: "empty", answer: "", wantErr: "empty answer"},
		{name: "empty mode", answer: "Mode: \n", wantErr: "no Mode line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSrvr([]byte(tt.answer))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseSrvr = %q, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseSrvr = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

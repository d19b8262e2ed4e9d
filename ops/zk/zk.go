// Package zk asks a ZooKeeper server how it is, with the srvr four-letter
// word (on by default in zkaas's whitelist): mode, zxid, latency and
// outstanding requests. mntr adds the leader's synced followers when the
// config whitelists it.
package zk

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zkaas/zkaas/internal/zktls"
)

// Stat is one server's srvr answer.
type Stat struct {
	Mode        string // leader, follower, standalone, or "not serving"
	Zxid        uint64
	LatencyAvg  float64 // ms
	LatencyMax  int64
	Outstanding int
	Nodes       int
	Version     string
}

// Epoch is the zxid's high 32 bits: the leader's epoch.
func (s Stat) Epoch() uint32 { return uint32(s.Zxid >> 32) }

// Lag is how many transactions a serving follower trails the leader, from
// their srvr zxids. A follower serves only once synced with the leader
// (UPTODATE), so it holds everything up to the start of the leader's
// epoch; but srvr shows the last transaction it processed, which stays in
// the previous epoch until the first transaction of the new one reaches
// it, while the leader shows <epoch>:0 from its election on. Across
// epochs, the lag is the leader's count of transactions in its epoch:
// right after an election (a fresh ensemble, a replaced leader) it is 0,
// not the distance between the two numbers.
func Lag(leader, follower Stat) uint64 {
	switch {
	case follower.Epoch() > leader.Epoch():
		// Not a follower of this leader: it cannot have caught up.
		return ^uint64(0)
	case follower.Epoch() < leader.Epoch():
		return leader.Zxid & 0xffffffff
	case follower.Zxid >= leader.Zxid:
		// Asked a moment after the leader, it may be a little ahead.
		return 0
	}
	return leader.Zxid - follower.Zxid
}

// Serving reports whether the server serves as part of a quorum.
func (s Stat) Serving() bool {
	return s.Mode == "leader" || s.Mode == "follower" || s.Mode == "standalone"
}

// Client sends four-letter words.
type Client struct {
	Timeout time.Duration // per server, default 2s
	Dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS, when set, speaks TLS over every connection (the secure client
	// port of an ensemble whose plaintext port zookeeper.tls closes): the
	// client certificate the server asks for, the CAs its certificate
	// chains to; the server's certificate is verified against the address
	// dialled. Build it with TLSFiles.
	TLS *tls.Config
}

// TLSFiles is a Client.TLS from PEM files: the CA certificates, the
// client's certificate chain and its private key (cert and key may be one
// file).
func TLSFiles(ca, cert, key string) (*tls.Config, error) { return zktls.Files(ca, cert, key) }

// Word sends one four-letter word and returns the answer.
func (c Client) Word(ctx context.Context, addr netip.AddrPort, word string) (string, error) {
	t := c.Timeout
	if t <= 0 {
		t = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	dial := c.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	if c.TLS != nil {
		dial = zktls.Dialer(c.TLS, dial)
	}
	conn, err := dial(ctx, "tcp", addr.String())
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", word, addr, err)
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	if _, err := io.WriteString(conn, word); err != nil {
		return "", fmt.Errorf("%s %s: %w", word, addr, err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, 64<<10))
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", word, addr, err)
	}
	return string(b), nil
}

// Srvr asks addr for its Stat.
func (c Client) Srvr(ctx context.Context, addr netip.AddrPort) (Stat, error) {
	ans, err := c.Word(ctx, addr, "srvr")
	if err != nil {
		return Stat{}, err
	}
	st, err := ParseSrvr(ans)
	if err != nil {
		return Stat{}, fmt.Errorf("srvr %s: %w", addr, err)
	}
	return st, nil
}

// All asks every address in parallel; a failure is in errs, by address.
func (c Client) All(ctx context.Context, addrs []netip.AddrPort) (map[netip.AddrPort]Stat, map[netip.AddrPort]error) {
	stats, errs := map[netip.AddrPort]Stat{}, map[netip.AddrPort]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Go(func() {
			st, err := c.Srvr(ctx, a)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[a] = err
			} else {
				stats[a] = st
			}
		})
	}
	wg.Wait()
	return stats, errs
}

// ParseSrvr reads a srvr answer (ZooKeeper 3.5+):
//
//	Zookeeper version: 3.8.4-..., built on ...
//	Latency min/avg/max: 0/0.5/12
//	Received: 10
//	Sent: 9
//	Connections: 1
//	Outstanding: 0
//	Zxid: 0x100000004
//	Mode: follower
//	Node count: 5
func ParseSrvr(ans string) (Stat, error) {
	var st Stat
	if strings.Contains(ans, "not currently serving requests") {
		st.Mode = "not serving"
		return st, nil
	}
	seen := false
	for line := range strings.Lines(ans) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Zookeeper version":
			st.Version, _, _ = strings.Cut(v, ",")
		case "Latency min/avg/max":
			parts := strings.Split(v, "/")
			if len(parts) == 3 {
				st.LatencyAvg, _ = strconv.ParseFloat(parts[1], 64)
				st.LatencyMax, _ = strconv.ParseInt(parts[2], 10, 64)
			}
		case "Outstanding":
			st.Outstanding, _ = strconv.Atoi(v)
		case "Zxid":
			z, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
			if err != nil {
				return st, fmt.Errorf("zxid %q: %w", v, err)
			}
			st.Zxid = z
		case "Mode":
			st.Mode, seen = v, true
		case "Node count":
			st.Nodes, _ = strconv.Atoi(v)
		}
	}
	if !seen {
		first, _, _ := strings.Cut(strings.TrimSpace(ans), "\n")
		return st, fmt.Errorf("no Mode line in %q", first)
	}
	return st, nil
}

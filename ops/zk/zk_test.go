package zk

import (
	"context"
	"net"
	"net/netip"
	"testing"
)

// A real ZooKeeper 3.8 srvr answer.
const follower = `Zookeeper version: 3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c, built on 2024-02-12 22:16 UTC
Latency min/avg/max: 0/0.4286/3
Received: 15
Sent: 14
Connections: 1
Outstanding: 2
Zxid: 0x200000007
Mode: follower
Node count: 6
`

func TestParseSrvr(t *testing.T) {
	tests := []struct {
		name, in string
		want     Stat
		err      bool
	}{
		{"follower", follower, Stat{Mode: "follower", Zxid: 0x200000007, LatencyAvg: 0.4286, LatencyMax: 3, Outstanding: 2, Nodes: 6, Version: "3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c"}, false},
		{"not serving", "This ZooKeeper instance is not currently serving requests\n", Stat{Mode: "not serving"}, false},
		{"garbage", "hello\n", Stat{}, true},
		{"bad zxid", "Zxid: 0xzz\nMode: leader\n", Stat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSrvr(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err %v", err)
			}
			if !tt.err && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if st, _ := ParseSrvr(follower); st.Epoch() != 2 || !st.Serving() {
		t.Errorf("epoch %d serving %v", st.Epoch(), st.Serving())
	}
}

func TestLag(t *testing.T) {
	for _, tt := range []struct {
		name             string
		leader, follower uint64
		want             uint64
	}{
		{"same epoch, caught up", 0x200000007, 0x200000007, 0},
		{"same epoch, behind", 0x200000007, 0x200000002, 5},
		{"same epoch, asked after the leader", 0x200000007, 0x200000009, 0},
		// A fresh ensemble: the leader at 1:0, the followers at 0:0
		// (as ZooKeeper 3.8 answers until the first write).
		{"fresh ensemble", 0x100000000, 0x0, 0},
		// A new leader without a write yet; the follower synced.
		{"new epoch, no write yet", 0x300000000, 0x200000041, 0},
		{"new epoch, writes the follower has not seen", 0x300000010, 0x200000041, 16},
		{"follower of a later epoch", 0x200000007, 0x300000000, ^uint64(0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Lag(Stat{Mode: "leader", Zxid: tt.leader}, Stat{Mode: "follower", Zxid: tt.follower}); got != tt.want {
				t.Errorf("Lag(0x%x, 0x%x) = %d, want %d", tt.leader, tt.follower, got, tt.want)
			}
		})
	}
}

func TestAll(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4)
			_, _ = c.Read(buf)
			if string(buf) == "srvr" {
				_, _ = c.Write([]byte(follower))
			}
			c.Close()
		}
	}()
	up := netip.MustParseAddrPort(l.Addr().String())
	down := netip.MustParseAddrPort("127.0.0.1:1")
	stats, errs := Client{}.All(context.Background(), []netip.AddrPort{up, down})
	if stats[up].Mode != "follower" || errs[down] == nil || len(stats) != 1 {
		t.Errorf("stats %v errs %v", stats, errs)
	}
}

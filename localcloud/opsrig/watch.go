package opsrig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	gozk "github.com/go-zookeeper/zk"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/ops/zk"
)

// StatusRow is the part of `zkaas status -o json` the rig reads.
type StatusRow struct {
	Node         int    `json:"node"`
	IP           string `json:"ip"`
	ENI          string `json:"eni"`
	Holder       string `json:"holder"`
	State        string `json:"instance_state"`
	Lifecycle    string `json:"lifecycle_state"`
	Volume       string `json:"volume"`
	VolumeHolder string `json:"volume_holder"`
	Mode         string `json:"mode"`
	Zxid         string `json:"zxid"`
}

// ParseStatus reads `zkaas status -o json` of the named ensemble: its rows
// by node id.
func ParseStatus(r Result, ensemble string) (map[int]StatusRow, error) {
	var doc struct {
		Ensemble string      `json:"ensemble"`
		Nodes    []StatusRow `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil {
		return nil, fmt.Errorf("status -o json: %w\n%s", err, r)
	}
	if doc.Ensemble != ensemble {
		return nil, fmt.Errorf("status of ensemble %q, want %s", doc.Ensemble, ensemble)
	}
	rows := map[int]StatusRow{}
	for _, n := range doc.Nodes {
		rows[n.Node] = n
	}
	return rows, nil
}

// AllInService: every node's holder is InService in its group.
func AllInService(rows map[int]StatusRow, ids []int) bool {
	for _, id := range ids {
		if rows[id].Lifecycle != "InService" {
			return false
		}
	}
	return true
}

// Probe asks every node's srvr from inside the VPC.
func Probe(ctx context.Context, cloud *localcloud.Cloud, ips map[int]netip.Addr) (map[int]zk.Stat, map[int]error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var addrs []netip.AddrPort
	for _, ip := range ips {
		addrs = append(addrs, netip.AddrPortFrom(ip, 2181))
	}
	stats, errs := zk.Client{Timeout: 2 * time.Second, Dial: cloud.DialContext}.All(ctx, addrs)
	byID, errByID := map[int]zk.Stat{}, map[int]error{}
	for id, ip := range ips {
		a := netip.AddrPortFrom(ip, 2181)
		if st, ok := stats[a]; ok {
			byID[id] = st
		} else {
			errByID[id] = errs[a]
		}
	}
	return byID, errByID
}

// WaitServing waits, bound at most, until every node serves, one of them
// leading.
func WaitServing(ctx context.Context, cloud *localcloud.Cloud, ips map[int]netip.Addr, bound time.Duration) (map[int]zk.Stat, error) {
	deadline := time.Now().Add(bound)
	for {
		stats, errs := Probe(ctx, cloud, ips)
		leaders, serving := 0, 0
		for _, st := range stats {
			if st.Mode == "leader" {
				leaders++
			}
			if st.Serving() {
				serving++
			}
		}
		if serving == len(ips) && leaders == 1 {
			return stats, nil
		}
		if time.Now().After(deadline) {
			return stats, fmt.Errorf("ensemble not serving after %s: %v %v", bound, stats, errs)
		}
		select {
		case <-ctx.Done():
			return stats, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Modes is "1=leader 2=follower ..." in id order.
func Modes(stats map[int]zk.Stat, ids []int) string {
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%d=%s", id, stats[id].Mode))
	}
	return strings.Join(parts, " ")
}

// Servers are the nodes' client addresses, host:port.
func Servers(ips map[int]netip.Addr) []string {
	ids := make([]int, 0, len(ips))
	for id := range ips {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []string
	for _, id := range ids {
		out = append(out, net.JoinHostPort(ips[id].String(), "2181"))
	}
	return out
}

// dial connects from inside the VPC, as go-zookeeper's Dialer.
func dial(cloud *localcloud.Cloud) gozk.Dialer {
	return func(network, address string, timeout time.Duration) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return cloud.DialContext(ctx, network, address)
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// Connect opens a ZooKeeper session over the servers (host:port).
func Connect(cloud *localcloud.Cloud, servers []string) (*gozk.Conn, error) {
	c, _, err := gozk.Connect(servers, 10*time.Second, gozk.WithDialer(dial(cloud)), gozk.WithLogger(quiet{}))
	return c, err
}

// Writer writes znodes one after another through a session over every
// node until stopped: each write is retried until it succeeds or bound
// passes (then it is a failure). A retry that finds the znode made means
// the earlier attempt landed: acknowledged.
type Writer struct {
	conn  *gozk.Conn
	bound time.Duration
	stop  chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	acked    []string
	failed   []string
	retries  int
	maxRetry time.Duration
}

// StartWriter starts writing under dir (made if missing).
func StartWriter(cloud *localcloud.Cloud, servers []string, dir string, bound time.Duration) (*Writer, error) {
	conn, err := Connect(cloud, servers)
	if err != nil {
		return nil, err
	}
	w := &Writer{conn: conn, bound: bound, stop: make(chan struct{}), done: make(chan struct{})}
	if _, err := w.conn.Create(dir, nil, 0, gozk.WorldACL(gozk.PermAll)); err != nil && !errors.Is(err, gozk.ErrNodeExists) {
		conn.Close()
		return nil, err
	}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			p := fmt.Sprintf("%s/w%06d", dir, i)
			start := time.Now()
			for attempt := 0; ; attempt++ {
				_, err := w.conn.Create(p, []byte(p), 0, gozk.WorldACL(gozk.PermAll))
				if err == nil || (attempt > 0 && errors.Is(err, gozk.ErrNodeExists)) {
					w.mu.Lock()
					w.acked = append(w.acked, p)
					if attempt > 0 {
						w.retries++
						w.maxRetry = max(w.maxRetry, time.Since(start))
					}
					w.mu.Unlock()
					break
				}
				if time.Since(start) > w.bound {
					w.mu.Lock()
					w.failed = append(w.failed, fmt.Sprintf("%s: %v after %s", p, err, time.Since(start).Round(time.Millisecond)))
					w.mu.Unlock()
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	return w, nil
}

// Acked is how many writes were acknowledged so far.
func (w *Writer) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// WriterReport is what a writer saw.
type WriterReport struct {
	Acked    int
	Lost     []string // acknowledged, then not found
	Failed   []string // not acknowledged within the bound
	Retries  int      // acknowledged after a retry
	MaxRetry time.Duration
}

func (r WriterReport) String() string {
	return fmt.Sprintf("%d writes acknowledged (%d lost), %d after retries (longest %s), %d failed",
		r.Acked, len(r.Lost), r.Retries, r.MaxRetry.Round(time.Millisecond), len(r.Failed))
}

// Finish stops the writer and reads every acknowledged write back (after
// a sync, through the same session).
func (w *Writer) Finish() (WriterReport, error) {
	close(w.stop)
	<-w.done
	defer w.conn.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	r := WriterReport{Acked: len(w.acked), Failed: slices.Clone(w.failed), Retries: w.retries, MaxRetry: w.maxRetry}
	if len(w.acked) == 0 {
		return r, errors.New("no write acknowledged")
	}
	if _, err := w.conn.Sync(w.acked[0]); err != nil {
		return r, fmt.Errorf("sync before reading back: %w", err)
	}
	for _, p := range w.acked {
		ok, _, err := w.conn.Exists(p)
		if err != nil {
			return r, fmt.Errorf("read back %s: %w", p, err)
		}
		if !ok {
			r.Lost = append(r.Lost, p)
		}
	}
	return r, nil
}

// Monitor samples every node's srvr until stopped and records the worst
// moments: nodes down at once (not answering at all: the machine or its
// ZooKeeper gone), moments without a quorum of nodes up, time without a
// leader, and the leaders' epochs.
type Monitor struct {
	stop chan struct{}
	done chan struct{}

	mu           sync.Mutex
	samples      int
	maxDown      int
	downAt       []string // moments with more than one node down
	noQuorum     int      // moments (runs of samples) with fewer than a majority up
	noLeader     time.Duration
	noLeaderMax  time.Duration
	leaders      []string // "node N (epoch E)", each change once
	first, epoch uint32   // the first and the latest leader epoch seen
}

// StartMonitor starts sampling every 200 ms.
func StartMonitor(cloud *localcloud.Cloud, ips map[int]netip.Addr) *Monitor {
	m := &Monitor{stop: make(chan struct{}), done: make(chan struct{})}
	majority := len(ips)/2 + 1
	go func() {
		defer close(m.done)
		var since time.Time     // without a leader since
		missed := map[int]int{} // consecutive samples a node did not answer
		inNoQuorum := false
		for {
			stats, errs := Probe(context.Background(), cloud, ips)
			leader, leaderID := false, 0
			var epoch uint32
			for id, st := range stats {
				if st.Mode == "leader" {
					leader, leaderID, epoch = true, id, st.Epoch()
				}
			}
			// Down is two samples in a row without an answer: one slow
			// answer on a busy host is not a node gone.
			var down []int
			for id := range ips {
				if _, ok := errs[id]; ok {
					missed[id]++
				} else {
					missed[id] = 0
				}
				if missed[id] >= 2 {
					down = append(down, id)
				}
			}
			slices.Sort(down)
			now := time.Now()
			m.mu.Lock()
			m.samples++
			m.maxDown = max(m.maxDown, len(down))
			if len(down) > 1 {
				m.downAt = append(m.downAt, fmt.Sprintf("%s: nodes %v down", now.Format(time.TimeOnly), down))
			}
			if lost := len(ips)-len(down) < majority; lost && !inNoQuorum {
				m.noQuorum++
				inNoQuorum = true
			} else if !lost {
				inNoQuorum = false
			}
			if leader {
				if m.first == 0 {
					m.first = epoch
				}
				if epoch > m.epoch {
					m.epoch = epoch
					m.leaders = append(m.leaders, fmt.Sprintf("node %d (epoch %d)", leaderID, epoch))
				}
			}
			switch {
			case !leader && since.IsZero():
				since = now
			case leader && !since.IsZero():
				m.noLeader += now.Sub(since)
				m.noLeaderMax = max(m.noLeaderMax, now.Sub(since))
				since = time.Time{}
			}
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return m
}

// MonitorReport is what a monitor saw.
type MonitorReport struct {
	Samples int
	MaxDown int      // most nodes down at once
	DownAt  []string // moments with more than one node down
	// NoQuorum counts the moments (runs of samples) in which fewer than a
	// majority of the nodes were up: the ensemble could not have served
	// whatever the election did.
	NoQuorum    int
	NoLeader    time.Duration // in all, without a leader
	NoLeaderMax time.Duration // the longest such time
	// Elections is how far the leader's epoch moved: each leader elected
	// starts a new epoch (a follower rejoining does not).
	Elections int
	Leaders   []string // each leader seen, with its epoch
}

func (r MonitorReport) String() string {
	return fmt.Sprintf("%d samples, at most %d node(s) down at once, %d moment(s) without a quorum up, %d election(s) (leaders %s), %s without a leader in all (longest %s)",
		r.Samples, r.MaxDown, r.NoQuorum, r.Elections, strings.Join(r.Leaders, ", "), r.NoLeader.Round(time.Millisecond), r.NoLeaderMax.Round(time.Millisecond))
}

// Finish stops the monitor.
func (m *Monitor) Finish() MonitorReport {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return MonitorReport{Samples: m.samples, MaxDown: m.maxDown, DownAt: slices.Clone(m.downAt), NoQuorum: m.noQuorum,
		NoLeader: m.noLeader, NoLeaderMax: m.noLeaderMax, Elections: int(m.epoch - m.first), Leaders: slices.Clone(m.leaders)}
}

// RollStep is one "replacing" line of zkaas roll's log.
type RollStep struct {
	Node     string
	Instance string
	Leader   bool
}

var replacingLine = regexp.MustCompile(`msg=replacing step="node (\d+)" instance=(\S+) leader=(true|false)`)

// RollSteps are the steps a roll's log (its stderr) tells of.
func RollSteps(stderr string) []RollStep {
	var out []RollStep
	for _, m := range replacingLine.FindAllStringSubmatch(stderr, -1) {
		out = append(out, RollStep{Node: m[1], Instance: m[2], Leader: m[3] == "true"})
	}
	return out
}

// LastSync is how the node's ZooKeeper last synced with the leader, from
// its journal: DIFF (transactions only), SNAP, TRUNC, or "".
func LastSync(ctx context.Context, inst *localcloud.Instance) string {
	out, err := inst.Journal(ctx, "--boot=0", "_SYSTEMD_UNIT=zookeeper.service", "--output=cat")
	if err != nil {
		return ""
	}
	best, at := "", -1
	for _, s := range []struct{ line, sync string }{
		{"Getting a snapshot from leader", "SNAP"},
		{"Getting a diff from the leader", "DIFF"},
		{"Truncating log to get in sync with the leader", "TRUNC"},
	} {
		if i := strings.LastIndex(string(out), s.line); i > at {
			best, at = s.sync, i
		}
	}
	return best
}

// CreateDLMRole makes Data Lifecycle Manager's execution role, as `aws dlm
// create-default-role` does: what the operator provides before an up with
// snapshots, besides the VPC, its subnets and the image.
func CreateDLMRole(ctx context.Context, cloud *localcloud.Cloud) error {
	c := iam.New(iam.Options{Region: cloud.Region(), BaseEndpoint: sdk.String(cloud.IAMEndpoint()), HTTPClient: cloud.HTTPClient(),
		Credentials: credentials.NewStaticCredentialsProvider("harness", "localcloud", "")})
	_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: sdk.String("AWSDataLifecycleManagerDefaultRole"),
		AssumeRolePolicyDocument: sdk.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"dlm.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)})
	if err != nil {
		return fmt.Errorf("create DLM's default role: %w", err)
	}
	return nil
}

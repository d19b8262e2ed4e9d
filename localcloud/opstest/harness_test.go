package opstest

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
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	gozk "github.com/go-zookeeper/zk"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/ops/zk"
)

// The ensemble the scenario deploys: three nodes, one per AZ.
const ensembleName = "opstest"

var nodeIPs = map[int]netip.Addr{
	1: netip.MustParseAddr("10.0.1.10"),
	2: netip.MustParseAddr("10.0.2.10"),
	3: netip.MustParseAddr("10.0.3.10"),
}

// claimDeadline is short so that a boot that cannot claim gives up soon;
// the happy path never waits for it.
const claimDeadline = 20 * time.Second

// config is the ensemble's YAML with its deploy section, on image.
func config(image string) []byte {
	return fmt.Appendf(nil, `# zkaas on the local cloud (localcloud/opstest)
ensemble: %s
nodes:
  - {id: 1, az: us-east-1a, ip: %s}
  - {id: 2, az: us-east-1b, ip: %s}
  - {id: 3, az: us-east-1c, ip: %s}
claim: {deadline: %s, stuck_attach: %s, bootstrap_window: 30m}
zookeeper: {heap: 256m, four_letter_words: [srvr, ruok, mntr]}
deploy:
  image_id: %s
  instance_type: t3.medium
  volume: {type: gp3, size_gib: 1}
  client:
    cidrs: [10.0.0.0/16]
  snapshots: {daily: true, retain: 3}
`, ensembleName, nodeIPs[1], nodeIPs[2], nodeIPs[3], claimDeadline, claimDeadline/3, image)
}

// aws is the harness's view of the local cloud's APIs, through the real
// SDK clients from inside the VPC, signing as "harness" (not the
// operator).
type aws struct {
	cloud *localcloud.Cloud
	ec2   *ec2.Client
	asg   *autoscaling.Client
	iam   *iam.Client
}

func newAWS(cloud *localcloud.Cloud) *aws {
	creds := credentials.NewStaticCredentialsProvider("harness", "localcloud", "")
	return &aws{
		cloud: cloud,
		ec2: ec2.New(ec2.Options{Region: cloud.Region(), BaseEndpoint: sdk.String(cloud.EC2Endpoint()),
			HTTPClient: cloud.HTTPClient(), Credentials: creds}),
		asg: autoscaling.New(autoscaling.Options{Region: cloud.Region(), BaseEndpoint: sdk.String(cloud.AutoScalingEndpoint()),
			HTTPClient: cloud.HTTPClient(), Credentials: creds}),
		iam: iam.New(iam.Options{Region: cloud.Region(), BaseEndpoint: sdk.String(cloud.IAMEndpoint()),
			HTTPClient: cloud.HTTPClient(), Credentials: creds}),
	}
}

func tagFilter(key, value string) ec2types.Filter {
	return ec2types.Filter{Name: sdk.String("tag:" + key), Values: []string{value}}
}

// resources counts what exists of each kind zkaas makes, as AWS lists it:
// by the ensemble tag for EC2, by name for IAM, by name prefix for the
// groups. A duplicate shows as a count above the config's.
type resources struct {
	ENIs, Volumes, SecurityGroups, Templates, Groups, Policies int
	Role, Profile                                              bool
}

func (a *aws) resources(t *testing.T) resources {
	t.Helper()
	ctx := t.Context()
	var r resources
	own := []ec2types.Filter{tagFilter("zkaas:ensemble", ensembleName), tagFilter("zkaas:managed-by", "zkaas")}
	enis, err := a.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: own})
	if err != nil {
		t.Fatal(err)
	}
	r.ENIs = len(enis.NetworkInterfaces)
	vols, err := a.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: own})
	if err != nil {
		t.Fatal(err)
	}
	r.Volumes = len(vols.Volumes)
	sgs, err := a.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: own})
	if err != nil {
		t.Fatal(err)
	}
	r.SecurityGroups = len(sgs.SecurityGroups)
	lts, err := a.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{Filters: own})
	if err != nil {
		t.Fatal(err)
	}
	r.Templates = len(lts.LaunchTemplates)
	groups, err := a.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.AutoScalingGroups {
		if strings.HasPrefix(sdk.ToString(g.AutoScalingGroupName), "zkaas-"+ensembleName+"-") {
			r.Groups++
		}
	}
	_, r.Role = a.cloud.IAM().Role("zkaas-" + ensembleName)
	_, r.Profile = a.cloud.IAM().InstanceProfile("zkaas-" + ensembleName)
	r.Policies = len(a.cloud.DLM().Policies())
	return r
}

// complete is what up makes for the config: two security groups, three
// ENIs and volumes, the role and profile, one template, a group per AZ and
// the snapshot policy.
var complete = resources{ENIs: 3, Volumes: 3, SecurityGroups: 2, Templates: 1, Groups: 3, Policies: 1, Role: true, Profile: true}

// groupNames are the groups up makes, one per AZ.
func groupNames() []string {
	var out []string
	for _, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		out = append(out, "zkaas-"+ensembleName+"-"+az)
	}
	return out
}

// suspend suspends (or resumes) a scaling process on every group.
func (a *aws) suspend(t *testing.T, process string, on bool) {
	t.Helper()
	for _, g := range groupNames() {
		var err error
		if on {
			_, err = a.asg.SuspendProcesses(t.Context(), &autoscaling.SuspendProcessesInput{AutoScalingGroupName: sdk.String(g), ScalingProcesses: []string{process}})
		} else {
			_, err = a.asg.ResumeProcesses(t.Context(), &autoscaling.ResumeProcessesInput{AutoScalingGroupName: sdk.String(g), ScalingProcesses: []string{process}})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// statusRow is the part of `zkaas status -o json` the scenario reads.
type statusRow struct {
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

func parseStatus(t *testing.T, r result) map[int]statusRow {
	t.Helper()
	var doc struct {
		Ensemble string      `json:"ensemble"`
		Nodes    []statusRow `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r)
	}
	if doc.Ensemble != ensembleName {
		t.Fatalf("status of ensemble %q, want %s", doc.Ensemble, ensembleName)
	}
	rows := map[int]statusRow{}
	for _, n := range doc.Nodes {
		rows[n.Node] = n
	}
	return rows
}

// probe asks every node's srvr from inside the VPC.
func probe(ctx context.Context, cloud *localcloud.Cloud) (map[int]zk.Stat, map[int]error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var addrs []netip.AddrPort
	for _, ip := range nodeIPs {
		addrs = append(addrs, netip.AddrPortFrom(ip, 2181))
	}
	stats, errs := zk.Client{Timeout: 2 * time.Second, Dial: cloud.DialContext}.All(ctx, addrs)
	byID, errByID := map[int]zk.Stat{}, map[int]error{}
	for id, ip := range nodeIPs {
		a := netip.AddrPortFrom(ip, 2181)
		if st, ok := stats[a]; ok {
			byID[id] = st
		} else {
			errByID[id] = errs[a]
		}
	}
	return byID, errByID
}

// waitServing waits until every node serves, one of them leading.
func waitServing(t *testing.T, cloud *localcloud.Cloud, bound time.Duration) map[int]zk.Stat {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		stats, errs := probe(t.Context(), cloud)
		leaders, serving := 0, 0
		for _, st := range stats {
			if st.Mode == "leader" {
				leaders++
			}
			if st.Serving() {
				serving++
			}
		}
		if serving == len(nodeIPs) && leaders == 1 {
			return stats
		}
		if time.Now().After(deadline) {
			t.Fatalf("ensemble not serving after %s: %v %v", bound, stats, errs)
		}
		time.Sleep(500 * time.Millisecond)
	}
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

// connect opens a ZooKeeper session over every node.
func connect(t *testing.T, cloud *localcloud.Cloud) *gozk.Conn {
	t.Helper()
	var servers []string
	for _, id := range []int{1, 2, 3} {
		servers = append(servers, net.JoinHostPort(nodeIPs[id].String(), "2181"))
	}
	c, _, err := gozk.Connect(servers, 10*time.Second, gozk.WithDialer(dial(cloud)), gozk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writer writes znodes one after another through a session over every
// node until stopped: each write is retried until it succeeds or bound
// passes (then it is a failure). A retry that finds the znode made means
// the earlier attempt landed: acknowledged.
type writer struct {
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

func startWriter(t *testing.T, cloud *localcloud.Cloud, dir string, bound time.Duration) *writer {
	t.Helper()
	w := &writer{conn: connect(t, cloud), bound: bound, stop: make(chan struct{}), done: make(chan struct{})}
	if _, err := w.conn.Create(dir, nil, 0, gozk.WorldACL(gozk.PermAll)); err != nil && !errors.Is(err, gozk.ErrNodeExists) {
		t.Fatal(err)
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
	return w
}

// finish stops the writer and checks every acknowledged write is there
// and none failed past the bound.
func (w *writer) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	defer w.conn.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.failed {
		t.Errorf("write not acknowledged within %s: %s", w.bound, f)
	}
	if len(w.acked) == 0 {
		t.Fatal("no write acknowledged")
	}
	if _, err := w.conn.Sync(w.acked[0]); err != nil {
		t.Fatal(err)
	}
	for _, p := range w.acked {
		if ok, _, err := w.conn.Exists(p); err != nil || !ok {
			t.Errorf("acknowledged write %s lost (exists %v, %v)", p, ok, err)
		}
	}
	t.Logf("writer: %d writes acknowledged, %d after retries (longest %s), %d failed", len(w.acked), w.retries, w.maxRetry.Round(time.Millisecond), len(w.failed))
}

// monitor samples every node's srvr until stopped and records the worst
// moments: nodes down at once (not answering at all: the machine or its
// ZooKeeper gone), and time without a leader.
type monitor struct {
	stop chan struct{}
	done chan struct{}

	mu          sync.Mutex
	samples     int
	maxDown     int
	downAt      []string // moments with more than one node down
	noLeader    time.Duration
	noLeaderMax time.Duration
}

func startMonitor(cloud *localcloud.Cloud) *monitor {
	m := &monitor{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		var since time.Time     // without a leader since
		missed := map[int]int{} // consecutive samples a node did not answer
		for {
			stats, errs := probe(context.Background(), cloud)
			leader := false
			for _, st := range stats {
				leader = leader || st.Mode == "leader"
			}
			// Down is two samples in a row without an answer: one slow
			// answer on a busy host is not a node gone.
			var down []int
			for id := range nodeIPs {
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

// finish stops the monitor and checks that no two nodes were down at
// once: the roll takes one node out at a time, so the quorum (two of
// three) always has its members.
func (m *monitor) finish(t *testing.T) {
	t.Helper()
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.downAt {
		t.Errorf("more than one node down at once: %s", d)
	}
	t.Logf("monitor: %d samples, at most %d node(s) down at once, %s without a leader in all (longest %s)",
		m.samples, m.maxDown, m.noLeader.Round(time.Millisecond), m.noLeaderMax.Round(time.Millisecond))
}

// rollStep is one "replacing" line of zkaas roll's log.
type rollStep struct {
	Node     string
	Instance string
	Leader   bool
}

var replacingLine = regexp.MustCompile(`msg=replacing step="node (\d+)" instance=(\S+) leader=(true|false)`)

func rollSteps(stderr string) []rollStep {
	var out []rollStep
	for _, m := range replacingLine.FindAllStringSubmatch(stderr, -1) {
		out = append(out, rollStep{Node: m[1], Instance: m[2], Leader: m[3] == "true"})
	}
	return out
}

// lastSync is how the node's ZooKeeper last synced with the leader, from
// its journal: DIFF (transactions only), SNAP, TRUNC, or "".
func lastSync(ctx context.Context, inst *localcloud.Instance) string {
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

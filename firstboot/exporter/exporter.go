// Package exporter is zkaas's Prometheus exporter (zkaas-exporter.service,
// `zkaas-firstboot exporter`): ZooKeeper's own figures from the mntr
// four-letter word, which every server since 3.4 answers when whitelisted,
// and zkaas's state on this node — which node it became, how long each
// stage of the boot took, how the last boot ended, which volume it holds —
// from the files `zkaas-firstboot run` leaves in /run/zkaas.
//
// Everything is read when Prometheus scrapes (a custom Collector), never
// cached, and bounded by a short timeout: a ZooKeeper that is down or hangs
// makes zk_up 0, not a failed or hung scrape, so the zkaas figures that say
// why still arrive.
package exporter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zkaas/zkaas/firstboot/boot"
)

// DefaultTimeout bounds one mntr exchange. Prometheus's default scrape
// timeout is 10 s; a healthy server answers in milliseconds.
const DefaultTimeout = 2 * time.Second

// State files `zkaas-firstboot run` leaves in its state directory: the
// report of a successful run, or the reason it failed (each removes the
// other).
const (
	ReportFile  = "report.json"
	FailureFile = "failure.json"
)

// Collector is the exporter's prometheus.Collector.
type Collector struct {
	// Ensemble labels zkaas_node_info.
	Ensemble string
	// ZooKeeper is the node's client address (its ENI address and
	// zookeeper.client_port).
	ZooKeeper netip.AddrPort
	// StateDir holds ReportFile and FailureFile (/run/zkaas).
	StateDir string
	// Timeout bounds the mntr exchange (DefaultTimeout when zero).
	Timeout time.Duration
	// Dial opens the connection to ZooKeeper (a net.Dialer when nil).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	Log  *slog.Logger
}

// Modes are the values of zk_server_state mntr reports (ServerStats'
// getServerState: leader, follower, observer, standalone, read-only), plus
// not-serving for a server that answers "This ZooKeeper instance is not
// currently serving requests" (looking for a leader, or syncing).
var Modes = []string{"leader", "follower", "observer", "standalone", "read-only", NotServing}

// NotServing is the mode of a server that answers but does not serve.
const NotServing = "not-serving"

type kind int

const (
	gauge kind = iota
	counter
)

// mntrMetric is one numeric mntr key the exporter publishes as zk_<key>.
type mntrMetric struct {
	key  string
	kind kind
	help string
}

// mntrMetrics are the mntr keys of ZooKeeper 3.5-3.9 operators alert on
// (ZooKeeper's MonitorCommand and its metrics root context; checked against
// Debian's 3.8 server in TestRealZooKeeper). Keys only a leader reports
// (learners, synced followers, pending syncs) appear only there. Other keys
// are left out on purpose: 3.6+ servers report hundreds of internal
// summaries that ZooKeeper's own Prometheus provider (metrics.zookeeper)
// exports better.
var mntrMetrics = []mntrMetric{
	{"zk_avg_latency", gauge, "Average request latency in milliseconds since the server started or its statistics were reset."},
	{"zk_min_latency", gauge, "Minimum request latency in milliseconds."},
	{"zk_max_latency", gauge, "Maximum request latency in milliseconds."},
	{"zk_packets_received", counter, "Packets received from clients."},
	{"zk_packets_sent", counter, "Packets sent to clients."},
	{"zk_num_alive_connections", gauge, "Client connections open now."},
	{"zk_outstanding_requests", gauge, "Requests queued and not yet processed (a server falling behind)."},
	{"zk_znode_count", gauge, "Znodes in the data tree."},
	{"zk_watch_count", gauge, "Watches set by the server's clients."},
	{"zk_ephemerals_count", gauge, "Ephemeral znodes."},
	{"zk_approximate_data_size", gauge, "Approximate size of the data tree in bytes."},
	{"zk_open_file_descriptor_count", gauge, "File descriptors the server has open."},
	{"zk_max_file_descriptor_count", gauge, "The server's file descriptor limit."},
	{"zk_uptime", gauge, "Milliseconds since the server started serving in its current role."},
	{"zk_quorum_size", gauge, "Voting members of the ensemble."},
	{"zk_learners", gauge, "Learners (followers and observers) connected to this leader (leader only; 3.6+)."},
	{"zk_followers", gauge, "Learners connected to this leader (leader only; the 3.5 name of zk_learners)."},
	{"zk_synced_followers", gauge, "Followers in sync with this leader (leader only)."},
	{"zk_synced_non_voting_followers", gauge, "Non-voting followers in sync with this leader (leader only)."},
	{"zk_synced_observers", gauge, "Observers in sync with this leader (leader only)."},
	{"zk_pending_syncs", gauge, "Learners this leader is still syncing (leader only)."},
	{"zk_last_proposal_size", gauge, "Size in bytes of the leader's last proposal (leader only)."},
	{"zk_max_proposal_size", gauge, "Largest proposal in bytes (leader only)."},
	{"zk_min_proposal_size", gauge, "Smallest proposal in bytes (leader only)."},
}

var (
	upDesc    = prometheus.NewDesc("zk_up", "1 when ZooKeeper answered mntr on the node's client address within the timeout.", nil, nil)
	stateDesc = prometheus.NewDesc("zk_server_state", "1 for the server's current mode (mntr zk_server_state), 0 for the others.", []string{"state"}, nil)
	infoDesc  = prometheus.NewDesc("zk_info", "The server's version (mntr zk_version).", []string{"version"}, nil)
	mntrDescs = func() map[string]*prometheus.Desc {
		m := map[string]*prometheus.Desc{}
		for _, k := range mntrMetrics {
			m[k.key] = prometheus.NewDesc(k.key, k.help, nil, nil)
		}
		return m
	}()

	nodeInfoDesc = prometheus.NewDesc("zkaas_node_info", "The node this instance became at its last successful boot: its ENI, address and volume.",
		[]string{"ensemble", "node", "eni", "ip", "volume", "device", "config"}, nil)
	nodeIDDesc       = prometheus.NewDesc("zkaas_node_id", "The node id (ZooKeeper myid) this instance became.", nil, nil)
	bootSuccessDesc  = prometheus.NewDesc("zkaas_boot_success", "1 when the last zkaas-firstboot run succeeded, 0 when it failed.", nil, nil)
	bootRefusedDesc  = prometheus.NewDesc("zkaas_boot_refused", "1 when the last run failed for a reason every replacement would hit too (a bad config, a refused volume).", nil, nil)
	bootFailureDesc  = prometheus.NewDesc("zkaas_boot_failure_info", "The one-line reason the last run failed.", []string{"reason"}, nil)
	bootTimeDesc     = prometheus.NewDesc("zkaas_boot_timestamp_seconds", "When the last run ended, in seconds since the epoch.", nil, nil)
	bootDurationDesc = prometheus.NewDesc("zkaas_boot_duration_seconds", "How long the last successful run took.", nil, nil)
	stageDesc        = prometheus.NewDesc("zkaas_boot_stage_duration_seconds", "How long each stage of the last successful run took.", []string{"stage"}, nil)
	claimPhaseDesc   = prometheus.NewDesc("zkaas_claim_phase_duration_seconds", "How long each phase of the claim took (discover, eni, volume, wait, total).", []string{"phase"}, nil)
	claimCallsDesc   = prometheus.NewDesc("zkaas_claim_ec2_calls", "EC2 API calls the claim made.", nil, nil)
	claimReusedDesc  = prometheus.NewDesc("zkaas_claim_reused", "1 when the instance already held its ENI and volume (a reboot).", nil, nil)
	changesDesc      = prometheus.NewDesc("zkaas_boot_changes", "Changes the last successful run made (0 on a run that found everything in place).", nil, nil)
	formattedDesc    = prometheus.NewDesc("zkaas_volume_formatted", "1 when the last run formatted the node's volume (a brand-new volume).", nil, nil)
	initializeDesc   = prometheus.NewDesc("zkaas_zookeeper_initialize", "1 when the last run trusted an empty data tree (a brand-new ensemble).", nil, nil)
)

// Describe sends every metric the collector may send.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, stateDesc, infoDesc, nodeInfoDesc, nodeIDDesc, bootSuccessDesc, bootRefusedDesc,
		bootFailureDesc, bootTimeDesc, bootDurationDesc, stageDesc, claimPhaseDesc, claimCallsDesc, claimReusedDesc, changesDesc,
		formattedDesc, initializeDesc} {
		ch <- d
	}
	for _, k := range mntrMetrics {
		ch <- mntrDescs[k.key]
	}
}

// Collect reads mntr and the state files now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.collectZooKeeper(ch)
	c.collectState(ch)
}

// timeout is c.Timeout, or DefaultTimeout when unset.
func (c *Collector) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Collector) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

func (c *Collector) collectZooKeeper(ch chan<- prometheus.Metric) {
	figures, mode, err := c.mntr(context.Background())
	if err != nil {
		c.log().Warn("mntr", "step", "exporter", "zookeeper", c.ZooKeeper.String(), "err", err)
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	for _, m := range Modes {
		v := 0.0
		if m == mode {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, m)
	}
	if v, ok := figures["zk_version"]; ok {
		// "3.8.0-debian--1, built on ..." — the version is the first word.
		ver, _, _ := strings.Cut(v, ",")
		ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1, strings.TrimSpace(ver))
	}
	for _, k := range mntrMetrics {
		s, ok := figures[k.key]
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			continue
		}
		t := prometheus.GaugeValue
		if k.kind == counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(mntrDescs[k.key], t, v)
	}
}

// notServing is what ZooKeeper answers any four-letter word but srvr and a
// few others with while it is not serving (NopCommand's message).
const notServing = "This ZooKeeper instance is not currently serving requests"

// mntr sends mntr and parses its "key\tvalue" lines.
func (c *Collector) mntr(ctx context.Context) (map[string]string, string, error) {
	answer, err := c.mntrAnswer(ctx)
	if err != nil {
		return nil, "", err
	}
	return ParseMntr(answer)
}

// mntrAnswer sends mntr and reads the whole answer, within c.Timeout.
func (c *Collector) mntrAnswer(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	dial := c.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", c.ZooKeeper.String())
	if err != nil {
		return "", fmt.Errorf("mntr %s: %w", c.ZooKeeper, err)
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	if _, err := io.WriteString(conn, "mntr"); err != nil {
		return "", fmt.Errorf("mntr %s: %w", c.ZooKeeper, err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, 1<<20))
	if err != nil {
		return "", fmt.Errorf("mntr %s: %w", c.ZooKeeper, err)
	}
	return string(b), nil
}

// ParseMntr reads an mntr answer: its figures by key and the server's mode
// (one of Modes).
func ParseMntr(answer string) (map[string]string, string, error) {
	if strings.Contains(answer, notServing) {
		return map[string]string{}, NotServing, nil
	}
	figures := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(answer))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "\t")
		if !ok || !strings.HasPrefix(k, "zk_") {
			continue
		}
		figures[k] = strings.TrimSpace(v)
	}
	mode, ok := figures["zk_server_state"]
	if !ok {
		// "mntr is not executed because it is not in the whitelist." and
		// anything else that is not mntr's answer.
		return nil, "", fmt.Errorf("not an mntr answer: %q", firstLine(answer))
	}
	return figures, mode, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(l) > 200 {
		l = l[:200]
	}
	return l
}

// failure is what `zkaas-firstboot run` writes to FailureFile.
type failure struct {
	Reason  string    `json:"reason"`
	Refused bool      `json:"refused"`
	At      time.Time `json:"at"`
}

func (c *Collector) collectState(ch chan<- prometheus.Metric) {
	rep, repAt, repErr := c.report()
	f, fErr := c.failure()
	switch {
	case fErr == nil:
		ch <- prometheus.MustNewConstMetric(bootSuccessDesc, prometheus.GaugeValue, 0)
		ch <- prometheus.MustNewConstMetric(bootRefusedDesc, prometheus.GaugeValue, b2f(f.Refused))
		ch <- prometheus.MustNewConstMetric(bootFailureDesc, prometheus.GaugeValue, 1, f.Reason)
		ch <- prometheus.MustNewConstMetric(bootTimeDesc, prometheus.GaugeValue, float64(f.At.UnixMilli())/1000)
	case repErr == nil:
		ch <- prometheus.MustNewConstMetric(bootSuccessDesc, prometheus.GaugeValue, 1)
		ch <- prometheus.MustNewConstMetric(bootRefusedDesc, prometheus.GaugeValue, 0)
		ch <- prometheus.MustNewConstMetric(bootTimeDesc, prometheus.GaugeValue, float64(repAt.UnixMilli())/1000)
	default:
		if !errors.Is(repErr, os.ErrNotExist) {
			c.log().Warn("report", "step", "exporter", "err", repErr)
		}
	}
	if fErr != nil && !errors.Is(fErr, os.ErrNotExist) {
		// A failure.json the exporter cannot read would otherwise hide
		// the failure it records without a word.
		c.log().Warn("failure", "step", "exporter", "err", fErr)
	}
	if repErr != nil {
		return
	}
	// A failure after a success (a later run) removes the report, so a
	// report present here is the node this instance still is.
	cl := rep.Claim
	ch <- prometheus.MustNewConstMetric(nodeInfoDesc, prometheus.GaugeValue, 1,
		c.Ensemble, strconv.Itoa(cl.Node), cl.ENI, cl.IP.String(), cl.Volume, cl.Device, rep.Config)
	ch <- prometheus.MustNewConstMetric(nodeIDDesc, prometheus.GaugeValue, float64(cl.Node))
	ch <- prometheus.MustNewConstMetric(bootDurationDesc, prometheus.GaugeValue, rep.Duration.Seconds())
	for _, s := range rep.Stages {
		ch <- prometheus.MustNewConstMetric(stageDesc, prometheus.GaugeValue, s.MS/1000, s.Stage)
	}
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"discover", cl.Phases.Discover}, {"eni", cl.Phases.ENI}, {"volume", cl.Phases.Volume}, {"wait", cl.Phases.Wait}, {"total", cl.Phases.Total}} {
		ch <- prometheus.MustNewConstMetric(claimPhaseDesc, prometheus.GaugeValue, p.d.Seconds(), p.name)
	}
	ch <- prometheus.MustNewConstMetric(claimCallsDesc, prometheus.GaugeValue, float64(cl.Calls))
	ch <- prometheus.MustNewConstMetric(claimReusedDesc, prometheus.GaugeValue, b2f(cl.Reused))
	ch <- prometheus.MustNewConstMetric(changesDesc, prometheus.GaugeValue, float64(rep.Changes))
	ch <- prometheus.MustNewConstMetric(formattedDesc, prometheus.GaugeValue, b2f(rep.Disk.Formatted))
	ch <- prometheus.MustNewConstMetric(initializeDesc, prometheus.GaugeValue, b2f(rep.ZooKeeper.Initialize))
}

// report reads ReportFile and when it was written (the run's end).
func (c *Collector) report() (boot.Report, time.Time, error) {
	p := filepath.Join(c.StateDir, ReportFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return boot.Report{}, time.Time{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return boot.Report{}, time.Time{}, err
	}
	var rep boot.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return boot.Report{}, time.Time{}, fmt.Errorf("read %s: %w", p, err)
	}
	return rep, st.ModTime(), nil
}

func (c *Collector) failure() (failure, error) {
	p := filepath.Join(c.StateDir, FailureFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return failure{}, err
	}
	var f failure
	if err := json.Unmarshal(b, &f); err != nil {
		return failure{}, fmt.Errorf("read %s: %w", p, err)
	}
	return f, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

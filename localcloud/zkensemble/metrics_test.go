package zkensemble

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// TestExporterScrapedFromTheVPC (machines): with metrics.exporter enabled in
// the launch template's user data, every node's zkaas-exporter.service
// serves /metrics on the node's ENI address, scraped from inside the VPC
// (its namespace, as a Prometheus in the VPC would): each node shows its
// mode — one leader, the others followers — and zkaas's figures (its node
// id and volume, each boot stage's duration, a successful last boot). The
// instance's primary address answers nothing on the port.
func TestExporterScrapedFromTheVPC(t *testing.T) {
	rootfs := sharedImage(t)
	if !hasUnit(rootfs, "zkaas-exporter.service") {
		t.Fatal("the image has no zkaas-exporter.service")
	}
	e := newEnsembleWith(t, onMachines, ec2sim.Options{}, nodes("us-east-1a", "us-east-1b", "us-east-1c"), Options{Deadline: 20 * time.Second})
	ud := append(bytes.Clone(e.Config()), "metrics:\n  exporter: {enabled: true}\n"...)
	g := newGroups(t, e, GroupOptions{UserData: ud})
	if _, err := g.WaitNodes(t.Context(), 3*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitServing(t.Context(), 2*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: e.Cloud.DialContext}, Timeout: 5 * time.Second}
	leaders := 0
	for _, id := range []int{1, 2, 3} {
		n := e.Node(id)
		if s, err := n.Instance.WaitUnit(t.Context(), "zkaas-exporter.service", "active", "failed"); err != nil || s != "active" {
			j, _ := n.Instance.Journal(t.Context(), "-u", "zkaas-exporter.service", "-o", "cat")
			t.Fatalf("node %d: zkaas-exporter.service %s, %v:\n%s", id, s, err, j)
		}
		// The exporter reads mntr when scraped: retry until ZooKeeper's
		// mode there agrees with a serving ensemble (a fresh follower may
		// answer "not serving" for a moment).
		var body string
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, err := get(t.Context(), client, fmt.Sprintf("http://%s:9141/metrics", n.IP))
			body = b
			if err == nil && (strings.Contains(b, `zk_server_state{state="leader"} 1`) || strings.Contains(b, `zk_server_state{state="follower"} 1`)) {
				break
			}
			if time.Now().After(deadline) {
				j, _ := n.Instance.Journal(t.Context(), "-u", "zkaas-exporter.service", "-o", "cat")
				t.Fatalf("node %d: no serving mode on %s:9141 after 30s (%v):\n%s\njournal:\n%s", id, n.IP, err, b, j)
			}
			time.Sleep(500 * time.Millisecond)
		}
		mode := "follower"
		if strings.Contains(body, `zk_server_state{state="leader"} 1`) {
			leaders++
			mode = "leader"
		}
		t.Logf("node %d (%s:9141): %s, %s", id, n.IP, mode, metricLine(body, "zkaas_boot_duration_seconds"))
		for _, want := range []string{
			"\nzk_up 1\n",
			fmt.Sprintf("\nzkaas_node_id %d\n", id),
			fmt.Sprintf(`node="%d"`, id),
			fmt.Sprintf(`volume="%s"`, e.Slot(id).Volume.ID),
			fmt.Sprintf(`ip="%s"`, n.IP),
			`config="user data"`,
			"\nzkaas_boot_success 1\n",
			`zkaas_boot_stage_duration_seconds{stage="claim"}`,
			`zkaas_boot_stage_duration_seconds{stage="zookeeper"}`,
			`zkaas_claim_phase_duration_seconds{phase="total"}`,
			"\nzk_znode_count ",
			"\nzk_num_alive_connections ",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("node %d: /metrics lacks %q", id, strings.TrimSpace(want))
			}
		}
		if t.Failed() {
			t.Logf("node %d /metrics:\n%s", id, body)
		}
		// Bound to the ENI address only: the primary address (the
		// instance's own interface, in the same VPC) refuses the port.
		if c, err := e.Cloud.DialContext(t.Context(), "tcp", net.JoinHostPort(n.Instance.PrivateIP, "9141")); err == nil {
			c.Close()
			t.Errorf("node %d: the exporter answers on the instance's primary address %s", id, n.Instance.PrivateIP)
		}
	}
	if leaders != 1 {
		t.Errorf("%d nodes report zk_server_state leader, want 1", leaders)
	}

	// ZooKeeper's own provider on this image (Debian's package, no
	// zookeeper-prometheus-metrics jar): a launch whose user data enables
	// it is refused at boot, naming the field and its line, before any
	// EC2 call — not a ZooKeeper that never starts.
	t.Run("metrics.zookeeper refused on this image", func(t *testing.T) {
		prov := newGroups(t, e, GroupOptions{Name: "prov", AZs: []string{"us-east-1a"},
			UserData: append(bytes.Clone(e.Config()), "metrics:\n  zookeeper: {enabled: true}\n"...)})
		b, fe := refusedBoot(t, prov)
		if !strings.Contains(fe.Line, "user data") ||
			!regexp.MustCompile(`line [0-9]+: metrics\.zookeeper\.enabled: this image's ZooKeeper has no Prometheus metrics provider \(it runs the distribution's package`).MatchString(fe.Line) {
			t.Errorf("%s: %v; want the user data's metrics.zookeeper refused with its line", b.InstanceID, b.Err)
		}
		if calls := e.Cloud.EC2Calls(b.InstanceID); len(calls) != 0 {
			t.Errorf("%s refused its config after EC2 calls %v: want none", b.InstanceID, calls)
		}
		t.Logf("%s refused: %s", b.InstanceID, b.Err)
	})
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// metricLine is the exposition's line for an unlabelled metric.
func metricLine(body, name string) string {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return name + " absent"
}

package zkensemble

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// BenchmarkTLSRejoin: what zookeeper.tls costs a replacement rejoining with
// its own volume, next to plaintext, in the same run. Each mode gets a
// cloud of its own (one at a time: the other's JVMs would share the cores)
// and a serving 3-node ensemble of machines booting the image, holding
// 20 MB of znodes; then node 2, node 3 and node 1 in turn are crashed and
// replaced, each once the ensemble serves again. With TLS every node
// fetches its keystore (Secrets Manager) and truststore (Parameter Store)
// at boot, checks its certificate, and the quorum — the replacement's sync
// with the leader included — runs over TLS. Reported, medians over the
// replacements: launch to the ensemble serving again, per mode, and their
// ratio; and the TLS boots' secrets stage (fetch and check).
func BenchmarkTLSRejoin(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		b.Skip("needs systemd-nspawn (Debian systemd-container)")
	}
	rootfs := benchImage(b)
	var plain, secure []rejoinTimes
	for range b.N {
		plain = append(plain, measureRejoins(b, rootfs, false)...)
		secure = append(secure, measureRejoins(b, rootfs, true)...)
	}
	for _, t := range plain {
		b.Logf("plain: node %d serving %s after launch (firstboot %s)", t.node, t.serving, t.firstboot)
	}
	for _, t := range secure {
		b.Logf("tls:   node %d serving %s after launch (firstboot %s, secrets stage %s)", t.node, t.serving, t.firstboot, t.secrets)
	}
	serving := func(t rejoinTimes) time.Duration { return t.serving }
	ps, ts := median(plain, serving), median(secure, serving)
	b.ReportMetric(ts.Seconds(), "tls_rejoin_s")
	b.ReportMetric(ps.Seconds(), "plain_rejoin_s")
	b.ReportMetric(float64(ts)/float64(ps), "tls/plain_rejoin")
	b.ReportMetric(median(secure, func(t rejoinTimes) time.Duration { return t.secrets }).Seconds()*1e3, "tls_secrets_stage_ms")
	b.ReportMetric(0, "ns/op")
}

// rejoinTimes are one replacement's figures.
type rejoinTimes struct {
	node      int
	serving   time.Duration // launch to the whole ensemble serving again
	firstboot time.Duration // the replacement's run, as its report says
	secrets   time.Duration // its secrets stage (TLS only)
}

// measureRejoins runs one mode on a cloud of its own.
func measureRejoins(b *testing.B, rootfs string, withTLS bool) []rejoinTimes {
	b.Helper()
	ctx := b.Context()
	cloud, err := localcloud.New(ctx, localcloud.Options{RootFS: rootfs, Boot: localcloud.BootSystemd,
		EC2: ec2sim.Options{Latency: benchLatency}, Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	defer cloud.Close()
	e, err := New(cloud, Options{Name: "it", Nodes: nodes("us-east-1a", "us-east-1b", "us-east-1c"), VolumeGiB: 4, LogDir: b.TempDir(), Log: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	// The config as the image carries it: plaintext, or with TLS.
	files := map[string][]byte{}
	mode := "plain"
	var r *tlsRig
	if withTLS {
		mode = "tls"
		r = newTLSRig(b, e)
		cfg := r.userData(b)
		if _, _, err := ensemble.Parse("ensemble.yaml", cfg); err != nil {
			b.Fatal(err)
		}
		files[ensemble.DefaultPath] = cfg
	}
	var insts []*localcloud.Instance
	fail := func(format string, args ...any) {
		b.Helper()
		for _, inst := range insts {
			out, err := inst.Journal(b.Context(), "-o", "short-monotonic")
			b.Logf("journal of %s (%s):\n%s(err: %v)", inst.ID, inst.PrivateIP, out, err)
		}
		b.Fatalf(mode+": "+format, args...)
	}
	boot := func(az string) *Node {
		n, err := e.bootMachine(ctx, az, files)
		if err != nil {
			fail("boot in %s: %v", az, err)
		}
		insts = append(insts, n.Instance)
		return n
	}
	for _, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		boot(az)
	}
	if _, err := e.WaitServing(ctx, 2*time.Minute, 1, 2, 3); err != nil {
		fail("%v", err)
	}
	// With TLS the plaintext client port is closed: write over TLS.
	var c *zk.Conn
	if withTLS {
		c, err = e.tlsConn(e.Node(1).IP, r.client(b))
	} else {
		c, err = e.Client(e.Node(1).IP)
	}
	if err != nil {
		fail("%v", err)
	}
	payload := bytes.Repeat([]byte("z"), 500<<10)
	for i := range 40 { // 20 MB
		if _, err := c.Create(fmt.Sprintf("/blob%03d", i), payload, 0, zk.WorldACL(zk.PermAll)); err != nil {
			fail("write: %v", err)
		}
	}
	c.Close()
	var times []rejoinTimes
	for _, id := range []int{2, 3, 1} {
		old := e.Node(id)
		if err := e.Terminate(ctx, old); err != nil {
			fail("crash node %d: %v", id, err)
		}
		launched := time.Now()
		repl := boot(old.Instance.AZ)
		if _, err := e.WaitServing(ctx, 2*time.Minute, 1, 2, 3); err != nil {
			fail("replacement of node %d: %v", id, err)
		}
		t := rejoinTimes{node: id, serving: time.Since(launched), firstboot: repl.Report.Duration}
		if repl.ID != id || repl.Report.Claim.Volume != old.Report.Claim.Volume {
			fail("replacement became node %d with %s, want node %d with its own volume %s", repl.ID, repl.Report.Claim.Volume, id, old.Report.Claim.Volume)
		}
		for _, st := range repl.Report.Stages {
			if st.Stage == "secrets" {
				t.secrets = time.Duration(st.MS * float64(time.Millisecond))
			}
		}
		if withTLS && t.secrets == 0 {
			fail("replacement of node %d: no secrets stage in its report %+v", id, repl.Report.Stages)
		}
		times = append(times, t)
	}
	return times
}

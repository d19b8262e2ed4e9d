package zkensemble

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/go-zookeeper/zk"

	"github.com/zkaas/zkaas/internal/testca"
	"github.com/zkaas/zkaas/internal/zktls"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	opszk "github.com/zkaas/zkaas/ops/zk"
)

// tlsRig is a test CA and the nodes' TLS material in the local cloud's
// Secrets Manager (keystores, one per node) and Parameter Store (the
// truststore, a SecureString), put there through the real SDK clients as
// an operator would.
type tlsRig struct {
	e   *Ensemble
	ca  *testca.CA
	sm  *secretsmanager.Client
	ssm *ssm.Client
}

// The references the TLS config names.
const (
	tlsKeystore   = "zkaas/it/node-{node}/keystore"
	tlsTruststore = "/zkaas/it/truststore"
)

func newTLSRig(t testing.TB, e *Ensemble) *tlsRig {
	t.Helper()
	r := &tlsRig{e: e, ca: testca.New(t, "zkaas test CA", time.Now()),
		sm: e.Cloud.SecretsManagerClient("operator"), ssm: e.Cloud.SSMClient("operator")}
	// The harness's srvr (Modes, WaitServing) asks the secure ports: the
	// configs here close the plaintext one.
	e.ProbeTLS = r.client(t)
	if _, err := r.ssm.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(tlsTruststore),
		Value: aws.String(string(r.ca.PEM())), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	for _, n := range e.opts.Nodes {
		ks := r.ca.Issue(t, testca.Cert{CN: fmt.Sprintf("zk-%d", n.ID), IPs: []netip.Addr{n.IP}}).KeyStore()
		if _, err := r.sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(r.keystore(n.ID)),
			SecretString: aws.String(string(ks))}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *tlsRig) keystore(id int) string {
	return strings.ReplaceAll(tlsKeystore, "{node}", fmt.Sprint(id))
}

// rotate makes a new AWSCURRENT keystore for node id, its certificate
// carrying ips.
func (r *tlsRig) rotate(t testing.TB, id int, ips ...netip.Addr) {
	t.Helper()
	ks := r.ca.Issue(t, testca.Cert{CN: fmt.Sprintf("zk-%d", id), IPs: ips}).KeyStore()
	if _, err := r.sm.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(r.keystore(id)),
		SecretString: aws.String(string(ks))}); err != nil {
		t.Fatal(err)
	}
}

// userData is the ensemble's config with zookeeper.tls on for clients and
// the quorum; client_plaintext off, so no plaintext client port.
func (r *tlsRig) userData(t testing.TB) []byte {
	t.Helper()
	return withZooKeeper(t, r.e, "", fmt.Sprintf(`tls: {client: true, quorum: true, keystore: {secretsmanager: "%s"}, truststore: {ssm: %s}}`, tlsKeystore, tlsTruststore))
}

// client is a TLS configuration for a ZooKeeper client: the CA as roots
// and a client certificate it issued, as Kafka's zookeeper.ssl.* would set.
func (r *tlsRig) client(t testing.TB) *tls.Config {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(r.ca.Cert)
	c := r.ca.Issue(t, testca.Cert{CN: "kafka", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}}}
}

// tlsConn is a go-zookeeper connection to the node at ip's secure client
// port, through a TLS dialer from inside the VPC.
func (e *Ensemble) tlsConn(ip string, conf *tls.Config) (*zk.Conn, error) {
	dial := zktls.Dialer(conf, e.Cloud.DialContext) // the server's IP SAN is checked
	dialer := func(network, address string, timeout time.Duration) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return dial(ctx, network, address)
	}
	conn, _, err := zk.Connect([]string{net.JoinHostPort(ip, "2281")}, 10*time.Second, zk.WithDialer(dialer), zk.WithLogger(quiet{}))
	return conn, err
}

// tlsSrvr sends srvr over TLS to the node at ip's secure port: the answer,
// or the error of the handshake or of the read (a server refusing the
// client's certificate sends an alert: in the handshake with TLS 1.2,
// ZooKeeper 3.8's default, after it with TLS 1.3).
func (e *Ensemble) tlsSrvr(ctx context.Context, ip string, conf *tls.Config) (string, error) {
	raw, err := e.Cloud.DialContext(ctx, "tcp", net.JoinHostPort(ip, "2281"))
	if err != nil {
		return "", err
	}
	c := conf.Clone()
	c.ServerName = ip
	tc := tls.Client(raw, c)
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.HandshakeContext(ctx); err != nil {
		return "", err
	}
	if _, err := tc.Write([]byte("srvr")); err != nil {
		return "", err
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := tc.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			if b.Len() > 0 {
				return b.String(), nil
			}
			return "", err
		}
	}
}

// TestTLSQuorum (machines): with zookeeper.tls on for clients and the
// quorum in the launch template's user data, and every node's certificate
// issued by a CA made here and stored in the simulated Secrets Manager
// (keystores, one per node) and Parameter Store (the truststore):
//
//	(a) the groups' instances fetch their material at boot and form a
//	    quorum over TLS only (sslQuorum, no port unification);
//	(a') the plaintext client port is closed (client_plaintext off): zoo.cfg
//	    has no clientPort, the port refuses connections, and zkaas's own
//	    probes speak TLS to the secure port — each instance becomes
//	    InService through the launch hook zkaas-ready completes (its ready
//	    probe, with the node's keystore), the exporter scrapes mntr over
//	    TLS (zk_up 1), and the operator's ops/zk asks srvr with a client
//	    certificate;
//	(b) a client with the CA and a certificate it issued writes and reads
//	    through the secure client port; one without the CA, or without a
//	    certificate, or with another CA's, is refused;
//	(c) node 2's keystore rotated to a certificate for another address, the
//	    replacement of node 2 is refused before ZooKeeper starts, with one
//	    line saying why, and tells its group; the certificate fixed, the
//	    next replacement becomes node 2 and the ensemble serves again.
func TestTLSQuorum(t *testing.T) {
	const refusedHold = 5 * time.Second
	e := newEnsembleWith(t, onMachines, ec2sim.Options{}, nodes("us-east-1a", "us-east-1b", "us-east-1c"),
		Options{Deadline: 20 * time.Second, RefusedHold: refusedHold})
	r := newTLSRig(t, e)
	// A launch hook: an instance is InService only once zkaas-ready saw
	// its ZooKeeper serve, over TLS here.
	ud := append(r.userData(t), "metrics:\n  exporter: {enabled: true}\n"...)
	g := newGroups(t, e, GroupOptions{UserData: ud, Hook: true})
	ctx := t.Context()
	if _, err := g.WaitNodes(ctx, 3*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitServing(ctx, 2*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}

	t.Run("plaintext client port closed", func(t *testing.T) {
		for _, id := range []int{1, 2, 3} {
			n := e.Node(id)
			cfg, err := n.ReadFile("/etc/zkaas/zookeeper/zoo.cfg")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(cfg), "\nclientPort=") || strings.Contains(string(cfg), ":2181") {
				t.Errorf("node %d: zoo.cfg names a plaintext client port:\n%s", id, cfg)
			}
			c, err := e.Cloud.DialContext(ctx, "tcp", net.JoinHostPort(n.IP, "2181"))
			if err == nil {
				c.Close()
				t.Errorf("node %d: %s:2181 accepts connections", id, n.IP)
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("node %d: %s:2181: %v, want connection refused", id, n.IP, err)
			}
		}
	})

	t.Run("probes over TLS", func(t *testing.T) {
		// The ready probe: the launch hook completed (CONTINUE) by
		// zkaas-ready, which asked srvr over TLS with the node's keystore.
		if err := g.WaitInService(ctx, 2*time.Minute, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: &http.Transport{DialContext: e.Cloud.DialContext}, Timeout: 5 * time.Second}
		var addrs []netip.AddrPort
		for _, id := range []int{1, 2, 3} {
			n := e.Node(id)
			addrs = append(addrs, netip.AddrPortFrom(netip.MustParseAddr(n.IP), 2281))
			if s, err := n.Instance.WaitUnit(ctx, "zkaas-ready.service", "active", "failed"); err != nil || s != "active" {
				j, _ := n.Instance.Journal(ctx, "-u", "zkaas-ready.service", "-o", "cat")
				t.Errorf("node %d: zkaas-ready.service %s, %v:\n%s", id, s, err, j)
			}
			// The exporter (User=zookeeper, reading the keystore) scrapes
			// mntr over TLS.
			if s, err := n.Instance.WaitUnit(ctx, "zkaas-exporter.service", "active", "failed"); err != nil || s != "active" {
				j, _ := n.Instance.Journal(ctx, "-u", "zkaas-exporter.service", "-o", "cat")
				t.Fatalf("node %d: zkaas-exporter.service %s, %v:\n%s", id, s, err, j)
			}
			var body string
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
				b, err := get(ctx, client, fmt.Sprintf("http://%s:9141/metrics", n.IP))
				body = b
				if err == nil && strings.Contains(b, "\nzk_up 1\n") && (strings.Contains(b, `zk_server_state{state="leader"} 1`) || strings.Contains(b, `zk_server_state{state="follower"} 1`)) {
					break
				}
				if time.Now().After(deadline) {
					j, _ := n.Instance.Journal(ctx, "-u", "zkaas-exporter.service", "-o", "cat")
					t.Fatalf("node %d: the exporter shows no serving ZooKeeper after 30s (%v):\n%s\njournal:\n%s", id, err, b, lastLines(string(j), 20))
				}
			}
			t.Logf("node %d: exporter %s", id, metricLine(body, "zk_up"))
		}
		// The operator's probe (zkaas status, doctor, roll): srvr over TLS
		// with a client certificate of the CA; plaintext srvr to the
		// secure port gets nothing.
		stats, errs := opszk.Client{Timeout: 2 * time.Second, Dial: e.Cloud.DialContext, TLS: r.client(t)}.All(ctx, addrs)
		serving := 0
		for _, st := range stats {
			if st.Serving() {
				serving++
			}
		}
		if serving != 3 || len(errs) > 0 {
			t.Errorf("ops/zk srvr over TLS: %d serving (%v), errors %v", serving, stats, errs)
		}
		if _, err := (opszk.Client{Timeout: 2 * time.Second, Dial: e.Cloud.DialContext}).Srvr(ctx, addrs[0]); err == nil {
			t.Errorf("plaintext srvr to %s answered", addrs[0])
		}
	})

	t.Run("quorum over TLS", func(t *testing.T) {
		for _, id := range []int{1, 2, 3} {
			n := e.Node(id)
			want := []string{"secretsmanager:" + r.keystore(id), "ssm:" + tlsTruststore}
			if got := n.Report.Secrets; strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("node %d: run report lists secrets %q, want %q", id, got, want)
			}
			cfg, err := n.ReadFile("/etc/zkaas/zookeeper/zoo.cfg")
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range []string{"sslQuorum=true", "secureClientPort=2281", "secureClientPortAddress=" + n.IP, "ssl.quorum.hostnameVerification=true"} {
				if !strings.Contains(string(cfg), "\n"+line+"\n") {
					t.Errorf("node %d: zoo.cfg lacks %s", id, line)
				}
			}
			// The stores: zookeeper's alone, on the machine's tmpfs.
			uid := zookeeperUID(t, n)
			for _, f := range []string{"keystore.pem", "truststore.pem"} {
				p := fmt.Sprintf("/proc/%d/root/run/zkaas/zookeeper/%s", n.Instance.PID1(), f)
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatalf("node %d: %v", id, err)
				}
				if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o600 || int(st.Uid) != uid {
					t.Errorf("node %d: %s is %v uid %d, want 0600 zookeeper (%d)", id, f, fi.Mode().Perm(), st.Uid, uid)
				}
			}
			j, _ := n.Instance.Journal(ctx, "-u", zookeeperUnit, "-o", "cat")
			if !strings.Contains(string(j), "Creating TLS-only quorum server socket") {
				t.Errorf("node %d: ZooKeeper did not open a TLS-only quorum socket; journal:\n%s", id, lastLines(string(j), 30))
			}
		}
	})

	t.Run("clients", func(t *testing.T) {
		good := r.client(t)
		ip1, ip3 := e.Node(1).IP, e.Node(3).IP
		c, err := e.tlsConn(ip1, good)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Create("/tls", []byte("over TLS"), 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatalf("create through node 1's secure port: %v", err)
		}
		c3, err := e.tlsConn(ip3, good)
		if err != nil {
			t.Fatal(err)
		}
		defer c3.Close()
		if _, err := c3.Sync("/tls"); err != nil {
			t.Fatal(err)
		}
		if v, _, err := c3.Get("/tls"); err != nil || string(v) != "over TLS" {
			t.Fatalf("read through node 3's secure port: %q, %v", v, err)
		}
		noCA := good.Clone()
		noCA.RootCAs = nil
		noCert := good.Clone()
		noCert.Certificates = nil
		strangerCA := testca.New(t, "another CA", time.Now())
		sc := strangerCA.Issue(t, testca.Cert{CN: "intruder", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		stranger := good.Clone()
		stranger.Certificates = []tls.Certificate{{Certificate: [][]byte{sc.Cert.Raw}, PrivateKey: sc.Key}}
		for _, tc := range []struct {
			name    string
			conf    *tls.Config
			wantErr string
		}{
			{"with the CA and its certificate", good, ""},
			{"without the CA", noCA, "certificate signed by unknown authority"},
			// The server's refusal: an alert during the TLS 1.2 handshake
			// (handshake_failure from the image's JDK, bad_certificate
			// from others).
			{"without a client certificate", noCert, "remote error: tls: "},
			{"with another CA's certificate", stranger, "remote error: tls: "},
		} {
			ans, err := e.tlsSrvr(ctx, ip1, tc.conf)
			switch {
			case tc.wantErr == "" && (err != nil || !strings.Contains(ans, "Mode: ")):
				t.Errorf("%s: srvr over TLS %q, %v; want an answer", tc.name, ans, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("%s: srvr over TLS %q, %v; want %q", tc.name, ans, err, tc.wantErr)
			default:
				t.Logf("%s: %.30q %v", tc.name, ans, err)
			}
		}
	})

	t.Run("certificate not covering the node's address", func(t *testing.T) {
		group := g.GroupOf(2)
		old := e.Node(2)
		r.rotate(t, 2, netip.MustParseAddr("10.0.9.9"))
		if err := e.Terminate(ctx, old); err != nil {
			t.Fatal(err)
		}
		failed := waitFailedBoot(t, g, group, 3*time.Minute, old.Instance.ID)
		var fe *FirstbootError
		if !errors.As(failed.Err, &fe) {
			t.Fatalf("%s: %v, want a firstboot failure", failed.InstanceID, failed.Err)
		}
		want := "secrets: zookeeper.tls: secretsmanager:" + r.keystore(2) + " with ssm:" + tlsTruststore + ": keystore: certificate \"CN=zk-2\""
		if !strings.Contains(fe.Line, want) || !strings.Contains(fe.Line, "does not cover the node's address "+old.IP+" (IP SANs: 10.0.9.9;") {
			t.Errorf("%s: firstboot's last line %q, want the refusal (%s ... does not cover %s)", failed.InstanceID, fe.Line, want, old.IP)
		}
		t.Logf("%s refused: %s", failed.InstanceID, fe.Line)
		// ZooKeeper never ran on it (its journal is kept after the
		// instance is gone).
		if j, err := fe.Instance.Journal(ctx, "-u", zookeeperUnit, "-o", "cat"); err != nil {
			t.Errorf("%s: journal of %s: %v", failed.InstanceID, zookeeperUnit, err)
		} else if strings.Contains(string(j), "org.apache.zookeeper") {
			t.Errorf("%s: ZooKeeper ran:\n%s", failed.InstanceID, lastLines(string(j), 20))
		}
		// The group is told (after the refusal hold).
		wantGroupTold(t, g, group, failed.InstanceID, time.Minute+refusedHold)

		// Fixed: the next replacement becomes node 2.
		r.rotate(t, 2, netip.MustParseAddr(old.IP))
		n, err := g.WaitNode(ctx, 3*time.Minute, 2, old.Instance.ID, failed.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.WaitServing(ctx, 2*time.Minute, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		t.Logf("node 2 is %s again", n.Instance.ID)
	})
}

// waitFailedBoot waits for a boot in group that failed, by an instance not
// in not, and returns it.
func waitFailedBoot(t testing.TB, g *Groups, group string, bound time.Duration, not ...string) *GroupBoot {
	t.Helper()
	for deadline := time.Now().Add(bound); ; time.Sleep(200 * time.Millisecond) {
		for _, b := range g.Boots() {
			if b.Group != group || slices.Contains(not, b.InstanceID) {
				continue
			}
			select {
			case <-b.Done:
				if b.Node == nil && b.Err != nil {
					return b
				}
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed boot in %s after %s (boots: %s)", group, bound, g.describe())
		}
	}
}

// wantGroupTold waits until group's account of the failed instance is the
// truth: its launch abandoned (ABANDON) or the instance terminated as
// unhealthy (SetInstanceHealth).
func wantGroupTold(t testing.TB, g *Groups, group, instance string, bound time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(bound); ; time.Sleep(time.Second) {
		launch := waitActivity(t, g, group, "Launching a new EC2 instance: "+instance, bound)
		term := activity(t, g, group, "Terminating EC2 instance: "+instance)
		abandoned := launch.StatusCode == astypes.ScalingActivityStatusCodeCancelled && strings.Contains(aws.ToString(launch.StatusMessage), "abandoned")
		unhealthy := term != nil && strings.Contains(aws.ToString(term.Cause), "in response to a user health-check")
		if abandoned || unhealthy {
			t.Logf("group %s: launch of %s %s (%s); terminated as unhealthy: %v", group, instance, launch.StatusCode, aws.ToString(launch.StatusMessage), unhealthy)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: launch of %s %s (%s), termination %+v: want the launch abandoned or the instance terminated as unhealthy",
				group, instance, launch.StatusCode, aws.ToString(launch.StatusMessage), term)
		}
	}
}

// zookeeperUID is the zookeeper user's uid in the node's image.
func zookeeperUID(t *testing.T, n *Node) int {
	t.Helper()
	passwd, err := n.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(passwd), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 3 && f[0] == "zookeeper" {
			var uid int
			fmt.Sscan(f[2], &uid)
			return uid
		}
	}
	t.Fatal("no zookeeper user in the image")
	return -1
}

package zookeeper

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/internal/realzk"
	"github.com/zkaas/zkaas/internal/testca"
	opszk "github.com/zkaas/zkaas/ops/zk"
)

// TestRealZooKeeperTLS runs three real ZooKeeper 3.8 servers from rendered
// TLS configs (client and quorum, the plaintext client port closed) on
// loopback addresses of one fresh network namespace: the quorum forms over
// TLS, zkaas's probes (a booting node's quorum probe with its keystore,
// the ready probe from the files the boot wrote, the operator's ops/zk
// with certificate files) ask the secure ports over TLS, the plaintext
// port refuses connections, and the secure client port answers a TLS
// client holding a certificate of the CA, and no other.
//
// One namespace means every server's outgoing connections leave from
// 127.0.0.1 whatever its own address, so each certificate carries all
// three addresses here; that a certificate must carry its own node's
// address (peers check it) is the local cloud's TLS scenario, where each
// node has its own network and address.
func TestRealZooKeeperTLS(t *testing.T) {
	requireRoot(t)
	java := realzk.Java(t, realzk.TLSClasspath)
	ns := realzk.NewNS(t)
	ips := []netip.Addr{realzk.Loopback(1), realzk.Loopback(2), realzk.Loopback(3)}
	cfg := realzk.Config("zk-tls", ips...)
	cfg.ZooKeeper.TLS = ensemble.TLS{Client: true, Quorum: true, SecureClientPort: 42281,
		Keystore: ensemble.Secret{File: "/unused/{node}"}, Truststore: ensemble.Secret{File: "/unused"}}

	now := time.Now()
	ca := testca.New(t, "zkaas test CA", now)
	zk := realOwner()
	dir := realzk.Dir(t)
	var logs []string
	var keyStores [][]byte
	var layouts []Layout
	var mu sync.Mutex
	for _, n := range cfg.Nodes {
		layout := realLayout(t, filepath.Join(dir, fmt.Sprint("node", n.ID)))
		ks := ca.Issue(t, testca.Cert{CN: fmt.Sprint("zk-", n.ID), IPs: ips}).KeyStore()
		if err := CheckKeyStore(ks, ca.PEM(), KeyStoreCheck{IP: n.IP, Now: now, Quorum: true, Probes: true}); err != nil {
			t.Fatal(err)
		}
		keyStores, layouts = append(keyStores, ks), append(layouts, layout)
		// A new ensemble: every node trusts its empty tree once.
		files := writeNode(t, cfg, n.ID, layout, Material{KeyStore: ks, TrustStore: ca.PEM()}, zk, true)
		logPath := filepath.Join(dir, fmt.Sprintf("zk%d.log", n.ID))
		logs = append(logs, logPath)
		if _, err := realzk.Start(t, ns, realzk.Server{Java: java, Classpath: realzk.TLSClasspath,
			JVMFlags: strings.Fields(realzk.EnvFile(t, files.JavaEnv)["SERVER_JVMFLAGS"]),
			ZooCfg:   layout.ZooCfgPath(), Dir: layout.ConfDir, UID: zk.UID, GID: zk.GID, Log: logPath}); err != nil {
			t.Fatalf("start ZooKeeper %d: %v", n.ID, err)
		}
	}
	dump := func() string {
		mu.Lock()
		defer mu.Unlock()
		var b strings.Builder
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			fmt.Fprintf(&b, "==> %s <==\n%s\n", l, realzk.Tail(string(data), 25))
		}
		return b.String()
	}

	// The quorum forms: sslQuorum=true leaves no plaintext quorum path.
	// The plaintext client port is closed (client_plaintext off), so the
	// probe a booting node runs asks the secure ports over TLS with that
	// node's own keystore (ProbeDial), as Host.Prepare does.
	secureAddrs := make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		secureAddrs[i] = netip.AddrPortFrom(ip, uint16(cfg.ZooKeeper.ProbePort()))
	}
	dial, err := ProbeDial(cfg.ZooKeeper.TLS, Material{KeyStore: keyStores[0], TrustStore: ca.PEM()}, ns.Dial)
	if err != nil {
		t.Fatal(err)
	}
	prober := Prober{PerPeerTimeout: time.Second, Attempts: 1, Dial: dial}
	var q Quorum
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		q = prober.Probe(t.Context(), secureAddrs)
		modes := map[string]int{}
		for _, m := range q.Modes {
			modes[m]++
		}
		if modes[ModeLeader] == 1 && modes[ModeFollower] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS quorum after 60s (probed over TLS: %s)\n%s", q, dump())
		}
	}
	t.Logf("quorum probe over TLS: %s", q)

	// zoo.cfg has no clientPort and the server lines no client address:
	// nothing listens on the plaintext port.
	for _, ip := range ips {
		plain := netip.AddrPortFrom(ip, uint16(cfg.ZooKeeper.ClientPort))
		c, err := ns.Dial(t.Context(), "tcp", plain.String())
		if err == nil {
			c.Close()
			t.Fatalf("plaintext client port %s accepts connections with client_plaintext off\n%s", plain, dump())
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("plaintext client port %s: %v, want connection refused", plain, err)
		}
	}

	// zkaas-firstboot ready reads the material from the files the boot
	// wrote (node 2's secret dir) and asks its own secure port.
	dial2, err := ProbeDialFiles(cfg.ZooKeeper.TLS, layouts[1].SecretDir, ns.Dial)
	if err != nil {
		t.Fatal(err)
	}
	if q := (Prober{PerPeerTimeout: time.Second, Attempts: 1, Dial: dial2}).Probe(t.Context(), secureAddrs[1:2]); q.Serving != 1 {
		t.Errorf("ready probe of node 2 over TLS from its secret dir: %s", q)
	}
	// A probe without the TLS material cannot ask the secure port.
	if _, err := ProbeDialFiles(cfg.ZooKeeper.TLS, filepath.Join(dir, "nowhere"), ns.Dial); err == nil || !strings.Contains(err.Error(), "serves clients over TLS only") {
		t.Errorf("probe without the secret dir: %v", err)
	}
	// The operator's probe (ops/zk, zkaas status/doctor/roll): srvr and
	// mntr over TLS with a client certificate of the CA from files.
	op := ca.Issue(t, testca.Cert{CN: "operator", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	opDir := t.TempDir()
	for name, data := range map[string][]byte{"ca.pem": ca.PEM(), "cert.pem": op.CertPEM(), "key.pem": op.KeyPEM()} {
		if err := os.WriteFile(filepath.Join(opDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opTLS, err := opszk.TLSFiles(filepath.Join(opDir, "ca.pem"), filepath.Join(opDir, "cert.pem"), filepath.Join(opDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	zc := opszk.Client{Timeout: 2 * time.Second, Dial: ns.Dial, TLS: opTLS}
	stats, errs := zc.All(t.Context(), secureAddrs)
	if len(stats) != 3 || len(errs) != 0 {
		t.Errorf("ops/zk srvr over TLS: %v, errors %v", stats, errs)
	}
	if ans, err := zc.Word(t.Context(), secureAddrs[0], "mntr"); err != nil || !strings.Contains(ans, "zk_server_state") {
		t.Errorf("ops/zk mntr over TLS: %.80q, %v", ans, err)
	}
	if _, err := (opszk.Client{Timeout: 2 * time.Second, Dial: ns.Dial}).Srvr(t.Context(), secureAddrs[0]); err == nil {
		t.Errorf("plaintext srvr to the secure port answered")
	}

	// The secure client port, over TLS: srvr answers a client with a
	// certificate of the CA; others fail the handshake.
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := ca.Issue(t, testca.Cert{CN: "client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	clientCert := tls.Certificate{Certificate: [][]byte{client.Cert.Raw}, PrivateKey: client.Key, Leaf: client.Cert}
	stranger := testca.New(t, "another CA", now)
	strangerClient := stranger.Issue(t, testca.Cert{CN: "intruder", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	strangerCert := tls.Certificate{Certificate: [][]byte{strangerClient.Cert.Raw}, PrivateKey: strangerClient.Key}
	secure := netip.AddrPortFrom(ips[1], uint16(cfg.ZooKeeper.TLS.SecureClientPort))
	srvr := func(conf *tls.Config) (string, error) {
		raw, err := ns.Dial(t.Context(), "tcp", secure.String())
		if err != nil {
			return "", err
		}
		c := tls.Client(raw, conf)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.Handshake(); err != nil {
			return "", err
		}
		if _, err := c.Write([]byte("srvr")); err != nil {
			return "", err
		}
		b, err := io.ReadAll(c)
		return string(b), err
	}
	name := secure.Addr().String() // the server's certificate is checked against it
	for _, tc := range []struct {
		name    string
		conf    *tls.Config
		ok      bool
		wantErr string // in the client's error, when not ok
	}{
		{"client of the CA", &tls.Config{ServerName: name, RootCAs: roots, Certificates: []tls.Certificate{clientCert}}, true, ""},
		// The server refuses with an alert during the handshake
		// (bad_certificate or handshake_failure, by JDK).
		{"no client certificate (clientAuth=need)", &tls.Config{ServerName: name, RootCAs: roots}, false, "remote error: tls: "},
		{"client certificate of another CA", &tls.Config{ServerName: name, RootCAs: roots, Certificates: []tls.Certificate{strangerCert}}, false, "remote error: tls: "},
		{"client without the CA", &tls.Config{ServerName: name, Certificates: []tls.Certificate{clientCert}}, false, "certificate signed by unknown authority"},
		{"server certificate checked against another address", &tls.Config{ServerName: "127.0.0.9", RootCAs: roots, Certificates: []tls.Certificate{clientCert}}, false, "certificate is valid for 127.0.0.1, 127.0.0.2, 127.0.0.3, not 127.0.0.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans, err := srvr(tc.conf)
			ok := err == nil && strings.Contains(ans, "Mode: ")
			if ok != tc.ok || (tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr))) {
				t.Fatalf("srvr over TLS: %q, %v; want success %v %s\n%s", ans, err, tc.ok, tc.wantErr, dump())
			}
			t.Logf("srvr over TLS: %.40q, %v", ans, err)
		})
	}
}

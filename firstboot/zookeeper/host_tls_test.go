package zookeeper

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/internal/testca"
)

// TestHostProbesOverTLS: a replacement with a fresh volume in an ensemble
// whose volumes are long initialized must find a quorum before it starts;
// with the plaintext client port closed, Host.Prepare's probe asks the
// peers' secure client ports over TLS, presenting the node's own keystore
// and verifying each peer's certificate against the peer's IP. Peers here
// are Go TLS servers answering srvr as ZooKeeper does, demanding a client
// certificate of the CA (ZooKeeper's ssl.clientAuth=need); the dialer maps
// the nodes' addresses onto them.
func TestHostProbesOverTLS(t *testing.T) {
	now := time.Now()
	ca := testca.New(t, "zkaas test CA", now)
	cfg := tlsEnsemble(ensemble.TLS{Client: true})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	type peer struct {
		addr   string // where it really listens
		mode   string
		sawCN  string
		served int
	}
	var mu sync.Mutex
	peers := map[netip.AddrPort]*peer{}
	for _, n := range cfg.Nodes[1:] {
		issued := ca.Issue(t, testca.Cert{CN: fmt.Sprint("zk-", n.ID), IPs: []netip.Addr{n.IP}})
		cert := tls.Certificate{Certificate: [][]byte{issued.Cert.Raw}, PrivateKey: issued.Key}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: roots, ClientAuth: tls.RequireAndVerifyClientCert})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		p := &peer{addr: ln.Addr().String(), mode: map[int]string{2: "leader", 3: "follower"}[n.ID]}
		peers[netip.AddrPortFrom(n.IP, uint16(cfg.ZooKeeper.TLS.SecureClientPort))] = p
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					tc := c.(*tls.Conn)
					_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
					if tc.Handshake() != nil {
						return
					}
					buf := make([]byte, 4)
					if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "srvr" {
						return
					}
					mu.Lock()
					p.sawCN, p.served = tc.ConnectionState().PeerCertificates[0].Subject.CommonName, p.served+1
					mu.Unlock()
					fmt.Fprintf(tc, "Zookeeper version: 3.8.0\nMode: %s\nNode count: 5\n", p.mode)
				}()
			}
		}()
	}
	dialled := map[string]bool{}
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		mu.Lock()
		dialled[address] = true
		mu.Unlock()
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return nil, err
		}
		p, ok := peers[ap]
		if !ok {
			return nil, fmt.Errorf("dial %s: connection refused", address)
		}
		return (&net.Dialer{}).DialContext(ctx, network, p.addr)
	}

	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	layout := DefaultLayout(filepath.Join(dir, "mnt"))
	layout.ConfDir, layout.SecretDir = filepath.Join(dir, "conf"), filepath.Join(dir, "secret")
	if err := os.MkdirAll(filepath.Join(dir, "mnt"), 0o755); err != nil {
		t.Fatal(err)
	}
	long := now.Add(-30 * 24 * time.Hour)
	h := &Host{
		Config: cfg, Layout: layout, User: me.Username, Dial: dial,
		PeerVolumes: func(context.Context, int) ([]PeerVolume, error) {
			return []PeerVolume{{NodeID: 2, VolumeID: "vol-2", InitializedAt: long}, {NodeID: 3, VolumeID: "vol-3", InitializedAt: long}}, nil
		},
		Now: func() time.Time { return now },
	}
	self := cfg.Nodes[0]
	ks := ca.Issue(t, testca.Cert{CN: "zk-1", IPs: []netip.Addr{self.IP}}).KeyStore()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res, err := h.Prepare(ctx, Node{Self: PeerVolume{NodeID: 1, VolumeID: "vol-1", InitializedAt: now}, IP: self.IP, FormattedNow: true,
		Material: Material{KeyStore: ks, TrustStore: ca.PEM()}})
	if err != nil {
		t.Fatalf("Prepare: %v (dialled %v)", err, dialled)
	}
	if res.Initialize {
		t.Errorf("an empty tree trusted in a long-initialized ensemble: %+v", res)
	}
	t.Logf("decision: %s", res.Reason)
	mu.Lock()
	defer mu.Unlock()
	for ap, p := range peers {
		if p.served == 0 || p.sawCN != "zk-1" {
			t.Errorf("peer %s: %d srvr over TLS, client certificate %q; want node 1's (zk-1)", ap, p.served, p.sawCN)
		}
	}
	for a := range dialled {
		if ap, _ := netip.ParseAddrPort(a); ap.Port() == uint16(cfg.ZooKeeper.ClientPort) {
			t.Errorf("the probe dialled the plaintext client port %s", a)
		}
	}

	// A keystore the probe cannot use is an error before any probe.
	h2 := *h
	if _, err := h2.Prepare(ctx, Node{Self: PeerVolume{NodeID: 1, VolumeID: "vol-1", InitializedAt: now}, IP: self.IP, FormattedNow: true,
		Material: Material{KeyStore: []byte("not PEM"), TrustStore: ca.PEM()}}); err == nil || !strings.Contains(err.Error(), "zookeeper.tls: the probes' client certificate") {
		t.Errorf("Prepare with an unusable keystore: %v", err)
	}
}

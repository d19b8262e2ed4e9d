package zookeeper

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/internal/golden"
	"github.com/zkaas/zkaas/internal/testca"

	"github.com/zkaas/zkaas/ensemble"
)

func tlsEnsemble(t ensemble.TLS) ensemble.Config {
	cfg := testEnsemble(3)
	t.SecureClientPort = ensemble.DefaultSecureClientPort
	t.Keystore = ensemble.Secret{SecretsManager: "zk/node-{node}/keystore"}
	t.Truststore = ensemble.Secret{SSM: "/zk/truststore"}
	cfg.ZooKeeper.TLS = t
	return cfg
}

// TestRenderTLSGolden: zoo.cfg for each way of turning TLS on, and the
// keystore and truststore as private files of the secret dir.
func TestRenderTLSGolden(t *testing.T) {
	layout := DefaultLayout("/var/lib/zookeeper")
	mat := Material{KeyStore: []byte("KEYSTORE PEM"), TrustStore: []byte("TRUSTSTORE PEM")}
	for _, tc := range []struct {
		name string
		tls  ensemble.TLS
	}{
		{"tls-client-quorum", ensemble.TLS{Client: true, Quorum: true}},
		// TLS only: no plaintext client port.
		{"tls-client", ensemble.TLS{Client: true}},
		{"tls-client-plaintext", ensemble.TLS{Client: true, ClientPlaintext: true}},
		{"tls-quorum", ensemble.TLS{Quorum: true}},
		// The first roll of a quorum migration to TLS: the quorum and
		// election ports accept both; then sslQuorum on.
		{"tls-migrate", ensemble.TLS{QuorumPortUnification: true}},
		{"tls-migrate-quorum-on", ensemble.TLS{Client: true, Quorum: true, QuorumPortUnification: true}},
		// Clients moving to TLS: client_port accepts both.
		{"tls-migrate-clients", ensemble.TLS{Client: true, ClientPortUnification: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tlsEnsemble(tc.tls)
			f, err := Render(cfg, 2, cfg.Nodes[1].IP, layout, mat)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			fmt.Fprintf(&got, "==> %s <==\n%s", ZooCfgName, f.ZooCfg)
			for _, p := range f.Private {
				fmt.Fprintf(&got, "==> %s (private) <==\n%s\n", p.Path(layout), p.Data)
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), got.Bytes())
		})
	}
}

func TestRenderTLSErrors(t *testing.T) {
	cfg := tlsEnsemble(ensemble.TLS{Client: true})
	layout := DefaultLayout("/var/lib/zookeeper")
	for _, tc := range []struct {
		name string
		mat  Material
		want string
	}{
		{"no keystore", Material{TrustStore: []byte("x")}, "render node 1: zookeeper.tls is on but no keystore was fetched"},
		{"no truststore", Material{KeyStore: []byte("x")}, "render node 1: zookeeper.tls is on but no truststore was fetched"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(cfg, 1, cfg.Nodes[0].IP, layout, tc.mat)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	// Offline (zkaas-firstboot render): placeholders render as at boot.
	if _, err := Render(cfg, 1, cfg.Nodes[0].IP, layout, PlaceholderMaterial(cfg)); err != nil {
		t.Errorf("with placeholder material: %v", err)
	}
	// TLS off: nothing of it, whatever the material.
	off := testEnsemble(3)
	f, err := Render(off, 1, off.Nodes[0].IP, layout, Material{KeyStore: []byte("x")})
	if err != nil || bytes.Contains(f.ZooCfg, []byte("ssl")) || len(f.Private) != 0 {
		t.Fatalf("tls off: %v\n%s\n%v", err, f.ZooCfg, f.Private)
	}
}

// TestWriteTLSFiles: the keystore and truststore land in the secret dir,
// 0600 and zookeeper's, the dir 0700.
func TestWriteTLSFiles(t *testing.T) {
	requireRoot(t)
	layout := secretLayout(t)
	cfg := tlsEnsemble(ensemble.TLS{Client: true, Quorum: true})
	f, err := Render(cfg, 1, cfg.Nodes[0].IP, layout, Material{KeyStore: []byte("K"), TrustStore: []byte("T")})
	if err != nil {
		t.Fatal(err)
	}
	owner := testZK
	if _, err := Write(f, owner); err != nil {
		t.Fatal(err)
	}
	assertOwned(t, layout.SecretDir, 0o700, owner)
	assertOwned(t, filepath.Join(layout.SecretDir, KeyStoreName), 0o600, owner)
	assertOwned(t, filepath.Join(layout.SecretDir, TrustStoreName), 0o600, owner)
	if b, _ := os.ReadFile(filepath.Join(layout.SecretDir, KeyStoreName)); string(b) != "K" {
		t.Errorf("keystore holds %q", b)
	}
}

// TestCheckKeyStore: every way a keystore can fail the node, with a test
// CA made here.
func TestCheckKeyStore(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ip := netip.MustParseAddr("10.0.2.10")
	ca := testca.New(t, "zkaas test CA", now)
	other := testca.New(t, "another CA", now)
	inter := ca.Intermediate(t, "zkaas test intermediate")
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := ca.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip}})
	withUsage := func(ku x509.KeyUsage, key crypto.Signer) []byte {
		return ca.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip}, KeyUsage: ku, Key: key}).KeyStore()
	}
	for _, tc := range []struct {
		name       string
		keyStore   []byte
		trustStore []byte
		quorum     bool
		probes     bool
		// want is in the error; "" means the keystore passes.
		want string
	}{
		{name: "good, quorum", keyStore: good.KeyStore(), trustStore: ca.PEM(), quorum: true},
		{name: "good RSA key", keyStore: ca.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip}, Key: rsaKey}).KeyStore(), trustStore: ca.PEM()},
		{name: "through an intermediate in the keystore", keyStore: inter.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip}}).KeyStore(), trustStore: ca.PEM(), quorum: true},
		{name: "truststore with two CAs", keyStore: good.KeyStore(), trustStore: append(other.PEM(), ca.PEM()...)},
		{name: "IP among several SANs", keyStore: ca.Issue(t, testca.Cert{CN: "zk", IPs: []netip.Addr{netip.MustParseAddr("10.0.1.10"), ip}, DNS: []string{"zk-2.internal"}}).KeyStore(), trustStore: ca.PEM()},
		{name: "another node's IP", keyStore: ca.Issue(t, testca.Cert{CN: "zk-1", IPs: []netip.Addr{netip.MustParseAddr("10.0.1.10")}}).KeyStore(), trustStore: ca.PEM(),
			want: `keystore: certificate "CN=zk-1" (serial `},
		{name: "hostname only", keyStore: ca.Issue(t, testca.Cert{CN: "zk-2", DNS: []string{"zk-2.internal"}}).KeyStore(), trustStore: ca.PEM(),
			want: "does not cover the node's address 10.0.2.10 (IP SANs: none;"},
		{name: "expired", keyStore: ca.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}).KeyStore(), trustStore: ca.PEM(),
			want: "expired at 2026-12-02T11:00:00Z (now 2026-12-02T12:00:00Z)"},
		{name: "not yet valid", keyStore: ca.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip}, NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)}).KeyStore(), trustStore: ca.PEM(),
			want: "is not valid until 2026-12-02T13:00:00Z"},
		{name: "another CA", keyStore: good.KeyStore(), trustStore: other.PEM(), want: "does not chain to the truststore for serverAuth: x509: certificate signed by unknown authority"},
		{name: "intermediate missing", keyStore: inter.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip}}).LeafOnly(), trustStore: ca.PEM(), want: "does not chain to the truststore"},
		{name: "server-only certificate in the quorum", keyStore: ca.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}).KeyStore(), trustStore: ca.PEM(), quorum: true,
			want: "for clientAuth (quorum peers connect as clients)"},
		{name: "server-only certificate for clients, plaintext kept", keyStore: ca.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}).KeyStore(), trustStore: ca.PEM()},
		{name: "server-only certificate, plaintext port closed", keyStore: ca.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}).KeyStore(), trustStore: ca.PEM(), probes: true,
			want: "for clientAuth (with the plaintext client port closed, zkaas's probes connect to the secure port as clients)"},
		{name: "key of another certificate", keyStore: append(good.CertPEM(), ca.Issue(t, testca.Cert{CN: "x", IPs: []netip.Addr{ip}}).KeyPEM()...), trustStore: ca.PEM(),
			want: `keystore: the private key does not match the certificate "CN=zk-2"`},
		{name: "PKCS #1 key", keyStore: append(good.CertPEM(), testca.PKCS1(t, rsaKey)...), trustStore: ca.PEM(), want: `keystore: "RSA PRIVATE KEY": ZooKeeper reads only PKCS #8 keys`},
		{name: "SEC 1 key", keyStore: append(good.CertPEM(), testca.SEC1(t, ecKey)...), trustStore: ca.PEM(), want: `"EC PRIVATE KEY": ZooKeeper reads only PKCS #8 keys`},
		{name: "Ed25519 key", keyStore: ca.Issue(t, testca.Cert{CN: "zk-2", IPs: []netip.Addr{ip}, Key: edKey}).KeyStore(), trustStore: ca.PEM(),
			want: "keystore: the private key is Ed25519: ZooKeeper's PEM loader reads only RSA, EC and DSA keys"},
		{name: "no key usage extension", keyStore: withUsage(testca.NoKeyUsage, nil), trustStore: ca.PEM(), quorum: true},
		{name: "EC key without digitalSignature", keyStore: withUsage(x509.KeyUsageKeyAgreement, nil), trustStore: ca.PEM(),
			want: "key usage lacks digitalSignature"},
		{name: "RSA key, keyEncipherment only, clients", keyStore: withUsage(x509.KeyUsageKeyEncipherment, rsaKey), trustStore: ca.PEM()},
		{name: "RSA key, keyEncipherment only, quorum", keyStore: withUsage(x509.KeyUsageKeyEncipherment, rsaKey), trustStore: ca.PEM(), quorum: true,
			want: "key usage lacks digitalSignature"},
		{name: "no key", keyStore: good.CertPEM(), trustStore: ca.PEM(), want: "keystore: no PRIVATE KEY block"},
		{name: "no certificate", keyStore: good.KeyPEM(), trustStore: ca.PEM(), want: "keystore: no CERTIFICATE block"},
		{name: "not PEM", keyStore: []byte("hello"), trustStore: ca.PEM(), want: "keystore: not PEM"},
		{name: "empty truststore", keyStore: good.KeyStore(), trustStore: []byte("\n"), want: "truststore: no CERTIFICATE block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKeyStore(tc.keyStore, tc.trustStore, KeyStoreCheck{IP: ip, Now: now, Quorum: tc.quorum, Probes: tc.probes})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err %v, want one line with %q", err, tc.want)
			}
			if !errors.Is(err, ErrKeyStore) {
				t.Errorf("%v does not wrap ErrKeyStore", err)
			}
		})
	}
}

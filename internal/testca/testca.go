// Package testca makes certificate authorities and certificates for tests
// (crypto/x509, in memory): the nodes' keystores and truststores of the TLS
// tests, unit and local-cloud alike. Test-only: no product imports it
// (internal/layout's Rig).
package testca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"
)

// CA is a certificate authority: a self-signed root, or an intermediate
// with its issuer's chain.
type CA struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	chain []*x509.Certificate // issuers above Cert, nearest first (none for a root)
	now   time.Time
}

// New makes a root CA valid from a day before now for ten years.
func New(t testing.TB, cn string, now time.Time) *CA {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: parse(t, der), Key: key, now: now}
}

// Intermediate makes a CA that ca issued.
func (ca *CA) Intermediate(t testing.TB, cn string) *CA {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: cn},
		NotBefore: ca.Cert.NotBefore, NotAfter: ca.Cert.NotAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: parse(t, der), Key: key, chain: append([]*x509.Certificate{ca.Cert}, ca.chain...), now: ca.now}
}

// PEM is the CA's certificate: a truststore.
func (ca *CA) PEM() []byte { return certPEM(ca.Cert) }

// Cert says what to issue. Zero times: valid from an hour before the CA's
// now for a year; nil Usages: serverAuth and clientAuth; nil Key: a new
// P-256 key.
type Cert struct {
	CN                  string
	IPs                 []netip.Addr
	DNS                 []string
	NotBefore, NotAfter time.Time
	Usages              []x509.ExtKeyUsage
	// KeyUsage: 0 is digitalSignature and keyEncipherment; NoKeyUsage
	// leaves the extension out.
	KeyUsage x509.KeyUsage
	Key      crypto.Signer
}

// NoKeyUsage in Cert.KeyUsage issues a certificate without the key usage
// extension (any usage allowed).
const NoKeyUsage x509.KeyUsage = -1

// Issued is a certificate, its key and the chain up to (not including) the
// root.
type Issued struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	chain []*x509.Certificate
}

// Issue signs a leaf certificate.
func (ca *CA) Issue(t testing.TB, c Cert) Issued {
	t.Helper()
	if c.Key == nil {
		c.Key = ecKey(t)
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = ca.now.Add(-time.Hour)
	}
	if c.NotAfter.IsZero() {
		c.NotAfter = ca.now.Add(365 * 24 * time.Hour)
	}
	if c.Usages == nil {
		c.Usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	switch c.KeyUsage {
	case 0:
		c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	case NoKeyUsage:
		c.KeyUsage = 0
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: c.CN},
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, DNSNames: c.DNS,
		KeyUsage: c.KeyUsage, ExtKeyUsage: c.Usages,
	}
	for _, ip := range c.IPs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, c.Key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	chain := ca.chain
	if len(ca.chain) > 0 {
		// An intermediate's leaf carries the intermediate.
		chain = append([]*x509.Certificate{ca.Cert}, ca.chain[:len(ca.chain)-1]...)
	}
	return Issued{Cert: parse(t, der), Key: c.Key, chain: chain}
}

// CertPEM is the certificate and its intermediates, leaf first.
func (i Issued) CertPEM() []byte {
	out := certPEM(i.Cert)
	for _, c := range i.chain {
		out = append(out, certPEM(c)...)
	}
	return out
}

// LeafOnly is the leaf certificate without its intermediates, and the key.
func (i Issued) LeafOnly() []byte { return append(certPEM(i.Cert), i.KeyPEM()...) }

// KeyPEM is the key as PKCS #8 ("PRIVATE KEY"), the form ZooKeeper reads.
func (i Issued) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(i.Key)
	if err != nil {
		panic(err) // only the key types this package makes
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// KeyStore is a PEM keystore as ZooKeeper reads one: the chain, then the
// key.
func (i Issued) KeyStore() []byte { return append(i.CertPEM(), i.KeyPEM()...) }

// PKCS1 is an RSA key in PKCS #1 form ("RSA PRIVATE KEY").
func PKCS1(t testing.TB, k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// SEC1 is an EC key in SEC 1 form ("EC PRIVATE KEY").
func SEC1(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func parse(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

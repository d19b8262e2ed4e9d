package zookeeper

// zookeeper.tls's part of the configuration, and the check that the node's
// certificate fits it, before ZooKeeper starts.
//
// Checked against ZooKeeper 3.8.0 (Debian's zookeeper-3.8.0.jar, read with
// javap):
//
//   - zoo.cfg keys QuorumPeerConfig does not know become "zookeeper.<key>"
//     system properties, so ssl.*, ssl.quorum.*, serverCnxnFactory,
//     client.portUnification and authProvider.* are set in zoo.cfg.
//     QuorumPeerConfig itself reads secureClientPort,
//     secureClientPortAddress, sslQuorum and portUnification.
//   - X509Util's keys are <prefix>keyStore.location, keyStore.type,
//     trustStore.location, trustStore.type, hostnameVerification, clientAuth
//     (prefix zookeeper.ssl. for ClientX509Util, zookeeper.ssl.quorum. for
//     QuorumX509Util); the store type PEM is KeyStoreFileType.PEM.
//   - PemReader reads "CERTIFICATE" blocks and a private key whose body it
//     decodes as PKCS #8 (PKCS8EncodedKeySpec): a PKCS #1 "RSA PRIVATE KEY"
//     or SEC 1 "EC PRIVATE KEY" matches its pattern but fails to load.
//   - ProviderRegistry registers only the ip and digest providers; the
//     Netty factory looks up the "x509" provider for TLS clients and closes
//     their connections with "Auth provider not found: x509" unless
//     authProvider.x509 names X509AuthenticationProvider.
//   - ZKTrustManager verifies a peer's certificate against the peer's IP
//     address first (then its reverse-DNS name); QuorumX509Util verifies
//     both ends of a quorum connection, ClientX509Util does not verify
//     clients' names. A certificate carrying the node's IP as a SAN passes
//     with hostname verification on.
//   - clientAuth defaults to need: a TLS client must present a certificate
//     the truststore's CAs issued.

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/zkaas/zkaas/ensemble"
)

// Names of the TLS files in Layout.SecretDir.
const (
	KeyStoreName   = "keystore.pem"
	TrustStoreName = "truststore.pem"
)

// Classes zoo.cfg names for TLS.
const (
	NettyFactoryClass = "org.apache.zookeeper.server.NettyServerCnxnFactory"
	X509ProviderClass = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"
)

// renderTLS is zookeeper.tls's part of the configuration.
func renderTLS(cfg ensemble.Config, node ensemble.Node, l Layout, m Material) (security, error) {
	t := cfg.ZooKeeper.TLS
	if !t.On() {
		return security{}, nil
	}
	switch {
	case len(m.KeyStore) == 0:
		return security{}, errors.New("zookeeper.tls is on but no keystore was fetched")
	case len(m.TrustStore) == 0:
		return security{}, errors.New("zookeeper.tls is on but no truststore was fetched")
	}
	ks, ts := filepath.Join(l.SecretDir, KeyStoreName), filepath.Join(l.SecretDir, TrustStoreName)
	var out security
	w := func(format string, args ...any) { out.zooCfg = append(out.zooCfg, fmt.Sprintf(format, args...)) }
	stores := func(prefix string) {
		w("%skeyStore.location=%s", prefix, ks)
		w("%skeyStore.type=PEM", prefix)
		w("%strustStore.location=%s", prefix, ts)
		w("%strustStore.type=PEM", prefix)
	}
	w("# TLS (zookeeper.tls): the stores are fetched at every boot into %s.", l.SecretDir)
	if t.ClientTLS() {
		// Client TLS is Netty's: the NIO factory has no TLS.
		w("serverCnxnFactory=%s", NettyFactoryClass)
		if t.Client {
			// On the ENI's address only, as the plaintext port.
			w("secureClientPort=%d", t.SecureClientPort)
			w("secureClientPortAddress=%s", node.IP)
		}
		if t.ClientPortUnification {
			w("client.portUnification=true")
		}
		w("authProvider.x509=%s", X509ProviderClass)
		stores("ssl.")
	}
	if t.QuorumTLS() {
		w("sslQuorum=%t", t.Quorum)
		if t.QuorumPortUnification {
			w("portUnification=true")
		}
		stores("ssl.quorum.")
		// The default, said out loud: peers are checked against the IP
		// they connect from or to, which their certificate carries.
		w("ssl.quorum.hostnameVerification=true")
	}
	out.private = []PrivateFile{{Name: KeyStoreName, Data: m.KeyStore}, {Name: TrustStoreName, Data: m.TrustStore}}
	return out, nil
}

// PlaceholderMaterial stands in for the material of cfg where none is
// fetched (zkaas-firstboot render, offline): zoo.cfg and java.env come out
// as at boot; the private files hold only the placeholder text.
func PlaceholderMaterial(cfg ensemble.Config) Material {
	const text = "(fetched at boot)"
	var m Material
	if cfg.ZooKeeper.TLS.On() {
		m.KeyStore, m.TrustStore = []byte(text), []byte(text)
	}
	if cfg.ZooKeeper.SASL.QuorumPassword.IsSet() {
		m.QuorumPassword = text
	}
	for _, u := range cfg.ZooKeeper.SASL.Clients {
		if m.ClientPasswords == nil {
			m.ClientPasswords = map[string]string{}
		}
		m.ClientPasswords[u.Name] = text
	}
	return m
}

// ErrKeyStore marks a keystore or truststore that cannot work for this
// node: ZooKeeper would start and then fail every TLS handshake.
var ErrKeyStore = errors.New("keystore unusable")

type keyStoreError struct{ msg string }

func (e keyStoreError) Error() string        { return e.msg }
func (e keyStoreError) Is(target error) bool { return target == ErrKeyStore }

func keyStoreErrorf(format string, args ...any) error {
	return keyStoreError{fmt.Sprintf(format, args...)}
}

// KeyStoreCheck is what CheckKeyStore checks a keystore against.
type KeyStoreCheck struct {
	IP  netip.Addr // the node's ENI address: the certificate must carry it
	Now time.Time
	// Quorum: the certificate also authenticates the node as a client of
	// its peers (ssl.quorum), so its extended key usage must allow
	// clientAuth as well as serverAuth.
	Quorum bool
	// Probes: the plaintext client port is closed, so the node's own
	// probes (the quorum probe of its peers, the ready probe, the
	// exporter) present this certificate to the secure client ports,
	// which ask for a client certificate: clientAuth as well.
	Probes bool
}

// CheckKeyStore checks, as ZooKeeper's PEM loader and trust manager will,
// that keyStore (the node's PEM chain and key) and trustStore (PEM CA
// certificates) fit the node: exactly one PKCS #8 private key, matching
// the first certificate; that certificate carrying the node's IP as a
// subject alternative name, valid now, and chaining (through the
// keystore's other certificates) to a CA of the truststore for the usages
// the node needs. The error is one line and wraps ErrKeyStore.
func CheckKeyStore(keyStore, trustStore []byte, c KeyStoreCheck) error {
	certs, key, err := parseKeyStore(keyStore)
	if err != nil {
		return err
	}
	leaf := certs[0]
	who := describe(leaf)
	// PemReader builds the key with KeyFactory "RSA", then "EC", then
	// "DSA"; an Ed25519 (or X25519) PKCS #8 key fails all three and
	// ZooKeeper dies at its first TLS handshake. Go parses no DSA keys.
	_, isRSA := key.(*rsa.PrivateKey)
	if _, isEC := key.(*ecdsa.PrivateKey); !isRSA && !isEC {
		return keyStoreErrorf("keystore: the private key is %s: ZooKeeper's PEM loader reads only RSA, EC and DSA keys; issue the node an RSA or ECDSA key", keyKind(key))
	}
	// Java's X509KeyManager and the peer's trust manager refuse a
	// certificate whose key usage extension forbids what the handshake
	// does with the key: TLS signs with it (ECDHE and TLS 1.3), except a
	// TLS 1.2 RSA key exchange, where a server's RSA key enciphers. A
	// quorum member or a probing node also signs as a TLS client. No
	// extension allows everything.
	if ku := leaf.KeyUsage; ku != 0 && ku&x509.KeyUsageDigitalSignature == 0 {
		if !isRSA || ku&x509.KeyUsageKeyEncipherment == 0 || c.Quorum || c.Probes {
			return keyStoreErrorf("keystore: certificate %s: its key usage lacks digitalSignature, which a TLS handshake with its key needs%s", who, clientRole(c))
		}
	}
	if signer, ok := key.(crypto.Signer); !ok {
		return keyStoreErrorf("keystore: the private key (%T) cannot sign", key)
	} else if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return keyStoreErrorf("keystore: the private key does not match the certificate %s", who)
	}
	if !coversIP(leaf, c.IP) {
		return keyStoreErrorf("keystore: certificate %s does not cover the node's address %s (IP SANs: %s; peers verify the address, so the certificate needs it as an IP SAN)",
			who, c.IP, listOrNone(leaf.IPAddresses))
	}
	switch {
	case c.Now.Before(leaf.NotBefore):
		return keyStoreErrorf("keystore: certificate %s is not valid until %s (now %s)", who, leaf.NotBefore.UTC().Format(time.RFC3339), c.Now.UTC().Format(time.RFC3339))
	case c.Now.After(leaf.NotAfter):
		return keyStoreErrorf("keystore: certificate %s expired at %s (now %s)", who, leaf.NotAfter.UTC().Format(time.RFC3339), c.Now.UTC().Format(time.RFC3339))
	}
	roots := x509.NewCertPool()
	n, err := addPEMCerts(roots, trustStore)
	if err != nil {
		return err
	}
	if n == 0 {
		return keyStoreErrorf("truststore: no CERTIFICATE block")
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	usages := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if c.Quorum || c.Probes {
		usages = append(usages, x509.ExtKeyUsageClientAuth)
	}
	for _, u := range usages {
		// Verify accepts a chain allowing any one of KeyUsages: check
		// each needed usage on its own.
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: c.Now, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			return keyStoreErrorf("keystore: certificate %s does not chain to the truststore for %s: %s", who, usageName(u, c), oneLineErr(err))
		}
	}
	return nil
}

// keyKind names a private key's algorithm in a message.
func keyKind(key any) string {
	switch key.(type) {
	case ed25519.PrivateKey:
		return "Ed25519"
	case *ecdh.PrivateKey:
		return "X25519"
	default:
		return fmt.Sprintf("%T", key)
	}
}

// clientRole says why the certificate also acts as a TLS client, if it does.
func clientRole(c KeyStoreCheck) string {
	switch {
	case c.Quorum:
		return " (quorum peers connect as clients)"
	case c.Probes:
		return " (with the plaintext client port closed, zkaas's probes connect to the secure port as clients)"
	}
	return ""
}

// parseKeyStore splits a PEM keystore into its certificates (the node's
// first) and its one private key.
func parseKeyStore(data []byte) ([]*x509.Certificate, any, error) {
	var certs []*x509.Certificate
	var key any
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, keyStoreErrorf("keystore: certificate %d: %s", len(certs)+1, oneLineErr(err))
			}
			certs = append(certs, c)
		case "PRIVATE KEY":
			if key != nil {
				return nil, nil, keyStoreErrorf("keystore: more than one private key")
			}
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, nil, keyStoreErrorf("keystore: private key: %s", oneLineErr(err))
			}
			key = k
		case "RSA PRIVATE KEY", "EC PRIVATE KEY":
			return nil, nil, keyStoreErrorf("keystore: %q: ZooKeeper reads only PKCS #8 keys (\"PRIVATE KEY\"); convert it with openssl pkcs8 -topk8 -nocrypt", b.Type)
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, keyStoreErrorf("keystore: the private key is encrypted; zkaas gives ZooKeeper no key password: store it unencrypted in the secret")
		}
	}
	if len(bytes.TrimSpace(rest)) > 0 && len(certs) == 0 && key == nil {
		return nil, nil, keyStoreErrorf("keystore: not PEM")
	}
	switch {
	case len(certs) == 0:
		return nil, nil, keyStoreErrorf("keystore: no CERTIFICATE block")
	case key == nil:
		return nil, nil, keyStoreErrorf("keystore: no PRIVATE KEY block")
	}
	return certs, key, nil
}

func addPEMCerts(pool *x509.CertPool, data []byte) (int, error) {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return n, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return n, keyStoreErrorf("truststore: certificate %d: %s", n+1, oneLineErr(err))
		}
		pool.AddCert(c)
		n++
	}
}

func coversIP(c *x509.Certificate, ip netip.Addr) bool {
	for _, a := range c.IPAddresses {
		if got, ok := netip.AddrFromSlice(a); ok && got.Unmap() == ip.Unmap() {
			return true
		}
	}
	return false
}

// describe names a certificate in a message: its subject and serial.
func describe(c *x509.Certificate) string {
	s := c.Subject.String()
	if s == "" {
		s = "(no subject)"
	}
	return fmt.Sprintf("%q (serial %s)", s, c.SerialNumber.Text(16))
}

func listOrNone[T fmt.Stringer](xs []T) string {
	if len(xs) == 0 {
		return "none"
	}
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}

func usageName(u x509.ExtKeyUsage, c KeyStoreCheck) string {
	if u == x509.ExtKeyUsageClientAuth {
		return "clientAuth" + clientRole(c)
	}
	return "serverAuth"
}

func oneLineErr(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// Package zktls is how zkaas's own probes (firstboot's quorum and ready
// probes, the exporter, the operator's status/doctor/roll) talk to
// ZooKeeper's secure client port when the plaintext one is closed
// (zookeeper.tls.client on, client_plaintext off).
//
// ZooKeeper 3.8's Netty server asks every TLS client for a certificate
// (ssl.clientAuth defaults to need) issued by a CA of its truststore, so a
// probe presents one: a node's own keystore (its certificate then needs the
// clientAuth extended key usage) or the operator's. The server's
// certificate is checked against the address dialled: nodes are addressed
// by IP, and their certificates carry that IP as a subject alternative
// name (firstboot checks it before ZooKeeper starts).
package zktls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// Dial is the shape of net.Dialer.DialContext every probe takes.
type Dial func(ctx context.Context, network, address string) (net.Conn, error)

// Config builds a client configuration from PEM: trustStore holds the CA
// certificates the servers' certificates chain to; keyStore the client's
// certificate chain (leaf first) and its private key, in one file as
// ZooKeeper's own keystore, or certPEM and keyPEM concatenated.
func Config(keyStore, trustStore []byte) (*tls.Config, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(trustStore) {
		return nil, errors.New("truststore: no PEM CERTIFICATE block")
	}
	cert, err := tls.X509KeyPair(keyStore, keyStore)
	if err != nil {
		return nil, fmt.Errorf("client certificate and key: %w", err)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Files is Config from files: ca (PEM CA certificates), cert (PEM
// certificate chain) and key (PEM private key); cert and key may be the
// same file (a ZooKeeper PEM keystore).
func Files(ca, cert, key string) (*tls.Config, error) {
	read := func(what, path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return b, nil
	}
	caPEM, err := read("tls ca", ca)
	if err != nil {
		return nil, err
	}
	certPEM, err := read("tls cert", cert)
	if err != nil {
		return nil, err
	}
	keyPEM := certPEM
	if key != cert {
		if keyPEM, err = read("tls key", key); err != nil {
			return nil, err
		}
	}
	conf, err := Config(joinPEM(certPEM, keyPEM), caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s, %s, %s: %w", ca, cert, key, err)
	}
	return conf, nil
}

// joinPEM concatenates a certificate file and a key file (the first may
// lack its final newline); one file named twice is read once.
func joinPEM(a, b []byte) []byte {
	if string(a) == string(b) {
		return a
	}
	out := append([]byte{}, a...)
	return append(append(out, '\n'), b...)
}

// Dialer wraps base (a net.Dialer when nil) so that every connection is
// TLS, handshaken before it is returned, with the server's certificate
// verified against the dialled host (an IP: its IP SAN).
func Dialer(conf *tls.Config, base Dial) Dial {
	if base == nil {
		base = (&net.Dialer{}).DialContext
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		raw, err := base(ctx, network, address)
		if err != nil {
			return nil, err
		}
		c := conf.Clone()
		c.ServerName = host
		tc := tls.Client(raw, c)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		return tc, nil
	}
}

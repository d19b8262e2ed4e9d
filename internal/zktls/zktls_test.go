package zktls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/internal/testca"
)

// TestFilesAndDialer: a client configuration from PEM files (certificate
// and key apart, or one keystore file; missing or bad files named), and a
// dialer that handshakes before returning and checks the server's
// certificate against the dialled IP.
func TestFilesAndDialer(t *testing.T) {
	ca := testca.New(t, "zkaas test CA", time.Now())
	srv := ca.Issue(t, testca.Cert{CN: "zk-1", IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	cli := ca.Issue(t, testca.Cert{CN: "operator", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile, certFile, keyFile := write("ca.pem", ca.PEM()), write("cert.pem", cli.CertPEM()), write("key.pem", cli.KeyPEM())
	ksFile := write("keystore.pem", cli.KeyStore())

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Cert.Raw}, PrivateKey: srv.Key}},
		ClientCAs: roots, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 4)
				if _, err := io.ReadFull(c, buf); err == nil {
					io.WriteString(c, "Mode: leader\n")
				}
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	for _, tc := range []struct {
		name            string
		ca, cert, key   string
		addr            string
		wantErr, dialEr string
	}{
		{name: "certificate and key apart", ca: caFile, cert: certFile, key: keyFile, addr: "127.0.0.1:" + port},
		{name: "one keystore file", ca: caFile, cert: ksFile, key: ksFile, addr: "127.0.0.1:" + port},
		{name: "missing CA", ca: filepath.Join(dir, "nope.pem"), cert: certFile, key: keyFile, wantErr: "tls ca: open " + filepath.Join(dir, "nope.pem")},
		{name: "key of nothing", ca: caFile, cert: certFile, key: caFile, wantErr: "client certificate and key"},
		{name: "CA file without certificates", ca: keyFile, cert: certFile, key: keyFile, wantErr: "truststore: no PEM CERTIFICATE block"},
		// The server's certificate carries 127.0.0.1 only.
		{name: "server checked against the dialled IP", ca: caFile, cert: certFile, key: keyFile, addr: "localhost:" + port, dialEr: "tls handshake: tls: failed to verify certificate: x509: certificate is not valid for any names, but wanted to match localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := Files(tc.ca, tc.cert, tc.key)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Files: %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			c, err := Dialer(conf, nil)(ctx, "tcp", tc.addr)
			if tc.dialEr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.dialEr) {
					t.Fatalf("dial: %v, want %q", err, tc.dialEr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "srvr")
			b, err := io.ReadAll(c)
			if err != nil || string(b) != "Mode: leader\n" {
				t.Errorf("answer %q, %v", b, err)
			}
		})
	}
}

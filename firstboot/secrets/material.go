package secrets

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/zookeeper"
)

// Material fetches every secret cfg names (Config.Secrets) for node and
// returns it as the ZooKeeper stage's zookeeper.Material, with the
// references fetched (source:name[#json_key], for the run report — never
// the material). The first failure stops it: a node missing any piece
// cannot serve as configured.
//
// Passwords lose one trailing newline ("\n" or "\r\n"): a file written by
// an editor or `echo` ends in one, and a DIGEST-MD5 password never does.
// Keystores and truststores are kept byte for byte (PEM ignores it).
//
// With zookeeper.tls on, the keystore is then checked against the node
// (zookeeper.CheckKeyStore: the key matches the certificate, which carries
// the node's IP, is valid now and chains to the truststore): a node whose
// certificate cannot work is refused here, before ZooKeeper starts, rather
// than started to fail every handshake with its peers.
func (f *Fetcher) Material(ctx context.Context, cfg ensemble.Config, node int) (zookeeper.Material, []string, error) {
	var m zookeeper.Material
	var refs []string
	for _, ns := range cfg.Secrets() {
		s := ns.Secret.ForNode(node)
		// Only the truststore is public: CA certificates.
		data, err := f.Fetch(ctx, ns.Field, s, Private(ns.Field != "zookeeper.tls.truststore"))
		if err != nil {
			return zookeeper.Material{}, refs, err
		}
		refs = append(refs, s.String())
		switch {
		case ns.Field == "zookeeper.tls.keystore":
			m.KeyStore = data
		case ns.Field == "zookeeper.tls.truststore":
			m.TrustStore = data
		case ns.Field == "zookeeper.sasl.quorum_password":
			if m.QuorumPassword, err = checkedPassword(ns.Field, s, data); err != nil {
				return zookeeper.Material{}, refs, err
			}
		case ns.SASLUser != "":
			if m.ClientPasswords == nil {
				m.ClientPasswords = map[string]string{}
			}
			pw, err := checkedPassword(ns.Field, s, data)
			if err != nil {
				return zookeeper.Material{}, refs, err
			}
			m.ClientPasswords[ns.SASLUser] = pw
		default:
			return zookeeper.Material{}, refs, fmt.Errorf("%s: a secret field the boot does not know", ns.Field)
		}
	}
	if t := cfg.ZooKeeper.TLS; t.On() {
		n, ok := cfg.NodeByID(node)
		if !ok {
			return zookeeper.Material{}, refs, fmt.Errorf("node %d: not in the ensemble config", node)
		}
		now := time.Now
		if f.Now != nil {
			now = f.Now
		}
		err := zookeeper.CheckKeyStore(m.KeyStore, m.TrustStore, zookeeper.KeyStoreCheck{IP: n.IP, Now: now(), Quorum: t.QuorumTLS(), Probes: t.PlaintextClosed()})
		if err != nil {
			return zookeeper.Material{}, refs, unusable("zookeeper.tls: %s with %s: %v", t.Keystore.ForNode(node), t.Truststore.ForNode(node), err)
		}
	}
	return m, refs, nil
}

// checkedPassword is a SASL password as the JAAS file can carry it
// (zookeeper.CheckSASLPassword): one that cannot is a refusal, as every
// replacement would fetch the same.
func checkedPassword(field string, s ensemble.Secret, data []byte) (string, error) {
	pw := password(data)
	if err := zookeeper.CheckSASLPassword(pw); err != nil {
		return "", unusable("%s: %s: %v", field, s, err)
	}
	return pw, nil
}

func password(b []byte) string {
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	return s
}

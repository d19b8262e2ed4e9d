package zookeeper

// Secret material and the files rendered from it (keystores, the JAAS
// file). The TLS part lives in tls.go, the SASL part in sasl.go; both add to
// what Render produces through the security type below.

import (
	"io/fs"
	"path/filepath"
)

// DefaultSecretDir holds the files rendered from secret material. It is on
// /run (tmpfs): the material is fetched at every boot, so it never needs to
// be on the root disk, and it is gone when the instance stops.
const DefaultSecretDir = "/run/zkaas/zookeeper"

// secretFileMode: secret files belong to zookeeper and nobody else reads
// them.
const (
	secretDirMode  fs.FileMode = 0o700
	secretFileMode fs.FileMode = 0o600
)

// Material is the secret material firstboot fetched for this node (package
// firstboot/secrets), as bytes; which parts are set follows the config's
// zookeeper.tls and zookeeper.sasl.
type Material struct {
	KeyStore   []byte // PEM: the node's certificate chain and private key
	TrustStore []byte // PEM: CA certificates
	// QuorumPassword is the DIGEST-MD5 password of the quorum.
	QuorumPassword string
	// ClientPasswords are the SASL client users' passwords by user name.
	ClientPasswords map[string]string
}

// PrivateFile is a file only zookeeper may read (mode 0600).
type PrivateFile struct {
	Name string // inside Layout.SecretDir
	Data []byte
}

// Path is where f is written in l.
func (f PrivateFile) Path(l Layout) string { return filepath.Join(l.SecretDir, f.Name) }

// security is what the TLS and SASL parts add to a node's configuration.
type security struct {
	zooCfg   []string      // zoo.cfg lines
	jvmFlags []string      // appended to SERVER_JVMFLAGS before jvm_flags
	private  []PrivateFile // written to Layout.SecretDir, 0600, owned by zookeeper
}

func (s *security) add(o security) {
	s.zooCfg = append(s.zooCfg, o.zooCfg...)
	s.jvmFlags = append(s.jvmFlags, o.jvmFlags...)
	s.private = append(s.private, o.private...)
}

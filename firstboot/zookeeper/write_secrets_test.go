package zookeeper

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zkaas/zkaas/ensemble"
)

// TestWritePrivateFilesIdempotent: with TLS and SASL on, a second Write of
// the same files changes nothing (a boot that re-renders does not restart
// ZooKeeper for nothing); a keystore chmodded 0644, or chowned away, is
// put back to 0600 and zookeeper's, and named as changed; changed
// material is rewritten.
func TestWritePrivateFilesIdempotent(t *testing.T) {
	requireRoot(t)
	layout := secretLayout(t)
	cfg := tlsEnsemble(ensemble.TLS{Client: true, Quorum: true})
	s := quorumSASL
	s.Clients = saslClients
	cfg.ZooKeeper.SASL = s
	mat := saslMaterial
	mat.KeyStore, mat.TrustStore = []byte("K"), []byte("T")
	f, err := Render(cfg, 1, cfg.Nodes[0].IP, layout, mat)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Private) != 3 {
		t.Fatalf("private files %v, want the keystore, the truststore and the JAAS file", f.Private)
	}
	owner := testZK
	first, err := Write(f, owner)
	if err != nil {
		t.Fatal(err)
	}
	ks, jaas := filepath.Join(layout.SecretDir, KeyStoreName), filepath.Join(layout.SecretDir, JAASName)
	for _, p := range []string{ks, filepath.Join(layout.SecretDir, TrustStoreName), jaas} {
		if !slices.Contains(first, p) {
			t.Errorf("first write: %s not among the changed %v", p, first)
		}
	}
	if again, err := Write(f, owner); err != nil || len(again) != 0 {
		t.Fatalf("second write changed %v (%v), want nothing", again, err)
	}

	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T)
		path  string
	}{
		{"keystore made world-readable", func(t *testing.T) { mustDo(t, os.Chmod(ks, 0o644)) }, ks},
		{"keystore given to root", func(t *testing.T) { mustDo(t, os.Chown(ks, 0, 0)) }, ks},
		{"JAAS file rewritten", func(t *testing.T) { mustDo(t, os.WriteFile(jaas, []byte("x"), 0o600)) }, jaas},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spoil(t)
			changed, err := Write(f, owner)
			if err != nil || !slices.Equal(changed, []string{tc.path}) {
				t.Fatalf("changed %v (%v), want exactly %s", changed, err, tc.path)
			}
			assertOwned(t, tc.path, 0o600, owner)
			if again, err := Write(f, owner); err != nil || len(again) != 0 {
				t.Errorf("after the repair, a write changed %v (%v)", again, err)
			}
		})
	}
	if b, _ := os.ReadFile(ks); string(b) != "K" {
		t.Errorf("keystore holds %q", b)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// secretLayout is a layout under a temp dir with a secret dir, whose
// "mount point" (v) exists, as the disk step leaves it.
func secretLayout(t *testing.T) Layout {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "v"), 0o755); err != nil { // the mounted volume
		t.Fatal(err)
	}
	return Layout{ConfDir: filepath.Join(root, "conf"), DataDir: filepath.Join(root, "v/data"), DataLogDir: filepath.Join(root, "v/datalog"),
		LogDir: filepath.Join(root, "v/logs"), SecretDir: filepath.Join(root, "run/zkaas/zookeeper")}
}

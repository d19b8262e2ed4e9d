package localbake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkaas/zkaas/plugin/role"
)

// fakeImage is a root file system with what Verify reads: passwd and group
// naming the current user, a file, an unpacked tree and a link.
func fakeImage(t *testing.T) (string, role.Manifest) {
	t.Helper()
	root := t.TempDir()
	uid, gid := os.Getuid(), os.Getgid()
	files := map[string]string{
		"etc/passwd":                 fmt.Sprintf("me:x:%d:%d::/:/bin/sh\n", uid, gid),
		"etc/group":                  fmt.Sprintf("us:x:%d:\n", gid),
		"etc/zkaas/ensemble.yaml":    "ensemble: x\n",
		"opt/zk-1/lib/zookeeper.jar": "jar",
		"opt/zk-1/conf/logback.xml":  "<configuration/>",
		"opt/zk-1/.zkaas-sha512":     "abc\n",
	}
	for p, data := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/opt/zk-1", filepath.Join(root, "opt/zk")); err != nil {
		t.Fatal(err)
	}
	// The tree digest as the build host's shell pipeline computes it.
	var lines strings.Builder
	for _, p := range []string{"./.zkaas-sha512", "./conf/logback.xml", "./lib/zookeeper.jar"} {
		sum := sha256.Sum256([]byte(files["opt/zk-1/"+p[2:]]))
		fmt.Fprintf(&lines, "%s  %s\n", hex.EncodeToString(sum[:]), p)
	}
	tree := sha256.Sum256([]byte(lines.String()))
	file := sha256.Sum256([]byte(files["etc/zkaas/ensemble.yaml"]))
	return root, role.Manifest{Entries: []role.ManifestEntry{
		{Path: "/etc/zkaas/ensemble.yaml", Type: "file", SHA256: hex.EncodeToString(file[:]), Attr: "me:us:644"},
		{Path: "/etc/zkaas", Type: "dir", Attr: "me:us:755"},
		{Path: "/opt/zk-1", Type: "tree", SHA256: hex.EncodeToString(tree[:]), Attr: "me:us:755"},
		{Path: "/opt/zk", Type: "link", Target: "/opt/zk-1"},
	}}
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(root string) error
		want   string
	}{
		{name: "intact"},
		{
			name: "file changed",
			tamper: func(r string) error {
				return os.WriteFile(filepath.Join(r, "etc/zkaas/ensemble.yaml"), []byte("ensemble: y\n"), 0o644)
			},
			want: "/etc/zkaas/ensemble.yaml (role  ): sha256 ",
		},
		{
			name:   "mode changed",
			tamper: func(r string) error { return os.Chmod(filepath.Join(r, "etc/zkaas/ensemble.yaml"), 0o600) },
			want:   "attributes me:us:600, manifest says me:us:644",
		},
		{
			name:   "file added to the tree",
			tamper: func(r string) error { return os.WriteFile(filepath.Join(r, "opt/zk-1/lib/evil.jar"), nil, 0o644) },
			want:   "/opt/zk-1 (role  ): sha256 ",
		},
		{
			name: "link repointed",
			tamper: func(r string) error {
				os.Remove(filepath.Join(r, "opt/zk"))
				return os.Symlink("/opt/zk-2", filepath.Join(r, "opt/zk"))
			},
			want: "link to /opt/zk-2, manifest says /opt/zk-1",
		},
		{
			name:   "directory gone",
			tamper: func(r string) error { return os.RemoveAll(filepath.Join(r, "etc/zkaas")) },
			want:   "2 of 4 manifest entries do not match",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, m := fakeImage(t)
			if tt.tamper != nil {
				if err := tt.tamper(root); err != nil {
					t.Fatal(err)
				}
			}
			err := Verify(root, m)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Verify: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Verify = %v, want …%s…", err, tt.want)
			}
		})
	}
}

func TestMirrorIn(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"one-line", "# comment\ndeb http://mirror.example/debian bookworm main\n", "http://mirror.example/debian"},
		{"one-line with options", "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n", "http://m.example/debian"},
		{"other suite only", "deb http://m.example/debian trixie main\n", ""},
		{"deb822", "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n", "http://deb.debian.org/debian"},
		{"deb822 security only", "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "sources")
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := mirrorIn(p); got != tt.want {
				t.Errorf("mirrorIn = %q, want %q", got, tt.want)
			}
		})
	}
}

package zookeeper

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/internal/golden"

	"github.com/zkaas/zkaas/ensemble"
)

func saslEnsemble(s ensemble.SASL) ensemble.Config {
	cfg := testEnsemble(3)
	cfg.ZooKeeper.SASL = s
	return cfg
}

var (
	quorumSASL  = ensemble.SASL{Quorum: true, QuorumPassword: ensemble.Secret{SecretsManager: "zk/quorum"}}
	saslClients = []ensemble.SASLUser{
		// Out of name order: the Server section is sorted.
		{Name: "kafka", Password: ensemble.Secret{SSM: "/zk/kafka"}},
		{Name: "admin", Password: ensemble.Secret{File: "/etc/zkaas/admin.password"}},
	}
	saslMaterial = Material{QuorumPassword: "quorum-pw", ClientPasswords: map[string]string{"kafka": `kafka "pw" \ 1`, "admin": "admin-pw"}}
)

// TestRenderSASLGolden: zoo.cfg, java.env and the JAAS file for each way of
// turning SASL on.
func TestRenderSASLGolden(t *testing.T) {
	layout := DefaultLayout("/var/lib/zookeeper")
	for _, tc := range []struct {
		name string
		cfg  func() ensemble.Config
	}{
		{"sasl-quorum", func() ensemble.Config { return saslEnsemble(quorumSASL) }},
		// The first two of the three rolls that turn quorum SASL on.
		{"sasl-quorum-migration-accept", func() ensemble.Config {
			s := quorumSASL
			s.QuorumMigration = ensemble.QuorumMigrationAccept
			return saslEnsemble(s)
		}},
		{"sasl-quorum-migration-authenticate", func() ensemble.Config {
			s := quorumSASL
			s.QuorumMigration = ensemble.QuorumMigrationAuthenticate
			return saslEnsemble(s)
		}},
		// Nine nodes: the authentication threads grow past the default 20.
		{"sasl-quorum-9-nodes", func() ensemble.Config {
			cfg := testEnsemble(9)
			cfg.ZooKeeper.SASL = quorumSASL
			return cfg
		}},
		{"sasl-clients", func() ensemble.Config { return saslEnsemble(ensemble.SASL{Clients: saslClients}) }},
		{"sasl-clients-required", func() ensemble.Config {
			return saslEnsemble(ensemble.SASL{Clients: saslClients, ClientRequired: true})
		}},
		// Everything at once, with TLS: one JAAS file, both providers.
		{"sasl-all-tls", func() ensemble.Config {
			s := quorumSASL
			s.Clients, s.ClientRequired = saslClients, true
			cfg := tlsEnsemble(ensemble.TLS{Client: true, Quorum: true})
			cfg.ZooKeeper.SASL = s
			return cfg
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg()
			mat := saslMaterial
			mat.KeyStore, mat.TrustStore = []byte("KEYSTORE PEM"), []byte("TRUSTSTORE PEM")
			f, err := Render(cfg, 2, cfg.Nodes[1].IP, layout, mat)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			fmt.Fprintf(&got, "==> %s <==\n%s==> %s <==\n%s", ZooCfgName, f.ZooCfg, JavaEnvName, f.JavaEnv)
			for _, p := range f.Private {
				if p.Name == JAASName {
					fmt.Fprintf(&got, "==> %s (private) <==\n%s", p.Path(layout), p.Data)
				}
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), got.Bytes())
		})
	}
}

func TestRenderSASLErrors(t *testing.T) {
	layout := DefaultLayout("/var/lib/zookeeper")
	both := quorumSASL
	both.Clients = saslClients
	for _, tc := range []struct {
		name string
		mat  Material
		want string
	}{
		{"no quorum password", Material{ClientPasswords: saslMaterial.ClientPasswords}, "render node 1: zookeeper.sasl.quorum_password: the password is empty"},
		{"quorum password with a line break", Material{QuorumPassword: "a\nb", ClientPasswords: saslMaterial.ClientPasswords},
			"render node 1: zookeeper.sasl.quorum_password: the password contains a line break or another control character (a JAAS quoted string cannot hold one)"},
		{"quorum password with ${", Material{QuorumPassword: "pw${user.home}", ClientPasswords: saslMaterial.ClientPasswords},
			"render node 1: zookeeper.sasl.quorum_password: the password contains \"${\", which Java expands as a system property in a JAAS file, with no escape"},
		{"client password missing", Material{QuorumPassword: "q", ClientPasswords: map[string]string{"kafka": "k"}},
			"render node 1: zookeeper.sasl.clients[1].password: no password was fetched for user admin"},
		{"client password with a tab", Material{QuorumPassword: "q", ClientPasswords: map[string]string{"kafka": "k\tk", "admin": "a"}},
			"render node 1: zookeeper.sasl.clients[0].password (user kafka): the password contains a line break or another control character (a JAAS quoted string cannot hold one)"},
		{"client password not UTF-8", Material{QuorumPassword: "q", ClientPasswords: map[string]string{"kafka": "k\xffk", "admin": "a"}},
			"render node 1: zookeeper.sasl.clients[0].password (user kafka): the password is not valid UTF-8 (the JAAS file is read as UTF-8)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := saslEnsemble(both)
			_, err := Render(cfg, 1, cfg.Nodes[0].IP, layout, tc.mat)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if !errors.Is(err, ErrSASLPassword) && !strings.Contains(tc.want, "no password was fetched") {
				t.Errorf("%v does not wrap ErrSASLPassword", err)
			}
		})
	}
	// SASL off: nothing of it, whatever the material.
	off := testEnsemble(3)
	f, err := Render(off, 1, off.Nodes[0].IP, layout, saslMaterial)
	if err != nil || bytes.Contains(f.ZooCfg, []byte("auth")) || bytes.Contains(f.JavaEnv, []byte("login.config")) || len(f.Private) != 0 {
		t.Fatalf("sasl off: %v\n%s\n%s\n%v", err, f.ZooCfg, f.JavaEnv, f.Private)
	}
}

// TestJAASReadByJava: the JDK's own JAAS parser reads back every password
// byte for byte — quotes, backslashes, '$', braces, ';', '//' and '/*'
// (comments outside a string), spaces at the ends, non-ASCII.
func TestJAASReadByJava(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("java not installed (apt-get install default-jdk-headless)")
	}
	if _, err := exec.LookPath("javac"); err != nil {
		t.Skip("the JDK's compiler is missing: java cannot run ParseJAAS.java (apt-get install default-jdk-headless)")
	}
	passwords := map[string]string{
		"quotes":    `say "hi"`,
		"backslash": `C:\path\to\`,
		"mixed":     `\"\\"`,
		"dollar":    `$HOME $ {x} $$`,
		"syntax":    `a;b}{c=d // not a comment /* nor this */`,
		"spaces":    "  padded  ",
		"unicode":   "pässwörd-秘密",
		"quote-end": `trailing"`,
	}
	s := quorumSASL
	mat := Material{QuorumPassword: `q"u\o"rum`, ClientPasswords: map[string]string{}}
	for name, pw := range passwords {
		s.Clients = append(s.Clients, ensemble.SASLUser{Name: name, Password: ensemble.Secret{SSM: "/zk/" + name}})
		mat.ClientPasswords[name] = pw
	}
	cfg := saslEnsemble(s)
	dir := t.TempDir()
	layout := DefaultLayout("/var/lib/zookeeper")
	layout.SecretDir = dir
	f, err := Render(cfg, 1, cfg.Nodes[0].IP, layout, mat)
	if err != nil {
		t.Fatal(err)
	}
	var jaas PrivateFile
	for _, p := range f.Private {
		if p.Name == JAASName {
			jaas = p
		}
	}
	if err := os.WriteFile(jaas.Path(layout), jaas.Data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, java, "-XX:-UsePerfData", filepath.Join("testdata", "ParseJAAS.java"), jaas.Path(layout),
		QuorumServerSection, QuorumLearnerSection, ClientServerSection).CombinedOutput()
	if err != nil {
		t.Fatalf("java ParseJAAS: %v\n%s\nfile:\n%s", err, out, jaas.Data)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Split(line, "\t")
		if len(fields) != 5 {
			t.Fatalf("ParseJAAS line %q", line)
		}
		if fields[1] != DigestLoginModule || !strings.Contains(fields[2], "required") {
			t.Errorf("section %s: module %s %s", fields[0], fields[1], fields[2])
		}
		v, err := base64.StdEncoding.DecodeString(fields[4])
		if err != nil {
			t.Fatal(err)
		}
		got[fields[0]+"."+fields[3]] = string(v)
	}
	want := map[string]string{
		QuorumServerSection + ".user_" + QuorumUser: mat.QuorumPassword,
		QuorumLearnerSection + ".username":          QuorumUser,
		QuorumLearnerSection + ".password":          mat.QuorumPassword,
	}
	for name, pw := range passwords {
		want[ClientServerSection+".user_"+name] = pw
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s read back as %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Java read %d options, want %d: %v\nfile:\n%s", len(got), len(want), got, jaas.Data)
	}
}

func TestCheckSASLPassword(t *testing.T) {
	for _, tc := range []struct {
		pw   string
		want string // "" = usable
	}{
		{"s3cret", ""},
		{`with "quotes" and \backslashes\`, ""},
		{"$HOME and {braces}", ""},
		{"non-ASCII ünïcödé", ""},
		{"", "the password is empty"},
		{"two\nlines", "line break"},
		{"cr\r", "line break"},
		{"nul\x00", "control character"},
		{"del\x7f", "control character"},
		{"c1\u0085", "control character"},
		{"${java.home}", "\"${\""},
		{"a${b", "\"${\""},
		{"bad \xc3", "not valid UTF-8"},
	} {
		err := CheckSASLPassword(tc.pw)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q refused: %v", tc.pw, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrSASLPassword)):
			t.Errorf("%q: err %v, want one containing %q wrapping ErrSASLPassword", tc.pw, err, tc.want)
		case err != nil && tc.pw != "" && strings.Contains(err.Error(), tc.pw):
			t.Errorf("%q: the error shows the password: %v", tc.pw, err)
		}
	}
}

// TestWriteSASLFiles: the JAAS file lands in the secret dir, 0600 and
// zookeeper's.
func TestWriteSASLFiles(t *testing.T) {
	requireRoot(t)
	layout := secretLayout(t)
	s := quorumSASL
	s.Clients = saslClients
	cfg := saslEnsemble(s)
	f, err := Render(cfg, 1, cfg.Nodes[0].IP, layout, saslMaterial)
	if err != nil {
		t.Fatal(err)
	}
	owner := testZK
	if _, err := Write(f, owner); err != nil {
		t.Fatal(err)
	}
	assertOwned(t, layout.SecretDir, 0o700, owner)
	path := filepath.Join(layout.SecretDir, JAASName)
	assertOwned(t, path, 0o600, owner)
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte(`user_kafka="kafka \"pw\" \\ 1"`)) {
		t.Errorf("%s:\n%s", path, b)
	}
	if env, _ := os.ReadFile(layout.JavaEnvPath()); !bytes.Contains(env, []byte("-Djava.security.auth.login.config="+path)) {
		t.Errorf("java.env does not name %s:\n%s", path, env)
	}
	if cfgb, _ := os.ReadFile(layout.ZooCfgPath()); bytes.Contains(cfgb, []byte("quorum-pw")) || bytes.Contains(readJavaEnv(t, layout), []byte("quorum-pw")) {
		t.Error("a password reached zoo.cfg or java.env")
	}
}

func readJavaEnv(t *testing.T, l Layout) []byte {
	t.Helper()
	b, err := os.ReadFile(l.JavaEnvPath())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

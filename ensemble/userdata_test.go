package ensemble

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const baked = "testdata/ensemble.yaml"

// mimeDoc builds user data the way `cloud-init devel make-mime` does: a
// multipart/mixed message, one part per file, each with its content type.
func mimeDoc(parts ...[2]string) []byte {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"===============1234==\"\nMIME-Version: 1.0\n\n")
	for _, p := range parts {
		b.WriteString("--===============1234==\n")
		b.WriteString(p[0])
		b.WriteString("\nMIME-Version: 1.0\n\n")
		b.WriteString(p[1])
		b.WriteString("\n")
	}
	b.WriteString("--===============1234==--\n")
	return []byte(b.String())
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestResolve(t *testing.T) {
	full, err := os.ReadFile(baked)
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Replace(string(full), "ensemble: prod-zk", "ensemble: from-user-data", 1)
	cloudConfig := "#cloud-config\npackages: [htop]\n"
	b64 := base64.StdEncoding.EncodeToString([]byte(other))
	b64 = b64[:40] + "\n" + b64[40:] // MIME wraps base64 lines
	for _, tc := range []struct {
		name     string
		userData []byte
		opt      Options
		source   string // Source.String()
		ensemble string
		node     int
		err      []string // substrings of the error, in order
	}{
		{name: "no user data", source: baked, ensemble: "prod-zk"},
		{name: "blank user data", userData: []byte("\n \n"), source: baked, ensemble: "prod-zk"},
		{name: "cloud-init's only", userData: []byte(cloudConfig), source: baked, ensemble: "prod-zk"},
		{name: "shell script", userData: []byte("#!/bin/sh\necho hi\n"), source: baked, ensemble: "prod-zk"},
		{name: "plain document", userData: []byte(other), source: "user data", ensemble: "from-user-data"},
		{name: "gzip document", userData: gz([]byte(other)), source: "user data", ensemble: "from-user-data"},
		{name: "MIME part next to cloud-config", source: "user data", ensemble: "from-user-data",
			userData: mimeDoc([2]string{"Content-Type: text/cloud-config; charset=\"us-ascii\"", cloudConfig},
				[2]string{"Content-Type: text/x-zkaas-ensemble; charset=\"us-ascii\"", other})},
		{name: "MIME part in base64", source: "user data", ensemble: "from-user-data",
			userData: mimeDoc([2]string{"Content-Type: text/x-zkaas-ensemble\nContent-Transfer-Encoding: base64", b64})},
		{name: "MIME without a zkaas part", source: baked, ensemble: "prod-zk",
			userData: mimeDoc([2]string{"Content-Type: text/cloud-config", cloudConfig})},
		{name: "nested multipart", source: "user data", ensemble: "from-user-data",
			userData: mimeDoc([2]string{"Content-Type: multipart/alternative; boundary=inner",
				"--inner\nContent-Type: text/x-zkaas-ensemble\n\n" + other + "\n--inner--"})},
		{name: "two zkaas parts", err: []string{"user data: MIME user data has 2 parts of type text/x-zkaas-ensemble"},
			userData: mimeDoc([2]string{"Content-Type: text/x-zkaas-ensemble", other}, [2]string{"Content-Type: text/x-zkaas-ensemble", other})},
		{name: "pin only", userData: []byte("node: 2\n"), source: baked + " (node pinned by user data)", ensemble: "prod-zk", node: 2},
		{name: "pin of no node", userData: []byte("# launch template of node 9\nnode: 9\n"),
			err: []string{"user data: 1 problem(s)", "line 2: node: 9 is not a node of ensemble prod-zk in " + baked}},
		{name: "pin not a number", userData: []byte("node: two\n"), err: []string{"user data", "line 1: node: \"two\" is not a node id"}},
		{name: "typo in user data", userData: []byte(strings.Replace(other, "deadline: 3m", "dedline: 3m", 1)),
			err: []string{"user data: ", "line 14: claim.dedline: unknown field"}},
		{name: "hardened: AdminServer", opt: Options{Hardened: true},
			userData: []byte(other + "  admin_server: {enabled: true}\n"),
			err:      []string{"user data: 1 problem(s)", "line 22: zookeeper.admin_server.enabled: this image is hardened"}},
		{name: "hardened: four-letter word", opt: Options{Hardened: true},
			userData: []byte(strings.Replace(other, "[srvr, ruok]", "[srvr, dump]", 1)),
			err:      []string{"line 21: zookeeper.four_letter_words[1]: \"dump\": this image is hardened and allows only srvr, ruok, mntr, conf, isro"}},
		{name: "not hardened: four-letter word allowed", source: "user data", ensemble: "from-user-data",
			userData: []byte(strings.Replace(other, "[srvr, ruok]", "[srvr, dump]", 1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, src, _, err := Resolve(tc.userData, baked, tc.opt)
			if len(tc.err) > 0 {
				if err == nil {
					t.Fatalf("no error; config %+v from %s", cfg.Ensemble, src)
				}
				rest := err.Error()
				for _, want := range tc.err {
					i := strings.Index(rest, want)
					if i < 0 {
						t.Fatalf("error %q lacks %q (in order)", err, want)
					}
					rest = rest[i+len(want):]
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src.String() != tc.source || cfg.Ensemble != tc.ensemble || cfg.Node != tc.node {
				t.Errorf("got %s from %q, node %d; want %s from %q, node %d", cfg.Ensemble, src, cfg.Node, tc.ensemble, tc.source, tc.node)
			}
		})
	}
}

// FuzzFromUserData: any user data gives an answer or an error, never a
// panic or a hang.
func FuzzFromUserData(f *testing.F) {
	f.Add([]byte("ensemble: x\n"))
	f.Add(mimeDoc([2]string{"Content-Type: text/x-zkaas-ensemble", "ensemble: x"}))
	f.Add(gz([]byte("#cloud-config\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, ok, err := FromUserData(data)
		if err == nil && ok && len(doc) > MaxSize {
			t.Fatalf("document of %d bytes", len(doc))
		}
	})
}

// TestCloudInitSkipsOurUserData runs Debian's cloud-init (22.4, unpacked by
// `go tool mage test` into ZKAAS_CLOUD_INIT, not installed) on the user
// data zkaas accepts: cloud-init must not fail on it, must leave our part
// alone (no handler, a warning), and must still see its own parts.
func TestCloudInitSkipsOurUserData(t *testing.T) {
	site := os.Getenv("ZKAAS_CLOUD_INIT")
	if site == "" {
		t.Skip("ZKAAS_CLOUD_INIT unset: `go tool mage test` unpacks Debian's cloud-init and sets it")
	}
	python, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skipf("Debian's python3 (for cloud-init's modules): %v", err)
	}
	full, err := os.ReadFile(baked)
	if err != nil {
		t.Fatal(err)
	}
	cloudConfig := "#cloud-config\npackages: [htop]\n"
	for _, tc := range []struct {
		name     string
		userData []byte
		want     []string // lines cloud-init printed, in order
	}{
		{"plain document", full, []string{
			"warning Unhandled non-multipart (text/x-not-multipart) userdata: 'b'# A three-node ensemble '...'",
			"part text/x-not-multipart"}},
		{"MIME part next to cloud-config", mimeDoc([2]string{"Content-Type: text/cloud-config", cloudConfig},
			[2]string{"Content-Type: " + ContentType, string(full)}), []string{
			"warning Unhandled unknown content-type (text/x-zkaas-ensemble) userdata: 'b'# A three-node ensemble '...'",
			"part text/cloud-config", "part " + ContentType}},
		{"gzip document", gz(full), []string{"part text/x-not-multipart"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok, err := FromUserData(tc.userData); !ok || err != nil {
				t.Fatalf("zkaas does not take this user data: %v", err)
			}
			cmd := exec.Command(python, "testdata/cloudinit_userdata.py")
			cmd.Env = append(os.Environ(), "PYTHONPATH="+site)
			cmd.Stdin = bytes.NewReader(tc.userData)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("cloud-init failed on it: %v\n%s", err, out)
			}
			rest := string(out)
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("cloud-init's output lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestRefusedHoldOf(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want time.Duration
		ok   bool
	}{
		{"ensemble: x\nhealth: {refused_hold: 15s}\nzookeper: {}\n", 15 * time.Second, true}, // invalid elsewhere
		{"health:\n  refused_hold: 2m\n", 2 * time.Minute, true},
		{"ensemble: x\n", 0, false},
		{"health: {refused_hold: soon}\n", 0, false},
		{"health: {refused_hold: 2h}\n", 0, false},
		{"{{{", 0, false},
	} {
		if got, ok := RefusedHoldOf([]byte(tc.doc)); got != tc.want || ok != tc.ok {
			t.Errorf("RefusedHoldOf(%q) = %s, %v; want %s, %v", tc.doc, got, ok, tc.want, tc.ok)
		}
	}
}

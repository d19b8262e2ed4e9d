package routing

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkaas/zkaas/internal/golden"
)

func TestNetworkdFilesGolden(t *testing.T) {
	mac, _ := net.ParseMAC("02:5A:0B:1C:2D:3E")
	files := NetworkdFiles(mac)
	goldenFiles := map[string]string{
		NetworkdConfPath: "testdata/networkd.conf.golden",
		NetworkFilePath:  "testdata/eni.network.golden",
	}
	if len(files) != len(goldenFiles) {
		t.Fatalf("rendered %d files, want %d", len(files), len(goldenFiles))
	}
	for rel, path := range goldenFiles {
		got, ok := files[rel]
		if !ok {
			t.Fatalf("no file %s rendered", rel)
		}
		golden.Check(t, path, got)
	}
	// networkd compares MACs case-insensitively, but a lowercase MAC keeps
	// the file byte-stable whatever case IMDS or EC2 used.
	if !strings.Contains(string(files[NetworkFilePath]), "MACAddress=02:5a:0b:1c:2d:3e\n") {
		t.Errorf("network file does not match the lowercase MAC:\n%s", files[NetworkFilePath])
	}
}

func TestWriteNetworkdFiles(t *testing.T) {
	dir := t.TempDir()
	mac1, _ := net.ParseMAC("02:5a:00:00:00:01")
	mac2, _ := net.ParseMAC("02:5a:00:00:00:02")
	steps := []struct {
		name        string
		mac         net.HardwareAddr
		wantChanged bool
	}{
		{"fresh", mac1, true},
		{"same again", mac1, false},
		{"other ENI", mac2, true},
		{"other ENI again", mac2, false},
	}
	for _, s := range steps {
		changed, err := WriteNetworkdFiles(dir, s.mac)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if changed != s.wantChanged {
			t.Errorf("%s: changed = %v, want %v", s.name, changed, s.wantChanged)
		}
		for rel, want := range NetworkdFiles(s.mac) {
			path := filepath.Join(dir, rel)
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if string(got) != string(want) {
				t.Errorf("%s: %s holds %q, want %q", s.name, rel, got, want)
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
				t.Errorf("%s: %s mode %v, want 0644", s.name, rel, st.Mode().Perm())
			}
		}
	}
	// Nothing but our two files: no temp files left behind.
	var all []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			all = append(all, rel)
		}
		return err
	})
	if len(all) != 2 {
		t.Errorf("files under %s: %v, want only the two rendered ones", dir, all)
	}
	if _, err := WriteNetworkdFiles(dir, nil); err == nil {
		t.Error("no error for an empty MAC")
	}
}

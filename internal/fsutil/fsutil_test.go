package fsutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zoo.cfg")
	steps := []struct {
		name        string
		data        string
		perm        os.FileMode
		wantChanged bool
	}{
		{"create", "a=1\n", 0o644, true},
		{"same bytes", "a=1\n", 0o644, false},
		{"new bytes", "a=2\n", 0o644, true},
		{"mode only", "a=2\n", 0o600, true},
		{"again", "a=2\n", 0o600, false},
	}
	for _, s := range steps {
		var before time.Time
		if st, err := os.Stat(path); err == nil {
			before = st.ModTime()
		}
		changed, err := WriteFile(path, []byte(s.data), s.perm)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if changed != s.wantChanged {
			t.Errorf("%s: changed = %v, want %v", s.name, changed, s.wantChanged)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != s.data || st.Mode().Perm() != s.perm {
			t.Errorf("%s: file = %q %v", s.name, got, st.Mode().Perm())
		}
		if !s.wantChanged && !st.ModTime().Equal(before) {
			t.Errorf("%s: unchanged file was rewritten", s.name)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	if _, err := WriteFile(filepath.Join(t.TempDir(), "no", "such"), []byte("x"), 0o644); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

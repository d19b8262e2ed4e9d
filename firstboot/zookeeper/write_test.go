package zookeeper

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// requireRoot skips tests that chown.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: chowns files to the zookeeper user")
	}
}

// testZK is an owner no real user has, so a test cannot pass by accident.
var testZK = Owner{UID: 4242, GID: 4343}

// testFiles renders node 1 of a 3-node ensemble into a layout under a temp
// dir whose "mount point" exists, as the disk step leaves it.
func testFiles(t *testing.T) Files {
	t.Helper()
	dir := t.TempDir()
	mount := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mount, 0o755); err != nil {
		t.Fatal(err)
	}
	l := DefaultLayout(mount)
	l.ConfDir = filepath.Join(dir, "etc", "zkaas", "zookeeper")
	cfg := testEnsemble(3)
	f, err := Render(cfg, 1, cfg.Nodes[0].IP, l, Material{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func assertOwned(t *testing.T, path string, mode fs.FileMode, o Owner) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != mode || int(sys.Uid) != o.UID || int(sys.Gid) != o.GID {
		t.Errorf("%s: %v %d:%d, want %v %d:%d", path, st.Mode().Perm(), sys.Uid, sys.Gid, mode, o.UID, o.GID)
	}
}

func TestWrite(t *testing.T) {
	requireRoot(t)
	f := testFiles(t)
	l := f.Layout

	changed, err := Write(f, testZK)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		l.ConfDir,
		l.DataDir, filepath.Join(l.DataDir, "version-2"),
		l.DataLogDir, filepath.Join(l.DataLogDir, "version-2"),
		l.LogDir,
		l.MyIDPath(), l.ZooCfgPath(), l.JavaEnvPath(),
	}
	if !slices.Equal(changed, want) {
		t.Errorf("first Write changed %q, want %q", changed, want)
	}
	for _, c := range []struct {
		path  string
		mode  fs.FileMode
		owner Owner
		data  []byte
	}{
		{l.ConfDir, 0o755, root, nil},
		{l.ZooCfgPath(), 0o644, root, f.ZooCfg},
		{l.JavaEnvPath(), 0o644, root, f.JavaEnv},
		{l.DataDir, 0o750, testZK, nil},
		{filepath.Join(l.DataDir, "version-2"), 0o750, testZK, nil},
		{l.DataLogDir, 0o750, testZK, nil},
		{filepath.Join(l.DataLogDir, "version-2"), 0o750, testZK, nil},
		// The GC log's directory: the JVM, running as zookeeper, opens
		// gc.log there and refuses to start without it.
		{l.LogDir, 0o750, testZK, nil},
		{l.MyIDPath(), 0o644, testZK, []byte("1\n")},
	} {
		assertOwned(t, c.path, c.mode, c.owner)
		if c.data != nil {
			if got, _ := os.ReadFile(c.path); string(got) != string(c.data) {
				t.Errorf("%s = %q, want %q", c.path, got, c.data)
			}
		}
	}

	if changed, err := Write(f, testZK); err != nil || len(changed) != 0 {
		t.Errorf("second Write: changed %q, err %v; want nothing", changed, err)
	}

	// Drift is repaired, and only the drifted paths are reported.
	if err := os.Chown(l.MyIDPath(), 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(l.DataDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.ZooCfgPath(), []byte("edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err = Write(f, testZK)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{l.DataDir, l.MyIDPath(), l.ZooCfgPath()}; !slices.Equal(changed, want) {
		t.Errorf("repairing Write changed %q, want %q", changed, want)
	}
	assertOwned(t, l.MyIDPath(), 0o644, testZK)
	assertOwned(t, l.DataDir, 0o750, testZK)
	if got, _ := os.ReadFile(l.ZooCfgPath()); string(got) != string(f.ZooCfg) {
		t.Errorf("zoo.cfg not restored: %q", got)
	}
}

func TestWriteNeedsMountedVolume(t *testing.T) {
	requireRoot(t)
	f := testFiles(t)
	mount := filepath.Dir(f.Layout.DataDir)
	if err := os.Remove(mount); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(f, testZK); err == nil {
		t.Fatal("Write succeeded without the volume's mount point")
	}
	if _, err := os.Stat(mount); err == nil {
		t.Errorf("Write created %s: data would land on the root disk", mount)
	}
}

func TestWriteRefusesSymlinkedDataDir(t *testing.T) {
	requireRoot(t)
	f := testFiles(t)
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, f.Layout.DataDir); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(f, testZK); err == nil {
		t.Fatal("Write accepted a symlink as the data dir")
	}
}

package provisioner

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestDocsUpToDate regenerates the docs partials (from Config's field
// comments) and the rendered .web-docs into a temporary directory, as
// config.go's go:generate line does, and fails when the committed files
// differ: a changed comment would otherwise never reach the docs Packer
// users read.
func TestDocsUpToDate(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command("go", "run", "../internal/docgen", "-plugin", "..", "-out", out, "provisioner/config.go")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docgen: %v\n%s", err, b)
	}
	for _, dir := range []string{"docs-partials", ".web-docs"} {
		fresh, committed := tree(t, filepath.Join(out, dir)), tree(t, filepath.Join("..", dir))
		delete(committed, "metadata.hcl") // written by hand
		for _, name := range slices.Sorted(maps.Keys(fresh)) {
			if c, ok := committed[name]; !ok {
				t.Errorf("plugin/%s/%s is missing", dir, name)
			} else if !bytes.Equal(c, fresh[name]) {
				t.Errorf("plugin/%s/%s is stale", dir, name)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(committed)) {
			if _, ok := fresh[name]; !ok {
				t.Errorf("plugin/%s/%s is no longer generated", dir, name)
			}
		}
	}
	if t.Failed() {
		t.Log("run `go generate ./plugin/...` and commit the result")
	}
}

// tree reads every file under dir, by slash-separated relative path.
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Package golden compares rendered output with files under testdata/.
// `go test ./pkg -update` rewrites them from the current output; review the
// diff before committing it.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/ from the current output")

// Check fails t unless got equals the golden file at path (relative to the
// package directory, e.g. testdata/x.golden), naming the first line that
// differs.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it after review): %s\n--- got\n%s", path, firstDiff(string(got), string(want)), got)
	}
}

// CheckNamed is Check on testdata/<name>.golden.
func CheckNamed(t testing.TB, name, got string) {
	t.Helper()
	Check(t, filepath.Join("testdata", name+".golden"), []byte(got))
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got %q\nwant %q", i+1, gl, wl)
		}
	}
	return "same lines, different bytes"
}

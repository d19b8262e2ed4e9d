package localbake

import (
	"os"
	"path/filepath"
	"testing"
)

// TestInputs: the fingerprint changes with what goes into an image and only
// with that.
func TestInputs(t *testing.T) {
	repo := t.TempDir()
	write := func(rel, data string) {
		t.Helper()
		p := filepath.Join(repo, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"roles/java/role.yaml", "packer/build.pkr.hcl", "plugin/main.go", "firstboot/boot/boot.go",
		"ensemble/config.go", "internal/golden/golden.go", "go.mod", "go.sum", "ensemble.yaml"} {
		write(f, "v1 "+f)
	}
	cfg := filepath.Join(repo, "ensemble.yaml")
	fp := func() string {
		t.Helper()
		s, err := Inputs(repo, cfg, "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := fp()
	write("firstboot/boot/boot_test.go", "tests do not count")
	write("ensemble/testdata/x.yaml", "nor testdata")
	write("README.md", "nor docs outside the inputs")
	if fp() != base {
		t.Error("fingerprint changed with a test file, testdata or a README")
	}
	for _, f := range []string{"roles/java/role.yaml", "packer/build.pkr.hcl", "firstboot/boot/boot.go", "ensemble.yaml", "go.sum"} {
		write(f, "v2 "+f)
		next := fp()
		if next == base {
			t.Errorf("fingerprint unchanged after editing %s", f)
		}
		base = next
	}
	if s, _ := Inputs(repo, cfg, "zookeeper.version=3.9.2"); s == base {
		t.Error("fingerprint ignores variables")
	}
}

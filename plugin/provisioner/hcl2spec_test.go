package provisioner

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestHCL2SpecUpToDate regenerates config.hcl2spec.go with packer-sdc (the
// module's tool) into a temporary directory and fails when the committed
// file differs: a Config field without its HCL2 spec is silently ignored
// by Packer.
func TestHCL2SpecUpToDate(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("go", "tool", "packer-sdc", "mapstructure-to-hcl2", "-type", "Config")
	// packer-sdc loads the package in the working directory and writes next
	// to $GOFILE, which is pointed at the temporary directory.
	cmd.Env = append(os.Environ(), "GOFILE="+filepath.Join(dir, "config.go"), "GOPACKAGE=provisioner")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("packer-sdc: %v\n%s", err, out)
	}
	fresh, err := os.ReadFile(filepath.Join(dir, "config.hcl2spec.go"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("config.hcl2spec.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Errorf("config.hcl2spec.go is stale: run `go generate ./plugin/...` and commit the result")
	}
}

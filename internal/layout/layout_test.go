package layout

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// deps lists the packages pkg depends on (itself included) when built for
// platform, without building anything.
func deps(t *testing.T, pkg, platform string) []string {
	t.Helper()
	goos, goarch, _ := strings.Cut(platform, "/")
	cmd := exec.Command("go", "list", "-deps", Module+"/"+pkg)
	cmd.Dir = "../.."
	cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s for %s: %v\n%s", pkg, platform, err, stderr)
	}
	return strings.Fields(string(out))
}

func within(dep, pkg string) bool {
	return dep == pkg || strings.HasPrefix(dep, pkg+"/")
}

func TestProductsDoNotDependOnTheRig(t *testing.T) {
	for _, p := range Products {
		for _, platform := range p.Platforms {
			for _, dep := range deps(t, p.Pkg, platform) {
				for _, rig := range Rig {
					if within(dep, Module+"/"+rig) {
						t.Errorf("%s (%s) depends on rig package %s", p.Pkg, platform, dep)
					}
				}
			}
		}
	}
}

func TestPurePackagesImportNothingLinuxOnly(t *testing.T) {
	for _, pkg := range Pure {
		for _, dep := range deps(t, pkg, "darwin/arm64") {
			for _, bad := range LinuxOnly {
				if within(dep, bad) {
					t.Errorf("%s depends on %s: it must build on every OS the plugin does", pkg, dep)
				}
			}
		}
	}
}

func TestOrchestratorsImportNoSDK(t *testing.T) {
	for _, pkg := range Orchestrators {
		cmd := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, Module+"/"+pkg)
		cmd.Dir = "../.."
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, imp := range strings.Fields(string(out)) {
			for _, sdk := range SDKs {
				if within(imp, sdk) {
					t.Errorf("%s imports %s: orchestration goes through the domain packages", pkg, imp)
				}
			}
		}
	}
}

// The lists above must name packages that exist, or the checks pass
// vacuously after a rename.
func TestListedPackagesExist(t *testing.T) {
	all := deps(t, "...", "linux/amd64")
	var listed []string
	for _, p := range Products {
		listed = append(listed, p.Pkg)
	}
	listed = append(append(append(listed, Pure...), Rig...), Orchestrators...)
	for _, pkg := range listed {
		if !slices.ContainsFunc(all, func(d string) bool { return within(d, Module+"/"+pkg) }) {
			t.Errorf("%s is listed in package layout but is not a package of the module", pkg)
		}
	}
}

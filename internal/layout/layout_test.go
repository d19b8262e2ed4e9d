package layout

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	for _, l := range LinuxOnly {
		if p, ok := strings.CutPrefix(l, Module+"/"); ok {
			listed = append(listed, p)
		}
	}
	for _, pkg := range listed {
		if !slices.ContainsFunc(all, func(d string) bool { return within(d, Module+"/"+pkg) }) {
			t.Errorf("%s is listed in package layout but is not a package of the module", pkg)
		}
	}
}

// The README's layout tables are the map a newcomer reads first: every path
// they name exists, and every package of the module is under a row.
func TestReadmeLayoutMatchesTheTree(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var rows []string
	for _, m := range regexp.MustCompile("(?m)^\\| (`[^|]+`) \\|").FindAllStringSubmatch(section, -1) {
		for _, p := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(m[1], -1) {
			path := strings.TrimSuffix(p[1], "/")
			if _, err := os.Stat(filepath.Join("../..", path)); err != nil {
				t.Errorf("README layout names %s: %v", p[1], err)
			}
			rows = append(rows, path)
		}
	}
	if len(rows) < 10 {
		t.Fatalf("found only %d rows in the README's layout tables: %q", len(rows), rows)
	}
	cmd := exec.Command("go", "list", "-f", "{{.Dir}}", Module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(rows, func(r string) bool { return rel == r || strings.HasPrefix(rel, r+"/") }) {
			t.Errorf("package %s is under no row of the README's layout tables", rel)
		}
	}
}

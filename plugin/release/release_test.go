package release

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/zkaas/zkaas/plugin/version"
)

// repo is the module root, from this package's directory.
const repo = "../.."

func TestNames(t *testing.T) {
	tests := []struct {
		p         Platform
		zip, bin  string
		sumsOfVer string
	}{
		{Platform{"linux", "amd64"}, "packer-plugin-zkaas_v1.2.3_x5.0_linux_amd64.zip", "packer-plugin-zkaas_v1.2.3_x5.0_linux_amd64", "packer-plugin-zkaas_v1.2.3_SHA256SUMS"},
		{Platform{"darwin", "arm64"}, "packer-plugin-zkaas_v1.2.3_x5.0_darwin_arm64.zip", "packer-plugin-zkaas_v1.2.3_x5.0_darwin_arm64", "packer-plugin-zkaas_v1.2.3_SHA256SUMS"},
		{Platform{"windows", "amd64"}, "packer-plugin-zkaas_v1.2.3_x5.0_windows_amd64.zip", "packer-plugin-zkaas_v1.2.3_x5.0_windows_amd64.exe", "packer-plugin-zkaas_v1.2.3_SHA256SUMS"},
	}
	for _, tt := range tests {
		if got := ZipName("1.2.3", tt.p); got != tt.zip {
			t.Errorf("ZipName(%s) = %s, want %s", tt.p, got, tt.zip)
		}
		if got := BinaryName("1.2.3", tt.p); got != tt.bin {
			t.Errorf("BinaryName(%s) = %s, want %s", tt.p, got, tt.bin)
		}
		if got := SumsName("1.2.3"); got != tt.sumsOfVer {
			t.Errorf("SumsName = %s, want %s", got, tt.sumsOfVer)
		}
	}
	if len(Platforms) != 6 {
		t.Errorf("%d platforms, want linux, darwin, windows × amd64, arm64", len(Platforms))
	}
}

// TestDescribe builds the plugin as a developer does (go build) and as a
// release does, and checks what each tells Packer: the dev build is a
// prerelease Packer loads only when installed by path, the release build
// the plain version `packer init` resolves.
func TestDescribe(t *testing.T) {
	host := Platform{runtime.GOOS, runtime.GOARCH}
	dir := t.TempDir()
	dev := filepath.Join(dir, Name)
	cmd := exec.Command("go", "build", "-o", dev, Package)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rel := filepath.Join(dir, BinaryName(Version(), host))
	if err := buildBinary(context.Background(), repo, host, rel); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, bin, version string
	}{
		{"dev", dev, version.Version + "-" + version.VersionPrerelease},
		{"release", rel, version.Version},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Describe(context.Background(), tt.bin)
			if err != nil {
				t.Fatal(err)
			}
			if d.Version != tt.version || d.APIVersion != "x5.0" || d.SDKVersion == "" {
				t.Errorf("describe = version %q, api_version %q, sdk_version %q; want %q, x5.0, set", d.Version, d.APIVersion, d.SDKVersion, tt.version)
			}
			// The provisioner is the plugin's default component:
			// provisioner "zkaas" in templates.
			if len(d.Provisioners) != 1 || d.Provisioners[0] != "-packer-default-plugin-name-" {
				t.Errorf("describe provisioners = %q, want the default component only", d.Provisioners)
			}
			if err := PluginCheck(context.Background(), repo, tt.bin); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestBuild builds a release for this machine's platform and opens it as
// Packer's installer does: the checksum file names the zip and its
// sha256, the zip holds the binary under the name Packer looks for, and
// that binary passes `packer-sdc plugin-check`.
func TestBuild(t *testing.T) {
	host := Platform{runtime.GOOS, runtime.GOARCH}
	dist := t.TempDir()
	stale := filepath.Join(dist, Name+"_v0.0.9_SHA256SUMS")
	if err := os.WriteFile(stale, []byte("old release\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Build(context.Background(), Options{Repo: repo, Dist: dist, Platforms: []Platform{host}, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked == nil || *res.Checked != host {
		t.Errorf("Checked = %v, want %s", res.Checked, host)
	}
	entries, _ := os.ReadDir(dist)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{SumsName(Version()), ZipName(Version(), host)} // ReadDir sorts by name
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("dist holds %q, want %q (the stale release and the staging directory gone)", names, want)
	}

	sums, err := os.ReadFile(res.Sums)
	if err != nil {
		t.Fatal(err)
	}
	zipData, err := os.ReadFile(res.Zips[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(zipData)
	if want := hex.EncodeToString(sum[:]) + "  " + ZipName(Version(), host) + "\n"; string(sums) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}

	zr, err := zip.OpenReader(res.Zips[0])
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != BinaryName(Version(), host) {
		t.Fatalf("zip holds %v, want only %s", zr.File, BinaryName(Version(), host))
	}
	if m := zr.File[0].Mode(); m.Perm() != 0o755 {
		t.Errorf("binary mode in zip = %v, want 0755", m)
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), zr.File[0].Name)
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Check(context.Background(), repo, bin, Version()); err != nil {
		t.Error(err)
	}
}

// TestPluginCheckRefuses shows plugin-check is a real gate: a binary not
// named packer-plugin-* fails it.
func TestPluginCheckRefuses(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "zkaas")
	cmd := exec.Command("go", "build", "-o", bin, Package)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	err := PluginCheck(context.Background(), repo, bin)
	if err == nil || !strings.Contains(err.Error(), "plugin name is not valid") {
		t.Errorf("PluginCheck(zkaas) = %v, want the name refused", err)
	}
}

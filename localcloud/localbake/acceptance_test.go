package localbake

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/plugin/role"
)

// zkVersion is the version of the test release tarball the acceptance test
// serves; its sha512 is computed, not the real release's.
const zkVersion = "3.9.3"

// TestAcceptance is the bake end to end: a real `packer build` of the
// local build in packer/ (LocalBuild) with the real plugin against a build host, ZooKeeper
// from a release tarball served inside the namespaces, then checks inside
// the image, a second build that must change nothing, a build with a wrong
// sha512 that must fail naming the file, and the export.
//
// It needs root and takes about a minute with ~/.cache/zkaas warm (Packer
// built, root file system cached); the first run adds about three minutes.
func TestAcceptance(t *testing.T) {
	if os.Getenv("ZKAAS_ACCEPTANCE") != "1" {
		t.Skip("set ZKAAS_ACCEPTANCE=1 for the real packer build against a local build host (root, ~1 min with a warm cache)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, chroot")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	packer, err := Packer(ctx, cache, log)
	if err != nil {
		t.Fatal(err)
	}
	rootfs, err := Rootfs(ctx, cache, log)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	pluginPath := filepath.Join(work, "plugins")
	plugin := filepath.Join(work, "packer-plugin-zkaas")
	firstboot := filepath.Join(work, "zkaas-firstboot")
	if err := BuildPlugin(ctx, repo, plugin); err != nil {
		t.Fatal(err)
	}
	if err := InstallPlugin(ctx, packer, plugin, pluginPath); err != nil {
		t.Fatal(err)
	}
	if err := EnsureAmazonPlugin(ctx, packer, cache, pluginPath, log); err != nil {
		t.Fatal(err)
	}
	if err := BuildFirstboot(ctx, repo, runtime.GOARCH, firstboot); err != nil {
		t.Fatal(err)
	}

	h, err := StartHost(ctx, HostConfig{Tarball: rootfs, AptCache: filepath.Join(cache, "apt-archives")}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)

	// The test release, served from Packer's namespace at 198.18.0.1.
	mirror := filepath.Join(work, "mirror")
	sha := writeRelease(t, mirror, zkVersion)
	l, err := h.Listen(8080)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(mirror)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	build := func(name, sha string) (string, error) {
		var out bytes.Buffer
		start := time.Now()
		err := h.Run(ctx, Build{
			Repo: repo, Packer: packer, PluginPath: pluginPath, Firstboot: firstboot,
			EnsembleConfig: filepath.Join(repo, "ensemble/testdata/ensemble.yaml"),
			Manifest:       filepath.Join(work, name+".json"),
			Vars: []string{
				"zookeeper_source=tarball",
				"zookeeper_version=" + zkVersion,
				"zookeeper_sha512=" + sha,
				"zookeeper_mirror=http://" + PackerAddr + ":8080",
			},
			Output: &out,
		})
		t.Logf("packer build %s: %s, err %v", name, time.Since(start).Round(time.Millisecond), err)
		return out.String(), err
	}

	out, err := build("first", sha)
	if err != nil {
		t.Fatalf("first build: %v\n%s\nsshd log:\n%s", err, out, h.Log())
	}
	first := readManifest(t, filepath.Join(work, "first.json"))
	if first.Changed == 0 {
		t.Errorf("the first build changed nothing:\n%s", out)
	}
	checkImage(t, ctx, h, firstboot, sha)

	out, err = build("second", sha)
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	second := readManifest(t, filepath.Join(work, "second.json"))
	if second.Changed != 0 {
		t.Errorf("the second build changed %d steps; want none:\n%s", second.Changed, out)
	}
	if a, b := fmt.Sprint(first.Entries), fmt.Sprint(second.Entries); a != b {
		t.Errorf("manifests differ between the builds:\n%s\n%s", a, b)
	}

	wrong := strings.Repeat("0", 128)
	out, err = build("wrong-sha", wrong)
	if err == nil {
		t.Fatalf("a build with a wrong sha512 passed:\n%s", out)
	}
	if want := "sha512 mismatch for apache-zookeeper-" + zkVersion + "-bin.tar.gz"; !strings.Contains(out, want) {
		t.Errorf("the failed build does not say %q:\n%s", want, out)
	}
	// The failed download left the installed release alone.
	if got := hostOutput(t, ctx, h, "readlink", "/opt/zookeeper"); got != "/opt/zookeeper-"+zkVersion {
		t.Errorf("after the failed build /opt/zookeeper -> %q", got)
	}

	h.Stop()
	start := time.Now()
	img, err := Export(ctx, h, filepath.Join(work, "second.json"), filepath.Join(work, "image"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exported %d MiB in %s", img.Size>>20, time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(h.Root, "root/.ssh/authorized_keys")); !os.IsNotExist(err) {
		t.Errorf("the build's SSH key is in the image")
	}
	if left, _ := os.ReadDir(filepath.Join(h.Root, "tmp")); len(left) > 0 {
		t.Errorf("the image's /tmp holds %d entries from the build, %s first", len(left), left[0].Name())
	}
}

// checkImage looks inside the provisioned build host.
func checkImage(t *testing.T, ctx context.Context, h *Host, firstboot, sha string) {
	t.Helper()
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"readlink", "/opt/zookeeper"}, "/opt/zookeeper-" + zkVersion},
		{[]string{"cat", "/opt/zookeeper/.zkaas-sha512"}, sha}, // the pin, recorded
		{[]string{"sh", "-c", "java -version 2>&1 | head -1"}, `openjdk version "17.`},
		{[]string{"sha256sum", "/usr/local/bin/zkaas-firstboot"}, fileSum(t, firstboot)},
		{[]string{"/usr/local/bin/zkaas-firstboot", "validate", "-config", "/etc/zkaas/ensemble.yaml"}, "/etc/zkaas/ensemble.yaml: ok (3 nodes)"},
		{[]string{"systemctl", "--root=/", "is-enabled", "zkaas-firstboot.service", "zookeeper.service"}, "enabled\nenabled"},
		{[]string{"sh", "-c", "systemd-analyze verify --man=no zkaas-firstboot.service zookeeper.service 2>&1; echo rc=$?"}, "rc=0"},
		{[]string{"stat", "-c", "%U:%G:%a", "/opt/zookeeper-" + zkVersion + "/lib/zookeeper-" + zkVersion + ".jar"}, "root:root:644"},
		{[]string{"id", "zookeeper"}, "(zookeeper) gid="},
	} {
		got := hostOutput(t, ctx, h, c.argv...)
		if !strings.Contains(got, c.want) || c.want == "rc=0" && got != "rc=0" {
			t.Errorf("%s:\n got %q\nwant %q", strings.Join(c.argv, " "), got, c.want)
		}
	}
}

func hostOutput(t *testing.T, ctx context.Context, h *Host, argv ...string) string {
	t.Helper()
	cmd, err := h.Command(ctx, argv...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// writeRelease writes zookeeper-<v>/apache-zookeeper-<v>-bin.tar.gz under
// dir, laid out like the Apache release, and returns its sha512.
func writeRelease(t *testing.T, dir, v string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	top := "apache-zookeeper-" + v + "-bin/"
	for _, f := range []struct {
		name string
		mode int64
		data string
	}{
		{"bin/zkServer.sh", 0o755, "#!/bin/sh\necho test release\n"},
		{"conf/logback.xml", 0o644, "<configuration/>\n"},
		{"lib/zookeeper-" + v + ".jar", 0o644, "not really a jar\n"},
		{"lib/zookeeper-jute-" + v + ".jar", 0o644, "not really a jar either\n"},
	} {
		hdr := &tar.Header{Name: top + f.name, Mode: f.mode, Size: int64(len(f.data)), Uid: 1000, Gid: 1000, ModTime: time.Unix(1700000000, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "zookeeper-"+v, "apache-zookeeper-"+v+"-bin.tar.gz")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(buf.Bytes())
	return hex.EncodeToString(sum[:])
}

func readManifest(t *testing.T, p string) role.Manifest {
	t.Helper()
	var m role.Manifest
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	sum, _, err := fileDigest(p)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

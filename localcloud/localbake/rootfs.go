package localbake

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Suite is the Debian release of the build host.
const Suite = "bookworm"

// basePackages are what a Debian cloud image has that debootstrap's minbase
// lacks and the bake relies on: systemd as init (units, systemctl,
// systemd-analyze), sshd for Packer, sudo, CA certificates. Java, curl and
// ZooKeeper are the roles' business.
var basePackages = []string{"systemd-sysv", "openssh-server", "sudo", "ca-certificates", "iproute2"}

// rootfsRev changes when configureRootfs does, so a cached tarball made
// the old way is not reused.
const rootfsRev = "2"

// Rootfs returns a tarball of a minimal Debian 12 root file system, made
// with debootstrap the first time (a few minutes) and cached in cacheDir.
// Its name carries a digest of the package list, so changing the list
// makes a new one.
func Rootfs(ctx context.Context, cacheDir string, log *slog.Logger) (string, error) {
	sum := sha256.Sum256([]byte(rootfsRev + " " + Suite + " " + strings.Join(basePackages, ",")))
	tarball := filepath.Join(cacheDir, fmt.Sprintf("rootfs-%s-%s.tar", Suite, hex.EncodeToString(sum[:4])))
	if _, err := os.Stat(tarball); err == nil {
		return tarball, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("rootfs: debootstrap is not installed (apt-get install debootstrap)")
	}
	mirror, err := Mirror()
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	dir, err := os.MkdirTemp(cacheDir, "debootstrap-")
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	log.Info("debootstrap (a few minutes, once)", "suite", Suite, "mirror", mirror, "dir", dir)
	if err := run(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(basePackages, ","), Suite, dir, mirror); err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	if err := configureRootfs(dir); err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	if err := run(ctx, "tar", "--numeric-owner", "--xattrs", "-C", dir, "-cf", tarball+".tmp", "."); err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	if err := os.Rename(tarball+".tmp", tarball); err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	log.Info("root file system cached", "tarball", tarball, "duration", time.Since(start).Round(time.Second))
	return tarball, nil
}

// configureRootfs makes the fresh root file system a stand-in for a cloud
// base image: the host's apt sources for Suite (the mirrors this machine
// reaches, security updates included), no SSH host keys (each build host
// gets fresh ones), no package caches.
func configureRootfs(dir string) error {
	if err := os.Remove(filepath.Join(dir, "etc/apt/sources.list")); err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, src := range aptSourceFiles() {
		data, err := os.ReadFile(src)
		if err != nil || !strings.Contains(string(data), Suite) {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, src), data, 0o644); err != nil {
			return err
		}
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "etc/ssh/ssh_host_*"))
	caches, _ := filepath.Glob(filepath.Join(dir, "var/cache/apt/archives/*.deb"))
	lists, _ := filepath.Glob(filepath.Join(dir, "var/lib/apt/lists/*_*"))
	for _, p := range append(append(keys, caches...), lists...) {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return nil
}

// aptSourceFiles lists the host's apt source files apt reads.
func aptSourceFiles() []string {
	files := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		more, _ := filepath.Glob(pat)
		files = append(files, more...)
	}
	return files
}

// Mirror is the Debian mirror of the host's apt sources for Suite (the
// first one listed), in one-line or deb822 format.
func Mirror() (string, error) {
	for _, f := range aptSourceFiles() {
		if m := mirrorIn(f); m != "" {
			return m, nil
		}
	}
	return "", fmt.Errorf("no apt source for %s in /etc/apt/sources.list{,.d}", Suite)
}

func mirrorIn(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var uri string
	var suites []string
	sc := bufio.NewScanner(f)
	flush := func() string {
		for _, s := range suites {
			if s == Suite && uri != "" {
				return uri
			}
		}
		uri, suites = "", nil
		return ""
	}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case line == "":
			if m := flush(); m != "" {
				return m
			}
		case strings.HasPrefix(line, "#"):
		case fields[0] == "deb" && len(fields) >= 3:
			// deb [options] uri suite components
			i := 1
			for i < len(fields) && strings.HasPrefix(fields[i], "[") {
				for !strings.HasSuffix(fields[i], "]") && i+1 < len(fields) {
					i++
				}
				i++
			}
			if i+1 < len(fields) && fields[i+1] == Suite {
				return fields[i]
			}
		case strings.HasPrefix(line, "URIs:") && len(fields) >= 2:
			uri = fields[1]
		case strings.HasPrefix(line, "Suites:"):
			suites = fields[1:]
		}
	}
	return flush()
}

// run runs a command, returning its output in the error when it fails.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out, 40))
	}
	return nil
}

// tail keeps the last n lines of command output for an error message.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

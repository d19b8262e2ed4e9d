package systemd

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/zookeeper"
)

func TestUnits(t *testing.T) {
	for _, name := range Names() {
		b, err := Unit(name)
		if err != nil || !bytes.Contains(b, []byte("\n[Service]\n")) {
			t.Errorf("Unit(%s) = %d bytes, %v", name, len(b), err)
		}
	}
	if _, err := Unit("sshd.service"); err == nil {
		t.Error("Unit returned a unit this package does not ship")
	}
}

// TestUnitsAgreeWithFirstboot pins the paths the units share with the code
// that renders and reads them.
func TestUnitsAgreeWithFirstboot(t *testing.T) {
	if mp := ensemble.Default().Volume.MountPoint; mp != ensemble.DefaultMountPoint {
		t.Errorf("config's default mount point %s != ensemble.DefaultMountPoint %s", mp, ensemble.DefaultMountPoint)
	}
	layout := zookeeper.DefaultLayout(ensemble.DefaultMountPoint)
	if in := zookeeper.DefaultInstall(); in.Unit != filepath.Join(UnitDir, ZooKeeper) || filepath.Dir(in.DistroDropIn) != filepath.Join(UnitDir, ZooKeeper+".d") {
		t.Errorf("zookeeper.DefaultInstall() = %+v: not where the bake installs %s and its drop-ins", in, ZooKeeper)
	}
	fb, _ := Unit(Firstboot)
	zk, _ := Unit(ZooKeeper)
	rd, _ := Unit(Ready)
	uh, _ := Unit(Unhealthy)
	ex, _ := Unit(Exporter)
	onFailure := "OnFailure=" + strings.TrimSuffix(Unhealthy, "@.service") + "@%n.service\n"
	for _, c := range []struct {
		unit []byte
		name string
		line string
	}{
		{fb, Firstboot, "ExecStart=/usr/local/bin/zkaas-firstboot run -config " + ensemble.DefaultPath + "\n"},
		{fb, Firstboot, "Before=" + ZooKeeper + "\n"},
		{zk, ZooKeeper, "Requires=" + Firstboot + "\n"},
		{zk, ZooKeeper, "After=" + Firstboot + "\n"},
		{zk, ZooKeeper, "EnvironmentFile=" + layout.JavaEnvPath() + "\n"},
		{zk, ZooKeeper, " org.apache.zookeeper.server.quorum.QuorumPeerMain " + layout.ZooCfgPath() + "\n"},
		{zk, ZooKeeper, "ReadWritePaths=" + ensemble.DefaultMountPoint + "\n"},
		// Every failure reaches the Auto Scaling group.
		{fb, Firstboot, onFailure},
		{zk, ZooKeeper, onFailure},
		{uh, Unhealthy, "ExecStart=/usr/local/bin/zkaas-firstboot unhealthy -unit %i -config " + ensemble.DefaultPath + "\n"},
		{rd, Ready, "ExecStart=/usr/local/bin/zkaas-firstboot ready -config " + ensemble.DefaultPath + "\n"},
		{rd, Ready, "Requires=" + ZooKeeper + "\n"},
		{rd, Ready, "After=" + ZooKeeper + "\n"},
		// The exporter binds the ENI address run claimed.
		{ex, Exporter, "ExecStart=/usr/local/bin/zkaas-firstboot exporter -config " + ensemble.DefaultPath + "\n"},
		{ex, Exporter, "Requires=" + Firstboot + "\n"},
		{ex, Exporter, "After=" + Firstboot + "\n"},
		{ex, Exporter, "Restart=on-failure\n"},
	} {
		if !bytes.Contains(c.unit, []byte(c.line)) {
			t.Errorf("%s lacks %q", c.name, strings.TrimSpace(c.line))
		}
	}
}

func TestReadWriteDropIn(t *testing.T) {
	if b, err := ReadWriteDropIn(ensemble.DefaultMountPoint); b != nil || err != nil {
		t.Errorf("default mount point: drop-in %q, %v; want none", b, err)
	}
	b, err := ReadWriteDropIn("/data/zk")
	if err != nil || !bytes.Contains(b, []byte("\nReadWritePaths=\nReadWritePaths=/data/zk\n")) {
		t.Errorf("drop-in = %q, %v", b, err)
	}
	for _, bad := range []string{"data/zk", "/data/zk/", "/data/my zk", "/data/%n"} {
		if _, err := ReadWriteDropIn(bad); err == nil {
			t.Errorf("ReadWriteDropIn(%q) accepted", bad)
		}
	}
}

// analyzeRoot is a file system root in which systemd-analyze can load the
// units: the host's own units (for the targets they reference), stub
// executables for the commands the units run, and the units under test.
func analyzeRoot(t *testing.T, units map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	var hostUnits string
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "multi-user.target")); err == nil {
			hostUnits = d
			break
		}
	}
	if hostUnits == "" {
		t.Skip("no systemd units on this host to resolve targets against")
	}
	dst := filepath.Join(root, "usr/lib/systemd/system")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", hostUnits+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("copy host units: %v\n%s", err, out)
	}
	for _, bin := range []string{"/usr/local/bin/zkaas-firstboot", "/usr/bin/java"} {
		write(t, filepath.Join(root, bin), []byte("#!/bin/sh\n"), 0o755)
	}
	for name, data := range units {
		write(t, filepath.Join(root, UnitDir, name), data, 0o644)
	}
	return root
}

func write(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	return path
}

// TestVerify runs systemd-analyze verify on the shipped units and on broken
// copies. Clean means exit status 0 and no output at all: verify exits 0 on
// an unknown directive or an unparsable value and only prints a warning, so
// the status alone would pass a typo.
func TestVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	fb, _ := Unit(Firstboot)
	zk, _ := Unit(ZooKeeper)
	rd, _ := Unit(Ready)
	uh, _ := Unit(Unhealthy)
	ex, _ := Unit(Exporter)
	dropIn, err := ReadWriteDropIn("/data/zk")
	if err != nil {
		t.Fatal(err)
	}
	dropInPath := ZooKeeper + ".d/" + DropInName
	replace := func(unit []byte, old, new string) []byte {
		if !bytes.Contains(unit, []byte(old)) {
			t.Fatalf("unit has no %q to break", old)
		}
		return bytes.Replace(unit, []byte(old), []byte(new), 1)
	}

	tests := []struct {
		name  string
		units map[string][]byte
		want  string // "" for clean, else a substring of the complaint
	}{
		{"shipped units", map[string][]byte{Firstboot: fb, ZooKeeper: zk, Ready: rd, Unhealthy: uh, Exporter: ex}, ""},
		{"typo'd exporter", map[string][]byte{Firstboot: fb, ZooKeeper: zk, Exporter: replace(ex, "PrivateUsers=yes", "PrivateUser=yes")}, "Unknown key 'PrivateUser'"},
		{"typo'd ready", map[string][]byte{Firstboot: fb, ZooKeeper: zk, Ready: replace(rd, "After=zookeeper.service", "Afterr=zookeeper.service"), Unhealthy: uh}, "Unknown key 'Afterr'"},
		{"with the mount-point drop-in", map[string][]byte{Firstboot: fb, ZooKeeper: zk, dropInPath: dropIn}, ""},
		{"typo'd directive", map[string][]byte{Firstboot: replace(fb, "RemainAfterExit=", "RemainAfterExits="), ZooKeeper: zk}, "Unknown key 'RemainAfterExits'"},
		{"typo'd section", map[string][]byte{Firstboot: fb, ZooKeeper: replace(zk, "[Install]", "[Instal]")}, "Instal"},
		{"bad value", map[string][]byte{Firstboot: fb, ZooKeeper: replace(zk, "Restart=on-failure", "Restart=on-failur")}, "on-failur"},
		{"missing binary", map[string][]byte{Firstboot: replace(fb, "bin/zkaas-firstboot run", "bin/zkaas-firstbot run"), ZooKeeper: zk}, "zkaas-firstbot is not executable"},
		{"broken drop-in", map[string][]byte{Firstboot: fb, ZooKeeper: zk, dropInPath: []byte("[Service]\nReadWritePath=/data/zk\n")}, "Unknown key 'ReadWritePath'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := analyzeRoot(t, tt.units)
			names := []string{Firstboot, ZooKeeper}
			if tt.units[Ready] != nil {
				names = append(names, Ready)
			}
			if tt.units[Exporter] != nil {
				names = append(names, Exporter)
			}
			if tt.units[Unhealthy] != nil {
				// A template is verified through an instance, as OnFailure= makes it.
				names = append(names, "zkaas-unhealthy@zookeeper.service.service")
			}
			cmd := exec.Command(analyze, append([]string{"verify", "--man=no", "--generators=no", "--root=" + root}, names...)...)
			out, err := cmd.CombinedOutput()
			clean := err == nil && len(bytes.TrimSpace(out)) == 0
			switch {
			case tt.want == "" && !clean:
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			case tt.want != "" && clean:
				t.Errorf("systemd-analyze verify passed a unit with a %s", tt.name)
			case tt.want != "" && !bytes.Contains(out, []byte(tt.want)):
				t.Errorf("complaint does not mention %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestZooKeeperHardening keeps zookeeper.service's sandbox from eroding:
// systemd-analyze security must rate it at most 4.0 ("OK"). firstboot
// itself needs root (netlink, mount, mkfs) and is not scored.
func TestZooKeeperHardening(t *testing.T) { checkExposure(t, ZooKeeper, 40) }

// TestExporterHardening: the exporter runs as zookeeper (it reads the
// node's keystore for TLS-only client ports) with private users in a tight
// sandbox; systemd-analyze security must rate it at most 1.2, what it was
// as a dynamic user.
func TestExporterHardening(t *testing.T) { checkExposure(t, Exporter, 12) }

// checkExposure fails when systemd-analyze security rates the unit name
// (installed with zkaas-firstboot.service, which it requires) above
// tenths/10.
func checkExposure(t *testing.T, name string, tenths int) {
	t.Helper()
	analyze := systemdAnalyze(t)
	u, _ := Unit(name)
	fb, _ := Unit(Firstboot)
	root := analyzeRoot(t, map[string][]byte{Firstboot: fb, name: u})
	out, err := exec.Command(analyze, "security", "--offline=yes", "--root="+root, fmt.Sprintf("--threshold=%d", tenths), name).CombinedOutput()
	if bytes.Contains(out, []byte("unrecognized option")) {
		t.Skipf("this systemd-analyze cannot score units offline: %s", bytes.TrimSpace(out))
	}
	if err != nil {
		t.Errorf("%s: exposure above %d.%d (%v):\n%s", name, tenths/10, tenths%10, err, out)
	}
}

// TestRestartsCapped: every unit systemd restarts on failure has a start
// limit of its own. systemd's default (5 starts in 10 s) never trips when
// RestartSec= spaces the restarts wider than 2 s, so without one a
// permanent failure restarts forever.
func TestRestartsCapped(t *testing.T) {
	for _, name := range Names() {
		b, _ := Unit(name)
		if !bytes.Contains(b, []byte("\nRestart=")) || bytes.Contains(b, []byte("\nRestart=no\n")) {
			continue
		}
		for _, key := range []string{"\nStartLimitIntervalSec=", "\nStartLimitBurst="} {
			if !bytes.Contains(b, []byte(key)) {
				t.Errorf("%s restarts on failure without %s", name, key[1:len(key)-1])
			}
		}
	}
}

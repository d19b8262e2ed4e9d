package zkensemble

// Host mode: no systemd and no image. The harness plays the boot — it runs
// a zkaas-firstboot built for the test and starts the host's Java with
// Debian's ZooKeeper jars — for the fast low-level tests and host-mode
// benchmarks. Machines (machine.go) run the product as shipped instead.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/boot"
	"github.com/zkaas/zkaas/firstboot/zookeeper"
	"github.com/zkaas/zkaas/localcloud"
)

// Classpath runs the Debian zookeeper package's server (3.8: QuorumPeerMain
// in zookeeper.jar) with slf4j-simple so its log reaches stderr, in host
// mode.
var Classpath = []string{"/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"}

// PrivateDirs are what host-mode instances must each see privately (like
// instances booted from one image): firstboot writes under /etc. The data
// volume's mount point (/var/lib/zookeeper, from the zookeeper package)
// needs no overlay: the mount itself is private to the instance's mount
// namespace.
var PrivateDirs = []string{"/etc"}

// bootHost is Boot in host mode.
func (e *Ensemble) bootHost(ctx context.Context, az string) (*Node, error) {
	launched := time.Now()
	inst, err := e.Cloud.Launch(ctx, az)
	if err != nil {
		return nil, err
	}
	if err := e.InstallConfig(inst); err != nil {
		return nil, err
	}
	rep, err := e.Firstboot(ctx, inst)
	if err != nil {
		return nil, err
	}
	n := &Node{ID: rep.Claim.Node, IP: rep.Claim.IP.String(), Instance: inst, Report: rep, Launched: launched,
		ZKLog: filepath.Join(e.opts.LogDir, fmt.Sprintf("zookeeper-%d-%s.log", rep.Claim.Node, inst.ID))}
	if err := e.startZooKeeper(ctx, n); err != nil {
		return nil, err
	}
	e.add(n)
	return n, nil
}

// InstallConfig writes the ensemble config onto a host-mode instance, as
// the image (or user data) would carry it. Machines get it at launch.
func (e *Ensemble) InstallConfig(inst *localcloud.Instance) error {
	if onMachine(inst) {
		return fmt.Errorf("install %s on %s: a machine gets its config at launch (Boot)", ensemble.DefaultPath, inst.ID)
	}
	if err := os.MkdirAll(inst.Path(filepath.Dir(ensemble.DefaultPath)), 0o755); err != nil {
		return fmt.Errorf("install %s on %s: %w", ensemble.DefaultPath, inst.ID, err)
	}
	if err := os.WriteFile(inst.Path(ensemble.DefaultPath), e.cfg, 0o644); err != nil {
		return fmt.Errorf("install %s on %s: %w", ensemble.DefaultPath, inst.ID, err)
	}
	return nil
}

// Firstboot runs `zkaas-firstboot run` (Options.Binary) on a host-mode
// instance and returns its report; a failure is a *FirstbootError. On a
// machine firstboot is zkaas-firstboot.service's to run.
func (e *Ensemble) Firstboot(ctx context.Context, inst *localcloud.Instance) (boot.Report, error) {
	if onMachine(inst) {
		return boot.Report{}, fmt.Errorf("firstboot on %s: a machine runs it as %s", inst.ID, firstbootUnit)
	}
	var stdout, stderr bytes.Buffer
	cmd := inst.Command(ctx, e.opts.Binary, "run", "-config", ensemble.DefaultPath)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return boot.Report{}, &FirstbootError{Instance: inst, Line: fmt.Sprintf("%v: %s", err, lastLine(stderr.String()))}
	}
	var rep boot.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return rep, fmt.Errorf("firstboot on %s printed no report: %w\n%s", inst.ID, err, stdout.String())
	}
	return rep, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// startZooKeeper runs the host's ZooKeeper on a host-mode node, its output
// into the node's log: the host's Java with Debian's jars (Classpath) as
// the host's zookeeper user, with the JVM flags of the rendered java.env
// and the rendered zoo.cfg.
func (e *Ensemble) startZooKeeper(ctx context.Context, n *Node) error {
	// ZooKeeper outlives the call that starts it, as a service outlives
	// systemctl start.
	ctx = context.WithoutCancel(ctx)
	env, err := os.ReadFile(n.Instance.Path(filepath.Join(zookeeper.DefaultConfDir, zookeeper.JavaEnvName)))
	if err != nil {
		return fmt.Errorf("ZooKeeper of node %d: %w", n.ID, err)
	}
	owner, err := zookeeper.LookupOwner("zookeeper")
	if err != nil {
		return fmt.Errorf("ZooKeeper of node %d: %w", n.ID, err)
	}
	args := []string{"--reuid=" + strconv.Itoa(owner.UID), "--regid=" + strconv.Itoa(owner.GID), "--clear-groups", "java"}
	args = append(args, jvmFlags(env)...)
	args = append(args, "-cp", strings.Join(Classpath, ":"), "org.apache.zookeeper.server.quorum.QuorumPeerMain",
		filepath.Join(zookeeper.DefaultConfDir, zookeeper.ZooCfgName))
	cmd := n.Instance.Command(ctx, "setpriv", args...)
	logf, err := os.OpenFile(n.ZKLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	n.ZK, err = n.Instance.Start(cmd)
	return err
}

// jvmFlags reads SERVER_JVMFLAGS="..." from a java.env.
func jvmFlags(env []byte) []string {
	for _, line := range strings.Split(string(env), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "SERVER_JVMFLAGS="); ok {
			return strings.Fields(strings.Trim(v, `"`))
		}
	}
	return nil
}

// BuildFirstboot builds zkaas-firstboot into dir and returns its path, for
// host mode.
func BuildFirstboot(ctx context.Context, moduleRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "zkaas-firstboot")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./firstboot/cmd/zkaas-firstboot")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build zkaas-firstboot: %v\n%s", err, out)
	}
	return bin, nil
}

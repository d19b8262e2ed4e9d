package zkensemble

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// TestExtraSettingsOnMachines (machines): zookeeper.extra in the launch
// template's user data reaches every node — its zoo.cfg, and the running
// server, as `conf` shows it; jute.maxbuffer, a JVM system property, the
// JVM's command line — and a launch whose user data sets a key zkaas owns
// is refused at boot, naming the key and its line, before any EC2 call.
func TestExtraSettingsOnMachines(t *testing.T) {
	sharedImage(t) // bakes or reuses the image the machines boot
	e := newEnsembleWith(t, onMachines, ec2sim.Options{}, nodes("us-east-1a", "us-east-1b", "us-east-1c"), Options{Deadline: 20 * time.Second})
	withExtra := func(extra string) []byte {
		return withZooKeeper(t, e, "srvr, ruok, mntr, conf", "extra: {"+extra+"}")
	}
	g := newGroups(t, e, GroupOptions{UserData: withExtra("maxClientCnxns: 17, minSessionTimeout: 4000, maxSessionTimeout: 30000, snapCount: 50000, jute.maxbuffer: 2097152")})
	if _, err := g.WaitNodes(t.Context(), 3*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitServing(t.Context(), 2*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int{1, 2, 3} {
		n := e.Node(id)
		zooCfg, err := n.ReadFile("/etc/zkaas/zookeeper/zoo.cfg")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"\nmaxClientCnxns=17\n", "\nminSessionTimeout=4000\n", "\nmaxSessionTimeout=30000\n", "\nsnapCount=50000\n"} {
			if !bytes.Contains(zooCfg, []byte(want)) {
				t.Errorf("node %d: zoo.cfg lacks %q:\n%s", id, strings.TrimSpace(want), zooCfg)
			}
		}
		if bytes.Contains(zooCfg, []byte("jute.maxbuffer")) {
			t.Errorf("node %d: jute.maxbuffer in zoo.cfg (nothing reads zookeeper.jute.maxbuffer):\n%s", id, zooCfg)
		}
		pid, err := n.mainPID(t.Context(), "zookeeper.service")
		if err != nil {
			t.Fatal(err)
		}
		// mainPID is the host's pid of ZooKeeper's JVM.
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(cmdline, []byte("\x00-Djute.maxbuffer=2097152\x00")) {
			t.Errorf("node %d: ZooKeeper's JVM runs without -Djute.maxbuffer=2097152: %q", id, cmdline)
		}
		conf, err := fourLetterWord(t.Context(), e, n.IP, "conf")
		if err != nil {
			t.Fatalf("node %d: conf: %v", id, err)
		}
		for _, want := range []string{"maxClientCnxns=17", "minSessionTimeout=4000", "maxSessionTimeout=30000"} {
			if !strings.Contains(conf, want) {
				t.Errorf("node %d: conf does not show %s (zookeeper.extra did not reach the server):\n%s", id, want, conf)
			}
		}
	}

	// A key zkaas owns: refused at boot with its line, before any EC2
	// call (the operator's typo costs one instance, not a node's data).
	t.Run("owned key refused", func(t *testing.T) {
		bad := newGroups(t, e, GroupOptions{Name: "owned", AZs: []string{"us-east-1a"}, UserData: withExtra("clientPort: 2182")})
		b, fe := refusedBoot(t, bad)
		if !strings.Contains(fe.Line, "user data") ||
			!regexp.MustCompile(`line [0-9]+: zookeeper\.extra\.clientPort: clientPort is zkaas's to set`).MatchString(fe.Line) {
			t.Errorf("%s: %v; want the user data's zookeeper.extra.clientPort refused with its line", b.InstanceID, b.Err)
		}
		if calls := e.Cloud.EC2Calls(b.InstanceID); len(calls) != 0 {
			t.Errorf("%s refused its config after EC2 calls %v: want none", b.InstanceID, calls)
		}
		t.Logf("%s refused: %s", b.InstanceID, b.Err)
	})
}

// fourLetterWord sends cmd to the node at ip's client port from inside the
// VPC and returns the answer (the server closes the connection after it).
func fourLetterWord(ctx context.Context, e *Ensemble, ip, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := e.Cloud.DialContext(ctx, "tcp", net.JoinHostPort(ip, "2181"))
	if err != nil {
		return "", err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	if _, err := io.WriteString(c, cmd); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

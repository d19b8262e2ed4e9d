// Package realzk runs the real ZooKeeper (Debian's zookeeper package, 3.8)
// in tests: the classpath the package needs, the skip when java or a jar is
// missing, a fresh network namespace with loopback up for the servers'
// addresses, the server started by PID the way zookeeper.service starts it
// (java, java.env's flags, QuorumPeerMain, zoo.cfg) with its log, and the
// four-letter words that ask it. Only tests import it (internal/layout
// lists it as rig); it cannot import firstboot/zookeeper, whose own tests
// use it, so rendering and mode parsing stay with the callers.
package realzk

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/localcloud/netnstest"
)

// Classpath is the server's classpath. The Debian zookeeper package (3.8)
// ships no systemd unit and no java.env handling for systemd: the server
// is QuorumPeerMain in zookeeper.jar, whose manifest Class-Path names its
// dependencies but no SLF4J binding, so slf4j-simple (libslf4j-java) is
// added to get the log on stderr.
var Classpath = []string{"/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"}

// TLSClasspath is what the distro drop-in (roles/zookeeper/files/distro.conf)
// puts on the classpath: Debian's zookeeper.jar manifest names netty-handler
// and netty-transport but not the jars they need, so without netty-codec
// every TLS connection dies with NoClassDefFoundError
// io/netty/handler/codec/ByteToMessageDecoder (seen with 3.8.0-11+deb12u2).
var TLSClasspath = append(append([]string{}, Classpath...), "/usr/share/java/netty-codec.jar",
	"/usr/share/java/netty-resolver.jar", "/usr/share/java/netty-transport-native-unix-common.jar")

// Ports every real-ZooKeeper test uses: they are free, nothing else runs in
// the test's own namespace.
const (
	ClientPort   = 42181
	QuorumPort   = 42888
	ElectionPort = 43888
)

// Java returns the java binary, skipping the test unless java and every
// jar of classpath are installed.
func Java(t testing.TB, classpath []string) string {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("java not installed (apt-get install zookeeper)")
	}
	for _, jar := range classpath {
		if _, err := os.Stat(jar); err != nil {
			t.Skipf("%s missing: apt-get install zookeeper libslf4j-java", jar)
		}
	}
	return java
}

// Loopback is node id's address in the namespace, 127.0.0.<id>.
func Loopback(id int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 0, 0, byte(id)})
}

// Config is a small, fast ensemble named name with nodes 1..len(ips) on
// ips: 200 ms ticks, a 128 MiB heap, no GC log, the ports above.
func Config(name string, ips ...netip.Addr) ensemble.Config {
	cfg := ensemble.Default()
	cfg.Ensemble = name
	for i, ip := range ips {
		cfg.Nodes = append(cfg.Nodes, ensemble.Node{ID: i + 1, AZ: "us-east-1a", IP: ip})
	}
	cfg.ZooKeeper.TickTime = 200
	cfg.ZooKeeper.Heap = "128m"
	cfg.ZooKeeper.GCLog = false
	cfg.ZooKeeper.ClientPort, cfg.ZooKeeper.QuorumPort, cfg.ZooKeeper.ElectionPort = ClientPort, QuorumPort, ElectionPort
	return cfg
}

// Dir is a temp dir the zookeeper user can reach: t.TempDir and its
// parent are private (0700) otherwise.
func Dir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// NS is a fresh network namespace with loopback up: every address a test
// uses exists only in it.
type NS struct{ *netnstest.NS }

// NewNS creates the namespace (removed at the test's end), brings lo up
// and adds addrs (CIDR, e.g. "10.0.2.10/32") to it.
func NewNS(t testing.TB, addrs ...string) NS {
	t.Helper()
	ns := netnstest.New(t)
	lo, err := ns.Netlink().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Netlink().LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := ns.Netlink().AddrAdd(lo, addr); err != nil {
			t.Fatal(err)
		}
	}
	return NS{ns}
}

// Dial opens connections inside the namespace (a Dial func for probes,
// collectors and HTTP transports).
func (ns NS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens on a TCP addr inside the namespace until the test ends.
func (ns NS) Listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Word sends a four-letter word and returns the whole answer.
func (ns NS) Word(t testing.TB, addr netip.AddrPort, word string) string {
	t.Helper()
	c, err := ns.Dial(t.Context(), "tcp", addr.String())
	if err != nil {
		t.Fatalf("%s %s: %v", word, addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(word)); err != nil {
		t.Fatalf("%s %s: %v", word, addr, err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%s %s: %v", word, addr, err)
	}
	return string(b)
}

// Server is what Start runs.
type Server struct {
	Java      string
	Classpath []string
	JVMFlags  []string // java.env's SERVER_JVMFLAGS, or a heap flag
	ZooCfg    string
	Dir       string // the conf dir, its working directory
	UID, GID  int    // whom it runs as (the zookeeper user when it exists)
	Log       string // where its stdout and stderr go
}

// Process is a running server.
type Process struct {
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs the server the way zookeeper.service does — java, the JVM
// flags, QuorumPeerMain, zoo.cfg — on a thread inside ns, so the JVM lives
// there. Cleanup stops it by PID if the test does not.
func Start(t testing.TB, ns NS, s Server) (*Process, error) {
	t.Helper()
	logFile, err := os.Create(s.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	args := append(append([]string{}, s.JVMFlags...),
		"-XX:-UsePerfData", // no hsperfdata files left in the host's /tmp
		"-cp", strings.Join(s.Classpath, ":"),
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", s.ZooCfg)
	cmd := exec.Command(s.Java, args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(s.UID), Gid: uint32(s.GID)}}
	if err := ns.Do(cmd.Start); err != nil {
		return nil, err
	}
	p := &Process{Log: s.Log, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	return p, nil
}

// Stop kills the server and waits for it; stopping twice is harmless.
func (p *Process) Stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Exited waits up to timeout for the server to exit by itself: whether it
// did, and how.
func (p *Process) Exited(timeout time.Duration) (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(timeout):
		return false, nil
	}
}

// Output is the server's log so far.
func (p *Process) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// Has reports whether the log holds s yet.
func (p *Process) Has(s string) func() bool {
	return func() bool { return strings.Contains(p.Output(), s) }
}

// WaitFor polls cond every 100 ms and fails the test after timeout with
// the last n lines of the server's log.
func (p *Process) WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool, n int) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s; ZooKeeper log:\n%s", what, timeout, Tail(p.Output(), n))
		}
	}
}

// EnvFile parses KEY="value" lines the way systemd's EnvironmentFile= does
// for the subset java.env uses.
func EnvFile(t testing.TB, data []byte) map[string]string {
	t.Helper()
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("java.env line %q is not KEY=value", line)
		}
		env[k] = strings.Trim(v, `"`)
	}
	return env
}

// JVMFlags are java.env's SERVER_JVMFLAGS, the flags zookeeper.service
// passes; a java.env without them fails the test.
func JVMFlags(t testing.TB, javaEnv []byte) []string {
	t.Helper()
	flags := strings.Fields(EnvFile(t, javaEnv)["SERVER_JVMFLAGS"])
	if len(flags) == 0 {
		t.Fatalf("java.env sets no SERVER_JVMFLAGS:\n%s", javaEnv)
	}
	return flags
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

package zookeeper

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/internal/realzk"
)

// realEnsemble runs real ZooKeeper servers (Debian's 3.8) rendered by
// Render, on 127.0.0.<id> inside a fresh network namespace, the way
// zookeeper.service runs them: java, java.env's flags, QuorumPeerMain,
// zoo.cfg. Each node has its own conf, data and secret dirs.
type realEnsemble struct {
	t    *testing.T
	ns   realzk.NS
	java string
	dir  string
	zk   Owner
	cfg  ensemble.Config // nodes, ports and timing; SASL per start
	zkp  map[int]*realzk.Process
}

func newRealEnsemble(t *testing.T, n int) *realEnsemble {
	t.Helper()
	requireRoot(t)
	java := realzk.Java(t, realzk.Classpath)
	e := &realEnsemble{t: t, ns: realzk.NewNS(t), java: java, dir: realzk.Dir(t), zk: realOwner(),
		zkp: map[int]*realzk.Process{}}
	var ips []netip.Addr
	for id := 1; id <= n; id++ {
		ips = append(ips, realzk.Loopback(id))
	}
	cfg := realzk.Config("zk-sasl", ips...)
	// Election connections give up sooner than the default 5 s, so a
	// refused peer is retried within the test's patience.
	cfg.ZooKeeper.Extra = ensemble.Extra{"cnxTimeout": "1000"}
	e.cfg = cfg
	return e
}

func (e *realEnsemble) layout(id int) Layout {
	root := filepath.Join(e.dir, fmt.Sprintf("node%d", id))
	l := DefaultLayout(filepath.Join(root, "mnt"))
	l.ConfDir = filepath.Join(root, "conf")
	l.SecretDir = filepath.Join(root, "run/zkaas/zookeeper")
	return l
}

// start renders node id with s and mat, writes it and starts the server
// (stopping the one running). A node starting for the first time gets the
// initialize marker: the ensemble is new.
func (e *realEnsemble) start(id int, s ensemble.SASL, mat Material) {
	t := e.t
	t.Helper()
	if p := e.zkp[id]; p != nil {
		p.Stop()
	}
	cfg := e.cfg
	cfg.ZooKeeper.SASL = s
	l := e.layout(id)
	first := false
	if _, err := os.Stat(filepath.Dir(l.DataDir)); os.IsNotExist(err) {
		first = true
		if err := os.MkdirAll(filepath.Dir(l.DataDir), 0o755); err != nil { // the mounted volume
			t.Fatal(err)
		}
	}
	files := writeNode(t, cfg, id, l, mat, e.zk, first)
	p, err := realzk.Start(t, e.ns, realzk.Server{Java: e.java, Classpath: realzk.Classpath,
		JVMFlags: strings.Fields(realzk.EnvFile(t, files.JavaEnv)["SERVER_JVMFLAGS"]),
		ZooCfg:   l.ZooCfgPath(), Dir: l.ConfDir, UID: e.zk.UID, GID: e.zk.GID,
		Log: filepath.Join(e.dir, fmt.Sprintf("node%d.%d.log", id, time.Now().UnixNano()))})
	if err != nil {
		t.Fatalf("start ZooKeeper %d: %v", id, err)
	}
	e.zkp[id] = p
}

func (e *realEnsemble) mode(id int) string {
	n, _ := e.cfg.NodeByID(id)
	ctx, cancel := context.WithTimeout(e.t.Context(), 2*time.Second)
	defer cancel()
	m, err := Prober{PerPeerTimeout: time.Second, Dial: e.ns.Dial}.srvr(ctx, netip.AddrPortFrom(n.IP, realzk.ClientPort))
	if err != nil {
		return "error: " + err.Error()
	}
	return m
}

func (e *realEnsemble) modes(ids ...int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = e.mode(id)
	}
	return out
}

// waitQuorum waits until ids are one leader and followers.
func (e *realEnsemble) waitQuorum(timeout time.Duration, ids ...int) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := e.modes(ids...)
		leaders, followers := 0, 0
		for _, m := range ms {
			switch m {
			case ModeLeader:
				leaders++
			case ModeFollower:
				followers++
			}
		}
		if leaders == 1 && followers == len(ids)-1 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("nodes %v: modes %q after %s, want one leader and followers\n%s", ids, ms, timeout, e.logTails(ids...))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *realEnsemble) log(id int) string {
	if p := e.zkp[id]; p != nil {
		return p.Output()
	}
	return ""
}

func (e *realEnsemble) logTails(ids ...int) string {
	var b strings.Builder
	for _, id := range ids {
		// Without the probes' own lines.
		var kept []string
		for _, line := range strings.Split(e.log(id), "\n") {
			if !strings.Contains(line, "Processing srvr command") {
				kept = append(kept, line)
			}
		}
		fmt.Fprintf(&b, "--- node %d log (tail) ---\n%s\n", id, realzk.Tail(strings.Join(kept, "\n"), 25))
	}
	return b.String()
}

// cli runs ZooKeeper's own Java client (ZooKeeperMain, as zkCli.sh does)
// against node 1 with one command; jaasUser/jaasPassword, when set, are
// its JAAS Client section (DIGEST-MD5, as a Kafka broker's). It returns
// the output, bounded by a timeout.
func (e *realEnsemble) cli(jaasUser, jaasPassword string, command ...string) string {
	t := e.t
	t.Helper()
	args := []string{"-XX:-UsePerfData", "-Xmx64m"}
	if jaasUser != "" {
		path := filepath.Join(e.dir, fmt.Sprintf("client-%s-%d.jaas", jaasUser, time.Now().UnixNano()))
		jaas := fmt.Sprintf("Client {\n    %s required\n    username=%s\n    password=%s;\n};\n", DigestLoginModule, jaasQuote(jaasUser), jaasQuote(jaasPassword))
		if err := os.WriteFile(path, []byte(jaas), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-Djava.security.auth.login.config="+path)
	}
	n, _ := e.cfg.NodeByID(1)
	args = append(args, "-cp", strings.Join(realzk.Classpath, ":"), "org.apache.zookeeper.ZooKeeperMain",
		"-timeout", "5000", "-server", netip.AddrPortFrom(n.IP, realzk.ClientPort).String())
	args = append(args, command...)
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.java, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := e.ns.Do(cmd.Start); err != nil {
		t.Fatalf("start zkCli: %v", err)
	}
	_ = cmd.Wait() // its exit code is not reliable across commands: the output is checked
	if ctx.Err() != nil {
		t.Fatalf("zkCli %q did not finish in 45 s:\n%s", command, out.String())
	}
	return out.String()
}

// TestRealZooKeeperSASLQuorum: three real servers with quorum SASL form a
// quorum; started again with one node given a wrong quorum password, that
// node never joins (it stays LOOKING and its peers log the failed
// DIGEST-MD5 login) while the other two keep a leader and a follower.
func TestRealZooKeeperSASLQuorum(t *testing.T) {
	e := newRealEnsemble(t, 3)
	s := ensemble.SASL{Quorum: true, QuorumPassword: ensemble.Secret{SecretsManager: "zk/quorum"}}
	right := Material{QuorumPassword: `right "quorum" \ pw`}
	for id := 1; id <= 3; id++ {
		e.start(id, s, right)
	}
	e.waitQuorum(60*time.Second, 1, 2, 3)
	// SASL was what let them in: the settings applied and a learner
	// authenticated as the quorum user.
	for _, want := range []string{"quorum.auth.serverRequireSasl set to true", "quorum.auth.learnerRequireSasl set to true",
		"Successfully authenticated learner: authenticationID=" + QuorumUser} {
		if l := e.log(1) + e.log(2) + e.log(3); !strings.Contains(l, want) {
			t.Errorf("no node logged %q\n%s", want, e.logTails(1, 2, 3))
		}
	}

	// Node 3 with a wrong password: the others refuse its learner, it
	// refuses theirs.
	e.start(3, s, Material{QuorumPassword: "wrong"})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := e.mode(3); m == ModeLeader || m == ModeFollower {
			t.Fatalf("node 3 with the wrong quorum password is %s\n%s", m, e.logTails(1, 2, 3))
		}
		time.Sleep(300 * time.Millisecond)
	}
	if m := e.mode(3); m != ModeNotServing {
		t.Errorf("node 3 with the wrong password: srvr %q, want %q (LOOKING)", m, ModeNotServing)
	}
	e.waitQuorum(30*time.Second, 1, 2)
	// The servers refused node 3's learner, and node 3 logged its failed
	// logins (SaslQuorumAuthServer, SaslQuorumAuthLearner).
	if l1, l2 := e.log(1), e.log(2); !strings.Contains(l1+l2, "SaslQuorumAuthServer - Failed to authenticate using SASL") {
		t.Errorf("neither node 1 nor node 2 logged refusing node 3's login\n%s", e.logTails(1, 2))
	}
	if l := e.log(3); !strings.Contains(l, "SaslException: Authentication failed against server addr") {
		t.Errorf("node 3 did not log its failed login\n%s", e.logTails(3))
	}

	// The right password again: node 3 rejoins as a follower.
	e.start(3, s, right)
	e.waitQuorum(60*time.Second, 1, 2, 3)
}

// TestRealZooKeeperSASLQuorumMigration: quorum SASL turned on in a running
// ensemble with three rolls, one node at a time, each node rejoining the
// quorum before the next restarts: accept (servers take authenticating learners, nothing is
// required), authenticate (learners authenticate, servers still let in
// those that do not), required. Then the same rolls backwards turn it off.
// Skipping the middle roll fails: a learner with learnerRequireSasl=false
// does not authenticate at all, so a node requiring SASL next to "accept"
// nodes is left out — checked too.
func TestRealZooKeeperSASLQuorumMigration(t *testing.T) {
	e := newRealEnsemble(t, 3)
	mat := Material{QuorumPassword: "migrate-pw"}
	step := func(m string) ensemble.SASL {
		return ensemble.SASL{Quorum: true, QuorumMigration: m, QuorumPassword: ensemble.Secret{SSM: "/zk/quorum"}}
	}
	roll := func(name string, s ensemble.SASL, m Material) {
		t.Helper()
		for id := 1; id <= 3; id++ {
			e.start(id, s, m)
			e.waitQuorum(60*time.Second, 1, 2, 3)
		}
		t.Logf("roll %s: every node rejoined a leader and followers", name)
	}
	for id := 1; id <= 3; id++ {
		e.start(id, ensemble.SASL{}, Material{})
	}
	e.waitQuorum(60*time.Second, 1, 2, 3)
	roll("accept", step(ensemble.QuorumMigrationAccept), mat)

	// The middle roll skipped: node 1 requiring SASL while its peers
	// accept it but do not authenticate is left out.
	e.start(1, step(""), mat)
	time.Sleep(5 * time.Second)
	if m := e.mode(1); m == ModeLeader || m == ModeFollower {
		t.Errorf("a node requiring SASL among accept nodes joined as %s: the middle roll would not be needed", m)
	}
	e.waitQuorum(30*time.Second, 2, 3)
	if !strings.Contains(e.log(1), "Learner not trying to authenticate and authentication is required") {
		t.Errorf("node 1 did not log refusing its peers' learners\n%s", e.logTails(1))
	}
	e.start(1, step(ensemble.QuorumMigrationAccept), mat)
	e.waitQuorum(60*time.Second, 1, 2, 3)

	roll("authenticate", step(ensemble.QuorumMigrationAuthenticate), mat)
	roll("required", step(""), mat)
	if l := e.log(3); !strings.Contains(l, "quorum.auth.serverRequireSasl set to true") {
		t.Errorf("node 3 does not require SASL at the end\n%s", e.logTails(3))
	}
	// Backwards, to no SASL.
	roll("back to authenticate", step(ensemble.QuorumMigrationAuthenticate), mat)
	roll("back to accept", step(ensemble.QuorumMigrationAccept), mat)
	roll("off", ensemble.SASL{}, Material{})
}

// TestRealZooKeeperSASLClients: a client logging in as a configured user
// (DIGEST-MD5, a JAAS Client section as a Kafka broker has) creates znodes
// with sasl: ACLs; without client_required an anonymous client may read
// them but not change them, as Kafka's zookeeper.set.acl expects; a wrong
// password fails the login; with client_required, an anonymous session is
// closed at its first request while the user's works.
func TestRealZooKeeperSASLClients(t *testing.T) {
	e := newRealEnsemble(t, 3)
	s := ensemble.SASL{Quorum: true, QuorumPassword: ensemble.Secret{File: "/etc/zkaas/quorum"},
		Clients: []ensemble.SASLUser{{Name: "kafka", Password: ensemble.Secret{SSM: "/zk/kafka"}}, {Name: "admin", Password: ensemble.Secret{SSM: "/zk/admin"}}}}
	const kafkaPW = `kafka"s \pw`
	mat := Material{QuorumPassword: "q", ClientPasswords: map[string]string{"kafka": kafkaPW, "admin": "admin-pw"}}
	for id := 1; id <= 3; id++ {
		e.start(id, s, mat)
	}
	e.waitQuorum(60*time.Second, 1, 2, 3)

	expect := func(out, want, what string) {
		t.Helper()
		if !strings.Contains(out, want) {
			t.Errorf("%s: output lacks %q:\n%s", what, want, realzk.Tail(out, 30))
		}
	}
	out := e.cli("kafka", kafkaPW, "create", "/kafka-acl", "v1", "sasl:kafka:cdrwa,world:anyone:r")
	expect(out, "Created /kafka-acl", "kafka creates a znode with sasl:kafka ACLs")
	out = e.cli("kafka", kafkaPW, "getAcl", "/kafka-acl")
	expect(out, "'sasl,'kafka", "the znode's ACL names the SASL user")
	out = e.cli("", "", "get", "/kafka-acl")
	expect(out, "v1", "anonymous read of a world-readable znode (client_required off)")
	out = e.cli("", "", "set", "/kafka-acl", "anon")
	expect(out, "Insufficient permission", "anonymous write to a sasl:kafka znode")
	out = e.cli("admin", "admin-pw", "set", "/kafka-acl", "admin")
	expect(out, "Insufficient permission", "another SASL user's write to a sasl:kafka znode")
	out = e.cli("kafka", "not "+kafkaPW, "create", "/wrong-pw", "x")
	expect(out, "KeeperErrorCode = AuthFailed for /wrong-pw", "a wrong password")
	out = e.cli("kafka", kafkaPW, "set", "/kafka-acl", "v2")
	if strings.Contains(out, "Insufficient permission") || strings.Contains(out, "Exception") {
		t.Errorf("kafka's own write refused:\n%s", realzk.Tail(out, 30))
	}

	// client_required: every node rolled; anonymous sessions are closed.
	s.ClientRequired = true
	for id := 1; id <= 3; id++ {
		e.start(id, s, mat)
		e.waitQuorum(60*time.Second, 1, 2, 3)
	}
	out = e.cli("", "", "get", "/kafka-acl")
	expect(out, "KeeperErrorCode = Session closed because client failed to authenticate for /kafka-acl", "an anonymous read with client_required")
	out = e.cli("", "", "create", "/anon", "x")
	expect(out, "KeeperErrorCode = Session closed because client failed to authenticate for /anon", "an anonymous create with client_required")
	out = e.cli("kafka", kafkaPW, "get", "/kafka-acl")
	expect(out, "v2", "kafka reads with client_required")
	out = e.cli("kafka", kafkaPW, "ls", "/")
	if strings.Contains(out, "anon") {
		t.Errorf("/anon exists:\n%s", out)
	}
	if l := e.log(1); !strings.Contains(l, "closing session") && !strings.Contains(l, "does not match with any of the expected authentication scheme") {
		t.Errorf("node 1 did not log closing the anonymous session\n%s", e.logTails(1))
	}
}

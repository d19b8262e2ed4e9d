package zkensemble

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/zkaas/zkaas/firstboot/zookeeper"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// The references the SASL config names, and the passwords put there:
// the quorum's as a key of a JSON secret in Secrets Manager, the Kafka
// user's as a SecureString ending in a newline (as `echo` would write it),
// which the boot trims.
const (
	saslSecret      = "zkaas/it/sasl"
	saslKafkaParam  = "/zkaas/it/kafka"
	saslQuorumPW    = `quorum "pw" \ 1`
	saslKafkaPW     = "kafka-pw"
	saslWrongQuorum = "not the quorum password"
)

// saslRig puts the SASL passwords in the local cloud's Secrets Manager and
// Parameter Store through the real SDK clients, as an operator would.
type saslRig struct {
	e   *Ensemble
	sm  *secretsmanager.Client
	ssm *ssm.Client
}

func newSASLRig(t testing.TB, e *Ensemble) *saslRig {
	t.Helper()
	r := &saslRig{e: e,
		sm: e.Cloud.SecretsManagerClient("operator"), ssm: e.Cloud.SSMClient("operator")}
	if _, err := r.sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(saslSecret),
		SecretString: aws.String(quorumJSON(saslQuorumPW))}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ssm.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(saslKafkaParam),
		Value: aws.String(saslKafkaPW + "\n"), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	return r
}

// quorumJSON is the Secrets Manager key/value secret holding pw as
// "quorum" (JSON-escaped: pw has quotes and a backslash).
func quorumJSON(pw string) string {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(pw)
	return fmt.Sprintf(`{"quorum": "%s", "other": "unused"}`, esc)
}

// setQuorum makes pw the AWSCURRENT quorum password: what a rotation does.
func (r *saslRig) setQuorum(t testing.TB, pw string) {
	t.Helper()
	if _, err := r.sm.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(saslSecret),
		SecretString: aws.String(quorumJSON(pw))}); err != nil {
		t.Fatal(err)
	}
}

// setKafka makes pw the kafka user's password parameter (a new version).
func (r *saslRig) setKafka(t testing.TB, pw string) {
	t.Helper()
	if _, err := r.ssm.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(saslKafkaParam),
		Value: aws.String(pw), Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}

// userData is the ensemble's config with quorum SASL and a required
// client SASL user.
func (r *saslRig) userData(t testing.TB) []byte {
	t.Helper()
	return withZooKeeper(t, r.e, "", fmt.Sprintf(`sasl: {quorum: true, quorum_password: {secretsmanager: %s, json_key: quorum}, `+
		`clients: [{name: kafka, password: {ssm: %s}}], client_required: true}`, saslSecret, saslKafkaParam))
}

// cli runs ZooKeeper's own Java client (ZooKeeperMain, what zkCli.sh runs)
// from the host's Debian package inside the VPC's network namespace, as a
// Kafka broker in the VPC would connect, against ip; user and password,
// when set, are its JAAS Client section (DIGEST-MD5, a broker's
// -Djava.security.auth.login.config). Bounded by a timeout.
func (r *saslRig) cli(t testing.TB, ip, user, password string, command ...string) string {
	t.Helper()
	args := []string{"--net=" + r.e.Cloud.VPCNetNS(), "java", "-XX:-UsePerfData", "-Xmx64m"}
	if user != "" {
		q := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
		jaas := fmt.Sprintf("Client {\n    %s required\n    username=\"%s\"\n    password=\"%s\";\n};\n", zookeeper.DigestLoginModule, q.Replace(user), q.Replace(password))
		path := filepath.Join(t.TempDir(), "client.jaas")
		if err := os.WriteFile(path, []byte(jaas), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-Djava.security.auth.login.config="+path)
	}
	args = append(args, "-cp", strings.Join(Classpath, ":"), "org.apache.zookeeper.ZooKeeperMain", "-timeout", "5000", "-server", ip+":2181")
	args = append(args, command...)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "nsenter", args...).CombinedOutput() // the output is checked, not the exit code
	if ctx.Err() != nil {
		t.Fatalf("zkCli %q did not finish in a minute:\n%s", command, out)
	}
	return string(out)
}

// TestSASLQuorum (machines): with zookeeper.sasl in the launch template's
// user data — quorum SASL with its password a key of a Secrets Manager
// secret, and a required client user kafka whose password is a Parameter
// Store SecureString:
//
//	(a) the groups' instances fetch the passwords at boot and form a
//	    quorum whose learners authenticate (DIGEST-MD5), the JAAS file
//	    zookeeper's alone on tmpfs;
//	(b) ZooKeeper's own Java client logged in as kafka writes through one
//	    node and reads through another; an anonymous client's session is
//	    closed at its first request;
//	(c) the quorum secret rotated to another password and node 3 replaced:
//	    the replacement boots, fetches the new password and is left out —
//	    its peers refuse its login, it stays LOOKING — while nodes 1 and 2
//	    keep a leader and a follower all along; it is not ready within
//	    health.ready_timeout and its group replaces it; the secret put
//	    back, the next replacement becomes node 3 and the ensemble serves;
//	(d) the kafka password changed to one holding "${" (which Java's JAAS
//	    parser would expand) and node 2 replaced: the replacement is
//	    refused in the secrets stage with one line naming the field and
//	    the reference, never the password, ZooKeeper never starts, and
//	    the group is told; the password fixed, the next one becomes node 2.
func TestSASLQuorum(t *testing.T) {
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter (util-linux): the Java client runs in the VPC's namespace")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("needs java on the host: ZooKeeper's Java client is the SASL client (go-zookeeper has no SASL)")
	}
	const readyTimeout = 40 * time.Second
	e := newEnsembleWith(t, onMachines, ec2sim.Options{}, nodes("us-east-1a", "us-east-1b", "us-east-1c"),
		Options{Deadline: 20 * time.Second, ReadyTimeout: readyTimeout, RefusedHold: 5 * time.Second})
	r := newSASLRig(t, e)
	g := newGroups(t, e, GroupOptions{UserData: r.userData(t)})
	ctx := t.Context()
	if _, err := g.WaitNodes(ctx, 3*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitServing(ctx, 2*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}

	t.Run("quorum over SASL", func(t *testing.T) {
		authenticated := false
		for _, id := range []int{1, 2, 3} {
			n := e.Node(id)
			want := []string{"secretsmanager:" + saslSecret + "#quorum", "ssm:" + saslKafkaParam}
			if got := n.Report.Secrets; strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("node %d: run report lists secrets %q, want %q", id, got, want)
			}
			cfg, err := n.ReadFile("/etc/zkaas/zookeeper/zoo.cfg")
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range []string{"quorum.auth.enableSasl=true", "quorum.auth.serverRequireSasl=true", "quorum.auth.learnerRequireSasl=true",
				"authProvider.sasl=" + zookeeper.SASLProviderClass, "enforce.auth.enabled=true", "enforce.auth.schemes=sasl"} {
				if !strings.Contains(string(cfg), "\n"+line+"\n") {
					t.Errorf("node %d: zoo.cfg lacks %s", id, line)
				}
			}
			if strings.Contains(string(cfg), "pw") {
				t.Errorf("node %d: a password in zoo.cfg:\n%s", id, cfg)
			}
			// The JAAS file: zookeeper's alone, on the machine's tmpfs,
			// the passwords escaped (the trailing newline trimmed).
			p := fmt.Sprintf("/proc/%d/root/run/zkaas/zookeeper/%s", n.Instance.PID1(), zookeeper.JAASName)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("node %d: %v", id, err)
			}
			if st, uid := fi.Sys().(*syscall.Stat_t), zookeeperUID(t, n); fi.Mode().Perm() != 0o600 || int(st.Uid) != uid {
				t.Errorf("node %d: %s is %v uid %d, want 0600 zookeeper (%d)", id, zookeeper.JAASName, fi.Mode().Perm(), st.Uid, uid)
			}
			jaas, _ := os.ReadFile(p)
			for _, want := range []string{`user_zkquorum="quorum \"pw\" \\ 1";`, `password="quorum \"pw\" \\ 1";`, `user_kafka="kafka-pw";`} {
				if !strings.Contains(string(jaas), want) {
					t.Errorf("node %d: %s lacks %s", id, zookeeper.JAASName, want)
				}
			}
			j, _ := n.Instance.Journal(ctx, "-u", zookeeperUnit, "-o", "cat")
			if strings.Contains(string(j), "Successfully authenticated learner: authenticationID="+zookeeper.QuorumUser) {
				authenticated = true
			}
		}
		if !authenticated {
			t.Error("no node's ZooKeeper logged authenticating a learner")
		}
	})

	t.Run("clients", func(t *testing.T) {
		ip1, ip3 := e.Node(1).IP, e.Node(3).IP
		out := r.cli(t, ip1, "kafka", saslKafkaPW, "create", "/brokers-sasl", "from kafka", "sasl:kafka:cdrwa,world:anyone:r")
		if !strings.Contains(out, "Created /brokers-sasl") {
			t.Fatalf("kafka's create through node 1:\n%s", lastLines(out, 20))
		}
		if out := r.cli(t, ip3, "kafka", saslKafkaPW, "get", "/brokers-sasl"); !strings.Contains(out, "\nfrom kafka\n") {
			t.Errorf("kafka's read through node 3:\n%s", lastLines(out, 20))
		}
		if out := r.cli(t, ip3, "", "", "get", "/brokers-sasl"); !strings.Contains(out, "Session closed because client failed to authenticate") {
			t.Errorf("an anonymous read through node 3 was not refused:\n%s", lastLines(out, 20))
		}
		if out := r.cli(t, ip1, "kafka", "wrong", "get", "/brokers-sasl"); !strings.Contains(out, "AuthFailed") {
			t.Errorf("a wrong password was not refused:\n%s", lastLines(out, 20))
		}
	})

	t.Run("wrong quorum password on one node", func(t *testing.T) {
		old := e.Node(3)
		r.setQuorum(t, saslWrongQuorum)
		if err := e.Terminate(ctx, old); err != nil {
			t.Fatal(err)
		}
		bad, err := g.WaitNode(ctx, 3*time.Minute, 3, old.Instance.ID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("node 3's replacement %s booted with the rotated password", bad.Instance.ID)
		// Left out, while the other two keep a quorum, sampled until the
		// replacement's ZooKeeper has tried and failed its logins.
		sawFailure, misses := false, 0
		for deadline := time.Now().Add(readyTimeout / 2); time.Now().Before(deadline) || !sawFailure; time.Sleep(time.Second) {
			m := e.Modes(ctx)
			if m[3] == zookeeper.ModeLeader || m[3] == zookeeper.ModeFollower {
				t.Fatalf("node 3 with the wrong quorum password is %s", m[3])
			}
			// A probe that timed out on the busy host says nothing
			// about the mode; three in a row would.
			leaders, followers := 0, 0
			for _, id := range []int{1, 2} {
				switch m[id] {
				case zookeeper.ModeLeader:
					leaders++
				case zookeeper.ModeFollower:
					followers++
				}
			}
			_, answered1 := m[1]
			_, answered2 := m[2]
			switch {
			case leaders == 1 && followers == 1:
				misses = 0
			case (!answered1 || !answered2) && misses < 2:
				misses++
			default:
				t.Fatalf("nodes 1 and 2 lost their quorum: %s", describe(m))
			}
			if j, _ := bad.Instance.Journal(ctx, "-u", zookeeperUnit, "-o", "cat"); strings.Contains(string(j), "SaslException: Authentication failed against server addr") {
				sawFailure = true
			}
			if time.Since(bad.Launched) > readyTimeout+2*time.Minute {
				t.Fatalf("node 3's ZooKeeper logged no failed quorum login")
			}
		}
		if m := e.Modes(ctx); m[3] != zookeeper.ModeNotServing {
			t.Errorf("node 3: srvr %q, want not serving (LOOKING)", m[3])
		}

		// Put back; the group replaces the node that never became ready.
		r.setQuorum(t, saslQuorumPW)
		n, err := g.WaitNode(ctx, readyTimeout+4*time.Minute, 3, old.Instance.ID, bad.Instance.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.WaitServing(ctx, 2*time.Minute, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		term := activity(t, g, g.GroupOf(3), "Terminating EC2 instance: "+bad.Instance.ID)
		if term == nil || !strings.Contains(aws.ToString(term.Cause), "health-check") {
			t.Errorf("the group's termination of %s: %+v, want one in response to a health check", bad.Instance.ID, term)
		}
		t.Logf("node 3 is %s again, with the quorum", n.Instance.ID)
	})

	t.Run("password the JAAS file cannot carry", func(t *testing.T) {
		// "${" would be expanded by Java's JAAS parser: the boot refuses
		// it in the secrets stage, before ZooKeeper starts, as a refusal
		// (every replacement would fetch the same).
		r.setKafka(t, "pw${user.home}\n")
		group, old := g.GroupOf(2), e.Node(2)
		if err := e.Terminate(ctx, old); err != nil {
			t.Fatal(err)
		}
		failed := waitFailedBoot(t, g, group, 3*time.Minute, old.Instance.ID)
		var fe *FirstbootError
		if !errors.As(failed.Err, &fe) {
			t.Fatalf("%s: %v, want a firstboot failure", failed.InstanceID, failed.Err)
		}
		want := `zookeeper.sasl.clients[0].password: ssm:` + saslKafkaParam + `: the password contains "${", which Java expands as a system property in a JAAS file, with no escape`
		if !strings.Contains(fe.Line, want) || strings.Contains(fe.Line, "user.home") {
			t.Errorf("%s: firstboot's last line %q, want %q (and never the password)", failed.InstanceID, fe.Line, want)
		}
		t.Logf("%s refused: %s", failed.InstanceID, fe.Line)
		if j, err := fe.Instance.Journal(ctx, "-u", zookeeperUnit, "-o", "cat"); err == nil && strings.Contains(string(j), "org.apache.zookeeper") {
			t.Errorf("%s: ZooKeeper ran:\n%s", failed.InstanceID, lastLines(string(j), 20))
		}
		wantGroupTold(t, g, group, failed.InstanceID, time.Minute)
		if _, err := e.WaitServing(ctx, 30*time.Second, 1, 3); err != nil {
			t.Fatal(err)
		}

		r.setKafka(t, saslKafkaPW+"\n")
		n, err := g.WaitNode(ctx, 3*time.Minute, 2, old.Instance.ID, failed.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.WaitServing(ctx, 2*time.Minute, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		t.Logf("node 2 is %s again", n.Instance.ID)
	})
}

package ensemble

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadValid(t *testing.T) {
	cfg, warns, err := Load("testdata/ensemble.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings on a valid 3-node config: %v", warns)
	}
	if cfg.Ensemble != "prod-zk" || len(cfg.Nodes) != 3 {
		t.Fatalf("decoded %+v", cfg)
	}
	n2, ok := cfg.NodeByID(2)
	if !ok || n2.AZ != "us-east-1b" || n2.IP != netip.MustParseAddr("10.0.2.10") {
		t.Errorf("node 2 = %+v, %v", n2, ok)
	}
	if cfg.Claim.Deadline.D() != 3*time.Minute {
		t.Errorf("deadline = %s", cfg.Claim.Deadline)
	}
	// Omitted fields keep their defaults.
	def := Default()
	if cfg.Claim.Tags != def.Claim.Tags || cfg.ZooKeeper.ClientPort != 2181 || cfg.Network != def.Network {
		t.Errorf("defaults not applied: %+v %+v", cfg.Claim.Tags, cfg.Network)
	}
	if cfg.ZooKeeper.Heap != "2g" || strings.Join(cfg.ZooKeeper.FourLetterWords, ",") != "srvr,ruok" {
		t.Errorf("zookeeper = %+v", cfg.ZooKeeper)
	}
	if cfg.Region() != "us-east-1" {
		t.Errorf("region = %q", cfg.Region())
	}
}

const base = `ensemble: e1
nodes:
  - {id: 1, az: us-east-1a, ip: 10.0.1.10}
  - {id: 2, az: us-east-1b, ip: 10.0.2.10}
  - {id: 3, az: us-east-1c, ip: 10.0.3.10}
`

// checkParse parses data with opt and wants it accepted when want is "",
// else refused with Problems whose text contains want. It returns the
// warnings.
func checkParse(t *testing.T, data string, opt Options, want string) []FieldError {
	t.Helper()
	_, warns, err := ParseWith("ensemble.yaml", []byte(data), opt)
	if want == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return warns
	}
	var p *Problems
	if !errors.As(err, &p) {
		t.Fatalf("accepted (err=%v), want %q", err, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error does not contain %q:\n%s", want, err)
	}
	return warns
}

// TestParseErrors checks that each malformed config is refused with a message
// naming the field and line, and that all problems are reported together.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error text
	}{
		{"empty file", "", []string{"file is empty"}},
		{"only comments", "# nothing\n\n", []string{"file is empty"}},
		{"malformed yaml", "ensemble: [unclosed\n", []string{"malformed YAML"}},
		{"tabs", "ensemble: e1\n\tnodes: []\n", []string{"malformed YAML"}},
		{"top level list", "- a\n- b\n", []string{"line 1", "top level must be a mapping"}},
		{"two documents", base + "---\nensemble: e2\n", []string{"more than one YAML document"}},
		{"unknown field with suggestion", base + "zookeeper:\n  clientport: 2181\n", []string{"line 7: zookeeper.clientport: unknown field (did you mean \"client_port\"?)"}},
		{"unknown top-level field", base + "ensembel: x\n", []string{"line 6: ensembel: unknown field"}},
		{"wrong type int", base + "zookeeper:\n  client_port: abc\n", []string{"line 7: zookeeper.client_port: want an integer, got \"abc\""}},
		{"quoted int", base + "zookeeper:\n  tick_time: \"2000\"\n", []string{"zookeeper.tick_time: want an integer"}},
		{"wrong type bool", base + "zookeeper:\n  admin_server:\n    enabled: yes please\n", []string{"line 8: zookeeper.admin_server.enabled: want true or false"}},
		{"list where mapping", base + "volume: [a]\n", []string{"line 6: volume: want a mapping of settings, got a list"}},
		{"mapping where list", "ensemble: e1\nnodes: {id: 1}\n", []string{"line 2: nodes: want a list, got a mapping"}},
		{"bad duration", base + "claim:\n  deadline: 300\n", []string{"line 7: claim.deadline: want a duration such as 90s or 5m, got \"300\""}},
		{"missing ensemble", strings.Replace(base, "ensemble: e1", "ensemble: \"\"", 1), []string{"line 1: ensemble: required"}},
		{"bad ensemble name", strings.Replace(base, "ensemble: e1", "ensemble: \"a b\"", 1), []string{"line 1: ensemble: \"a b\" must be"}},
		{"no nodes", "ensemble: e1\n", []string{"nodes: required: at least one node"}},
		{"duplicate id", strings.Replace(base, "id: 2", "id: 1", 1), []string{"line 4: nodes[1].id: 1 is also the id of nodes[0]"}},
		{"id out of range", strings.Replace(base, "id: 3", "id: 256", 1), []string{"line 5: nodes[2].id: 256 is outside 1..255"}},
		{"id zero", strings.Replace(base, "id: 3", "id: 0", 1), []string{"nodes[2].id: 0 is outside 1..255"}},
		{"duplicate ip", strings.Replace(base, "10.0.2.10", "10.0.1.10", 1), []string{"line 4: nodes[1].ip: 10.0.1.10 is also the address of nodes[0]"}},
		{"bad ip", strings.Replace(base, "10.0.2.10", "10.0.2.300", 1), []string{"line 4: nodes[1].ip: want an IPv4 address, got \"10.0.2.300\""}},
		{"ipv6 ip", strings.Replace(base, "10.0.2.10", "\"fd00::1\"", 1), []string{"nodes[1].ip: want an IPv4 address"}},
		{"loopback ip", strings.Replace(base, "10.0.2.10", "127.0.0.1", 1), []string{"nodes[1].ip: 127.0.0.1 cannot be"}},
		{"missing ip", strings.Replace(base, ", ip: 10.0.2.10", "", 1), []string{"line 4: nodes[1].ip: required"}},
		{"bad az", strings.Replace(base, "us-east-1b", "useast1b", 1), []string{"line 4: nodes[1].az: \"useast1b\" is not an availability zone"}},
		{"mixed regions", strings.Replace(base, "us-east-1c", "eu-west-1c", 1), []string{"nodes[2].az: eu-west-1c is in region eu-west-1 but nodes[0] is in us-east-1"}},
		{"pinned node unknown", base + "node: 9\n", []string{"line 6: node: pinned node 9 is not in nodes"}},
		{"ports clash", base + "zookeeper:\n  quorum_port: 2181\n", []string{"line 7: zookeeper.quorum_port: 2181 is also zookeeper.client_port"}},
		{"port range", base + "zookeeper:\n  election_port: 70000\n", []string{"zookeeper.election_port: 70000 is not a TCP port"}},
		{"bad device", base + "volume:\n  device: /dev/nvme1n1\n", []string{"line 7: volume.device: \"/dev/nvme1n1\" is not an EBS device name"}},
		{"relative mount point", base + "volume:\n  mount_point: data\n", []string{"volume.mount_point: \"data\" must be a clean absolute path"}},
		{"root mount point", base + "volume:\n  mount_point: /\n", []string{"volume.mount_point: \"/\" would hide"}},
		{"bad fs type", base + "volume:\n  fs_type: btrfs\n", []string{"line 7: volume.fs_type: \"btrfs\": want ext4 or xfs"}},
		{"colliding route table", base + "network:\n  route_table: 10001\n", []string{"line 7: network.route_table: route table 10001 is reserved (amazon-ec2-net-utils"}},
		{"main table", base + "network:\n  route_table: 254\n", []string{"network.route_table: route table 254 is reserved (the kernel's"}},
		{"jumbo beyond EC2", base + "network:\n  mtu: 9216\n", []string{"line 7: network.mtu: 9216 must be between 576 and 9001"}},
		{"ready timeout too short", base + "health:\n  ready_timeout: 1s\n", []string{"line 7: health.ready_timeout: 1s must be between 10s and 2h"}},
		{"IPv6 node", strings.Replace(base, "10.0.1.10", "fd00::10", 1), []string{"line 3: nodes[0].ip: want an IPv4 address, got \"fd00::10\""}},
		{"adopt tag reserved", base + "claim:\n  tags:\n    adopt: aws:adopt\n", []string{"claim.tags.adopt: \"aws:adopt\": the aws: prefix is reserved"}},
		{"bad 4lw", base + "zookeeper:\n  four_letter_words: [srvr, kill]\n", []string{"line 7: zookeeper.four_letter_words[1]: \"kill\" is not a ZooKeeper four-letter word"}},
		{"bad heap", base + "zookeeper:\n  heap: 2GB\n", []string{"zookeeper.heap: \"2GB\" is not a JVM heap size"}},
		{"aws tag prefix", base + "claim:\n  tags:\n    node: aws:node\n", []string{"line 8: claim.tags.node: \"aws:node\": the aws: prefix is reserved"}},
		{"same tag twice", base + "claim:\n  tags:\n    node: zkaas:ensemble\n", []string{"claim.tags.node: \"zkaas:ensemble\" is also claim.tags.ensemble"}},
		{"stuck bound above deadline", base + "claim:\n  deadline: 30s\n  stuck_attach: 1m\n", []string{"line 8: claim.stuck_attach: 1m0s must be positive and shorter than claim.deadline (30s)"}},
		{"bootstrap window too short", base + "claim:\n  deadline: 10m\n  bootstrap_window: 5m\n", []string{"line 8: claim.bootstrap_window: 5m0s must be at least claim.deadline (10m0s)"}},
		{"key set twice", base + "volume:\n  fs_type: ext4\n  fs_type: xfs\n", []string{"line 8: volume.fs_type: set twice"}},
		{"null value", base + "volume:\n  device:\n", []string{"line 7: volume.device: want a string, got nothing"}},
		{"all problems at once", strings.Replace(base, "id: 2", "id: 1", 1) + "volume:\n  fs_type: btrfs\nzookeeper:\n  heap: lots\n", []string{"3 problem(s)", "nodes[1].id", "volume.fs_type", "zookeeper.heap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("ensemble.yaml", []byte(tt.yaml))
			var p *Problems
			if !errors.As(err, &p) {
				t.Fatalf("Parse accepted it (err=%v)", err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestEvenNodeCountWarns(t *testing.T) {
	y := base + "  - {id: 4, az: us-east-1a, ip: 10.0.1.11}\n"
	_, warns, err := Parse("x", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0].Error(), "line 2: nodes: 4 nodes") {
		t.Errorf("warnings = %v", warns)
	}
}

func TestLoadLimits(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.yaml")
	if err := os.WriteFile(huge, []byte(base+"# "+strings.Repeat("x", MaxSize)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(huge); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: %v", err)
	}
	if _, _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "open config") {
		t.Errorf("missing file: %v", err)
	}
	// A billion-laughs alias bomb must fail fast instead of exhausting memory.
	bomb := "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
	if _, _, err := Parse("bomb", []byte(bomb)); err == nil {
		t.Error("alias bomb accepted")
	}
}

func TestRegionOf(t *testing.T) {
	for az, want := range map[string]string{
		"us-east-1a":       "us-east-1",
		"us-gov-west-1b":   "us-gov-west-1",
		"us-west-2-lax-1a": "us-west-2",
		"ap-southeast-2c":  "ap-southeast-2",
	} {
		if got := regionOf(az); got != want {
			t.Errorf("regionOf(%q) = %q, want %q", az, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte("ensemble: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Must never panic; either a config or a *Problems.
		_, _, err := Parse("fuzz", data)
		var p *Problems
		if err != nil && !errors.As(err, &p) {
			t.Fatalf("non-Problems error %T: %v", err, err)
		}
	})
}

package boot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/claim"
	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/firstboot/identity"
	"github.com/zkaas/zkaas/firstboot/netcfg"
	"github.com/zkaas/zkaas/firstboot/zookeeper"
)

// fakes is every stage's domain side, recording the calls in order; a
// method fails when its name is in fail.
type fakes struct {
	calls []string
	fail  map[string]error

	id     identity.Instance
	claim  claim.Result
	tag    time.Time // what InitializedTag reads
	tagged time.Time // what TagInitialized wrote
	adopt  string    // what AdoptTag reads
	// unmarked: the volume holds data without a marker, so Prepare
	// refuses it with ErrUnmarked unless spec.Adopt is the node's id (and
	// any other Adopt with a plain refusal), as disk.Preparer does.
	unmarked bool
	diskRes  disk.Result
	diskSpec disk.Spec
	netSpec  netcfg.Spec
	zkNode   zookeeper.Node
	peers    []claim.Peer
}

func (f *fakes) call(name string) error {
	f.calls = append(f.calls, name)
	return f.fail[name]
}

func (f *fakes) Identify(context.Context) (identity.Instance, error) {
	return f.id, f.call("identify")
}

func (f *fakes) Subnet(_ context.Context, self identity.Instance, nic identity.Interface) (netip.Prefix, error) {
	if self != f.id || nic.ID != f.claim.ENI || !slices.Equal(nic.MAC, f.claim.MAC) || nic.SubnetID != f.claim.SubnetID {
		return netip.Prefix{}, fmt.Errorf("subnet asked for %+v of %+v", nic, self)
	}
	return netip.MustParsePrefix("10.0.2.0/24"), f.call("subnet")
}

func (f *fakes) Claim(_ context.Context, id identity.Instance) (claim.Result, error) {
	if err := f.call("claim"); err != nil {
		return claim.Result{}, err
	}
	return f.claim, nil
}

func (f *fakes) InitializedTag(_ context.Context, vol string) (time.Time, error) {
	return f.tag, f.call("initialized-tag " + vol)
}

func (f *fakes) AdoptTag(_ context.Context, vol string) (string, error) {
	return f.adopt, f.call("adopt-tag " + vol)
}

func (f *fakes) TagInitialized(_ context.Context, vol string, when time.Time) error {
	f.tagged = when
	return f.call("tag " + vol + " " + when.Format(time.RFC3339))
}

func (f *fakes) PeerVolumes(_ context.Context, self int) ([]claim.Peer, error) {
	return f.peers, f.call(fmt.Sprintf("peers of %d", self))
}

func (f *fakes) Configure(_ context.Context, spec netcfg.Spec) (netcfg.Result, error) {
	f.netSpec = spec
	return netcfg.Result{Changes: []string{"address"}}, f.call("network")
}

func (f *fakes) ResolveDevice(_ context.Context, spec disk.Spec) (string, error) {
	return "/dev/nvme1n1", f.call("resolve " + spec.Device)
}

func (f *fakes) Prepare(_ context.Context, spec disk.Spec) (disk.Result, error) {
	f.diskSpec = spec
	name := "prepare " + spec.Device
	if spec.Adopt != "" {
		name += " adopt=" + spec.Adopt
	}
	if err := f.call(name); err != nil || !f.unmarked {
		return f.diskRes, err
	}
	switch spec.Adopt {
	case strconv.Itoa(spec.NodeID):
		return f.diskRes, nil
	case "":
		return disk.Result{Device: spec.Device}, fmt.Errorf("volume %s holds data but no identity marker: %w (%w)", spec.VolumeID, disk.ErrUnmarked, disk.ErrRefused)
	default:
		return disk.Result{Device: spec.Device}, fmt.Errorf("volume %s is tagged %s=%s for another node: %w", spec.VolumeID, spec.AdoptTag, spec.Adopt, disk.ErrRefused)
	}
}

// zk is the ZooKeeper stage's fake (Prepare is taken by Disk).
type zk struct{ *fakes }

func (z zk) Prepare(_ context.Context, n zookeeper.Node) (zookeeper.Result, error) {
	z.zkNode = n
	return zookeeper.Result{Changed: []string{"zoo.cfg"}}, z.call("zookeeper")
}

// sec is the secrets stage's fake: the material it returns is named after
// the node it was asked for.
type sec struct{ *fakes }

func (s sec) Material(_ context.Context, cfg ensemble.Config, node int) (zookeeper.Material, []string, error) {
	if err := s.call(fmt.Sprintf("secrets of %d", node)); err != nil {
		return zookeeper.Material{}, nil, err
	}
	var refs []string
	for _, ns := range cfg.Secrets() {
		refs = append(refs, ns.Secret.ForNode(node).String())
	}
	return zookeeper.Material{KeyStore: []byte(fmt.Sprintf("keystore of %d", node))}, refs, nil
}

// withTLS turns zookeeper.tls on with a per-node keystore.
func withTLS(r *Runner, f *fakes) {
	r.Config.ZooKeeper.TLS.Client = true
	r.Config.ZooKeeper.TLS.Keystore = ensemble.Secret{SecretsManager: "zk/node-{node}"}
	r.Config.ZooKeeper.TLS.Truststore = ensemble.Secret{SSM: "/zk/ca"}
	r.Secrets = sec{f}
}

var (
	now         = time.Date(2026, 3, 4, 5, 6, 7, 800, time.UTC)
	formattedAt = time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)
)

// runner is node 2 of a three-node ensemble on fresh fakes: a blank volume
// that Prepare formats.
func runner(t *testing.T) (*Runner, *fakes) {
	t.Helper()
	cfg := ensemble.Default()
	cfg.Ensemble = "zk-test"
	cfg.Nodes = []ensemble.Node{
		{ID: 1, AZ: "us-east-1a", IP: netip.MustParseAddr("10.0.1.10")},
		{ID: 2, AZ: "us-east-1b", IP: netip.MustParseAddr("10.0.2.10")},
		{ID: 3, AZ: "us-east-1c", IP: netip.MustParseAddr("10.0.3.10")},
	}
	f := &fakes{
		fail: map[string]error{},
		id:   identity.Instance{InstanceID: "i-1", AZ: "us-east-1b", Region: "us-east-1", MAC: "02:00:00:00:00:01"},
		claim: claim.Result{
			Node: 2, ENI: "eni-2", IP: netip.MustParseAddr("10.0.2.10"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x42},
			SubnetID: "subnet-b", DeviceIndex: 1, Volume: "vol-2", Device: "/dev/xvdf",
		},
		diskRes: disk.Result{Device: "/dev/nvme1n1", Formatted: true, Changes: []string{"mkfs"}, Identity: disk.Identity{FirstFormatted: formattedAt}},
	}
	r := &Runner{
		Config: cfg, Metadata: f, Cloud: f, Network: f, Disk: f, ZooKeeper: zk{f},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return now },
	}
	return r, f
}

func stages(rep Report) []string {
	var s []string
	for _, st := range rep.Stages {
		s = append(s, st.Stage)
	}
	return s
}

// TestRun: the stages in order, each fed what the ones before found, and
// each failure stops the run at its stage with an error naming it.
func TestRun(t *testing.T) {
	boom := errors.New("boom")
	tag := "tag vol-2 2026-03-04T05:06:00Z"
	tests := []struct {
		name  string
		setup func(*Runner, *fakes)
		// calls is the fakes' record; stages the report's stage list.
		calls   []string
		stages  []string
		wantErr string
		is      error
		isNot   []error  // sentinels the error must not be
		wantIn  []string // further substrings of the error
	}{
		{
			name:   "fresh volume: every stage, tagged after the format",
			calls:  []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", tag, "zookeeper"},
			stages: []string{"identify", "claim", "network", "disk", "zookeeper"},
		},
		{
			name:    "identify fails: nothing else runs",
			setup:   func(_ *Runner, f *fakes) { f.fail["identify"] = boom },
			calls:   []string{"identify"},
			stages:  []string{"identify"},
			wantErr: "identify: boom", is: boom,
		},
		{
			name:    "instance in another region: refused before the claim",
			setup:   func(_ *Runner, f *fakes) { f.id.Region = "eu-west-1" },
			calls:   []string{"identify"},
			stages:  []string{"identify"},
			wantErr: "identify: instance i-1 is in region eu-west-1 but ensemble zk-test is in us-east-1",
		},
		{
			name:    "no node in the instance's AZ: refused before the claim",
			setup:   func(_ *Runner, f *fakes) { f.id.AZ = "us-east-1d" },
			calls:   []string{"identify"},
			stages:  []string{"identify"},
			wantErr: "identify: ensemble zk-test has no node in us-east-1d",
		},
		{
			name:    "claim fails: no network, no disk",
			setup:   func(_ *Runner, f *fakes) { f.fail["claim"] = boom },
			calls:   []string{"identify", "claim"},
			stages:  []string{"identify", "claim"},
			wantErr: "claim: boom", is: boom,
		},
		{
			name:   "tls on: the secrets stage after the claim, before the network",
			setup:  withTLS,
			calls:  []string{"identify", "claim", "secrets of 2", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", tag, "zookeeper"},
			stages: []string{"identify", "claim", "secrets", "network", "disk", "zookeeper"},
		},
		{
			name: "secrets fail: no network, no disk, no zookeeper",
			setup: func(r *Runner, f *fakes) {
				withTLS(r, f)
				f.fail["secrets of 2"] = boom
			},
			calls:   []string{"identify", "claim", "secrets of 2"},
			stages:  []string{"identify", "claim", "secrets"},
			wantErr: "secrets: boom", is: boom,
		},
		{
			name: "secrets named but no fetcher: the stage fails",
			setup: func(r *Runner, f *fakes) {
				withTLS(r, f)
				r.Secrets = nil
			},
			calls:   []string{"identify", "claim"},
			stages:  []string{"identify", "claim", "secrets"},
			wantErr: "secrets: the config names secrets but the runner has no secrets fetcher",
		},
		{
			name:    "no subnet from IMDS: network fails, no disk",
			setup:   func(_ *Runner, f *fakes) { f.fail["subnet"] = boom },
			calls:   []string{"identify", "claim", "subnet"},
			stages:  []string{"identify", "claim", "network"},
			wantErr: "network: boom",
		},
		{
			name:    "link fails: no disk",
			setup:   func(_ *Runner, f *fakes) { f.fail["network"] = boom },
			calls:   []string{"identify", "claim", "subnet", "network"},
			stages:  []string{"identify", "claim", "network"},
			wantErr: "network: boom",
		},
		{
			name:    "fresh tag read fails: the disk is not touched",
			setup:   func(_ *Runner, f *fakes) { f.fail["initialized-tag vol-2"] = boom },
			calls:   []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2"},
			stages:  []string{"identify", "claim", "network", "disk"},
			wantErr: "disk: boom",
		},
		{
			name: "disk refuses: not tagged, zookeeper stage not run",
			setup: func(_ *Runner, f *fakes) {
				f.diskRes = disk.Result{}
				f.fail["prepare /dev/nvme1n1"] = fmt.Errorf("volume vol-2 has an xfs filesystem: %w", disk.ErrRefused)
			},
			calls:   []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1"},
			stages:  []string{"identify", "claim", "network", "disk"},
			wantErr: "disk: volume vol-2 has an xfs filesystem", is: disk.ErrRefused,
		},
		{
			name:    "formatted, then the mount fails: tagged anyway, zookeeper not run",
			setup:   func(_ *Runner, f *fakes) { f.fail["prepare /dev/nvme1n1"] = boom },
			calls:   []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", tag},
			stages:  []string{"identify", "claim", "network", "disk"},
			wantErr: "disk: boom", is: boom,
		},
		{
			name:    "tagging fails: the disk stage fails, zookeeper not run",
			setup:   func(_ *Runner, f *fakes) { f.fail[tag] = boom },
			calls:   []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", tag},
			stages:  []string{"identify", "claim", "network", "disk"},
			wantErr: "disk: boom", is: boom,
		},
		{
			name:    "zookeeper fails after the format: the tag is already written",
			setup:   func(_ *Runner, f *fakes) { f.fail["zookeeper"] = zookeeper.ErrUnsafeEmptyTree },
			calls:   []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", tag, "zookeeper"},
			stages:  []string{"identify", "claim", "network", "disk", "zookeeper"},
			wantErr: "zookeeper: refusing to trust an empty data tree", is: zookeeper.ErrUnsafeEmptyTree,
		},
		{
			name: "unmarked filesystem with data, no adopt tag: refused after one tag read, not tagged",
			setup: func(_ *Runner, f *fakes) {
				f.unmarked = true
			},
			calls:   []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", "adopt-tag vol-2"},
			stages:  []string{"identify", "claim", "network", "disk"},
			wantErr: "disk: volume vol-2 holds data but no identity marker", is: disk.ErrUnmarked,
		},
		{
			name: "unmarked filesystem with data, adopt tag for this node: prepared again with it, then tagged initialized",
			setup: func(_ *Runner, f *fakes) {
				f.unmarked, f.adopt = true, "2"
				f.diskRes = disk.Result{Device: "/dev/nvme1n1", Changes: []string{"wrote identity marker"}}
			},
			calls: []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", "adopt-tag vol-2",
				"prepare /dev/nvme1n1 adopt=2", "tag vol-2 2026-03-04T05:06:07Z", "zookeeper"},
			stages: []string{"identify", "claim", "network", "disk", "zookeeper"},
		},
		{
			name: "unmarked filesystem with data, adopt tag for another node: refused, not tagged",
			setup: func(_ *Runner, f *fakes) {
				f.unmarked, f.adopt = true, "5"
			},
			calls:   []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", "adopt-tag vol-2", "prepare /dev/nvme1n1 adopt=5"},
			stages:  []string{"identify", "claim", "network", "disk"},
			wantErr: "disk: volume vol-2 is tagged zkaas:adopt=5 for another node", is: disk.ErrRefused,
		},
		{
			// A failed read is not the operator's answer: retried as a
			// failure, not held as a refusal; the refusal is named.
			name: "adopt tag read fails: a failure naming the volume and the refusal, not a refusal, not tagged",
			setup: func(_ *Runner, f *fakes) {
				f.unmarked = true
				f.fail["adopt-tag vol-2"] = boom
			},
			calls:   []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", "adopt-tag vol-2"},
			stages:  []string{"identify", "claim", "network", "disk"},
			wantErr: "disk: volume vol-2: read adopt tag zkaas:adopt", is: boom,
			isNot:  []error{disk.ErrRefused, disk.ErrUnmarked},
			wantIn: []string{"volume vol-2 holds data but no identity marker", "boom"},
		},
		{
			name: "claim saw the tag: no fresh read, no new tag",
			setup: func(_ *Runner, f *fakes) {
				f.claim.Initialized = formattedAt
				f.diskRes = disk.Result{Device: "/dev/nvme1n1"}
			},
			calls:  []string{"identify", "claim", "subnet", "network", "resolve /dev/xvdf", "prepare /dev/nvme1n1", "zookeeper"},
			stages: []string{"identify", "claim", "network", "disk", "zookeeper"},
		},
		{
			name: "tag written since the claim's listing: read fresh, not written again",
			setup: func(_ *Runner, f *fakes) {
				f.tag = formattedAt
				f.diskRes = disk.Result{Device: "/dev/nvme1n1"}
			},
			calls:  []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", "zookeeper"},
			stages: []string{"identify", "claim", "network", "disk", "zookeeper"},
		},
		{
			name: "formatted by a boot that died before tagging: tagged with the volume's own time",
			setup: func(_ *Runner, f *fakes) {
				f.diskRes = disk.Result{Device: "/dev/nvme1n1", Identity: disk.Identity{FirstFormatted: formattedAt}}
			},
			calls:  []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", tag, "zookeeper"},
			stages: []string{"identify", "claim", "network", "disk", "zookeeper"},
		},
		{
			name: "no format time on the volume: tagged with the clock, in seconds",
			setup: func(_ *Runner, f *fakes) {
				f.diskRes.Identity = disk.Identity{}
			},
			calls:  []string{"identify", "claim", "subnet", "network", "initialized-tag vol-2", "resolve /dev/xvdf", "prepare /dev/nvme1n1", "tag vol-2 2026-03-04T05:06:07Z", "zookeeper"},
			stages: []string{"identify", "claim", "network", "disk", "zookeeper"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, f := runner(t)
			if tt.setup != nil {
				tt.setup(r, f)
			}
			rep, err := r.Run(context.Background())
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want it to start with %q", err, tt.wantErr)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.is)
			}
			for _, not := range tt.isNot {
				if errors.Is(err, not) {
					t.Errorf("err = %v wraps %v", err, not)
				}
			}
			for _, sub := range tt.wantIn {
				if err == nil || !strings.Contains(err.Error(), sub) {
					t.Errorf("err = %v, want it to contain %q", err, sub)
				}
			}
			if !slices.Equal(f.calls, tt.calls) {
				t.Errorf("calls:\n got %q\nwant %q", f.calls, tt.calls)
			}
			if got := stages(rep); !slices.Equal(got, tt.stages) {
				t.Errorf("stages = %q, want %q", got, tt.stages)
			}
		})
	}
}

// TestRunSecrets: the material fetched for the claimed node reaches the
// ZooKeeper stage, and the report lists the references, not the material.
func TestRunSecrets(t *testing.T) {
	r, f := runner(t)
	withTLS(r, f)
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.zkNode.Material.KeyStore); got != "keystore of 2" {
		t.Errorf("zookeeper stage got keystore %q", got)
	}
	if want := []string{"secretsmanager:zk/node-2", "ssm:/zk/ca"}; !slices.Equal(rep.Secrets, want) {
		t.Errorf("report secrets %q, want %q", rep.Secrets, want)
	}
	b, _ := json.Marshal(rep)
	if strings.Contains(string(b), "keystore of") {
		t.Errorf("the report carries material: %s", b)
	}
}

// TestNetworkSpec: the network stage routes every other node as a peer,
// never the node itself, and passes the config's MTU.
func TestNetworkSpec(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(*ensemble.Config)
		wantPeers []string
		wantMTU   int
	}{
		{"three nodes", func(*ensemble.Config) {}, []string{"10.0.1.10", "10.0.3.10"}, 9001},
		{"mtu lowered", func(c *ensemble.Config) { c.Network.MTU = 1500 }, []string{"10.0.1.10", "10.0.3.10"}, 1500},
		{"five nodes", func(c *ensemble.Config) {
			c.Nodes = append(c.Nodes, ensemble.Node{ID: 4, AZ: "us-east-1a", IP: netip.MustParseAddr("10.0.1.11")},
				ensemble.Node{ID: 5, AZ: "us-east-1b", IP: netip.MustParseAddr("10.0.2.11")})
		}, []string{"10.0.1.10", "10.0.3.10", "10.0.1.11", "10.0.2.11"}, 9001},
		{"single node", func(c *ensemble.Config) { c.Nodes = c.Nodes[1:2] }, nil, 9001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, f := runner(t)
			tt.edit(&r.Config)
			if _, err := r.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range f.netSpec.Peers {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tt.wantPeers) || f.netSpec.MTU != tt.wantMTU {
				t.Errorf("peers %v mtu %d, want %v mtu %d", got, f.netSpec.MTU, tt.wantPeers, tt.wantMTU)
			}
		})
	}
}

// TestRunHandsOn: what each stage is given comes from the stages before
// it, typed, and the report counts the changes.
func TestRunHandsOn(t *testing.T) {
	r, f := runner(t)
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The peers are the other nodes, in the config's order; the MTU is
	// the config's (EC2's 9001 by default).
	wantNet := netcfg.Spec{MAC: f.claim.MAC, IP: f.claim.IP, Subnet: netip.MustParsePrefix("10.0.2.0/24"),
		Table: r.Config.Network.RouteTable, Priority: r.Config.Network.RulePriority,
		Peers: []netip.Addr{netip.MustParseAddr("10.0.1.10"), netip.MustParseAddr("10.0.3.10")}, MTU: 9001,
		Logger: r.Log}
	if !reflect.DeepEqual(f.netSpec, wantNet) {
		t.Errorf("network spec = %+v, want %+v", f.netSpec, wantNet)
	}
	wantDisk := disk.Spec{VolumeID: "vol-2", Device: "/dev/nvme1n1", FSType: r.Config.Volume.FSType,
		MountPoint: r.Config.Volume.MountPoint, Ensemble: "zk-test", NodeID: 2, AdoptTag: "zkaas:adopt"}
	if !reflect.DeepEqual(f.diskSpec, wantDisk) {
		t.Errorf("disk spec = %+v, want %+v", f.diskSpec, wantDisk)
	}
	wantZK := zookeeper.Node{Self: zookeeper.PeerVolume{NodeID: 2, VolumeID: "vol-2", InitializedAt: formattedAt}, IP: f.claim.IP, FormattedNow: true}
	if !reflect.DeepEqual(f.zkNode, wantZK) {
		t.Errorf("zookeeper node = %+v, want %+v", f.zkNode, wantZK)
	}
	if !rep.Claim.Initialized.Equal(formattedAt) || !f.tagged.Equal(formattedAt) {
		t.Errorf("claim initialized %v, tagged %v; want %v", rep.Claim.Initialized, f.tagged, formattedAt)
	}
	// address + mkfs + tag + zoo.cfg + the claim's attach
	if rep.Changes != 5 || rep.Disk.Changes[len(rep.Disk.Changes)-1] != "tagged vol-2 zkaas:initialized=2026-03-04T05:06:00Z" {
		t.Errorf("changes = %d, disk changes %q", rep.Changes, rep.Disk.Changes)
	}
	if s := rep.String(); !strings.HasPrefix(s, "node 2 (10.0.2.10, vol-2): 5 change(s) in ") {
		t.Errorf("summary = %q", s)
	}
	// An initialized volume: the disk is told, so a blank one is refused.
	r, f = runner(t)
	f.tag = formattedAt
	f.diskRes = disk.Result{}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !f.diskSpec.Initialized || !f.zkNode.Self.InitializedAt.Equal(formattedAt) || f.zkNode.FormattedNow {
		t.Errorf("initialized volume: disk spec %+v, zookeeper node %+v", f.diskSpec, f.zkNode)
	}
}

// TestClaimCommand: `zkaas-firstboot claim` is identify and claim alone.
func TestClaimCommand(t *testing.T) {
	r, f := runner(t)
	res, err := r.Claim(context.Background())
	if err != nil || res.Volume != "vol-2" || !slices.Equal(f.calls, []string{"identify", "claim"}) {
		t.Errorf("Claim = %+v, %v; calls %q", res, err, f.calls)
	}
	r, f = runner(t)
	f.id.Region = "eu-west-1"
	if _, err := r.Claim(context.Background()); err == nil || !slices.Equal(f.calls, []string{"identify"}) {
		t.Errorf("wrong region: err %v, calls %q", err, f.calls)
	}
}

// TestPeerVolumes: the ZooKeeper stage lists the peers through Cloud,
// typed as they came.
func TestPeerVolumes(t *testing.T) {
	r, f := runner(t)
	f.peers = []claim.Peer{{Node: 1, Volume: "vol-1", InitializedAt: formattedAt}, {Node: 3, Volume: "vol-3"}}
	got, err := r.peerVolumes(context.Background(), 2)
	want := []zookeeper.PeerVolume{{NodeID: 1, VolumeID: "vol-1", InitializedAt: formattedAt}, {NodeID: 3, VolumeID: "vol-3"}}
	if err != nil || !reflect.DeepEqual(got, want) || !slices.Equal(f.calls, []string{"peers of 2"}) {
		t.Errorf("peerVolumes = %+v, %v (calls %q); want %+v", got, err, f.calls, want)
	}
	f.fail["peers of 2"] = errors.New("boom")
	if _, err := r.peerVolumes(context.Background(), 2); err == nil {
		t.Error("a failed listing was not returned")
	}
}

// TestDefaults: the production stages are wired when not given, the
// ZooKeeper one listing peers through the runner's Cloud.
func TestDefaults(t *testing.T) {
	r, _ := runner(t)
	r.Network, r.Disk, r.ZooKeeper = nil, nil, nil
	r.defaults()
	h, ok := r.ZooKeeper.(*zookeeper.Host)
	if _, nok := r.Network.(*Networkd); !nok || !ok {
		t.Fatalf("defaults: network %T, zookeeper %T", r.Network, r.ZooKeeper)
	}
	if _, ok := r.Disk.(*disk.Preparer); !ok {
		t.Errorf("disk %T", r.Disk)
	}
	if h.Layout.ConfDir != zookeeper.DefaultConfDir || h.User != "zookeeper" || h.PeerVolumes == nil {
		t.Errorf("zookeeper host = %+v", h)
	}
}

package claim

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

const initKey = "zkaas:initialized"

func volume(tag, snapshot string) types.Volume {
	v := types.Volume{VolumeId: aws.String("vol-1")}
	if tag != "" {
		v.Tags = []types.Tag{{Key: aws.String(initKey), Value: aws.String(tag)}}
	}
	if snapshot != "" {
		v.SnapshotId = aws.String(snapshot)
	}
	return v
}

// TestPeerInitializedAt: a peer's initialized time comes from its tag; a
// peer restored from a snapshot without the tag (EC2 does not copy tags)
// counts as holding old data, never as brand new.
func TestPeerInitializedAt(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name          string
		tag, snapshot string
		want          time.Time
	}{
		{"tagged", at.Format(time.RFC3339), "", at},
		{"never initialized", "", "", time.Time{}},
		{"restored from a snapshot", "", "snap-1", unknownAge},
		{"tag wins over snapshot", at.Format(time.RFC3339), "snap-1", at},
		{"garbage tag, no snapshot", "yes", "", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := peerInitializedAt(volume(tt.tag, tt.snapshot), initKey); !got.Equal(tt.want) {
				t.Errorf("peerInitializedAt = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestInitializedAt: the node's own tag, as the disk stage's "never format
// an initialized volume" guard needs it: present means formatted, even when
// the value is not a time.
func TestInitializedAt(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	tests := []struct {
		name, tag string
		want      time.Time
	}{
		{"absent", "", time.Time{}},
		{"ours", at.Format(time.RFC3339), at},
		{"present but not a time", "yes", unknownAge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := initializedAt(volume(tt.tag, "").Tags, initKey); !got.Equal(tt.want) {
				t.Errorf("initializedAt = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCloudTags: the disk stage's tag read and write, and the ZooKeeper
// stage's peer listing, against the simulator.
func TestCloudTags(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}, {"us-east-1b", 2}})
	c, ctx := w.cloud(), context.Background()
	if got, err := c.InitializedTag(ctx, w.vols[2]); err != nil || !got.IsZero() {
		t.Fatalf("fresh volume: InitializedTag = %v, %v; want zero", got, err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := c.TagInitialized(ctx, w.vols[2], at.In(time.FixedZone("x", 3600))); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.sim.Volume(w.vols[2]); v.Tags[initKey] != "2026-01-02T03:04:05Z" {
		t.Errorf("tag = %q, want RFC 3339 in UTC", v.Tags[initKey])
	}
	if got, err := c.InitializedTag(ctx, w.vols[2]); err != nil || !got.Equal(at) {
		t.Errorf("InitializedTag = %v, %v; want %v", got, err, at)
	}
	peers, err := c.PeerVolumes(ctx, 1)
	want := []Peer{{Node: 2, Volume: w.vols[2], InitializedAt: at}, {Node: 3, Volume: w.vols[3]}}
	if err != nil || !reflect.DeepEqual(peers, want) {
		t.Errorf("PeerVolumes(1) = %+v, %v; want %+v", peers, err, want)
	}
	if c.Counter.Calls() != 4 {
		t.Errorf("counted %d calls, want 4", c.Counter.Calls())
	}
	if _, err := c.InitializedTag(ctx, "vol-0000000000000dead"); err == nil {
		t.Error("InitializedTag of a missing volume succeeded")
	}
}

// TestCloudAdoptTag: the adopt tag as the operator sets it, read in one
// call.
func TestCloudAdoptTag(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 2}})
	c, ctx := w.cloud(), context.Background()
	if got, err := c.AdoptTag(ctx, w.vols[2]); err != nil || got != "" {
		t.Fatalf("untagged volume: AdoptTag = %q, %v; want empty", got, err)
	}
	if _, err := c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: []string{w.vols[2]},
		Tags:      []types.Tag{{Key: aws.String(w.cfg.Claim.Tags.Adopt), Value: aws.String("2")}},
	}); err != nil {
		t.Fatal(err)
	}
	calls := c.Counter.Calls()
	if got, err := c.AdoptTag(ctx, w.vols[2]); err != nil || got != "2" {
		t.Errorf("AdoptTag = %q, %v; want 2", got, err)
	}
	if n := c.Counter.Calls() - calls; n != 1 {
		t.Errorf("AdoptTag made %d calls, want 1", n)
	}
	if got, err := c.AdoptTag(ctx, w.vols[1]); err != nil || got != "" {
		t.Errorf("other volume: AdoptTag = %q, %v; want empty", got, err)
	}
	if _, err := c.AdoptTag(ctx, "vol-0000000000000dead"); err == nil {
		t.Error("AdoptTag of a missing volume succeeded")
	}
}

// TestCallCounterCountsInvocations: a call the SDK retries counts once.
func TestCallCounterCountsInvocations(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			http.Error(w, "<Response><Errors><Error><Code>InternalError</Code><Message>try again</Message></Error></Errors></Response>", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(`<DescribeVolumesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><volumeSet/></DescribeVolumesResponse>`))
	}))
	t.Cleanup(srv.Close)
	var calls CallCounter
	api := NewEC2(aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	}, calls.Option())
	if _, err := api.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{}); err != nil {
		t.Fatal(err)
	}
	if calls.Calls() != 1 || attempts.Load() != 2 {
		t.Errorf("counted %d calls for %d attempts, want 1 for 2", calls.Calls(), attempts.Load())
	}
	var none *CallCounter
	if none.Calls() != 0 {
		t.Error("a nil counter reports calls")
	}
}

// TestResultJSON: `zkaas-firstboot claim` prints the same field names and
// string forms as when the fields were strings, and reads them back.
func TestResultJSON(t *testing.T) {
	r := Result{
		Node: 2, ENI: "eni-1", IP: netip.MustParseAddr("10.0.2.10"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x42},
		SubnetID: "subnet-1", DeviceIndex: 1, Volume: "vol-1", Device: "/dev/xvdf",
		Initialized: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Phases: Phases{Total: 1500 * time.Microsecond}, Calls: 7,
	}
	const want = `{"node":2,"eni_id":"eni-1","ip":"10.0.2.10","mac":"02:00:00:00:00:42","subnet_id":"subnet-1","device_index":1,` +
		`"volume_id":"vol-1","device":"/dev/xvdf","initialized":"2026-01-02T03:04:05Z","reused":false,` +
		`"phases":{"discover_ms":0,"eni_ms":0,"total_ms":1.5,"volume_ms":0,"wait_ms":0},"ec2_calls":7}`
	b, err := json.Marshal(r)
	if err != nil || string(b) != want {
		t.Fatalf("Marshal = %s, %v\nwant       %s", b, err, want)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("Unmarshal = %+v, %v; want %+v", back, err, r)
	}
	// Never initialized: the field is left out, as the empty tag was.
	b, _ = json.Marshal(Result{Node: 1})
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["initialized"]; ok || m["mac"] != "" || m["ip"] != "" {
		t.Errorf("zero result = %s", b)
	}
}

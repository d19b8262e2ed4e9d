package identity

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// testIMDS is an IMDSv2 endpoint for the real SDK client: it hands out one
// token, serves meta-data paths from a map, and answers a path listed in
// lag with that many 404s first — as IMDS does for a hot-attached ENI
// until it has learnt of it. fail, when set, is the status every read of a
// lagging path gets instead of 404.
type testIMDS struct {
	mu    sync.Mutex
	paths map[string]string
	lag   map[string]int
	fail  int
	reads map[string]int
}

const testToken = "token-1"

func (f *testIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
		w.Write([]byte(testToken))
		return
	}
	if r.Header.Get("X-Aws-Ec2-Metadata-Token") != testToken {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads[path]++
	if f.lag[path] > 0 {
		f.lag[path]--
		code := http.StatusNotFound
		if f.fail != 0 {
			code = f.fail
		}
		http.Error(w, http.StatusText(code), code)
		return
	}
	v, ok := f.paths[path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write([]byte(v))
}

// imdsAt is NewIMDS's client (IMDSv2 only) on a test endpoint.
func imdsAt(url string) *imds.Client {
	return imds.New(imds.Options{Endpoint: url, EnableFallback: aws.FalseTernary})
}

func TestSubnet(t *testing.T) {
	const macs = "network/interfaces/macs/"
	self := Instance{InstanceID: "i-1", MAC: "02:00:00:00:00:01"}
	eniMAC := net.HardwareAddr{2, 0, 0, 0, 0, 0x42}
	eniPath := macs + eniMAC.String() + "/subnet-ipv4-cidr-block"
	primary := map[string]string{
		macs + "02:00:00:00:00:01/subnet-id":              "subnet-a",
		macs + "02:00:00:00:00:01/subnet-ipv4-cidr-block": "10.0.1.0/24",
	}
	withENI := map[string]string{eniPath: "10.0.2.0/24"}
	for k, v := range primary {
		withENI[k] = v
	}
	const bound = 600 * time.Millisecond
	tests := []struct {
		name     string
		subnetID string
		paths    map[string]string
		lag      int // 404s of the ENI's entry before it appears
		fail     int // status of those reads instead of 404
		want     netip.Prefix
		wantErr  []string
		// wantENIReads is how often the ENI's own entry was read; -1:
		// any number.
		wantENIReads int
		// atDeadline: the error comes at the bound, not before.
		atDeadline bool
	}{
		{name: "same subnet as the primary: its entry answers", subnetID: "subnet-a", paths: primary,
			want: netip.MustParsePrefix("10.0.1.0/24")},
		{name: "other subnet: the ENI's entry", subnetID: "subnet-b", paths: withENI,
			want: netip.MustParsePrefix("10.0.2.0/24"), wantENIReads: 1},
		{name: "IMDS lags: 404 three times, then the entry", subnetID: "subnet-b", paths: withENI, lag: 3,
			want: netip.MustParsePrefix("10.0.2.0/24"), wantENIReads: 4},
		{name: "IMDS lags with a server error: read again", subnetID: "subnet-b", paths: withENI, lag: 1, fail: http.StatusInternalServerError,
			want: netip.MustParsePrefix("10.0.2.0/24"), wantENIReads: -1},
		{name: "never appears: one clear error at the bound", subnetID: "subnet-b", paths: primary,
			wantErr:      []string{"no entry for ENI eni-1 (mac 02:00:00:00:00:42) within 600ms", "not found (404)"},
			wantENIReads: -1, atDeadline: true},
		{name: "refused: no retry", subnetID: "subnet-b", paths: withENI, lag: 1, fail: http.StatusForbidden,
			wantErr: []string{"subnet of ENI eni-1 (02:00:00:00:00:42)", "403"}, wantENIReads: 1},
		{name: "garbage CIDR", subnetID: "subnet-b", paths: map[string]string{eniPath: "ten"},
			wantErr: []string{"subnet-ipv4-cidr-block"}, wantENIReads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &testIMDS{paths: tt.paths, lag: map[string]int{eniPath: tt.lag}, fail: tt.fail, reads: map[string]int{}}
			srv := httptest.NewServer(f)
			t.Cleanup(srv.Close)
			m := Metadata{API: imdsAt(srv.URL), SubnetWait: bound,
				SubnetPoll: Backoff{First: 10 * time.Millisecond, Max: 50 * time.Millisecond, Jitter: 0.3}}
			start := time.Now()
			got, err := m.Subnet(context.Background(), self, Interface{ID: "eni-1", MAC: eniMAC, SubnetID: tt.subnetID})
			elapsed := time.Since(start)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Subnet = %v, want an error", got)
				}
				t.Logf("error: %v", err)
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("Subnet = %v, %v; want %v", got, err, tt.want)
			}
			if tt.atDeadline && (elapsed < bound || elapsed > bound+time.Second) {
				t.Errorf("gave up after %s, want at the %s bound", elapsed, bound)
			}
			// (A server error is first retried by the SDK itself, which
			// backs off up to 1 s.)
			if !tt.atDeadline && tt.fail < 500 && elapsed > bound/2 {
				t.Errorf("took %s", elapsed)
			}
			f.mu.Lock()
			n := f.reads[eniPath]
			f.mu.Unlock()
			if tt.wantENIReads >= 0 && n != tt.wantENIReads {
				t.Errorf("read the ENI's entry %d times, want %d", n, tt.wantENIReads)
			}
		})
	}
}

func TestSubnetHonoursContext(t *testing.T) {
	f := &testIMDS{paths: map[string]string{}, reads: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	m := Metadata{API: imdsAt(srv.URL), SubnetWait: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := m.InterfaceSubnet(ctx, Interface{ID: "eni-1", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x42}})
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("error %v, want the context's", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned after %s", d)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{First: 100 * time.Millisecond, Max: time.Second, Jitter: 0.3}
	for attempt, want := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		want *= time.Millisecond
		for range 50 {
			d := b.Delay(attempt)
			if d < want*7/10 || d > want*13/10 {
				t.Fatalf("Delay(%d) = %s, want %s ±30%%", attempt, d, want)
			}
		}
	}
}

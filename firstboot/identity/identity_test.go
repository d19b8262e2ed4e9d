package identity

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/zkaas/zkaas/localcloud/imdsmock"
)

// TestIdentifyAgainstAWSMock reads identity from AWS's own IMDS mock running
// IMDSv2-only, through the endpoint override the SDK honours.
func TestIdentifyAgainstAWSMock(t *testing.T) {
	want := Instance{InstanceID: "i-0123456789abcdef0", AZ: "us-east-1b", Region: "us-east-1", MAC: "02:00:00:00:00:42"}
	srv, err := imdsmock.Start(context.Background(), imdsmock.Instance{
		InstanceID: want.InstanceID, AZ: want.AZ, Region: want.Region, MAC: want.MAC,
	}, imdsmock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
	client := NewIMDS(aws.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := Identify(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Identify = %+v, want %+v", got, want)
	}
}

// TestIdentifyWithoutToken: an IMDS that refuses session tokens (a v1-only
// endpoint, or a hop limit the PUT cannot cross) must fail clearly, never
// fall back to IMDSv1.
func TestIdentifyWithoutToken(t *testing.T) {
	var v1Reads int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		v1Reads++
		w.Write([]byte("i-v1fallback"))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Identify(ctx, NewIMDS(aws.Config{}))
	if err == nil {
		t.Fatal("Identify succeeded without a token")
	}
	if !strings.Contains(err.Error(), "IMDSv2 only") || !strings.Contains(err.Error(), "instance-id") {
		t.Errorf("unclear error: %v", err)
	}
	if v1Reads != 0 {
		t.Errorf("fell back to IMDSv1 (%d tokenless reads)", v1Reads)
	}
}

// TestUserData reads user data through the real SDK client from an
// IMDSv2 that answers with a token only: present, absent (404), too large.
func TestUserData(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
		err    string
	}{
		{"present", 200, "ensemble: e1\n", "ensemble: e1\n", ""},
		{"none", 404, "", "", ""},
		{"too large", 200, strings.Repeat("x", MaxUserData+1), "", "larger than EC2's 16384 bytes"},
		{"server error", 500, "", "", "get user-data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
					w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
					w.Write([]byte("token"))
					return
				}
				if r.Header.Get("X-aws-ec2-metadata-token") != "token" || r.URL.Path != "/latest/user-data" {
					http.Error(w, "unauthorized", http.StatusUnauthorized)
					return
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got, err := UserData(ctx, NewIMDS(aws.Config{Retryer: func() aws.Retryer { return aws.NopRetryer{} }}))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("UserData = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

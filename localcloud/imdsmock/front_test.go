package imdsmock

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// TestHotAttachedInterface: the front serves an interface added after
// launch from its visibility time on — 404 before, as IMDS answers while
// it has not learnt of the ENI — lists it next to the primary, keeps it
// IMDSv2-only, and forgets it on removal; the mock's own entries pass
// through unchanged.
func TestHotAttachedInterface(t *testing.T) {
	const primary, eni = "02:00:00:00:00:01", "02:00:00:00:00:42"
	srv, err := Start(t.Context(), Instance{
		InstanceID: "i-0123456789abcdef0", AZ: "us-east-1a", Region: "us-east-1", MAC: primary,
		PrivateIP: "10.0.1.5", SubnetID: "subnet-a", SubnetCIDR: "10.0.1.0/24", VPCCIDR: "10.0.0.0/16",
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	api := imds.New(imds.Options{Endpoint: srv.URL, EnableFallback: aws.FalseTernary})
	get := func(path string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		out, err := api.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			var re interface{ HTTPStatusCode() int }
			if errors.As(err, &re) {
				return "", re.HTTPStatusCode()
			}
			t.Fatalf("get %s: %v", path, err)
		}
		defer out.Content.Close()
		b, _ := io.ReadAll(out.Content)
		return string(b), http.StatusOK
	}
	const macs = "network/interfaces/macs/"

	lag := 400 * time.Millisecond
	srv.AddInterface(Interface{MAC: eni, InterfaceID: "eni-1", DeviceNumber: 1, LocalIPv4s: "10.0.2.10",
		SubnetID: "subnet-b", SubnetCIDR: "10.0.2.0/24", VPCID: "vpc-1", VPCCIDR: "10.0.0.0/16"}, time.Now().Add(lag))

	if _, code := get(macs + eni + "/subnet-ipv4-cidr-block"); code != http.StatusNotFound {
		t.Errorf("before the lag: status %d, want 404", code)
	}
	if got, _ := get(macs); got != primary+"/" {
		t.Errorf("MAC list before the lag = %q, want the primary only", got)
	}
	time.Sleep(lag)
	tests := []struct{ path, want string }{
		{macs + eni + "/subnet-ipv4-cidr-block", "10.0.2.0/24"},
		{macs + eni + "/subnet-id", "subnet-b"},
		{macs + eni + "/device-number", "1"},
		{macs + eni + "/local-ipv4s", "10.0.2.10"},
		{macs + eni + "/interface-id", "eni-1"},
		{macs, primary + "/\n" + eni + "/"},
		{macs + primary + "/subnet-id", "subnet-a"},
		{"instance-id", "i-0123456789abcdef0"},
	}
	for _, tt := range tests {
		if got, code := get(tt.path); code != http.StatusOK || got != tt.want {
			t.Errorf("%s = %q (%d), want %q", tt.path, got, code, tt.want)
		}
	}
	if got, _ := get(macs + eni + "/"); !strings.Contains(got, "subnet-ipv4-cidr-block\n") {
		t.Errorf("keys of %s: %q", eni, got)
	}
	if _, code := get(macs + eni + "/no-such-key"); code != http.StatusNotFound {
		t.Errorf("unknown key: status %d, want 404", code)
	}

	// IMDSv2 only: no token, no entry.
	resp, err := http.Get(srv.URL + "/latest/meta-data/" + macs + eni + "/subnet-id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: status %d, want 401", resp.StatusCode)
	}

	srv.RemoveInterface(eni)
	if _, code := get(macs + eni + "/subnet-id"); code != http.StatusNotFound {
		t.Errorf("after removal: status %d, want 404", code)
	}
}

// TestUserData: IMDS answers 404 for an instance launched without user
// data (the mock's own sample must not leak through), the bytes it was
// launched with otherwise, only with a session token.
func TestUserData(t *testing.T) {
	srv, err := Start(t.Context(), Instance{InstanceID: "i-0123456789abcdef0", AZ: "us-east-1a", Region: "us-east-1", MAC: "02:00:00:00:00:01"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	api := imds.New(imds.Options{Endpoint: srv.URL, EnableFallback: aws.FalseTernary})
	get := func() (string, int) {
		t.Helper()
		out, err := api.GetUserData(t.Context(), &imds.GetUserDataInput{})
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) {
			return "", re.HTTPStatusCode()
		} else if err != nil {
			t.Fatal(err)
		}
		defer out.Content.Close()
		b, _ := io.ReadAll(out.Content)
		return string(b), http.StatusOK
	}
	if got, code := get(); code != http.StatusNotFound {
		t.Errorf("without user data: %q (%d), want 404", got, code)
	}
	srv.SetUserData([]byte("ensemble: e1\n"))
	if got, code := get(); code != http.StatusOK || got != "ensemble: e1\n" {
		t.Errorf("user data = %q (%d)", got, code)
	}
	resp, err := http.Get(srv.URL + "/latest/user-data")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: status %d, want 401", resp.StatusCode)
	}
}

// TestInstanceTags: the front serves the instance's tags as IMDS does
// with InstanceMetadataTags enabled — the keys one a line, each value
// under its key, 404 for others — and 404 for all of it without tags.
func TestInstanceTags(t *testing.T) {
	tests := []struct {
		name string
		tags map[string]string
		want map[string]struct {
			body string
			code int
		}
	}{
		{"group tags", map[string]string{"aws:autoscaling:groupName": "zk-a", "zkaas:ensemble": "prod"}, map[string]struct {
			body string
			code int
		}{
			"tags/instance": {"aws:autoscaling:groupName\nzkaas:ensemble", 200},
			"tags/instance/aws:autoscaling:groupName": {"zk-a", 200},
			"tags/instance/zkaas:ensemble":            {"prod", 200},
			"tags/instance/other":                     {"", 404},
		}},
		{"none", nil, map[string]struct {
			body string
			code int
		}{
			"tags/instance":                {"", 404},
			"tags/instance/zkaas:ensemble": {"", 404},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := Start(t.Context(), Instance{InstanceID: "i-0123456789abcdef0", AZ: "us-east-1a", Region: "us-east-1",
				MAC: "02:00:00:00:00:01", PrivateIP: "10.0.1.5", Tags: tt.tags}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Stop)
			api := imds.New(imds.Options{Endpoint: srv.URL, EnableFallback: aws.FalseTernary})
			for path, want := range tt.want {
				out, err := api.GetMetadata(t.Context(), &imds.GetMetadataInput{Path: path})
				code, body := http.StatusOK, ""
				if err != nil {
					var re interface{ HTTPStatusCode() int }
					if !errors.As(err, &re) {
						t.Fatalf("get %s: %v", path, err)
					}
					code = re.HTTPStatusCode()
				} else {
					b, _ := io.ReadAll(out.Content)
					out.Content.Close()
					body = string(b)
				}
				if code != want.code || body != want.body {
					t.Errorf("%s = %q (%d), want %q (%d)", path, body, code, want.body, want.code)
				}
			}
		})
	}
}

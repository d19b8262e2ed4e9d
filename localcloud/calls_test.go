package localcloud

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestCallLog: calls are counted by the access key id of their SigV4
// signature and by action (form body or query; method and path for
// REST-JSON), unsigned ones under "".
func TestCallLog(t *testing.T) {
	tests := []struct {
		name, auth, query, body string
		who, action             string
	}{
		{"signed form", "AWS4-HMAC-SHA256 Credential=i-0abc/20261202/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x", "", "Action=DescribeInstances&Version=2016-11-15", "i-0abc", "DescribeInstances"},
		{"action in the query", "AWS4-HMAC-SHA256 Credential=harness/20261202/us-east-1/ec2/aws4_request", "Action=AttachVolume", "", "harness", "AttachVolume"},
		{"unsigned", "", "", "Action=DescribeVolumes", "", "DescribeVolumes"},
		// DLM's REST-JSON: no Action anywhere, the route is the call.
		{"rest-json", "AWS4-HMAC-SHA256 Credential=operator/20261202/us-east-1/dlm/aws4_request", "", `{"State":"ENABLED"}`, "operator", "POST /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l callLog
			var body string
			h := l.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				body = r.PostForm.Encode()
			}))
			r := httptest.NewRequest(http.MethodPost, "/?"+tt.query, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got := l.of(tt.who); len(got) != 1 || got[tt.action] != 1 {
				t.Errorf("calls of %q = %v, want one %s", tt.who, got, tt.action)
			}
			if want, _ := url.ParseQuery(tt.body); body != want.Encode() {
				t.Errorf("handler read body %q, want %q: the log must leave it intact", body, want.Encode())
			}
		})
	}
}

// TestHoldLog: an attachment holds from attached to detached; a detach
// closes the latest open hold of that resource by that instance only.
func TestHoldLog(t *testing.T) {
	c := &Cloud{}
	l := &c.attachLog
	l.attached("eni-1", "i-a")
	l.attached("vol-1", "i-a")
	time.Sleep(10 * time.Millisecond)
	l.detached("eni-1", "i-a")
	l.detached("eni-1", "i-b") // not i-b's: nothing
	l.attached("eni-1", "i-b")
	tests := []struct {
		instance string
		want     []struct {
			resource string
			open     bool
		}
	}{
		{"i-a", []struct {
			resource string
			open     bool
		}{{"eni-1", false}, {"vol-1", true}}},
		{"i-b", []struct {
			resource string
			open     bool
		}{{"eni-1", true}}},
	}
	for _, tt := range tests {
		got := c.Holds(tt.instance)
		if len(got) != len(tt.want) {
			t.Fatalf("holds of %s: %+v", tt.instance, got)
		}
		for i, w := range tt.want {
			if got[i].Resource != w.resource || got[i].To.IsZero() != w.open || (!w.open && got[i].To.Sub(got[i].From) < 10*time.Millisecond) {
				t.Errorf("hold %d of %s = %+v, want %s open=%v", i, tt.instance, got[i], w.resource, w.open)
			}
		}
	}
}

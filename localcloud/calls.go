package localcloud

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// callLog counts the EC2 API calls each caller made: the access key id of
// the request's SigV4 signature, which Environ makes the instance id. It
// answers "did this instance call EC2 at all?" (a boot refused before any
// side effect) without the simulator keeping per-caller counters.
type callLog struct {
	mu sync.Mutex
	by map[string]map[string]int // caller -> action -> calls
}

// wrap counts each request's action before h answers it.
func (l *callLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err == nil {
			action := r.URL.Query().Get("Action")
			if q, err := url.ParseQuery(string(body)); err == nil && q.Get("Action") != "" {
				action = q.Get("Action")
			}
			if action == "" {
				// A REST-JSON service (DLM): the route is the call.
				action = r.Method + " " + r.URL.Path
			}
			l.add(caller(r), action)
		}
		h.ServeHTTP(w, r)
	})
}

func (l *callLog) add(who, action string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = map[string]map[string]int{}
	}
	if l.by[who] == nil {
		l.by[who] = map[string]int{}
	}
	l.by[who][action]++
}

func (l *callLog) of(who string) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.by[who])
}

// caller is the access key id in a SigV4 Authorization header
// ("AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, …"),
// "" for an unsigned request.
func caller(r *http.Request) string {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	akid, _, _ := strings.Cut(cred, "/")
	return akid
}

// EC2Calls returns the EC2 API calls made with the access key id caller
// (an instance's id: see Environ), by action; empty when it made none.
func (c *Cloud) EC2Calls(caller string) map[string]int { return c.vpc.calls.of(caller) }

// ServiceCalls returns the calls made with the access key id caller to
// one of the other services the VPC serves ("autoscaling", "iam", "dlm",
// "secrets"), by action (a REST-JSON service's by method and path); empty
// when it made none. Auto Scaling's callers include the instances (their
// launch hooks and health reports), which sign with their instance ids.
// Secrets Manager's and SSM's JSON calls all count as "POST /" here (their
// action is a header): Secrets().Calls counts them by action.
func (c *Cloud) ServiceCalls(service, caller string) map[string]int {
	l := c.vpc.svcCalls[service]
	if l == nil {
		return nil
	}
	return l.of(caller)
}

package localbake

import (
	"io"
	"net/http"
	"os"
	"regexp"
)

// aptProxy is a forward HTTP proxy for the build host's apt, limited to
// the hosts of this machine's apt sources: the build host has no other
// way out, and gets no further than the mirror.
type aptProxy struct {
	allow     map[string]bool
	transport http.RoundTripper
}

var sourceHostRE = regexp.MustCompile(`https?://([^/\s:]+)`)

func newAptProxy() *aptProxy {
	p := &aptProxy{allow: map[string]bool{}, transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	for _, f := range aptSourceFiles() {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, m := range sourceHostRE.FindAllStringSubmatch(string(data), -1) {
			p.allow[m[1]] = true
		}
	}
	return p
}

// hopHeaders are per-connection headers a proxy must not forward.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (p *aptProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect || !r.URL.IsAbs() || r.URL.Scheme != "http" || !p.allow[r.URL.Hostname()] {
		http.Error(w, "zkaas bake proxy: only plain-http requests to the apt mirrors are forwarded", http.StatusForbidden)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, "zkaas bake proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

package imdsmock

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Interface is the metadata of an interface attached after launch, as IMDS
// serves it under network/interfaces/macs/<mac>/ (EC2 User Guide,
// "Instance metadata categories":
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-categories.html).
type Interface struct {
	MAC          string // lower case, as IMDS lists it
	InterfaceID  string
	DeviceNumber int
	LocalIPv4s   string // one address a line
	SubnetID     string
	SubnetCIDR   string
	VPCID        string
	VPCCIDR      string
}

// entries are the interface's keys and values.
func (i Interface) entries() map[string]string {
	e := map[string]string{
		"device-number":          fmt.Sprint(i.DeviceNumber),
		"interface-id":           i.InterfaceID,
		"local-ipv4s":            i.LocalIPv4s,
		"mac":                    i.MAC,
		"subnet-id":              i.SubnetID,
		"subnet-ipv4-cidr-block": i.SubnetCIDR,
		"vpc-id":                 i.VPCID,
		"vpc-ipv4-cidr-block":    i.VPCCIDR,
		"vpc-ipv4-cidr-blocks":   i.VPCCIDR,
	}
	for k, v := range e {
		if v == "" {
			delete(e, k)
		}
	}
	return e
}

const macsPrefix = "/latest/meta-data/network/interfaces/macs/"

// front answers IMDS requests: a hot-attached interface's entries itself,
// once visible, everything else through the mock.
type front struct {
	backend string // host:port of the mock process
	client  *http.Client
	proxy   *httputil.ReverseProxy

	mu   sync.Mutex
	ifcs map[string]frontIfc // by MAC
	// userData is what /latest/user-data answers; nil answers 404, as
	// IMDS does for an instance launched without user data (the mock
	// would serve a sample of its own instead).
	userData []byte
	// tags are the instance's tags under meta-data/tags/instance; nil
	// answers 404, as IMDS does while the instance's metadata options do
	// not allow tags (InstanceMetadataTags disabled, the default).
	tags map[string]string
	// lifecycle answers autoscaling/target-lifecycle-state; nil or false
	// answers 404, as IMDS does for an instance outside a group.
	lifecycle func() (string, bool)
}

const (
	userDataPath = "/latest/user-data"
	tagsPath     = "/latest/meta-data/tags/instance"
	// https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html
	lifecyclePath = "/latest/meta-data/autoscaling/target-lifecycle-state"
)

func (f *front) setTags(tags map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tags = maps.Clone(tags)
}

func (f *front) setUserData(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.userData = bytes.Clone(b)
}

type frontIfc struct {
	Interface
	visibleAt time.Time
}

func newFront(backend string, dial func(ctx context.Context, network, address string) (net.Conn, error)) *front {
	// No keep-alive: an idle connection would hold a namespace alive.
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true, Proxy: nil}
	target := &url.URL{Scheme: "http", Host: backend}
	return &front{
		backend: backend,
		client:  &http.Client{Transport: tr},
		// Rewrite, not Director: no X-Forwarded-For, which IMDSv2
		// refuses (token requests carrying it are rejected).
		proxy: &httputil.ReverseProxy{Transport: tr, Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
			// The caller gets 502 and the reason (until the mock
			// listens, in Start's readiness wait, that is expected).
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				http.Error(w, "imds mock: "+err.Error(), http.StatusBadGateway)
			},
		},
		ifcs: map[string]frontIfc{},
	}
}

func (f *front) add(ifc Interface, visibleAt time.Time) {
	ifc.MAC = strings.ToLower(ifc.MAC)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ifcs[ifc.MAC] = frontIfc{Interface: ifc, visibleAt: visibleAt}
}

func (f *front) remove(mac string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ifcs, strings.ToLower(mac))
}

// visible returns the interfaces IMDS knows of now, by MAC.
func (f *front) visible() map[string]Interface {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	out := map[string]Interface{}
	for mac, i := range f.ifcs {
		if !now.Before(i.visibleAt) {
			out[mac] = i.Interface
		}
	}
	return out
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.TrimSuffix(r.URL.Path, "/") == userDataPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		f.serveUserData(w, r)
		return
	}
	if strings.TrimSuffix(r.URL.Path, "/") == lifecyclePath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		f.serveLifecycle(w, r)
		return
	}
	if p := strings.TrimSuffix(r.URL.Path, "/"); (p == tagsPath || strings.HasPrefix(p, tagsPath+"/")) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		f.serveTags(w, r, strings.TrimPrefix(strings.TrimPrefix(p, tagsPath), "/"))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, macsPrefix)
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		f.proxy.ServeHTTP(w, r)
		return
	}
	vis := f.visible()
	if rest == "" {
		f.serveMACList(w, r, vis)
		return
	}
	mac, key, _ := strings.Cut(rest, "/")
	ifc, ok := vis[strings.ToLower(mac)]
	if !ok {
		// Not (yet) known: the mock's own 404, or the primary's entries.
		f.proxy.ServeHTTP(w, r)
		return
	}
	if !f.authorized(w, r) {
		return
	}
	entries := ifc.entries()
	if key == "" {
		keys := make([]string, 0, len(entries))
		for k := range entries {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		text(w, strings.Join(keys, "\n"))
		return
	}
	v, ok := entries[key]
	if !ok {
		f.proxy.ServeHTTP(w, r) // the mock's 404
		return
	}
	text(w, v)
}

// serveUserData answers the instance's user data as IMDS does: the bytes
// as launched (EC2 has already decoded the base64 the API took), or 404
// when there are none
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html).
func (f *front) serveUserData(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	f.mu.Lock()
	ud := f.userData
	f.mu.Unlock()
	if ud == nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(ud)
}

// serveLifecycle answers the instance's Auto Scaling target lifecycle
// state (InService while it launches, Terminated once it is being
// terminated), 404 outside a group.
func (f *front) serveLifecycle(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	f.mu.Lock()
	fn := f.lifecycle
	f.mu.Unlock()
	if fn == nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	state, ok := fn()
	if !ok {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	text(w, state)
}

// serveTags answers meta-data/tags/instance (the keys, one a line) and
// meta-data/tags/instance/<key> (its value), as IMDS does once instance
// tags are allowed in the metadata
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/work-with-tags-in-IMDS.html);
// 404 for an unknown key or when no tags are served.
func (f *front) serveTags(w http.ResponseWriter, r *http.Request, key string) {
	if !f.authorized(w, r) {
		return
	}
	f.mu.Lock()
	tags := f.tags
	f.mu.Unlock()
	if tags == nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	if key == "" {
		text(w, strings.Join(slices.Sorted(maps.Keys(tags)), "\n"))
		return
	}
	v, ok := tags[key]
	if !ok {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	text(w, v)
}

// serveMACList is the mock's list of MACs (the primary's) plus the visible
// hot-attached ones, one "<mac>/" a line as IMDS lists them.
func (f *front) serveMACList(w http.ResponseWriter, r *http.Request, vis map[string]Interface) {
	resp, body, err := f.ask(r, r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if resp.StatusCode != http.StatusOK {
		copyResponse(w, resp, body)
		return
	}
	lines := strings.Fields(string(body))
	for mac := range vis {
		if !slices.Contains(lines, mac+"/") {
			lines = append(lines, mac+"/")
		}
	}
	slices.Sort(lines)
	text(w, strings.Join(lines, "\n"))
}

// authorized checks r's session token with the mock (by reading an entry
// it always has with r's headers) and, when the mock refuses it, passes
// the mock's answer on: our entries are as IMDSv2-only as the mock's.
func (f *front) authorized(w http.ResponseWriter, r *http.Request) bool {
	resp, body, err := f.ask(r, "/latest/meta-data/mac")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return false
	}
	if resp.StatusCode != http.StatusOK {
		copyResponse(w, resp, body)
		return false
	}
	return true
}

// ask sends a GET of path to the mock with r's headers.
func (f *front) ask(r *http.Request, path string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://"+f.backend+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header = r.Header.Clone()
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("imds mock: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

func copyResponse(w http.ResponseWriter, resp *http.Response, body []byte) {
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, bytes.NewReader(body))
}

func text(w http.ResponseWriter, v string) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, v)
}

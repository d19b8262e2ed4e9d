// Package imdsmock runs AWS's own instance metadata mock
// (github.com/aws/amazon-ec2-metadata-mock, a Go tool dependency of this
// module) as one process per simulated instance, IMDSv2 only, behind a
// small front of our own (front.go) that adds what the mock cannot model:
// its config knows one interface only (the "mac" value), so the front
// serves the network/interfaces/macs/<mac>/ entries of interfaces
// hot-attached later, from the moment the caller says IMDS has learnt of
// them, and passes everything else — tokens included — to the mock.
package imdsmock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Instance is the metadata one mock serves.
type Instance struct {
	InstanceID string
	AZ         string
	Region     string
	MAC        string // primary interface
	PrivateIP  string
	SubnetID   string
	SubnetCIDR string
	VPCCIDR    string
	// UserData is what the instance was launched with (decoded); nil
	// means none, and /latest/user-data answers 404.
	UserData []byte
	// Tags are served under meta-data/tags/instance (as with
	// InstanceMetadataTags enabled); nil means none are served (404).
	Tags map[string]string
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of the built mock, building it once through
// `go tool -n` (the Go build cache keeps it between runs).
func Binary() (string, error) {
	binOnce.Do(func() {
		if p := os.Getenv("ZKAAS_IMDS_MOCK"); p != "" {
			binPath = p
			return
		}
		out, err := exec.Command("go", "tool", "-n", "ec2-metadata-mock").Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, ee.Stderr)
			}
			binErr = fmt.Errorf("build ec2-metadata-mock (run inside the zkaas module, or set ZKAAS_IMDS_MOCK to a built binary): %w", err)
			return
		}
		binPath = strings.TrimSpace(string(out))
	})
	return binPath, binErr
}

// Server is one running mock and its front.
type Server struct {
	URL string
	cmd *exec.Cmd
	dir string

	front *front
	srv   *http.Server
}

// config renders the mock's JSON config: metadata values override its
// defaults, and every per-MAC path follows the "mac" value.
func config(inst Instance, host string, port int) ([]byte, error) {
	values := map[string]string{
		"instance-id":                 inst.InstanceID,
		"placement-availability-zone": inst.AZ,
		"placement-region":            inst.Region,
		"mac":                         inst.MAC,
		"local-ipv4":                  inst.PrivateIP,
		"mac-local-ipv4s":             inst.PrivateIP,
		"mac-subnet-id":               inst.SubnetID,
		"mac-subnet-ipv4-cidr-block":  inst.SubnetCIDR,
		"mac-vpc-ipv4-cidr-block":     inst.VPCCIDR,
		"mac-vpc-ipv4-cidr-blocks":    inst.VPCCIDR,
		"mac-device-number":           "0",
	}
	for k, v := range values {
		if v == "" {
			delete(values, k)
		}
	}
	return json.MarshalIndent(map[string]any{
		"imdsv2":   true,
		"server":   map[string]string{"hostname": host, "port": fmt.Sprint(port)},
		"metadata": map[string]any{"values": values},
	}, "", "  ")
}

// Options says where and how a mock runs.
type Options struct {
	// Host and Port are where the front answers (Listen's address);
	// default 127.0.0.1, port 0 is any free port.
	Host string
	Port int
	// Listen makes the front's listener (e.g. inside a network
	// namespace); default net.Listen.
	Listen func(network, address string) (net.Listener, error)
	// BackendPort is where the mock process itself listens, on
	// 127.0.0.1 in the network it runs in (see Wrap); 0 picks a free
	// port on this host.
	BackendPort int
	// Dial reaches the mock process from the front; default a
	// net.Dialer on this host.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Dir holds the mock's config and log; default a new temp dir. Stop
	// removes it either way.
	Dir string
	// Wrap, when set, adjusts the command before it starts (e.g. to run it
	// inside a network namespace).
	Wrap func(*exec.Cmd)
	// Client reaches the mock for the readiness check (e.g. from inside
	// that namespace); default http.DefaultClient.
	Client *http.Client
}

// Start runs a mock for inst and its front, and waits until it hands out
// IMDSv2 tokens. The caller must Stop it.
func Start(ctx context.Context, inst Instance, opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Listen == nil {
		opts.Listen = net.Listen
	}
	if opts.Dial == nil {
		opts.Dial = (&net.Dialer{}).DialContext
	}
	if opts.BackendPort == 0 {
		if opts.BackendPort, err = freePort(backendHost); err != nil {
			return nil, err
		}
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "zkaas-imds-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &Server{dir: dir}
	if err := s.start(ctx, bin, inst, opts); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// backendHost is where the mock process listens, in its network.
const backendHost = "127.0.0.1"

func (s *Server) start(ctx context.Context, bin string, inst Instance, opts Options) error {
	backend := net.JoinHostPort(backendHost, fmt.Sprint(opts.BackendPort))
	cfg, err := config(inst, backendHost, opts.BackendPort)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(s.dir, "aemm-config.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-c", cfgPath, "-I", "-n", backendHost, "-p", fmt.Sprint(opts.BackendPort))
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "HOME="+s.dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if opts.Wrap != nil {
		opts.Wrap(cmd)
	}
	logf, err := os.Create(filepath.Join(s.dir, "mock.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ec2-metadata-mock: %w", err)
	}
	s.cmd = cmd

	l, err := opts.Listen("tcp", net.JoinHostPort(opts.Host, fmt.Sprint(opts.Port)))
	if err != nil {
		return fmt.Errorf("IMDS front on %s:%d: %w", opts.Host, opts.Port, err)
	}
	s.URL = "http://" + l.Addr().String()
	s.front = newFront(backend, opts.Dial)
	s.front.setUserData(inst.UserData)
	s.front.setTags(inst.Tags)
	s.srv = &http.Server{Handler: s.front, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s.waitReady(ctx, opts.Client, 20*time.Second)
}

// AddInterface makes IMDS serve a hot-attached interface's
// network/interfaces/macs/<mac>/ entries from visibleAt on (404 before).
// SetUserData replaces the user data the instance's IMDS serves (EC2
// allows changing it while an instance is stopped); nil removes it.
func (s *Server) SetUserData(b []byte) { s.front.setUserData(b) }

// SetTargetLifecycleState makes IMDS answer
// autoscaling/target-lifecycle-state with what fn says while it says ok
// (404 otherwise): the instance's Auto Scaling group's view of it.
func (s *Server) SetTargetLifecycleState(fn func() (string, bool)) {
	s.front.mu.Lock()
	defer s.front.mu.Unlock()
	s.front.lifecycle = fn
}

func (s *Server) AddInterface(ifc Interface, visibleAt time.Time) { s.front.add(ifc, visibleAt) }

// RemoveInterface takes a detached interface's entries away.
func (s *Server) RemoveInterface(mac string) { s.front.remove(mac) }

func (s *Server) waitReady(ctx context.Context, client *http.Client, bound time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.URL+"/latest/api/token", nil)
		req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("token request: %s", resp.Status)
		}
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(filepath.Join(s.dir, "mock.log"))
			return fmt.Errorf("ec2-metadata-mock at %s not ready: %v; log: %s", s.URL, err, log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop closes the front, kills the mock (by PID) and removes its files.
func (s *Server) Stop() {
	if s.srv != nil {
		_ = s.srv.Close()
	}
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	os.RemoveAll(s.dir)
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Package imdsmock runs AWS's own instance metadata mock
// (github.com/aws/amazon-ec2-metadata-mock, a Go tool dependency of this
// module) as one process per simulated instance, IMDSv2 only.
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

// Server is one running mock.
type Server struct {
	URL string
	cmd *exec.Cmd
	dir string
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
	Host string // default 127.0.0.1
	Port int    // 0 picks a free port on this host
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

// Start runs a mock for inst and waits until it hands out IMDSv2 tokens.
// The caller must Stop it.
func Start(ctx context.Context, inst Instance, opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		if opts.Port, err = freePort(opts.Host); err != nil {
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
	s := &Server{URL: fmt.Sprintf("http://%s", net.JoinHostPort(opts.Host, fmt.Sprint(opts.Port))), dir: dir}
	if err := s.start(ctx, bin, inst, opts); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, bin string, inst Instance, opts Options) error {
	cfg, err := config(inst, opts.Host, opts.Port)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(s.dir, "aemm-config.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-c", cfgPath, "-I", "-n", opts.Host, "-p", fmt.Sprint(opts.Port))
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
	return s.waitReady(ctx, opts.Client, 20*time.Second)
}

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

// Stop kills the mock (by PID) and removes its files.
func (s *Server) Stop() {
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

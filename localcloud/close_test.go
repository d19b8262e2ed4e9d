package localcloud

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// TestCancelClosesCloud: cancelling New's context (Ctrl-C in the demo)
// tears the cloud down without anyone calling Close.
func TestCancelClosesCloud(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := New(ctx, Options{EC2: fastSim, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() }) // should the context not
	inst := launch(t, c, "us-east-1c")
	cancel()
	eventually(t, "the cloud to close", func() bool {
		return !exists(inst.NetNS) && !exists(c.vpc.ns) && !exists(c.runDir) && !exists(c.volumes.dir)
	})
	if err := c.Close(); err != nil {
		t.Errorf("Close after the context closed it: %v", err)
	}
	if _, err := c.Launch(context.Background(), "us-east-1c"); err == nil {
		t.Error("Launch on a closed cloud succeeded")
	}
}

// TestOptionsRejected: bad options fail New before anything is created.
func TestOptionsRejected(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"subnet outside the VPC", Options{Subnets: []Subnet{{AZ: "us-east-1a", CIDR: "192.168.1.0/24"}}}, "must lie inside 10.0.0.0/16"},
		{"subnet in the service subnet", Options{Subnets: []Subnet{{AZ: "us-east-1a", CIDR: "10.0.0.0/24"}}}, "outside 10.0.0.0/24"},
		{"overlapping subnets", Options{Subnets: []Subnet{{AZ: "us-east-1a", CIDR: "10.0.1.0/24"}, {AZ: "us-east-1b", CIDR: "10.0.1.128/25"}}}, "10.0.1.128/25 of us-east-1b overlaps 10.0.1.0/24"},
		{"subnet not a network", Options{Subnets: []Subnet{{AZ: "us-east-1a", CIDR: "10.0.1.1/24"}}}, "not an IPv4 network"},
		{"AZ of another region", Options{Subnets: []Subnet{{AZ: "eu-west-1a", CIDR: "10.0.1.0/24"}}}, "eu-west-1a"},
		{"relative private dir", Options{PrivateDirs: []string{"etc"}}, "clean absolute path"},
		{"missing private dir", Options{PrivateDirs: []string{"/nonexistent/zkaas"}}, "existing directory"},
		{"private dir holding the run root", Options{PrivateDirs: []string{"/run"}}, "would contain " + RunRoot},
		{"root file system with a colon", Options{RootFS: "/tmp/a:b"}, "clean absolute path"},
		{"missing root file system", Options{RootFS: "/nonexistent/zkaas"}, "existing directory"},
		{"root file system holding the run root", Options{RootFS: "/"}, "would contain " + RunRoot},
		{"root file system and private dirs", Options{RootFS: os.TempDir(), PrivateDirs: []string{os.TempDir()}}, "exclude each other"},
		{"negative IMDS lag", Options{IMDSInterfaceLag: -time.Second}, "IMDS cannot know of an ENI before its attach"},
		{"hooks set", Options{EC2: ec2sim.Options{Hooks: ec2sim.Hooks{ENIDetached: func(ec2sim.ENIEvent) {}}}}, "Hooks must be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Logger = slog.New(slog.DiscardHandler)
			c, err := New(context.Background(), tt.opts)
			if err == nil {
				_ = c.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestNewNeedsRoot: without root, New says so in one line and creates
// nothing. (Root runs skip it; unprivileged runs skip everything else.)
func TestNewNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs unprivileged only")
	}
	_, err := New(context.Background(), Options{})
	if err == nil || !strings.Contains(err.Error(), "needs root") {
		t.Errorf("New as uid %d: %v, want a needs-root error", os.Geteuid(), err)
	}
}

package localcloud

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/zkaas/zkaas/firstboot/identity"
)

// TestLaunch: an instance answers IMDSv2 with its own identity, reaches the
// EC2 endpoint through the VPC, has its primary interface configured as
// ens5, and sees its private directories and /dev — not the host's.
func TestLaunch(t *testing.T) {
	private := t.TempDir()
	if err := os.WriteFile(filepath.Join(private, "from-host"), []byte("image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCloud(t, Options{EC2: fastSim, PrivateDirs: []string{private}})
	a := launch(t, c, "us-east-1b")
	b := launch(t, c, "us-east-1c")

	t.Run("imds", func(t *testing.T) {
		for _, inst := range []*Instance{a, b} {
			got, err := identity.Identify(t.Context(), identity.NewIMDS(aws.Config{HTTPClient: inst.HTTPClient()}))
			if err != nil {
				t.Fatal(err)
			}
			want := identity.Instance{InstanceID: inst.ID, AZ: inst.AZ, Region: "us-east-1", MAC: inst.MAC}
			if got != want {
				t.Errorf("IMDS on %s = %+v, want %+v", inst.ID, got, want)
			}
		}
	})

	t.Run("ec2 from the instance", func(t *testing.T) {
		out, err := ec2From(a).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{a.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
			t.Fatalf("DescribeInstances(%s) = %+v", a.ID, out.Reservations)
		}
		got := out.Reservations[0].Instances[0]
		if aws.ToString(got.PrivateIpAddress) != a.PrivateIP || aws.ToString(got.SubnetId) != a.SubnetID {
			t.Errorf("instance %s has ip %s subnet %s, want %s %s", a.ID, aws.ToString(got.PrivateIpAddress),
				aws.ToString(got.SubnetId), a.PrivateIP, a.SubnetID)
		}
		// The caller the simulator saw is the instance (its access key).
		if got := c.Sim().Stats().Calls["DescribeInstances"]; got != 1 {
			t.Errorf("simulator counted %d DescribeInstances calls, want 1", got)
		}
		if got := c.EC2Calls(a.ID); len(got) != 1 || got["DescribeInstances"] != 1 {
			t.Errorf("calls by %s: %v, want one DescribeInstances", a.ID, got)
		}
		if got := c.EC2Calls(b.ID); len(got) != 0 {
			t.Errorf("calls by %s: %v, want none", b.ID, got)
		}
	})

	t.Run("network", func(t *testing.T) {
		tests := []struct{ script, want string }{
			{"cat /sys/class/net/ens5/address", a.MAC},
			{"ip -o -4 addr show dev ens5 | awk '{print $4}'", a.PrivateIP + "/24"},
			{"ip route show default", "default via 10.0.2.1 dev ens5"},
			{"ls /sys/class/net | tr '\\n' ' '", "ens5 lo"},
			// Another AZ's instance, through the VPC router.
			{"ip -o route get " + b.PrivateIP + " | awk '{print $3}'", "10.0.2.1"},
		}
		for _, tt := range tests {
			if got := run(t, a, tt.script); got != tt.want {
				t.Errorf("%s: got %q, want %q", tt.script, got, tt.want)
			}
		}
		// The harness reads the instance's sysfs (interface counters) too.
		if got, err := os.ReadFile(a.Path("/sys/class/net/ens5/address")); err != nil || strings.TrimSpace(string(got)) != a.MAC {
			t.Errorf("ens5's address through Path = %q, %v; want %s", got, err, a.MAC)
		}
	})

	t.Run("private dirs", func(t *testing.T) {
		run(t, a, "cat "+private+"/from-host; echo a > "+private+"/mine")
		if got := run(t, b, "cat "+private+"/from-host; ls "+private); got != "image\nfrom-host" {
			t.Errorf("b sees %q in its private dir, want the host's file only", got)
		}
		if exists(filepath.Join(private, "mine")) {
			t.Error("a's write reached the host")
		}
		if got, err := os.ReadFile(a.Path(filepath.Join(private, "mine"))); err != nil || string(got) != "a\n" {
			t.Errorf("a's file through Path = %q, %v", got, err)
		}
		// How the harness hands an instance its config.
		if err := os.WriteFile(b.Path(filepath.Join(private, "config")), []byte("b\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := run(t, b, "cat "+private+"/config"); got != "b" || exists(filepath.Join(private, "config")) {
			t.Errorf("config written through Path: b reads %q; on the host: %v", got, exists(filepath.Join(private, "config")))
		}
	})

	t.Run("no namespaces of others", func(t *testing.T) {
		// b, launched after a, must not hold a's namespaces (or those of
		// any cloud of this process) alive. Only this process's clouds'
		// names count: tests of other packages running at the same time
		// (go test runs packages in parallel) make namespaces of their own
		// (zkaas-test-*, other processes' clouds), whose mounts may
		// propagate into b's mount namespace and say nothing about b
		// holding a's.
		ours := fmt.Sprintf("%s%d-", Prefix, os.Getpid())
		var held []string
		for _, m := range strings.Fields(run(t, b, "findmnt -rn -t nsfs -o TARGET || true")) {
			if strings.HasPrefix(filepath.Base(m), ours) {
				held = append(held, m)
			}
		}
		if len(held) > 0 {
			t.Errorf("b holds namespace mounts of this process's clouds %q", held)
		}
	})

	t.Run("dev", func(t *testing.T) {
		got := run(t, a, "ls /dev | tr '\\n' ' '; echo x > /dev/null; head -c 4 /dev/urandom | wc -c")
		want := "disk fd full null ptmx pts random shm stderr stdin stdout tty urandom zero 4"
		if strings.Join(strings.Fields(got), " ") != want {
			t.Errorf("/dev on the instance: %q, want %q", got, want)
		}
	})
}

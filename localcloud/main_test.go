package localcloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/loopdev"
)

// envResolve turns the test binary, run on an instance, into a one-shot
// program that resolves a volume's device with firstboot's own resolver.
const envResolve = "LOCALCLOUD_TEST_RESOLVE"

// envResolveTimeout is the resolver's DeviceTimeout there (default 5s).
const envResolveTimeout = "LOCALCLOUD_TEST_RESOLVE_TIMEOUT"

// stateDirs are the state directories the tests' clouds used; TestMain
// checks no loop device is left on their files.
var (
	stateDirsMu sync.Mutex
	stateDirs   []string
)

func TestMain(m *testing.M) {
	if vol := os.Getenv(envResolve); vol != "" {
		os.Exit(resolveHelper(vol))
	}
	if os.Getenv(envCrash) != "" {
		crashHelper()
	}
	code := m.Run()
	if os.Geteuid() == 0 {
		if left := leftovers(); len(left) > 0 {
			fmt.Fprintln(os.Stderr, "localcloud: leaked:", strings.Join(left, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

// resolveHelper prints the device firstboot's resolver finds for the volume.
func resolveHelper(vol string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	timeout := 5 * time.Second
	if d, err := time.ParseDuration(os.Getenv(envResolveTimeout)); err == nil {
		timeout = d
	}
	p := &disk.Preparer{DeviceTimeout: timeout, PollInterval: 50 * time.Millisecond}
	dev, err := p.ResolveDevice(ctx, disk.Spec{VolumeID: vol, Device: "/dev/sdf"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(dev)
	return 0
}

// leftovers lists what this process's clouds left behind.
func leftovers() []string {
	self := os.Getpid()
	netnsPaths, runDirs, err := owned(func(pid int) bool { return pid == self })
	if err != nil {
		return []string{err.Error()}
	}
	left := append(netnsPaths, runDirs...)
	stateDirsMu.Lock()
	defer stateDirsMu.Unlock()
	for _, dir := range stateDirs {
		loops, err := loopdev.BackedBy(func(f string) bool { return strings.HasPrefix(f, dir+"/") })
		if err != nil {
			return append(left, err.Error())
		}
		for _, l := range loops {
			left = append(left, l.Path()+" on "+l.File)
		}
	}
	return left
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veth links, loop devices and mounts")
	}
}

// newCloud starts a cloud that the test's cleanup closes.
func newCloud(t *testing.T, opts Options) *Cloud {
	t.Helper()
	requireRoot(t)
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	stateDirsMu.Lock()
	stateDirs = append(stateDirs, c.volumes.dir)
	stateDirsMu.Unlock()
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

func launch(t *testing.T, c *Cloud, az string) *Instance {
	t.Helper()
	inst, err := c.Launch(t.Context(), az)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// ec2From is the real SDK client, calling from inside the instance as
// firstboot does.
func ec2From(inst *Instance) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       inst.Region,
		BaseEndpoint: aws.String(inst.cloud.EC2Endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider(inst.ID, "localcloud", ""),
		HTTPClient:   inst.HTTPClient(),
	})
}

// run runs a shell script on the instance and returns its trimmed stdout.
func run(t *testing.T, inst *Instance, script string) string {
	t.Helper()
	out, err := runErr(t, inst, script)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runErr(t *testing.T, inst *Instance, script string) (string, error) {
	t.Helper()
	var stderr strings.Builder
	cmd := inst.Command(t.Context(), "sh", "-ec", script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("on %s: %s: %w: %s", inst.ID, script, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// netlinkIn opens a netlink handle inside a named network namespace.
func netlinkIn(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nl.Close)
	return nl
}

// eventually polls cond every 20 ms until it holds or 10 s have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func volumeState(c *Cloud, id string) string {
	v, _ := c.Sim().Volume(id)
	if v.Attachment != nil {
		return v.Attachment.State
	}
	return v.State
}

func eniStatus(c *Cloud, id string) string {
	n, _ := c.Sim().NetworkInterface(id)
	if n.Attachment != nil {
		return n.Attachment.Status
	}
	return n.Status
}

func loopOf(t *testing.T, file string) []loopdev.Device {
	t.Helper()
	loops, err := loopdev.BackedBy(func(f string) bool { return f == file })
	if err != nil {
		t.Fatal(err)
	}
	return loops
}

func volumeFile(t *testing.T, c *Cloud, id string) string {
	t.Helper()
	f, ok := c.VolumeFile(id)
	if !ok {
		t.Fatalf("no file for %s", id)
	}
	return f
}

// exists reports whether path exists on the host.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// gone reports whether a process has exited (a zombie counts: it holds
// nothing any more).
func gone(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(pid), "stat"))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z")
}

func linkNames(t *testing.T, nl *netlink.Handle) []string {
	t.Helper()
	links, err := nl.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

var fastSim = ec2sim.Options{Throttle: &ec2sim.Throttle{Disabled: true}}

package localcloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/sys/unix"

	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/loopdev"
)

// TestReclaim plants what a crashed run leaves — a network namespace with a
// process still in it, a run directory with a mount namespace in which a
// filesystem on a loop device is mounted, and a loop device left on a file
// of the state directory the next run uses — and checks that New removes
// all of it, but nothing of a run that is still alive.
func TestReclaim(t *testing.T) {
	requireRoot(t)
	live := newCloud(t, Options{EC2: fastSim})
	// The crashed run's owner lives while its leftovers are planted: a New
	// in another test process (packages run in parallel) must not reclaim
	// them half made. It dies before this test's New.
	owner := exec.Command("sleep", "600")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Process.Kill(); _ = owner.Wait() })
	runID := fmt.Sprintf("%d-1", owner.Process.Pid)

	// The crashed run's network namespace, with a process in it.
	nsName := Prefix + runID + "-vpc"
	nsPath := filepath.Join(netnsDir, nsName)
	t.Cleanup(func() { _ = deleteNetNS(nsPath) }) // should New not
	mustRun(t, "ip", "netns", "add", nsName)
	proc := exec.Command("ip", "netns", "exec", nsName, "sleep", "600")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()
	t.Cleanup(func() { _ = proc.Process.Kill() })

	// Its run directory: a mount namespace holding an ext4 mount of a
	// loop device on a volume file in its (recorded) state directory.
	runDir := filepath.Join(RunRoot, runID)
	t.Cleanup(func() { _ = removeRunDir(runDir) })
	mntNS := filepath.Join(runDir, "mnt", "i-0123456789abcdef0")
	if err := os.MkdirAll(filepath.Dir(mntNS), 0o700); err != nil {
		t.Fatal(err)
	}
	must(t, unix.Mount(runDir, runDir, "", unix.MS_BIND, ""))
	must(t, unix.Mount("", runDir, "", unix.MS_PRIVATE, ""))
	must(t, os.WriteFile(mntNS, nil, 0o600))
	mustRun(t, "unshare", "--mount="+mntNS, "--propagation", "private", "true")
	crashedState := t.TempDir()
	must(t, stateRecord{Dir: crashedState}.write(runDir))
	mounted := sparseFile(t, crashedState, "vol-0aaaaaaaaaaaaaaaa.img")
	loop, err := loopdev.Attach(mounted)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = loopdev.Release(loop.Device) })
	mustRun(t, "mkfs.ext4", "-q", loop.Path())
	mustRun(t, "nsenter", "--mount="+mntNS, "--", "mount", loop.Path(), t.TempDir())
	_ = loop.Abandon() // the crashed holder; the mount keeps the device bound

	// A device left on a file of the state directory the next run takes
	// (losetup, without autoclear: as long-lived as it gets).
	nextState := t.TempDir()
	stray := sparseFile(t, nextState, "vol-0bbbbbbbbbbbbbbbb.img")
	strayDev := strings.TrimSpace(mustRun(t, "losetup", "--find", "--show", stray))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", strayDev).Run() })

	_ = owner.Process.Kill()
	_ = owner.Wait() // reaped: procutil.Alive no longer sees it
	newCloud(t, Options{EC2: fastSim, StateDir: nextState})

	for _, path := range []string{nsPath, runDir} {
		if exists(path) {
			t.Errorf("%s not reclaimed", path)
		}
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Errorf("process %d in the crashed run's namespace not killed", proc.Process.Pid)
	}
	for _, file := range []string{mounted, stray} {
		if got := loopOf(t, file); len(got) != 0 {
			t.Errorf("loop device %v on %s not released", got, file)
		}
	}
	if !exists(live.vpc.ns) {
		t.Errorf("namespace %s of a live run was reclaimed", live.vpc.ns)
	}
}

func sparseFile(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	must(t, f.Truncate(64<<20))
	return path
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// envCrash turns the test binary into a harness that crashes mid-run.
const envCrash = "LOCALCLOUD_TEST_CRASH"

// runCrashChild runs this test binary as the crash helper (envCrash, plus
// env), checks that it SIGKILLed itself and returns its command, output
// and KEY=value report. Its temporary files (the IMDS mock's, which nothing
// can reclaim: imdsmock picks their names) go where the test removes them.
func runCrashChild(t *testing.T, env ...string) (*exec.Cmd, []byte, map[string]string) {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envCrash+"=1", "TMPDIR="+t.TempDir()), env...)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("crash helper: %v\n%s", err, out)
	}
	report := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			report[k] = v
		}
	}
	return cmd, out, report
}

// TestReclaimAfterCrash kills (SIGKILL) a harness process that has an
// instance running a daemon, with a volume mounted on it, and checks that
// the next New reclaims everything that run left.
func TestReclaimAfterCrash(t *testing.T) {
	requireRoot(t)
	cmd, out, report := runCrashChild(t)
	daemon, err := strconv.Atoi(report["DAEMON"])
	if err != nil {
		t.Fatalf("crash helper did not report: %s", out)
	}
	t.Cleanup(func() { _ = syscall.Kill(daemon, syscall.SIGKILL) }) // should New not
	netnsPaths, runDirs, err := owned(func(pid int) bool { return pid == cmd.Process.Pid })
	if err != nil || len(netnsPaths) != 2 || len(runDirs) != 1 || gone(daemon) || len(loopOf(t, report["FILE"])) != 1 {
		t.Fatalf("the crash left netns %v, run dirs %v (%v), daemon gone %v, loops %v: not what a crash leaves",
			netnsPaths, runDirs, err, gone(daemon), loopOf(t, report["FILE"]))
	}

	newCloud(t, Options{EC2: fastSim})

	for _, path := range append(netnsPaths, runDirs[0], report["STATE"]) {
		if exists(path) {
			t.Errorf("%s not reclaimed", path)
		}
	}
	if !gone(daemon) {
		t.Errorf("daemon %d of the crashed run still running", daemon)
	}
	if got := loopOf(t, report["FILE"]); len(got) != 0 {
		t.Errorf("loop device %v on the crashed run's volume not released", got)
	}
}

// crashHelper is the harness TestReclaimAfterCrash kills: it reports what
// it made and SIGKILLs itself, running no cleanup at all.
func crashHelper() {
	if os.Getenv(envCrashMachine) != "" {
		machineCrashHelper()
	}
	ctx := context.Background()
	fail := func(err error) {
		fmt.Println("ERROR=" + err.Error())
		os.Exit(1)
	}
	c, err := New(ctx, Options{EC2: fastSim, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fail(err)
	}
	inst, err := c.Launch(ctx, "us-east-1a")
	if err != nil {
		fail(err)
	}
	vol, err := attachNewVolume(ctx, c, inst)
	if err != nil {
		fail(err)
	}
	mnt := filepath.Join(c.volumes.dir, "mnt")
	byID := "/dev/disk/by-id/" + disk.EBSByIDName(vol.ID)
	out, err := inst.Command(ctx, "sh", "-ec", "mkdir "+mnt+"; mkfs.ext4 -q "+byID+"; mount "+byID+" "+mnt+
		"; cd "+mnt+"; sleep 600 >/dev/null 2>&1 & echo $!").Output()
	if err != nil {
		fail(err)
	}
	file, _ := c.VolumeFile(vol.ID)
	fmt.Printf("DAEMON=%sFILE=%s\nSTATE=%s\n", out, file, c.volumes.dir)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// TestStateDirInUse: a second cloud cannot take a live cloud's state
// directory, and trying does not disturb the live cloud's volumes.
func TestStateDirInUse(t *testing.T) {
	dir := t.TempDir()
	c := newCloud(t, Options{EC2: fastSim, StateDir: dir})
	inst := launch(t, c, "us-east-1a")
	vol, err := c.CreateVolume("us-east-1a", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec2From(inst).AttachVolume(t.Context(), &ec2.AttachVolumeInput{
		VolumeId: aws.String(vol.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/sdf"),
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, vol.ID+" attached", func() bool { return volumeState(c, vol.ID) == ec2sim.AttachAttached })

	second, err := New(t.Context(), Options{EC2: fastSim, StateDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		_ = second.Close()
		t.Fatal("a second cloud took a live cloud's state dir")
	}
	if !errors.Is(err, errStateDirInUse) {
		t.Errorf("New: %v, want %v", err, errStateDirInUse)
	}
	if got := loopOf(t, volumeFile(t, c, vol.ID)); len(got) != 1 {
		t.Errorf("live cloud's volume devices after the failed New: %v", got)
	}
	if got := resolve(t, inst, vol.ID); got == "" {
		t.Error("volume no longer resolves on its instance")
	}
}

// attachNewVolume creates a 1 GiB volume in us-east-1a and attaches it to
// inst through the SDK, waiting (10 s at most) until the simulator says
// attached: the crash children's shared setup.
func attachNewVolume(ctx context.Context, c *Cloud, inst *Instance) (ec2sim.Volume, error) {
	vol, err := c.CreateVolume("us-east-1a", 1, nil)
	if err != nil {
		return ec2sim.Volume{}, err
	}
	if _, err := ec2From(inst).AttachVolume(ctx, &ec2.AttachVolumeInput{
		VolumeId: aws.String(vol.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/sdf"),
	}); err != nil {
		return ec2sim.Volume{}, err
	}
	for deadline := time.Now().Add(10 * time.Second); volumeState(c, vol.ID) != ec2sim.AttachAttached; {
		if time.Now().After(deadline) {
			return ec2sim.Volume{}, fmt.Errorf("volume %s not attached after 10s", vol.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return vol, nil
}

package localcloud

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/localcloud/localbake"
)

// bakedImage returns the root directory of the local bake's image, baking
// it first when its inputs changed — the same call, options and image
// directory as zkensemble's tests, so that the one image serves both (the
// bake is skipped while its inputs' fingerprint is unchanged).
func bakedImage(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		t.Skip("needs systemd-nspawn (Debian systemd-container; go tool mage deps installs it)")
	}
	dir, err := localbake.ImageDir()
	if err != nil {
		t.Fatal(err)
	}
	cache, err := localbake.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	var out bytes.Buffer
	_, _, err = localbake.EnsureImage(ctx, localbake.Options{
		Repo: repo, CacheDir: cache, OutDir: dir, PluginPath: t.TempDir(),
		EnsembleConfig: filepath.Join(repo, "ensemble/testdata/ensemble.yaml"),
		Output:         &out, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("bake the image: %v\n%s", err, out.String())
	}
	rootfs, err := ExtractImage(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	return rootfs
}

// machineCloud is a cloud whose instances boot the baked image under
// systemd, printing every machine's journal if the test fails.
func machineCloud(t *testing.T, shutdown time.Duration) *Cloud {
	t.Helper()
	rootfs := bakedImage(t)
	c := newCloud(t, Options{EC2: fastSim, RootFS: rootfs, Boot: BootSystemd, ShutdownTimeout: shutdown})
	c.PrintJournalsOnFailure(t)
	return c
}

// machineConfig is an ensemble.yaml for three nodes in the default
// subnets, with bounds short enough for tests.
func machineConfig(name string, deadline time.Duration) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "ensemble: %s\nnodes:\n", name)
	for i, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		fmt.Fprintf(&b, "  - {id: %d, az: %s, ip: 10.0.%d.10}\n", i+1, az, i+1)
	}
	fmt.Fprintf(&b, "claim: {deadline: %s, stuck_attach: %s, bootstrap_window: %s}\n", deadline, deadline/3, deadline)
	b.WriteString("zookeeper: {heap: 128m, four_letter_words: [srvr, ruok]}\n")
	return []byte(b.String())
}

// inside runs a shell script on the machine and returns its trimmed output.
func inside(t *testing.T, inst *Instance, script string) string {
	t.Helper()
	out, err := inst.Command(t.Context(), "sh", "-ec", script).CombinedOutput()
	if err != nil {
		t.Fatalf("on %s: %s: %v: %s", inst.ID, script, err, out)
	}
	return strings.TrimSpace(string(out))
}

func journal(t *testing.T, inst *Instance, args ...string) string {
	t.Helper()
	out, err := inst.Journal(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func waitUnit(t *testing.T, inst *Instance, unit string, states ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s, err := inst.WaitUnit(ctx, unit, states...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitSystem(t *testing.T, inst *Instance) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s, err := inst.WaitSystem(ctx, "running", "degraded")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mountsOf is the machine's mount table, as its PID 1 sees it.
func mountsOf(t *testing.T, inst *Instance) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", inst.PID1()))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

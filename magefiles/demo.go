//go:build mage

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/localbake"
	"github.com/zkaas/zkaas/localcloud/zkensemble"
)

// demoBakeBound bounds the bake. With a cold ~/.cache/zkaas it builds
// Packer from source (1.5 min on 2 cores), debootstraps the build host
// (45 s), builds the amazon plugin (2.5 min: Packer wants every plugin the
// template directory requires) and runs the packer build and export
// (30 s): 6.5 min in all, measured on a busy 2-core machine. A bake still
// going after 20 minutes is stuck, not slow.
const demoBakeBound = 20 * time.Minute

// Demo runs the product as shipped, end to end on this machine: the local
// image baked with the real Packer plugin (reused while its inputs are
// unchanged), a local cloud (an EC2 simulator with EC2's latencies, an
// Auto Scaling simulator and its group controller, instances as network
// namespaces, ENIs as hot-plugged veths, EBS volumes as loop devices), one
// Auto Scaling group per AZ launching every instance from that image with
// systemd as PID 1 and the ensemble config as user data — whose
// zkaas-firstboot.service makes each one a node and whose
// zookeeper.service then starts ZooKeeper — data written, node 2's machine
// killed with -9, and its group healing it: the scaling activities, the
// launch hook's result, the replacement back as node 2 with its data
// (zkensemble.Demo). Needs root on Linux; cleans up after itself, also on
// Ctrl-C.
func Demo() error {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return errors.New("demo needs root on Linux (network namespaces, loop devices, mounts, systemd-nspawn): run it with sudo")
	}
	mg.SerialDeps(Deps)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	rootfs, err := demoImage(ctx, step)
	if err != nil {
		return err
	}
	return zkensemble.Demo(ctx, zkensemble.DemoOptions{RootFS: rootfs, Step: step, Out: os.Stdout})
}

// demoImage bakes the local image the way bake:local does — the real
// packer build with the zkaas plugin built from this repository — unless
// the one in the image directory was made from the same inputs, and
// returns its extracted root. The config baked in is the tests' (the demo
// installs its own per instance, as user data would), so that the demo and
// the tests share one image. Packer's output goes to a file, the bake's
// steps to the terminal.
func demoImage(ctx context.Context, step func(string, ...any)) (string, error) {
	repo, cache, err := repoAndCache()
	if err != nil {
		return "", err
	}
	dir, err := localbake.ImageDir()
	if err != nil {
		return "", err
	}
	plugins, err := os.MkdirTemp("", "zkaas-demo-plugins-")
	if err != nil {
		return "", err
	}
	// A plugin directory of its own: the demo installs nothing into
	// ~/.config/packer/plugins.
	defer os.RemoveAll(plugins)
	step("image: the local bake (a real packer build with the zkaas plugin from this repository; minutes with a cold %s), unless %s holds one made from the same inputs", cache, dir)
	ctx, cancel := context.WithTimeout(ctx, demoBakeBound)
	defer cancel()
	begin := time.Now()
	var out bytes.Buffer
	img, baked, err := localbake.EnsureImage(ctx, localbake.Options{
		Repo: repo, CacheDir: cache, OutDir: dir, PluginPath: plugins,
		EnsembleConfig: filepath.Join(repo, "ensemble/testdata/ensemble.yaml"),
		Output:         &out, Log: slog.New(&stepHandler{step: step}),
	})
	took := time.Since(begin)
	logFile := filepath.Join(cache, "demo-bake.log")
	if out.Len() > 0 {
		if werr := os.WriteFile(logFile, out.Bytes(), 0o644); werr != nil {
			logFile = "(not written: " + werr.Error() + ")"
		}
	}
	if err != nil {
		return "", fmt.Errorf("bake the image (packer's output: %s): %w\n%s", logFile, err, lastLines(out.String(), 20))
	}
	if baked {
		step("image baked in %s: sha256 %.12s, %d MiB, %d managed paths (packer's output: %s)",
			took.Round(100*time.Millisecond), img.SHA256, img.Size>>20, len(img.Manifest.Entries), logFile)
	} else {
		step("image reused: its inputs (roles, template, plugin and firstboot source, config) are unchanged since it was baked at %s (sha256 %.12s); checked in %s",
			img.Created.UTC().Format("2006-01-02 15:04 UTC"), img.SHA256, brief(took))
	}
	begin = time.Now()
	rootfs, err := localcloud.ExtractImage(ctx, dir)
	if err != nil {
		return "", err
	}
	step("image root file system: %s (extracted once per image; ready in %s)", rootfs, brief(time.Since(begin)))
	return rootfs, nil
}

// stepHandler prints the bake's log records at Info and above as demo
// steps: progress through the slow parts of a cold cache (Packer built from
// source, debootstrap, the packer build).
type stepHandler struct {
	step  func(string, ...any)
	attrs []slog.Attr
}

func (h *stepHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *stepHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.step("  bake: %s", b.String())
	return nil
}

func (h *stepHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &stepHandler{step: h.step, attrs: append(slices.Clip(h.attrs), attrs...)}
}

// WithGroup flattens groups: the bake's records use none.
func (h *stepHandler) WithGroup(string) slog.Handler { return h }

// brief is d for a reader: to the millisecond, "<1ms" below.
func brief(d time.Duration) string {
	if d < time.Millisecond {
		return "<1ms"
	}
	return d.Round(time.Millisecond).String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

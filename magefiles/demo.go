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

	"github.com/zkaas/zkaas/localcloud/localbake"
	"github.com/zkaas/zkaas/localcloud/opsrig"
)

// demoBakeBound bounds the bake. With a cold ~/.cache/zkaas it builds
// Packer from source (1.5 min on 2 cores), debootstraps the build host
// (45 s), builds the amazon plugin (2.5 min: Packer wants every plugin the
// template directory requires) and runs the packer build and export
// (30 s): 6.5 min in all, measured on a busy 2-core machine. A bake still
// going after 20 minutes is stuck, not slow.
const demoBakeBound = 20 * time.Minute

// Demo runs the product as shipped, end to end on this machine, the way an
// operator would: the local image baked with the real Packer plugin
// (reused while its inputs are unchanged), the zkaas binary built from
// this repository, and a local cloud (EC2, Auto Scaling, IAM and DLM
// simulators; instances as network namespaces booting the image with
// systemd as PID 1; ENIs as hot-plugged veths, EBS volumes as loop
// devices). zkaas runs inside the VPC's network namespace: plan and up from
// nothing, then the groups launch the instances, whose firstboot makes each
// a node; data written; node 2's machine killed with -9 and healed by its
// group; roll to a second image id while a client writes, with `zkaas
// status` after each step; down, and the volumes still there
// (opsrig.Demo). Needs root on Linux; cleans up after itself, also on
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
	repo, cache, err := repoAndCache()
	if err != nil {
		return err
	}
	img, err := demoImage(ctx, repo, cache, step)
	if err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "zkaas-demo-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	begin := time.Now()
	zkaas, err := opsrig.BuildZkaas(ctx, repo, bin)
	if err != nil {
		return err
	}
	step("zkaas built from this repository (go build ./cmd/zkaas) in %s", brief(time.Since(begin)))
	// The local cloud's own log, for when something goes wrong: a file,
	// not the terminal.
	logPath := filepath.Join(cache, "demo-cloud.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	step("the local cloud's log: %s", logPath)
	err = opsrig.Demo(ctx, opsrig.DemoOptions{Image: img, Zkaas: zkaas, Step: step, Out: os.Stdout,
		Log: slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		return fmt.Errorf("%w (the local cloud's log: %s)", err, logPath)
	}
	return nil
}

// demoImage bakes the local image the way bake:local does — the real
// packer build with the zkaas plugin built from this repository — unless
// the one in the image directory was made from the same inputs, and
// extracts it (opsrig.BakeImage: the tests' inputs, so that the demo and
// the tests share one image; the demo gives each instance its own config
// as user data). Packer's output goes to a file, the bake's steps to the
// terminal.
func demoImage(ctx context.Context, repo, cache string, step func(string, ...any)) (opsrig.Image, error) {
	dir, err := localbake.ImageDir()
	if err != nil {
		return opsrig.Image{}, err
	}
	step("image: the local bake (a real packer build with the zkaas plugin from this repository; minutes with a cold %s), unless %s holds one made from the same inputs", cache, dir)
	ctx, cancel := context.WithTimeout(ctx, demoBakeBound)
	defer cancel()
	var out bytes.Buffer
	img, err := opsrig.BakeImage(ctx, repo, &out, slog.New(&stepHandler{step: step}))
	logFile := filepath.Join(cache, "demo-bake.log")
	if out.Len() > 0 {
		if werr := os.WriteFile(logFile, out.Bytes(), 0o644); werr != nil {
			logFile = "(not written: " + werr.Error() + ")"
		}
	}
	if err != nil {
		return opsrig.Image{}, fmt.Errorf("%w (packer's output: %s)\n%s", err, logFile, lastLines(out.String(), 20))
	}
	if img.Baked {
		step("image baked in %s: sha256 %.12s, %d MiB, %d managed paths (packer's output: %s)",
			img.BakeTook.Round(100*time.Millisecond), img.SHA256, img.Size>>20, len(img.Manifest.Entries), logFile)
	} else {
		step("image reused: its inputs (roles, template, plugin and firstboot source, config) are unchanged since it was baked at %s (sha256 %.12s); checked in %s",
			img.Created.UTC().Format("2006-01-02 15:04 UTC"), img.SHA256, brief(img.BakeTook))
	}
	step("image root file system: %s (extracted once per image; ready in %s)", img.RootFS, brief(img.ExtractTook))
	return img, nil
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

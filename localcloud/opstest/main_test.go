package opstest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/opsrig"
)

// zkaasBin is the operator command under test, built once for the package.
var zkaasBin string

var quietLog = slog.New(slog.DiscardHandler)

// cloudLog is the local cloud's log: quiet, unless OPSTEST_LOG=1 asks for
// it on stderr (the groups' launches and failures, each machine's steps).
func cloudLog() *slog.Logger {
	if os.Getenv("OPSTEST_LOG") == "" {
		return quietLog
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // every test skips with its reason
		}
		dir, err := os.MkdirTemp("", "zkaas-opstest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if zkaasBin, err = opsrig.BuildZkaas(context.Background(), "../..", dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	if os.Geteuid() == 0 {
		// This run's only: other runs may use the host at the same time.
		mine := fmt.Sprintf("%s%d-", localcloud.Prefix, os.Getpid())
		entries, _ := os.ReadDir("/run/netns")
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), mine) {
				fmt.Fprintln(os.Stderr, "leaked network namespace", e.Name())
				code = 1
			}
		}
	}
	os.Exit(code)
}

// image is the baked image, extracted: baked (or reused from the cache, as
// zkensemble's tests do, from the same inputs) once for the package.
var image struct {
	once sync.Once
	img  opsrig.Image
	skip string
	err  error
}

func sharedImage(tb testing.TB) opsrig.Image {
	tb.Helper()
	image.once.Do(func() {
		if image.skip = opsrig.Missing(); image.skip != "" {
			return
		}
		repo, err := filepath.Abs("../..")
		if err != nil {
			image.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		start := time.Now()
		var out bytes.Buffer
		image.img, image.err = opsrig.BakeImage(ctx, repo, &out, quietLog)
		if image.err != nil {
			image.err = fmt.Errorf("%w\n%s", image.err, out.String())
			return
		}
		fmt.Fprintf(os.Stderr, "opstest: image sha256 %.12s (baked now: %v) at %s in %s\n", image.img.SHA256, image.img.Baked, image.img.RootFS, time.Since(start).Round(time.Millisecond))
	})
	if image.skip != "" {
		tb.Skip(image.skip)
	}
	if image.err != nil {
		tb.Fatal(image.err)
	}
	return image.img
}

// newCloud starts a local cloud whose instances boot the image, closed
// when the test ends; machines' journals are printed if the test fails.
func newCloud(tb testing.TB) *localcloud.Cloud {
	tb.Helper()
	cloud, err := opsrig.NewCloud(context.Background(), opsrig.CloudOptions{RootFS: sharedImage(tb).RootFS, Log: cloudLog()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := cloud.Close(); err != nil {
			tb.Errorf("close cloud: %v", err)
		}
	})
	cloud.PrintJournalsOnFailure(tb)
	return cloud
}

// operator is the rig's operator, failing the test or benchmark on what
// cannot run.
type operator struct{ *opsrig.Operator }

func newOperator(tb testing.TB, cloud *localcloud.Cloud) *operator {
	tb.Helper()
	op, err := opsrig.NewOperator(cloud, zkaasBin, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return &operator{op}
}

// run runs zkaas with args until it exits or the test ends.
func (o *operator) run(tb testing.TB, args ...string) opsrig.Result {
	tb.Helper()
	r, err := o.Run(tb.Context(), args...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// must runs zkaas and fails the test unless it exits 0.
func (o *operator) must(tb testing.TB, args ...string) opsrig.Result {
	tb.Helper()
	r := o.run(tb, args...)
	if r.Code != 0 {
		tb.Fatal(r)
	}
	tb.Logf("zkaas %s: %s", strings.Join(args, " "), r.Took.Round(time.Millisecond))
	return r
}

// config writes an ensemble config into the operator's directory and
// returns its path.
func (o *operator) config(tb testing.TB, name string, body []byte) string {
	tb.Helper()
	p, err := o.WriteConfig(name, body)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

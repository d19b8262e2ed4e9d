//go:build linux

package netcfg

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/localcloud/netnstest"
)

func TestWaitUdevInitialized(t *testing.T) {
	tests := []struct {
		name    string
		after   time.Duration // when udev records the link; 0: never
		wantErr string
	}{
		{"already initialized", time.Nanosecond, ""},
		{"initialized while waiting", 100 * time.Millisecond, ""},
		{"never", 0, "did not initialize link index 7 within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tt.after > 0 {
				timer := time.AfterFunc(tt.after, func() {
					_ = os.WriteFile(filepath.Join(dir, "data", "n7"), nil, 0o644)
				})
				defer timer.Stop()
			}
			err := waitUdevInitialized(context.Background(), dir, 7, 300*time.Millisecond)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// TestUdevSeesLinks: udev never sees links in a namespace other than PID 1's,
// so Apply must not wait for it there.
func TestUdevSeesLinks(t *testing.T) {
	ns := netnstest.New(t)
	var sees bool
	if err := ns.Do(func() error { sees = udevSeesLinks(); return nil }); err != nil {
		t.Fatal(err)
	}
	if sees {
		t.Error("udevSeesLinks() = true inside a test network namespace")
	}
}

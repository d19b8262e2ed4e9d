//go:build linux

package netcfg

import (
	"log/slog"
	"net"
	"os"
	"testing"

	"github.com/zkaas/zkaas/localcloud/netnstest"
)

func TestMain(m *testing.M) { os.Exit(netnstest.Main(m)) }

// macFor returns a locally administered MAC unique within a test.
func macFor(i byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0x5a, 0, 0, 0, i} }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

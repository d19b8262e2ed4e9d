package exporter

import (
	"os"
	"testing"

	"github.com/zkaas/zkaas/localcloud/netnstest"
)

// The listener and real-ZooKeeper tests listen only inside namespaces they
// create; netnstest.Main reclaims leftovers of crashed runs and fails on
// leaks.
func TestMain(m *testing.M) { os.Exit(netnstest.Main(m)) }

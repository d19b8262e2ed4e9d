package boot

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/zkaas/zkaas/firstboot/netcfg"
	"github.com/zkaas/zkaas/firstboot/routing"
)

// Networkd is the production Network: systemd-networkd is told to leave the
// ENI alone (its files in Dir), then netcfg configures the link.
type Networkd struct {
	Dir string // /etc/systemd
	Log *slog.Logger
}

// Configure writes the networkd files for spec.MAC, reloads networkd when
// they changed, and applies spec.
func (n *Networkd) Configure(ctx context.Context, spec netcfg.Spec) (netcfg.Result, error) {
	changed, err := routing.WriteNetworkdFiles(n.Dir, spec.MAC)
	if err != nil {
		return netcfg.Result{}, err
	}
	if changed {
		n.reload(ctx)
	}
	res, err := netcfg.Apply(ctx, spec)
	if changed {
		res.Changes = append([]string{"wrote systemd-networkd files for " + spec.MAC.String()}, res.Changes...)
	}
	return res, err
}

// reload asks a running systemd-networkd to read our files, so it leaves
// the ENI alone before we configure it. Where networkd does not run (its
// state directory is missing) there is nothing to tell.
func (n *Networkd) reload(ctx context.Context) {
	if _, err := os.Stat("/run/systemd/netif"); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "networkctl", "reload").CombinedOutput(); err != nil {
		n.Log.Warn("networkctl reload failed", "step", "network", "err", err, "output", string(out))
	}
}

package localcloud_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing"
	"time"

	"github.com/zkaas/zkaas/localcloud"
)

// Machines: each instance boots the baked image with systemd as PID 1, and
// the image's own units turn it into node 1 — zkaas-firstboot.service
// claims the slot (its ENI and volume hot-plugged into the running
// machine), zookeeper.service starts. The harness watches through
// systemctl and the journal, reboots, terminates (a clean shutdown) or
// crashes it (kill -9 of the whole machine). (Compiled, not run: it needs
// root, systemd-nspawn and the image.)
func ExampleBootSystemd() {
	ctx := context.Background()
	home, _ := os.UserHomeDir()
	rootfs, err := localcloud.ExtractImage(ctx, home+"/.cache/zkaas/image")
	if err != nil {
		log.Fatal(err)
	}
	c, err := localcloud.New(ctx, localcloud.Options{RootFS: rootfs, Boot: localcloud.BootSystemd, ShutdownTimeout: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateSlot("demo", 1, "us-east-1a", "10.0.1.10", 1); err != nil {
		log.Fatal(err)
	}
	// In place before PID 1 starts, so before zkaas-firstboot.service runs.
	inst, err := c.LaunchWith(ctx, "us-east-1a", localcloud.LaunchOptions{Files: map[string][]byte{
		"/etc/zkaas/ensemble.yaml": []byte("ensemble: demo\nnodes: ...\n"),
	}})
	if err != nil {
		log.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if state, err := inst.WaitUnit(waitCtx, "zkaas-firstboot.service", "active", "failed"); err != nil || state != "active" {
		summary, _ := inst.Journal(ctx, "-u", "zkaas-firstboot", "-o", "cat", "-n", "1")
		log.Fatalf("firstboot %s (%v): %s", state, err, summary)
	}
	state, _ := inst.WaitSystem(waitCtx, "running", "degraded")
	failed, _ := inst.FailedUnits(ctx)
	fmt.Println(inst.ID, "is", state, "failed:", failed)

	// Anything inside the machine: systemctl, journalctl, zkCli.sh, ...
	out, _ := inst.Command(ctx, "systemctl", "show", "-P", "MainPID", "zookeeper.service").Output()
	fmt.Printf("ZooKeeper's PID in the machine: %s", out)

	if err := c.Reboot(ctx, inst); err != nil { // systemd's own shutdown, then PID 1 again
		log.Fatal(err)
	}
	prev, _ := inst.Journal(ctx, "--boot=-1", "-o", "cat") // the previous boot, shutdown included
	fmt.Printf("previous boot: %d bytes of journal\n", len(prev))

	if err := c.Crash(ctx, inst); err != nil { // or c.Terminate: a clean shutdown within the bound
		log.Fatal(err)
	}
	last, _ := inst.Journal(ctx, "-n", "5") // still readable until c.Close
	fmt.Printf("%s", last)
}

// In a test: every machine's journal is printed if the test fails.
func ExampleCloud_PrintJournalsOnFailure() {
	var t *testing.T // the test's
	c, err := localcloud.New(t.Context(), localcloud.Options{RootFS: "/path/to/rootfs", Boot: localcloud.BootSystemd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	c.PrintJournalsOnFailure(t) // after New's cleanup: runs before Close
}

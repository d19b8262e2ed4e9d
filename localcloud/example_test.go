package localcloud_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// A node's slot, an instance that claims it with firstboot, and its
// replacement: the shape of the demo. (Compiled, not run: it needs root.)
func Example() {
	// Ctrl-C cancels ctx, and the cloud removes everything it made.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := localcloud.New(ctx, localcloud.Options{
		EC2: ec2sim.Options{Latency: ec2sim.Latency{
			RoundTrip: 20 * time.Millisecond, ENIAttach: 2 * time.Second, VolumeAttach: 3 * time.Second,
		}},
		// Every instance writes its own config and ZooKeeper files.
		PrivateDirs: []string{"/etc/zkaas", "/etc/zookeeper"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	slot, err := c.CreateSlot("demo", 1, "us-east-1a", "10.0.1.11", 10)
	if err != nil {
		log.Fatal(err)
	}
	inst, err := c.Launch(ctx, "us-east-1a")
	if err != nil {
		log.Fatal(err)
	}
	// Files go into the instance's view: here its private /etc/zkaas.
	if err := os.WriteFile(inst.Path("/etc/zkaas/ensemble.yaml"), []byte("..."), 0o644); err != nil {
		log.Fatal(err)
	}
	out, err := inst.Command(ctx, "zkaas-firstboot", "claim", "-config", "/etc/zkaas/ensemble.yaml").Output()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s claimed %s and %s: %s\n", inst.ID, slot.ENI.ID, slot.Volume.ID, out)
	zk, err := inst.Start(inst.Command(ctx, "/usr/share/zookeeper/bin/zkServer.sh", "start-foreground"))
	if err != nil {
		log.Fatal(err)
	}
	_ = zk

	// kill -9 and a replacement in the same AZ, which claims the slot again.
	if err := c.Terminate(ctx, inst); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Launch(ctx, "us-east-1a"); err != nil {
		log.Fatal(err)
	}
}

// Instances booted from the image the bake exported (`go tool mage
// bake:local`): every program on them — zkaas-firstboot, Java, ZooKeeper —
// is the image's. (Compiled, not run: it needs root and the image.)
func ExampleExtractImage() {
	ctx := context.Background()
	home, _ := os.UserHomeDir()
	rootfs, err := localcloud.ExtractImage(ctx, home+"/.cache/zkaas/image")
	if err != nil {
		log.Fatal(err)
	}
	c, err := localcloud.New(ctx, localcloud.Options{RootFS: rootfs})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	inst, err := c.Launch(ctx, "us-east-1a")
	if err != nil {
		log.Fatal(err)
	}
	out, err := inst.Command(ctx, "/usr/local/bin/zkaas-firstboot", "validate", "-config", "/etc/zkaas/ensemble.yaml").Output()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("the baked config on %s: %s", inst.ID, out)
}

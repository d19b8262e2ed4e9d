package opsrig

// The demo: the operator's command on the local cloud. magefiles/demo.go
// bakes (or reuses) the image, builds zkaas and calls Demo.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	gozk "github.com/go-zookeeper/zk"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// DemoEnsemble is the demo's three nodes, one per AZ, with daily
// snapshots.
var DemoEnsemble = Ensemble{
	Name: "demo",
	Nodes: []Node{
		{ID: 1, AZ: "us-east-1a", IP: netip.MustParseAddr("10.0.1.11")},
		{ID: 2, AZ: "us-east-1b", IP: netip.MustParseAddr("10.0.2.11")},
		{ID: 3, AZ: "us-east-1c", IP: netip.MustParseAddr("10.0.3.11")},
	},
	ClaimDeadline: 20 * time.Second,
	Snapshots:     true,
}

// DemoOptions configure Demo.
type DemoOptions struct {
	Image Image  // the baked image, extracted
	Zkaas string // the built operator command
	// Step prints one step of the demo; Out gets zkaas's own output.
	Step func(format string, args ...any)
	Out  io.Writer
	// Log gets the local cloud's log (its groups' launches, each
	// machine's steps); nil discards it.
	Log *slog.Logger
}

// demoImage is the id ec2sim knows from the start: the first deploy's.
const demoImage = "ami-0123456789abcdef0"

// demoZnodes are written before the kill and read back after the roll.
const demoZnodes = 500

// Demo runs the operator's whole life of one ensemble on the local cloud
// with the built zkaas binary, in the VPC's network namespace: plan and up
// from nothing; the groups launch the instances, which boot the image
// under systemd and become the nodes; data written; node 2's machine
// killed with -9 and healed by its group; a roll to a second image while a
// client writes, with `zkaas status` after each step; down, and the
// volumes still there. It fails if an acknowledged write is lost, two
// nodes were down at once, the roll did not go followers first and the
// leader last, or the data is not there. It removes everything it made
// (the cloud's machines, namespaces, loop devices; the operator's files),
// also when ctx ends (Ctrl-C): each command it runs gets SIGINT by PID.
func Demo(ctx context.Context, o DemoOptions) (err error) {
	step, spec := o.Step, DemoEnsemble
	ips, ids := spec.IPs(), spec.IDs()
	show := func(title string, r Result) {
		step("%s (%s):", title, r.Took.Round(time.Millisecond))
		for _, line := range strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n") {
			fmt.Fprintf(o.Out, "    %s\n", line)
		}
	}
	step("starting the local cloud: a VPC with 3 AZs, the EC2 simulator (ENI attach %s, volume attach %s), Auto Scaling (its controller every 1 s), IAM and DLM; instances boot the image under systemd (systemd-nspawn)",
		Latency.ENIAttach, Latency.VolumeAttach)
	cloud, err := NewCloud(ctx, CloudOptions{RootFS: o.Image.RootFS, GroupInterval: time.Second, Log: o.Log})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("interrupted: %w", err)
		}
		step("cleaning up: machines (by PID), namespaces, veths, loop devices, the operator's files")
		err = errors.Join(err, cloud.Close())
	}()
	dir, err := os.MkdirTemp("", "zkaas-demo-operator-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	op, err := NewOperator(cloud, o.Zkaas, dir)
	if err != nil {
		return err
	}
	status := func(title, cfg string) error {
		r, err := op.Must(ctx, "status", "-config", cfg)
		if err != nil {
			return err
		}
		show(title, r)
		return nil
	}
	statusJSON := func(cfg string) (map[int]StatusRow, error) {
		r, err := op.Must(ctx, "status", "-config", cfg, "-o", "json")
		if err != nil {
			return nil, err
		}
		return ParseStatus(r, spec.Name)
	}

	if err := CreateDLMRole(ctx, cloud); err != nil {
		return err
	}
	cfg, err := op.WriteConfig("ensemble.yaml", spec.Config(demoImage))
	if err != nil {
		return err
	}
	step("the operator provides the VPC and its subnets (the local cloud's), the image (%s: this run's bake, sha256 %.12s) and DLM's default role; zkaas runs in the VPC's network namespace with AWS_ENDPOINT_URL_* set, config %s",
		demoImage, o.Image.SHA256, cfg)
	r, err := op.Must(ctx, "plan", "-config", cfg)
	if err != nil {
		return err
	}
	show("zkaas plan", r)
	if r, err = op.Must(ctx, "up", "-config", cfg); err != nil {
		return err
	}
	show("zkaas up", r)
	upDone := time.Now()
	stats, err := WaitServing(ctx, cloud, ips, 4*time.Minute)
	if err != nil {
		return err
	}
	step("the groups launched the instances; they serve %s after up returned: %s", time.Since(upDone).Round(100*time.Millisecond), Modes(stats, ids))
	rows, err := waitRows(ctx, statusJSON, cfg, 2*time.Minute, func(rows map[int]StatusRow) bool { return AllInService(rows, ids) })
	if err != nil {
		return err
	}
	if err := status("zkaas status: every node's holder InService (its launch hook completed once ZooKeeper served)", cfg); err != nil {
		return err
	}

	conn, err := Connect(cloud, Servers(ips))
	if err != nil {
		return err
	}
	err = writeZnodes(conn, "/demo", demoZnodes)
	conn.Close()
	if err != nil {
		return err
	}
	step("wrote %d znodes under /demo", demoZnodes)

	before := rows[2]
	inst, ok := cloud.Instance(before.Holder)
	if !ok {
		return fmt.Errorf("node 2's holder %s is not a running instance", before.Holder)
	}
	step("kill -9 of node 2's whole machine %s (systemd and all: no shutdown, nothing unmounted); nothing else is done by hand — its group must notice and heal it", before.Holder)
	if err := cloud.Crash(ctx, inst); err != nil {
		return err
	}
	killed := time.Now()
	if err := status("zkaas status right after the kill", cfg); err != nil {
		return err
	}
	rows, err = waitRows(ctx, statusJSON, cfg, 3*time.Minute, func(rows map[int]StatusRow) bool {
		h := rows[2].Holder
		return h != "" && h != before.Holder && AllInService(rows, ids)
	})
	if err != nil {
		return err
	}
	if _, err := WaitServing(ctx, cloud, ips, 2*time.Minute); err != nil {
		return err
	}
	healed := rows[2]
	sync := ""
	if repl, ok := cloud.Instance(healed.Holder); ok {
		sync = LastSync(ctx, repl)
	}
	step("healed by its group %s after the kill: %s holds node 2's ENI %s (%s) and volume %s, synced from the leader by %s",
		time.Since(killed).Round(100*time.Millisecond), healed.Holder, healed.ENI, healed.IP, healed.Volume, orNone(sync))
	if healed.ENI != before.ENI || healed.Volume != before.Volume || healed.IP != before.IP {
		return fmt.Errorf("the replacement is not node 2 as it was: before %+v, after %+v", before, healed)
	}
	if err := countZnodes(cloud, ips[2], "/demo", demoZnodes); err != nil {
		return fmt.Errorf("the replacement does not serve the data: %w", err)
	}
	step("all %d znodes readable through node 2 alone", demoZnodes)
	if err := status("zkaas status after the healing", cfg); err != nil {
		return err
	}

	// The local cloud boots one root file system whatever the image id,
	// so a second bake would boot the same bytes: the new image is this
	// run's bake registered under a second id, which is what roll acts on
	// (a new launch template version, every instance replaced from it).
	img, err := cloud.Sim().RegisterImage(ec2sim.Image{Name: "zkaas-demo-next", Description: fmt.Sprintf("local bake, sha256 %.12s", o.Image.SHA256)})
	if err != nil {
		return err
	}
	cfg2, err := op.WriteConfig("ensemble-next.yaml", spec.Config(img.ID))
	if err != nil {
		return err
	}
	step("a newly baked image registered as %s (this run's bake: the local cloud boots one root file system whatever the id); rolling to it while a client writes a znode every 50 ms and a monitor samples every node every 200 ms", img.ID)
	w, err := StartWriter(cloud, Servers(ips), "/roll", 30*time.Second)
	if err != nil {
		return err
	}
	m := StartMonitor(cloud, ips)
	watching := true
	defer func() {
		if watching {
			_, _ = w.Finish()
			m.Finish()
		}
	}()
	onLine := func(line string) {
		switch {
		case strings.Contains(line, "msg=replacing"):
			if s := RollSteps(line + "\n"); len(s) == 1 {
				step("roll: replacing node %s (%s, %s)", s[0].Node, s[0].Instance, map[bool]string{true: "the leader, last", false: "a follower"}[s[0].Leader])
			}
		case strings.Contains(line, "msg=replaced"):
			step("roll: %s", strings.TrimSpace(line[strings.Index(line, "msg="):]))
			if err := status("zkaas status after the step", cfg2); err != nil {
				step("  status: %v", err)
			}
		}
	}
	if r, err = op.MustWatch(ctx, onLine, "roll", "-config", cfg2, "-image", img.ID); err != nil {
		return err
	}
	show("zkaas roll", r)
	watching = false
	wr, werr := w.Finish()
	mr := m.Finish()
	if werr != nil {
		return werr
	}
	step("writer during the roll: %s", wr)
	step("monitor during the roll: %s", mr)
	steps := RollSteps(r.Stderr)
	var problems []error
	if len(steps) != 3 || steps[0].Leader || steps[1].Leader || !steps[2].Leader {
		problems = append(problems, fmt.Errorf("roll's steps %+v: want two followers, then the leader", steps))
	}
	if len(wr.Lost) > 0 || len(wr.Failed) > 0 {
		problems = append(problems, fmt.Errorf("writes lost %v, failed %v", wr.Lost, wr.Failed))
	}
	if len(mr.DownAt) > 0 {
		problems = append(problems, fmt.Errorf("more than one node down at once: %v", mr.DownAt))
	}
	if rows, err = statusJSON(cfg2); err != nil {
		return err
	}
	for _, id := range ids {
		if d, ok := cloud.Sim().InstanceLaunchData(rows[id].Holder); !ok || d.ImageID != img.ID {
			problems = append(problems, fmt.Errorf("node %d's %s launched from %q, want %s", id, rows[id].Holder, d.ImageID, img.ID))
		}
	}
	if err := countZnodes(cloud, ips[1], "/demo", demoZnodes); err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		return err
	}
	step("rolled: every node on %s, followers first and the leader last, all %d acknowledged writes and the %d znodes there", img.ID, wr.Acked, demoZnodes)

	if r, err = op.Must(ctx, "down", "-config", cfg2); err != nil {
		return err
	}
	show("zkaas down", r)
	return showVolumes(ctx, step, o.Out, cloud, spec)
}

// waitRows polls status until ok or bound.
func waitRows(ctx context.Context, statusJSON func(string) (map[int]StatusRow, error), cfg string, bound time.Duration, ok func(map[int]StatusRow) bool) (map[int]StatusRow, error) {
	deadline := time.Now().Add(bound)
	for {
		rows, err := statusJSON(cfg)
		if err != nil {
			return nil, err
		}
		if ok(rows) {
			return rows, nil
		}
		if time.Now().After(deadline) {
			return rows, fmt.Errorf("status not as awaited after %s: %+v", bound, rows)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// writeZnodes creates n znodes under dir, asynchronously in batches (one
// round trip per batch rather than per znode).
func writeZnodes(c *gozk.Conn, dir string, n int) error {
	if _, err := c.Create(dir, nil, 0, gozk.WorldACL(gozk.PermAll)); err != nil && !errors.Is(err, gozk.ErrNodeExists) {
		return err
	}
	const batch = 100
	for i := 0; i < n; i += batch {
		var ops []any
		for j := i; j < min(n, i+batch); j++ {
			p := fmt.Sprintf("%s/z%04d", dir, j)
			ops = append(ops, &gozk.CreateRequest{Path: p, Data: []byte(p), Acl: gozk.WorldACL(gozk.PermAll)})
		}
		if _, err := c.Multi(ops...); err != nil {
			return fmt.Errorf("write znodes %d..: %w", i, err)
		}
	}
	return nil
}

// countZnodes checks, through that one node, that dir has n children.
func countZnodes(cloud *localcloud.Cloud, ip netip.Addr, dir string, n int) error {
	c, err := Connect(cloud, Servers(map[int]netip.Addr{0: ip}))
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Sync(dir); err != nil {
		return fmt.Errorf("sync %s through %s: %w", dir, ip, err)
	}
	kids, _, err := c.Children(dir)
	if err != nil {
		return fmt.Errorf("list %s through %s: %w", dir, ip, err)
	}
	if len(kids) != n {
		return fmt.Errorf("%d znodes under %s through %s, want %d", len(kids), dir, ip, n)
	}
	return nil
}

// showVolumes lists the ensemble's volumes as EC2 does after down: still
// there, detached, tagged with their node.
func showVolumes(ctx context.Context, step func(string, ...any), out io.Writer, cloud *localcloud.Cloud, spec Ensemble) error {
	vols, err := cloud.EC2Client("harness").DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		{Name: sdk.String("tag:zkaas:ensemble"), Values: []string{spec.Name}}}})
	if err != nil {
		return err
	}
	step("after down, EC2's DescribeVolumes (tag zkaas:ensemble=%s): the data is kept for the next up", spec.Name)
	slices.SortFunc(vols.Volumes, func(a, b ec2types.Volume) int {
		return strings.Compare(tag(a.Tags, "zkaas:node"), tag(b.Tags, "zkaas:node"))
	})
	fmt.Fprintf(out, "    %-5s %-22s %-11s %-10s %s\n", "node", "volume", "az", "state", "size")
	for _, v := range vols.Volumes {
		fmt.Fprintf(out, "    %-5s %-22s %-11s %-10s %d GiB\n", tag(v.Tags, "zkaas:node"), sdk.ToString(v.VolumeId), sdk.ToString(v.AvailabilityZone), v.State, sdk.ToInt32(v.Size))
	}
	if len(vols.Volumes) != len(spec.Nodes) {
		return fmt.Errorf("%d volumes after down, want %d", len(vols.Volumes), len(spec.Nodes))
	}
	for _, v := range vols.Volumes {
		if v.State != ec2types.VolumeStateAvailable {
			return fmt.Errorf("volume %s after down: %s, want available (detached, kept)", sdk.ToString(v.VolumeId), v.State)
		}
	}
	step("demo done: made by zkaas up, healed by its groups, rolled by zkaas roll without losing a write, removed by zkaas down with the data kept")
	return nil
}

func tag(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if sdk.ToString(t.Key) == key {
			return sdk.ToString(t.Value)
		}
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "(not in its log)"
	}
	return s
}

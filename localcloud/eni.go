package localcloud

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// enis is the registry of ENIs plugged into instances: each one a veth on
// the VPC bridge whose peer is in the instance.
type enis struct {
	log *slog.Logger
	vpc *vpc

	mu      sync.Mutex
	plugged map[string]*eniPlug // by ENI id
}

// eniPlug is an ENI's veth, plugged into an instance.
type eniPlug struct {
	inst *Instance
	link string // bridge end, in the VPC namespace
}

// CreateNetworkInterface creates an available ENI in the AZ's subnet; an
// empty ip takes the subnet's next free address.
func (c *Cloud) CreateNetworkInterface(az, ip string, tags map[string]string) (ec2sim.NetworkInterface, error) {
	sub, err := c.vpc.subnet(az)
	if err != nil {
		return ec2sim.NetworkInterface{}, fmt.Errorf("create network interface: %w", err)
	}
	return c.sim.CreateNetworkInterface(sub.id, ip, tags)
}

// CreateNetworkInterfaceIn creates an available ENI in the subnet with the
// CIDR block (one of Options.Subnets: also one that is not its AZ's
// first, where no instance launches); an empty ip takes the subnet's next
// free address.
func (c *Cloud) CreateNetworkInterfaceIn(subnetCIDR, ip string, tags map[string]string) (ec2sim.NetworkInterface, error) {
	sub, ok := c.vpc.subnetByCIDR(subnetCIDR)
	if !ok {
		return ec2sim.NetworkInterface{}, fmt.Errorf("create network interface: no subnet %s in the VPC", subnetCIDR)
	}
	return c.sim.CreateNetworkInterface(sub.id, ip, tags)
}

// eniAttached is the simulator's hook as an ENI attachment would become
// attached (an error leaves it attaching): it tells the instance's IMDS of
// the ENI and plugs its veth into the instance, ordered against the API's
// "attached" by Options.NICVisibleDelay.
func (c *Cloud) eniAttached(ev ec2sim.ENIEvent) error {
	d := c.opts.NICVisibleDelay
	// The API says attached when the hook returns: now, or -d from now.
	c.imdsLearn(ev, time.Now().Add(max(-d, 0)+c.opts.IMDSInterfaceLag))
	err := c.visible.attached(ev.NetworkInterfaceID, ev.InstanceID, d, func() error { return c.plugENI(ev) })
	if err != nil {
		c.imdsForget(ev)
		return err
	}
	c.attachLog.attached(ev.NetworkInterfaceID, ev.InstanceID)
	return nil
}

// plugENI plugs the ENI's veth into its instance, if that still runs.
func (c *Cloud) plugENI(ev ec2sim.ENIEvent) (err error) {
	defer c.step("eni attach", "eni", ev.NetworkInterfaceID, "instance", ev.InstanceID,
		"mac", ev.MAC, "device_index", ev.DeviceIndex).Defer(&err)
	return c.instances.plugInto(ev.InstanceID, func(inst *Instance) error {
		return c.enis.plug(ev, inst)
	})
}

// eniDetached unplugs the ENI's veth, if this attachment still has it (or
// drops its delayed plug), and takes it out of the instance's IMDS.
func (c *Cloud) eniDetached(ev ec2sim.ENIEvent) {
	c.attachLog.detached(ev.NetworkInterfaceID, ev.InstanceID)
	c.visible.detached(ev.NetworkInterfaceID, ev.InstanceID)
	c.enis.unplugFrom(ev.NetworkInterfaceID, ev.InstanceID)
	c.imdsForget(ev)
}

// plug plugs the ENI of ev into inst, a running instance.
func (r *enis) plug(ev ec2sim.ENIEvent, inst *Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.plugged[ev.NetworkInterfaceID]; old != nil {
		// The simulator marks an ENI available before it runs the detach
		// hook, so a new attachment can overtake the old one's unplug.
		if err := r.unplug(ev.NetworkInterfaceID, old); err != nil {
			return err
		}
	}
	link, err := r.vpc.plugVeth(inst, ev.DeviceIndex, ev.MAC, ev.PrivateIP, ev.NetworkInterfaceID+" on "+ev.InstanceID)
	if err != nil {
		return err
	}
	r.plugged[ev.NetworkInterfaceID] = &eniPlug{inst: inst, link: link}
	return nil
}

// unplugFrom unplugs the ENI if it is plugged into the instance.
func (r *enis) unplugFrom(eniID, instID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.plugged[eniID]
	if p == nil || p.inst.ID != instID {
		return
	}
	_ = r.unplug(eniID, p)
}

// unplugAll unplugs every ENI plugged into the instance.
func (r *enis) unplugAll(inst *Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for id, p := range r.plugged {
		if p.inst == inst {
			errs = append(errs, r.unplug(id, p))
		}
	}
	return errors.Join(errs...)
}

// unplug removes an ENI's veth. Call with r.mu held.
func (r *enis) unplug(id string, p *eniPlug) (err error) {
	defer startStep(r.log, "eni detach", "eni", id, "instance", p.inst.ID).Defer(&err)
	delete(r.plugged, id)
	return r.vpc.unplugVeth(p.link)
}

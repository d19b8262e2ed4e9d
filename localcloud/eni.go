package localcloud

import (
	"errors"
	"fmt"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// eniPlug is an ENI's veth, plugged into an instance.
type eniPlug struct {
	inst *Instance
	link string // bridge end, in the VPC namespace
}

// CreateNetworkInterface creates an available ENI in the AZ's subnet; an
// empty ip takes the subnet's next free address.
func (c *Cloud) CreateNetworkInterface(az, ip string, tags map[string]string) (ec2sim.NetworkInterface, error) {
	sub, ok := c.subnets[az]
	if !ok {
		return ec2sim.NetworkInterface{}, fmt.Errorf("create network interface: no subnet in %s", az)
	}
	return c.sim.CreateNetworkInterface(sub.id, ip, tags)
}

// running returns a running instance of this Cloud. Call with c.mu held.
func (c *Cloud) running(id string) (*Instance, error) {
	if c.closing {
		return nil, fmt.Errorf("instance %s: local cloud closing", id)
	}
	inst := c.instances[id]
	if inst == nil {
		return nil, fmt.Errorf("instance %s is not running in this local cloud", id)
	}
	return inst, nil
}

// eniAttached plugs the ENI's veth into the instance (the simulator calls
// it when the attachment would become attached; an error leaves it
// attaching).
func (c *Cloud) eniAttached(ev ec2sim.ENIEvent) (err error) {
	defer c.step("eni attach", "eni", ev.NetworkInterfaceID, "instance", ev.InstanceID,
		"mac", ev.MAC, "device_index", ev.DeviceIndex).Defer(&err)
	c.mu.Lock()
	defer c.mu.Unlock()
	inst, err := c.running(ev.InstanceID)
	if err != nil {
		return err
	}
	if old := c.enis[ev.NetworkInterfaceID]; old != nil {
		// The simulator marks an ENI available before it runs the detach
		// hook, so a new attachment can overtake the old one's unplug.
		if err := c.unplugENI(ev.NetworkInterfaceID, old); err != nil {
			return err
		}
	}
	link, err := c.plugVeth(inst, ev.DeviceIndex, ev.MAC, ev.NetworkInterfaceID+" on "+ev.InstanceID)
	if err != nil {
		return err
	}
	c.enis[ev.NetworkInterfaceID] = &eniPlug{inst: inst, link: link}
	return nil
}

// eniDetached unplugs the ENI's veth, if this attachment still has it.
func (c *Cloud) eniDetached(ev ec2sim.ENIEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.enis[ev.NetworkInterfaceID]
	if p == nil || p.inst.ID != ev.InstanceID {
		return
	}
	_ = c.unplugENI(ev.NetworkInterfaceID, p)
}

// unplugENI removes an ENI's veth. Call with c.mu held.
func (c *Cloud) unplugENI(id string, p *eniPlug) (err error) {
	defer c.step("eni detach", "eni", id, "instance", p.inst.ID).Defer(&err)
	delete(c.enis, id)
	return c.unplugVeth(p.link)
}

// unplugAll removes every ENI and volume plugged into the instance. Call
// with c.mu held.
func (c *Cloud) unplugAll(inst *Instance) error {
	var errs []error
	for id, p := range c.enis {
		if p.inst == inst {
			errs = append(errs, c.unplugENI(id, p))
		}
	}
	for _, v := range c.volumes {
		if v.att != nil && v.att.inst == inst {
			errs = append(errs, c.unplugVolume(v))
		}
	}
	return errors.Join(errs...)
}

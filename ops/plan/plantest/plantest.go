// Package plantest is an in-memory plan.Cloud for tests of plan, up and
// down: resources keyed by kind and name as ops/aws finds them, a fault
// after N mutations, foreign resources that must never be touched.
package plantest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"

	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/plan"
)

// Cloud is an in-memory AWS.
type Cloud struct {
	mu        sync.Mutex
	Subnets   []plan.Subnet
	res       map[string]*plan.Existing
	seq       int
	Mutations int // creates, updates and deletes so far
	// FailAfter > 0 fails every mutation after that many.
	FailAfter int
	// Cancel, when set, is called after the mutation numbered CancelAt.
	Cancel   func()
	CancelAt int
	Calls    []string
	// UsedIPs are addresses other interfaces hold, by IP: the holder's id.
	UsedIPs map[netip.Addr]string
}

// AddressUser implements plan.AddressChecker.
func (c *Cloud) AddressUser(_ context.Context, _ string, ip netip.Addr) (string, error) {
	return c.UsedIPs[ip], nil
}

// New returns a cloud with the given subnets.
func New(subnets ...plan.Subnet) *Cloud {
	return &Cloud{Subnets: subnets, res: map[string]*plan.Existing{}}
}

// ErrInjected is the injected fault.
var ErrInjected = errors.New("injected fault: InternalError")

// Put adds an existing resource (e.g. one the operator or someone else made).
func (c *Cloud) Put(e plan.Existing) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.res[string(e.Kind)+"/"+e.Name+"/"+e.ID] = &e
}

// All returns every resource, sorted.
func (c *Cloud) All() []plan.Existing {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []plan.Existing
	for _, e := range c.res {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Count returns how many resources of kind k exist.
func (c *Cloud) Count(k deploy.Kind) int {
	n := 0
	for _, e := range c.All() {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func (c *Cloud) Subnet(_ context.Context, id string) (plan.Subnet, error) {
	for _, s := range c.Subnets {
		if s.ID == id {
			return s, nil
		}
	}
	return plan.Subnet{}, fmt.Errorf("subnet %s: InvalidSubnetID.NotFound", id)
}

func (c *Cloud) SubnetFor(_ context.Context, az string, ip netip.Addr) (plan.Subnet, error) {
	for _, s := range c.Subnets {
		if s.AZ == az && s.CIDR.Contains(ip) {
			return s, nil
		}
	}
	return plan.Subnet{}, fmt.Errorf("no subnet of %s holds %s: create one or name it in deploy.subnets", az, ip)
}

func (c *Cloud) List(_ context.Context, d *deploy.Desired) ([]plan.Existing, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Calls = append(c.Calls, "List")
	var out []plan.Existing
	for _, e := range c.res {
		if e.Tags["zkaas:ensemble"] == d.Ensemble {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (c *Cloud) mutate(what string) error {
	c.Calls = append(c.Calls, what)
	if c.FailAfter > 0 && c.Mutations >= c.FailAfter {
		return ErrInjected
	}
	c.Mutations++
	if c.Cancel != nil && c.Mutations == c.CancelAt {
		c.Cancel()
	}
	return nil
}

func (c *Cloud) Create(_ context.Context, r deploy.Resource, tags map[string]string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.mutate("Create " + r.String()); err != nil {
		return "", err
	}
	c.seq++
	id := fmt.Sprintf("%s-%04d", r.Kind, c.seq)
	c.res[string(r.Kind)+"/"+r.Name+"/"+id] = &plan.Existing{Kind: r.Kind, Name: r.Name, ID: id, Spec: r.Spec, Tags: tags, Managed: true}
	return id, nil
}

func (c *Cloud) Update(_ context.Context, r deploy.Resource, ex plan.Existing) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.mutate("Update " + r.String()); err != nil {
		return err
	}
	e := c.res[string(ex.Kind)+"/"+ex.Name+"/"+ex.ID]
	if e == nil {
		return fmt.Errorf("%s: NotFound", ex.ID)
	}
	e.Spec = r.Spec
	return nil
}

func (c *Cloud) Delete(_ context.Context, ex plan.Existing) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.mutate("Delete " + string(ex.Kind) + " " + ex.ID); err != nil {
		return err
	}
	k := string(ex.Kind) + "/" + ex.Name + "/" + ex.ID
	if c.res[k] == nil {
		return fmt.Errorf("%s: NotFound", ex.ID)
	}
	delete(c.res, k)
	return nil
}

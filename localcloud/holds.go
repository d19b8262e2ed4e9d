package localcloud

import (
	"slices"
	"sync"
	"time"
)

// Hold is one attachment of an ENI or volume to an instance, as EC2's API
// had it: from the moment it said attached to the moment it said detached
// (To is zero while it lasts). The local cloud records every one, so that
// a harness can tell how long an instance held a node's identity — e.g. a
// boot that failed, whose claim must let go within its deadline.
type Hold struct {
	Resource, Instance string
	From, To           time.Time
}

// holdLog records the attachments, from the simulator's hooks.
type holdLog struct {
	mu    sync.Mutex
	holds []Hold
}

func (l *holdLog) attached(resource, instance string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holds = append(l.holds, Hold{Resource: resource, Instance: instance, From: time.Now()})
}

func (l *holdLog) detached(resource, instance string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.holds) - 1; i >= 0; i-- {
		if h := &l.holds[i]; h.Resource == resource && h.Instance == instance && h.To.IsZero() {
			h.To = time.Now()
			return
		}
	}
}

// Holds returns the attachments of ENIs and volumes to the instance, in
// the order they were made.
func (c *Cloud) Holds(instance string) []Hold {
	c.attachLog.mu.Lock()
	defer c.attachLog.mu.Unlock()
	var out []Hold
	for _, h := range c.attachLog.holds {
		if h.Instance == instance {
			out = append(out, h)
		}
	}
	return slices.Clip(out)
}

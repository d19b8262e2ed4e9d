package localcloud

import (
	"errors"
	"log/slog"
	"sync"
	"time"
)

// visibility orders a hot-plugged device's appearance in its instance
// against the moment EC2's API reports the attachment attached
// (Options.NICVisibleDelay, DiskVisibleDelay). The simulator runs an attach
// hook as the attachment would become attached and marks it attached when
// the hook returns nil; visibility wraps the hook:
//
//   - delay > 0: the hook returns at once (the API says attached now) and
//     the device is plugged delay later, unless the attachment went away
//     first;
//   - delay < 0: the device is plugged at once and the hook holds the
//     attachment in attaching for -delay more (cut short when the Cloud
//     closes);
//   - 0: plugged, then attached.
//
// Lock order: visibility.mu, then instances.mu (a delayed plug runs under
// mu, so that a detach cannot slip between its check and the plug).
type visibility struct {
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	pending map[string]delayedPlug // by resource id
	done    chan struct{}          // closed by close
}

// delayedPlug is a device to plug once its delay has passed.
type delayedPlug struct {
	t    *time.Timer
	inst string // the instance it is for
}

func newVisibility(log *slog.Logger) visibility {
	return visibility{log: log, pending: map[string]delayedPlug{}, done: make(chan struct{})}
}

// attached is the attach hook of resource id on instance inst with the
// given delay.
func (v *visibility) attached(id, inst string, delay time.Duration, plug func() error) error {
	switch {
	case delay > 0:
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.closed {
			return errors.New("local cloud closing")
		}
		if old, ok := v.pending[id]; ok {
			old.t.Stop()
		}
		var t *time.Timer
		t = time.AfterFunc(delay, func() {
			v.mu.Lock()
			defer v.mu.Unlock()
			if v.pending[id].t != t {
				return // detached, re-attached or closed meanwhile
			}
			delete(v.pending, id)
			if err := plug(); err != nil {
				// On EC2 too the API may say attached for a device the OS
				// never sees: the product's bounded waits must say so.
				v.log.Warn("device of an attached resource not plugged", "resource", id, "delay", delay, "err", err)
			}
		})
		v.pending[id] = delayedPlug{t: t, inst: inst}
		return nil
	case delay < 0:
		if err := plug(); err != nil {
			return err
		}
		t := time.NewTimer(-delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-v.done:
		}
		return nil
	default:
		return plug()
	}
}

// detached drops a delayed plug of resource id into inst that has not
// happened yet (not one for another instance: the simulator marks a
// resource available before it runs the detach hook, so a new attachment
// may already have scheduled its plug).
func (v *visibility) detached(id, inst string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if p, ok := v.pending[id]; ok && p.inst == inst {
		p.t.Stop()
		delete(v.pending, id)
	}
}

// close drops every delayed plug and releases hooks holding attachments in
// attaching, so that the simulator can close. Idempotent.
func (v *visibility) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	for id, p := range v.pending {
		p.t.Stop()
		delete(v.pending, id)
	}
	close(v.done)
}

package claim

import (
	"context"
	"errors"
)

// Devices tells the claim when the instance itself sees an attachment: the
// network interface with the ENI's MAC, the block device of the volume.
// Until both are visible nothing EC2 could answer about them can be worth a
// poll, so the claim waits on these signals and confirms with one Describe,
// instead of polling DescribeInstances every few hundred milliseconds
// (production: package hotplug; tests: the simulator's attach hooks).
//
// Each method returns nil once the device is present (at once if it already
// is), the context's error when ctx is done, or another error when this
// instance cannot tell (e.g. netlink unavailable): the claim then polls EC2
// for that attachment, as it does without Devices. The device may appear
// before or after EC2 reports the attachment attached; the claim copes with
// both orders.
type Devices interface {
	// WaitNIC waits for a network interface with this MAC (EC2's
	// lower-case colon form).
	WaitNIC(ctx context.Context, mac string) error
	// WaitVolume waits for the block device of the volume attached under
	// the device name (e.g. /dev/xvdf); on Nitro the volume id (its NVMe
	// serial) identifies it, on Xen the name.
	WaitVolume(ctx context.Context, volumeID, device string) error
}

const (
	sigENI = iota
	sigVol
)

// signal is one Devices answer; gen tells a stale watch (of a volume
// attachment since detached) from the current one.
type signal struct {
	kind, gen int
	err       error
}

// signals runs the Devices watches of one wait. Without Devices every
// attachment counts as having no signal, and the wait polls.
type signals struct {
	dev    Devices
	ctx    context.Context
	ch     chan signal
	gen    [2]int
	cancel [2]context.CancelFunc
	seen   [2]bool // the instance sees the device
	none   [2]bool // no signal will come: poll
}

func newSignals(ctx context.Context, dev Devices) *signals {
	s := &signals{dev: dev, ctx: ctx, ch: make(chan signal, 4)}
	if dev == nil {
		s.none = [2]bool{true, true}
	}
	return s
}

// watch starts (or restarts, for a new attachment) the watch of kind.
func (s *signals) watch(kind int, f func(context.Context) error) {
	if s.dev == nil {
		return
	}
	if s.cancel[kind] != nil {
		s.cancel[kind]()
	}
	s.gen[kind]++
	s.seen[kind], s.none[kind] = false, false
	ctx, cancel := context.WithCancel(s.ctx)
	s.cancel[kind] = cancel
	gen := s.gen[kind]
	go func() {
		err := f(ctx)
		select {
		case s.ch <- signal{kind, gen, err}:
		case <-s.ctx.Done():
		}
	}()
}

// handle records a signal and reports whether it was news (of the current
// attachment); a failing watch leaves the attachment to polling.
func (s *signals) handle(sig signal) (news bool, err error) {
	if sig.gen != s.gen[sig.kind] {
		return false, nil
	}
	switch {
	case sig.err == nil:
		s.seen[sig.kind] = true
	case errors.Is(sig.err, context.Canceled) || errors.Is(sig.err, context.DeadlineExceeded) || s.ctx.Err() != nil:
		return false, nil
	default:
		s.none[sig.kind] = true
	}
	return true, sig.err
}

// ready reports whether kind is visible to the instance or will be polled
// for: either way, a Describe can now tell something new.
func (s *signals) ready(kind int) bool { return s.seen[kind] || s.none[kind] }

// forget drops what was seen of kind: its attachment is gone.
func (s *signals) forget(kind int) {
	if s.cancel[kind] != nil {
		s.cancel[kind]()
		s.cancel[kind] = nil
	}
	s.gen[kind]++
	s.seen[kind] = false
}

package claim

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential schedule with jitter. Attempt 0 waits
// about First; each later attempt multiplies by Factor up to Max. Jitter is
// ±Jitter of the wait, so instances that booted together do not poll in step.
type Backoff struct {
	First  time.Duration
	Factor float64
	Max    time.Duration
	Jitter float64 // 0..1
}

// Delay returns the wait before the given (0-based) attempt.
func (b Backoff) Delay(attempt int, rng *rand.Rand) time.Duration {
	d := float64(b.First)
	for i := 0; i < attempt && d < float64(b.Max); i++ {
		d *= b.Factor
	}
	d = min(d, float64(b.Max))
	if b.Jitter > 0 && rng != nil {
		d *= 1 + b.Jitter*(2*rng.Float64()-1)
	}
	return time.Duration(d)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

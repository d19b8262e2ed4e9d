package ec2sim

import "time"

// Throttle configures EC2's per-account request token buckets. A call takes
// one token from its bucket or fails with RequestLimitExceeded; buckets
// refill continuously.
type Throttle struct {
	Disabled bool
	// Mutating: Attach*, Detach*, Modify*, CreateTags.
	Mutating Bucket
	// Describe: Describe* calls with a Filter or explicit ids.
	Describe Bucket
	// UnfilteredDescribe: Describe* calls with neither (EC2 gives
	// "unfiltered and unpaginated" calls a smaller bucket).
	UnfilteredDescribe Bucket
}

// Bucket is one token bucket. The zero Bucket means "EC2's default for this
// bucket".
type Bucket struct {
	Capacity        float64
	RefillPerSecond float64
}

// DefaultThrottle is EC2's documented default for an account.
var DefaultThrottle = Throttle{
	Mutating:           Bucket{Capacity: 50, RefillPerSecond: 5},
	Describe:           Bucket{Capacity: 100, RefillPerSecond: 20},
	UnfilteredDescribe: Bucket{Capacity: 20, RefillPerSecond: 2},
}

type bucketClass int

const (
	classMutating bucketClass = iota
	classDescribe
	classUnfilteredDescribe
)

type limiter struct {
	buckets [3]*bucket
}

func newLimiter(t *Throttle, now time.Time) *limiter {
	if t == nil {
		t = &DefaultThrottle
	}
	if t.Disabled {
		return nil
	}
	pick := func(b, def Bucket) *bucket {
		if b == (Bucket{}) {
			b = def
		}
		return &bucket{Bucket: b, tokens: b.Capacity, last: now}
	}
	return &limiter{buckets: [3]*bucket{
		classMutating:           pick(t.Mutating, DefaultThrottle.Mutating),
		classDescribe:           pick(t.Describe, DefaultThrottle.Describe),
		classUnfilteredDescribe: pick(t.UnfilteredDescribe, DefaultThrottle.UnfilteredDescribe),
	}}
}

// allow takes a token from the class's bucket; a nil limiter allows all.
func (l *limiter) allow(c bucketClass, now time.Time) bool {
	if l == nil {
		return true
	}
	return l.buckets[c].take(now)
}

type bucket struct {
	Bucket
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time) bool {
	b.tokens = min(b.Capacity, b.tokens+now.Sub(b.last).Seconds()*b.RefillPerSecond)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

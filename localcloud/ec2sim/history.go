package ec2sim

import (
	"slices"
	"time"
)

// store keeps every resource of one kind as a short history of immutable
// versions. Mutations act on the newest version; Describe calls read the
// newest version at least lag old, which is how EC2's eventual consistency
// looks from outside: a fresh change (or a fresh resource) is not visible
// to Describe for a while, then it is.
type store[T any] struct {
	m map[string]*history[T]
}

type history[T any] struct {
	vs      []version[T]
	created time.Time // when the first version was put
}

type version[T any] struct {
	at   time.Time
	v    T
	gone bool // tombstone: the resource was deleted at 'at'
}

func newStore[T any]() *store[T] { return &store[T]{m: map[string]*history[T]{}} }

// get returns the true current state.
func (s *store[T]) get(id string) (T, bool) {
	var zero T
	h := s.m[id]
	if h == nil {
		return zero, false
	}
	last := h.vs[len(h.vs)-1]
	if last.gone {
		return zero, false
	}
	return last.v, true
}

// put records v as the state of id from now on. Versions older than the
// newest one that is already visible at now-lag can never be read again and
// are dropped.
func (s *store[T]) put(id string, v T, now time.Time, lag time.Duration) {
	s.append(id, version[T]{at: now, v: v}, now, lag)
}

// remove records that id was deleted now.
func (s *store[T]) remove(id string, now time.Time, lag time.Duration) {
	s.append(id, version[T]{at: now, gone: true}, now, lag)
}

func (s *store[T]) append(id string, v version[T], now time.Time, lag time.Duration) {
	h := s.m[id]
	if h == nil {
		h = &history[T]{created: v.at}
		s.m[id] = h
	}
	h.vs = append(h.vs, v)
	cutoff := now.Add(-lag)
	keep := 0
	for i, old := range h.vs {
		if !old.at.After(cutoff) {
			keep = i
		}
	}
	h.vs = h.vs[keep:]
	if len(h.vs) == 1 && h.vs[0].gone && !h.vs[0].at.After(cutoff) {
		delete(s.m, id)
	}
}

// getAsOf returns the state of id as Describe sees it at t.
func (s *store[T]) getAsOf(id string, t time.Time) (T, bool) {
	var zero T
	h := s.m[id]
	if h == nil {
		return zero, false
	}
	for i := len(h.vs) - 1; i >= 0; i-- {
		if !h.vs[i].at.After(t) {
			if h.vs[i].gone {
				return zero, false
			}
			return h.vs[i].v, true
		}
	}
	return zero, false
}

// asOf returns every resource visible at t, ordered by id so pagination is
// stable. No Describe looks back before gc, so a deletion visible at gc is
// final and its history can go.
func (s *store[T]) asOf(t, gc time.Time) []T {
	var out []T
	for _, id := range s.ids() {
		if v, ok := s.getAsOf(id, t); ok {
			out = append(out, v)
			continue
		}
		if vs := s.m[id].vs; vs[len(vs)-1].gone && !vs[len(vs)-1].at.After(gc) {
			delete(s.m, id)
		}
	}
	return out
}

// createdAt returns when id was first put (while its history lasts).
func (s *store[T]) createdAt(id string) (time.Time, bool) {
	h := s.m[id]
	if h == nil {
		return time.Time{}, false
	}
	return h.created, true
}

// current returns every existing resource, ordered by id.
func (s *store[T]) current() []T {
	var out []T
	for _, id := range s.ids() {
		if v, ok := s.get(id); ok {
			out = append(out, v)
		}
	}
	return out
}

func (s *store[T]) ids() []string {
	ids := make([]string, 0, len(s.m))
	for id := range s.m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

package ec2sim

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// createTags adds or overwrites tags on ENIs, volumes, instances and
// subnets. Every resource is checked before any is changed, so a bad id
// changes nothing, as in EC2.
func (s *Sim) createTags(q query, now time.Time) (result, error) { return s.tag(q, now, true) }

// tag is CreateTags; api says whether the call came through the API (and so
// sees Lag.NewIDs) or from the Go admin API.
func (s *Sim) tag(q query, now time.Time, api bool) (result, error) {
	ids := q.ids("ResourceId")
	if len(ids) == 0 {
		return nil, errMissing("ResourceId")
	}
	tags, err := q.tags()
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, errMissing("Tag")
	}
	for _, t := range tags {
		switch {
		case strings.HasPrefix(t.Key, "aws:"):
			return nil, clientError(CodeInvalidParameterValue, "Tag keys starting with 'aws:' are reserved for internal use")
		case len(t.Key) > 128:
			return nil, clientError(CodeInvalidParameterValue, "Tag key exceeds the maximum length of 128 characters")
		case len(t.Value) > 256:
			return nil, clientError(CodeInvalidParameterValue, "Tag value exceeds the maximum length of 256 characters")
		}
	}
	apply := make([]func(), 0, len(ids))
	for _, id := range ids {
		var err error
		var f func()
		switch {
		case strings.HasPrefix(id, eniKind.prefix):
			f, err = retag(s, api, eniKind, s.enis, id, tags, now, func(n NetworkInterface, m map[string]string) NetworkInterface { n.Tags = m; return n })
		case strings.HasPrefix(id, volumeKind.prefix):
			f, err = retag(s, api, volumeKind, s.volumes, id, tags, now, func(v Volume, m map[string]string) Volume { v.Tags = m; return v })
		case strings.HasPrefix(id, instanceKind.prefix):
			f, err = retag(s, api, instanceKind, s.instances, id, tags, now, func(i Instance, m map[string]string) Instance { i.Tags = m; return i })
		case strings.HasPrefix(id, subnetKind.prefix):
			f, err = retag(s, api, subnetKind, s.subnets, id, tags, now, func(sub Subnet, m map[string]string) Subnet { sub.Tags = m; return sub })
		default:
			err = clientError(CodeInvalidID, "The ID '%s' is not valid", id)
		}
		if err != nil {
			return nil, err
		}
		apply = append(apply, f)
	}
	for _, f := range apply {
		f()
	}
	return &returnResponse{Return: true}, nil
}

// retag checks that id exists and returns the change that tags it. Versions
// are immutable: the tag map is copied, the rest is shared.
func retag[T any](s *Sim, api bool, k *kind[T], st *store[T], id string, tags []xmlTag, now time.Time, withTags func(T, map[string]string) T) (func(), error) {
	find := k.find
	if api {
		find = func(st *store[T], id string) (T, error) { return findForMutation(s, k, st, id, now) }
	}
	v, err := find(st, id)
	if err != nil {
		return nil, err
	}
	return func() {
		m := maps.Clone(k.tagsOf(v))
		if m == nil {
			m = map[string]string{}
		}
		for _, t := range tags {
			m[t.Key] = t.Value
		}
		st.put(id, withTags(v, m), now, s.retain)
	}, nil
}

// CreateTags adds or overwrites tags on resources as the API call does, for
// harnesses acting as the operator (e.g. retiring a lost volume). It costs no
// throttling tokens and no latency.
func (s *Sim) CreateTags(ids []string, tags map[string]string) error {
	form := url.Values{}
	for i, id := range ids {
		form.Set(fmt.Sprintf("ResourceId.%d", i+1), id)
	}
	i := 0
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		i++
		form.Set(fmt.Sprintf("Tag.%d.Key", i), k)
		form.Set(fmt.Sprintf("Tag.%d.Value", i), tags[k])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.tag(query{form: form}, time.Now(), false)
	return err
}

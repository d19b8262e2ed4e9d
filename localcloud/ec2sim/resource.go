package ec2sim

import (
	"slices"
	"strings"
	"time"
)

// kind describes one resource type to the code shared by all of them: id
// checks, lookups and the Describe pipeline (ids, filters, pagination).
type kind[T any] struct {
	prefix     string // id prefix, "eni-"
	malformed  string // error code for an id without that shape
	idParam    string // Describe's explicit-id list parameter
	idsWithMax string // set name EC2 names when ids and MaxResults are combined; "" if allowed
	maxResults int    // MaxResults cap
	idOf       func(T) string
	tagsOf     func(T) map[string]string
	filters    filterTable[T]
	notFound   func(id string) *APIError
	mask       func(T) T // what Describe shows of a stored version; nil = all of it
}

func (k *kind[T]) checkID(id string) error {
	rest, ok := strings.CutPrefix(id, k.prefix)
	if !ok || (len(rest) != 8 && len(rest) != 17) || strings.Trim(rest, "0123456789abcdef") != "" {
		return clientError(k.malformed, "Invalid id: \"%s\" (expecting \"%s...\")", id, k.prefix)
	}
	return nil
}

// find returns the current state of id, or EC2's error for a bad id.
func (k *kind[T]) find(st *store[T], id string) (T, error) {
	var zero T
	if err := k.checkID(id); err != nil {
		return zero, err
	}
	v, ok := st.get(id)
	if !ok {
		return zero, k.notFound(id)
	}
	return v, nil
}

// describe selects what a Describe call returns, as of t: the explicit ids
// (each must exist at t) or everything, narrowed by the filters, one page of
// it, and the next page's token.
func (k *kind[T]) describe(st *store[T], q query, t, gc time.Time) ([]T, string, error) {
	ids := q.ids(k.idParam)
	if len(ids) > 0 && q.has("MaxResults") && k.idsWithMax != "" {
		return nil, "", clientError(CodeInvalidParameterCombo, "The parameter %s cannot be used with the parameter maxResults", k.idsWithMax)
	}
	p, err := q.page(k.maxResults)
	if err != nil {
		return nil, "", err
	}
	match, err := compileFilters(q.filters(), k.filters, k.tagsOf)
	if err != nil {
		return nil, "", err
	}
	var items []T
	if len(ids) == 0 {
		items = st.asOf(t, gc)
	} else {
		for _, id := range ids {
			if err := k.checkID(id); err != nil {
				return nil, "", err
			}
			v, ok := st.getAsOf(id, t)
			if !ok {
				return nil, "", k.notFound(id)
			}
			items = append(items, v)
		}
		slices.SortFunc(items, func(a, b T) int { return strings.Compare(k.idOf(a), k.idOf(b)) })
	}
	if k.mask != nil {
		for i := range items {
			items[i] = k.mask(items[i])
		}
	}
	items = slices.DeleteFunc(items, func(v T) bool { return !match(v) })
	out, next := paginate(items, k.idOf, p)
	return out, next, nil
}

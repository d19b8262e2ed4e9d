package ec2sim

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// query reads ec2query parameters: scalars by name, lists as Name.1,
// Name.2, ... and structures as Name.N.Field (Filter.1.Name,
// Filter.1.Value.1, Tag.2.Key).
type query struct{ form url.Values }

func (q query) str(name string) string { return q.form.Get(name) }

func (q query) has(name string) bool { return q.form.Has(name) }

func (q query) required(name string) (string, error) {
	v := q.form.Get(name)
	if v == "" {
		return "", errMissing(name)
	}
	return v, nil
}

func (q query) int32(name string) (int32, bool, error) {
	raw := q.form.Get(name)
	if raw == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(raw, 10, 32)
	if err != nil {
		return 0, false, clientError(CodeInvalidParameterValue, "Invalid value '%s' for %s", raw, name)
	}
	return int32(n), true, nil
}

func (q query) bool(name string) (bool, bool, error) {
	raw := q.form.Get(name)
	if raw == "" {
		return false, false, nil
	}
	b, err := strconv.ParseBool(raw)
	if err != nil {
		return false, false, clientError(CodeInvalidParameterValue, "Invalid value '%s' for %s", raw, name)
	}
	return b, true, nil
}

// indexes returns the N of every prefix.N or prefix.N.* key, ascending.
func (q query) indexes(prefix string) []int {
	seen := map[int]bool{}
	for key := range q.form {
		rest, ok := strings.CutPrefix(key, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// list returns the values of prefix.1, prefix.2, ... in index order.
func (q query) list(prefix string) []string {
	var out []string
	for _, n := range q.indexes(prefix) {
		if v := q.form.Get(prefix + "." + strconv.Itoa(n)); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// ids returns the distinct values of an id list parameter, in request order.
func (q query) ids(param string) []string {
	var out []string
	for _, id := range q.list(param) {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

type filter struct {
	name   string
	values []string
}

func (q query) filters() []filter {
	var out []filter
	for _, n := range q.indexes("Filter") {
		p := "Filter." + strconv.Itoa(n)
		out = append(out, filter{name: q.form.Get(p + ".Name"), values: q.list(p + ".Value")})
	}
	return out
}

// tags reads Tag.N.Key / Tag.N.Value; a missing value is the empty string.
func (q query) tags() ([]xmlTag, error) {
	var out []xmlTag
	for _, n := range q.indexes("Tag") {
		p := "Tag." + strconv.Itoa(n)
		key := q.form.Get(p + ".Key")
		if key == "" {
			return nil, errMissing(p + ".Key")
		}
		out = append(out, xmlTag{Key: key, Value: q.form.Get(p + ".Value")})
	}
	return out, nil
}

// page is a Describe call's pagination request.
type page struct {
	max   int    // 0: everything
	after string // return only ids greater than this
}

// page reads MaxResults and NextToken. EC2 rejects MaxResults below 5 and
// caps it at limit.
func (q query) page(limit int) (page, error) {
	var p page
	if raw := q.form.Get("MaxResults"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 5 {
			return p, clientError(CodeInvalidParameterValue, "Value ( %s ) for parameter maxResults is invalid. Expecting a value greater than 5.", raw)
		}
		p.max = min(n, limit)
	}
	if tok := q.form.Get("NextToken"); tok != "" {
		after, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(after) == 0 {
			return p, clientError(CodeInvalidPaginationToken, "Invalid pagination token: '%s'", tok)
		}
		p.after = string(after)
	}
	return p, nil
}

// paginate cuts one page out of items (sorted by id) and returns the token
// for the next page, "" on the last one. The token is the last id returned,
// so resources created or deleted between pages do not shift the rest.
func paginate[T any](items []T, idOf func(T) string, p page) ([]T, string) {
	if p.after != "" {
		i, _ := slices.BinarySearchFunc(items, p.after, func(t T, id string) int { return strings.Compare(idOf(t), id) })
		for i < len(items) && idOf(items[i]) <= p.after {
			i++
		}
		items = items[i:]
	}
	if p.max == 0 || len(items) <= p.max {
		return items, ""
	}
	items = items[:p.max]
	return items, base64.RawURLEncoding.EncodeToString([]byte(idOf(items[len(items)-1])))
}

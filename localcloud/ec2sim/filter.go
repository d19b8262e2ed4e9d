package ec2sim

import (
	"maps"
	"slices"
	"strings"
)

// filterTable maps a filter name to the values a resource has for it (none,
// one, or several: a volume's attachment.instance-id). tag:<key> and tag-key
// are handled for every resource kind and are not listed.
type filterTable[T any] map[string]func(T) []string

func one(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// compileFilters turns Filter.N into a predicate with EC2's semantics: a
// resource matches a filter when any of its values matches any of the
// filter's values (OR), and must match every filter (AND). Values may use
// * and ? wildcards; \ escapes them. Values are case-sensitive.
func compileFilters[T any](filters []filter, table filterTable[T], tagsOf func(T) map[string]string) (func(T) bool, error) {
	type compiled struct {
		values   func(T) []string
		patterns []pattern
	}
	var cs []compiled
	for _, f := range filters {
		var values func(T) []string
		switch key, isTag := strings.CutPrefix(f.name, "tag:"); {
		case isTag && key != "":
			values = func(t T) []string {
				v, ok := tagsOf(t)[key]
				if !ok {
					return nil
				}
				return []string{v}
			}
		case f.name == "tag-key":
			values = func(t T) []string { return slices.Collect(maps.Keys(tagsOf(t))) }
		default:
			values = table[f.name]
		}
		if values == nil {
			return nil, clientError(CodeInvalidParameterValue, "The filter '%s' is invalid", f.name)
		}
		c := compiled{values: values}
		for _, v := range f.values {
			c.patterns = append(c.patterns, compilePattern(v))
		}
		cs = append(cs, c)
	}
	return func(t T) bool {
		for _, c := range cs {
			if !matchAny(c.patterns, c.values(t)) {
				return false
			}
		}
		return true
	}, nil
}

func matchAny(patterns []pattern, values []string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if p.match(v) {
				return true
			}
		}
	}
	return false
}

// pattern is a filter value: literal runes, '*' (any run) and '?' (any one
// rune).
type pattern []token

type token struct {
	r    rune
	kind byte // 'l' literal, '*' any run, '?' any rune
}

func compilePattern(s string) pattern {
	var p pattern
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			p = append(p, token{r: r, kind: 'l'})
			escaped = false
		case r == '\\':
			escaped = true
		case r == '*' || r == '?':
			p = append(p, token{kind: byte(r)})
		default:
			p = append(p, token{r: r, kind: 'l'})
		}
	}
	if escaped {
		p = append(p, token{r: '\\', kind: 'l'})
	}
	return p
}

// match is the classic greedy wildcard match with one backtrack point.
func (p pattern) match(s string) bool {
	rs := []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(rs) {
		switch {
		case pi < len(p) && (p[pi].kind == '?' || (p[pi].kind == 'l' && p[pi].r == rs[si])):
			pi++
			si++
		case pi < len(p) && p[pi].kind == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi].kind == '*' {
		pi++
	}
	return pi == len(p)
}

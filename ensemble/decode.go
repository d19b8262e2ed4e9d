package ensemble

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zkaas/zkaas/internal/suggest"
)

// Problems is every error found in a config file, in file order.
type Problems struct {
	File     string
	Errors   []FieldError
	Warnings []FieldError
}

func (p *Problems) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s)", p.File, len(p.Errors))
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "\n  %s", e.Error())
	}
	return b.String()
}

// HardenedMarker is the file the bake's hardening role installs; its
// presence tells firstboot to validate with Options.Hardened.
const HardenedMarker = "/etc/zkaas/hardened"

// Options tighten validation.
type Options struct {
	// Hardened applies the limits of a hardened image (see Hardened), which
	// the bake enforces for the baked file; firstboot enforces them for any
	// config, because user data bypasses the bake.
	Hardened bool
	// NoPrometheusProvider, when not empty, says why the image's ZooKeeper
	// cannot load its Prometheus metrics provider: metrics.zookeeper is
	// then refused (metrics.go). firstboot sets it on an image (the bake's
	// validate step, every boot), never on an operator's machine.
	NoPrometheusProvider string
}

// Load reads, decodes and validates the file at path. On success it returns
// the config and any warnings; otherwise a *Problems listing everything wrong.
func Load(path string) (Config, []FieldError, error) { return LoadWith(path, Options{}) }

// LoadWith is Load with options.
func LoadWith(path string, opt Options) (Config, []FieldError, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return Config{}, nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return ParseWith(path, data, opt)
}

// Parse is Load on bytes; name is used in messages.
func Parse(name string, data []byte) (Config, []FieldError, error) {
	return ParseWith(name, data, Options{})
}

// ParseWith is Parse with options.
func ParseWith(name string, data []byte, opt Options) (Config, []FieldError, error) {
	p := &Problems{File: name}
	fail := func(line int, msg string) (Config, []FieldError, error) {
		p.Errors = append(p.Errors, FieldError{Line: line, Msg: msg})
		return Config{}, nil, p
	}
	if len(data) > MaxSize {
		return fail(0, fmt.Sprintf("file is larger than %d bytes", MaxSize))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fail(0, "file is empty")
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return fail(0, "file is empty")
	} else if err != nil {
		return fail(0, "malformed YAML: "+strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fail(extra.Line, "more than one YAML document")
	}
	cfg := Default()
	d := decoder{lines: map[string]int{}}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fail(root.Line, "top level must be a mapping of settings")
	}
	d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
	p.Errors = append(p.Errors, d.errs...)
	if len(p.Errors) == 0 {
		// Validation reads decoded values; on decode errors they may be
		// half-filled, so validation would only add noise.
		v := validator{lines: d.lines}
		v.validate(&cfg)
		if opt.Hardened {
			v.hardened(&cfg.ZooKeeper)
		}
		if opt.NoPrometheusProvider != "" {
			v.noPrometheusProvider(&cfg, opt.NoPrometheusProvider) // metrics.go
		}
		p.Errors = append(p.Errors, v.errs...)
		p.Warnings = v.warns
	}
	sortByLine(p.Errors)
	if len(p.Errors) > 0 {
		return Config{}, p.Warnings, p
	}
	return cfg, p.Warnings, nil
}

func sortByLine(errs []FieldError) {
	sort.SliceStable(errs, func(i, j int) bool {
		li, lj := errs[i].Line, errs[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0 // located problems first
		}
		return li < lj
	})
}

// decoder maps a YAML tree onto the Config struct by hand rather than with
// yaml.Unmarshal so that it can collect every error (not just the first), name
// fields by their YAML path, and remember each field's line for validation.
type decoder struct {
	lines map[string]int
	errs  []FieldError
}

var (
	durationType = reflect.TypeFor[Duration]()
	addrType     = reflect.TypeFor[netip.Addr]()
)

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, FieldError{Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.lines[path] = n.Line
	switch {
	case v.Type() == durationType:
		s, ok := d.scalar(n, path, "a duration such as 90s or 5m")
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.errorf(n, path, "want a duration such as 90s or 5m, got %q", s)
			return
		}
		v.SetInt(int64(dur))
		return
	case v.Type() == addrType:
		s, ok := d.scalar(n, path, "an IPv4 address")
		if !ok {
			return
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			d.errorf(n, path, "want an IPv4 address, got %q", s)
			return
		}
		v.Set(reflect.ValueOf(a))
		return
	case v.Type() == extraType:
		d.decodeExtra(n, v, path) // zookeeper_settings.go
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int:
		s, ok := d.scalar(n, path, "an integer")
		if !ok {
			return
		}
		i, err := strconv.Atoi(s)
		if err != nil || n.Tag != "!!int" {
			d.errorf(n, path, "want an integer, got %q", s)
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		s, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		if n.Tag != "!!bool" {
			d.errorf(n, path, "want true or false, got %q", s)
			return
		}
		v.SetBool(s == "true" || s == "True" || s == "TRUE")
	default:
		panic("config: no decoder for " + v.Type().String())
	}
}

func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, path, "want %s, got %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping of settings, got %s", describe(n))
		return
	}
	fields := map[string]int{}
	var names []string
	for i := 0; i < v.NumField(); i++ {
		tag := v.Type().Field(i).Tag.Get("yaml")
		fields[tag] = i
		names = append(names, tag)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		fp := key.Value
		if path != "" {
			fp = path + "." + key.Value
		}
		if seen[key.Value] {
			d.errorf(key, fp, "set twice")
			continue
		}
		seen[key.Value] = true
		idx, ok := fields[key.Value]
		if !ok {
			msg := "unknown field"
			if s := suggest.Closest(key.Value, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(key, fp, "%s", msg)
			continue
		}
		d.lines[fp] = key.Line
		d.decode(val, v.Field(idx), fp)
		d.lines[fp] = key.Line // the key's line reads best in messages
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return strconv.Quote(n.Value)
}

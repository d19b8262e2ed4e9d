package role

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/zkaas/zkaas/internal/suggest"
)

// Role is a role bound to its variables: steps rendered and checked, ready
// to apply. Steps whose `when` is false are left out.
type Role struct {
	Name  string
	Vars  map[string]any
	Steps []*Step
}

// Step is one rendered step of a role.
type Step struct {
	Role  string
	Index int
	Kind  string
	impl  kind
}

// Label is the step's name in progress lines: "zookeeper/download".
func (s *Step) Label() string { return s.Role + "/" + s.Kind }

// Subject is what the step acts on: a path, a unit, packages.
func (s *Step) Subject() string { return s.impl.subject() }

// NewEnv returns the binding environment for a distro family.
func NewEnv(family string) *Env {
	return &Env{Family: family}
}

// Bind resolves d's variables (overrides by variable name) and renders and
// checks its steps. The error, if any, is a *Problems naming the role, the
// step and the field of every problem.
func (d *Def) Bind(overrides map[string]string, env *Env) (*Role, error) {
	p := &Problems{}
	data := d.bindVars(overrides, func(format string, args ...any) {
		p.add(fmt.Errorf("role %s: "+format, append([]any{d.Name}, args...)...))
	})
	r := &renderer{data: data, funcs: d.ext.funcs()}
	role := &Role{Name: d.Name, Vars: data}
	for _, sd := range d.Steps {
		c := &checker{def: d, env: env, r: r, prefix: fmt.Sprintf("role %s: %s", d.Name, sd.Label()), failed: map[string]bool{}}
		if !c.when(sd.When) {
			p.Errs = append(p.Errs, c.errs...)
			continue
		}
		k := kinds[sd.Kind]()
		if err := sd.node.Decode(k); err != nil {
			// Parse decoded the same node; this cannot fail.
			panic(fmt.Sprintf("role %s: %s: %v", d.Name, sd.Label(), err))
		}
		r.walk(reflect.ValueOf(k).Elem(), "", c)
		k.bind(c)
		p.Errs = append(p.Errs, c.errs...)
		if _, ok := k.(*assertStep); ok {
			continue // checked now; nothing to do on the host
		}
		role.Steps = append(role.Steps, &Step{Role: d.Name, Index: sd.Index, Kind: sd.Kind, impl: k})
	}
	if len(p.Errs) > 0 {
		return nil, p
	}
	return role, nil
}

// checker collects a step's problems, one per field.
type checker struct {
	def    *Def
	env    *Env
	r      *renderer
	prefix string
	errs   []error
	failed map[string]bool
}

func (c *checker) errf(field, format string, args ...any) {
	if c.failed[field] {
		return // one problem per field: the first is the cause
	}
	c.failed[field] = true
	c.errs = append(c.errs, fmt.Errorf("%s: %s: %s", c.prefix, field, fmt.Sprintf(format, args...)))
}

// when renders a step's condition; a step without one always runs.
func (c *checker) when(w string) bool {
	if w == "" {
		return true
	}
	s, err := c.r.str("when", w)
	if errors.Is(err, errInvalid) {
		return false
	}
	if err != nil {
		c.errf("when", "%s", err)
		return false
	}
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		c.errf("when", "renders to %q, want true or false", s)
		return false
	}
	return b
}

// absPath checks a path on the build host.
func (c *checker) absPath(field, p string, required bool) {
	switch {
	case p == "" && required:
		c.errf(field, "required")
	case p == "":
	case !path.IsAbs(p) || path.Clean(p) != p || strings.ContainsAny(p, "\n\x00"):
		c.errf(field, "%q must be a clean absolute path", p)
	}
}

var accountRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// account checks a user or group name (names, not ids: the file checks
// compare `stat -c %U`, which prints names).
func (c *checker) account(field, s, def string) string {
	if s == "" {
		return def
	}
	if !accountRE.MatchString(s) {
		c.errf(field, "%q is not a user or group name", s)
	}
	return s
}

var modeRE = regexp.MustCompile(`^0?[0-7]{3,4}$`)

// mode parses an octal mode written as a string: "0644".
func (c *checker) mode(field, s string, def uint32) uint32 {
	if s == "" {
		return def
	}
	if !modeRE.MatchString(s) {
		c.errf(field, "%q is not an octal mode like 0644", s)
		return def
	}
	m, _ := strconv.ParseUint(s, 8, 32)
	return uint32(m)
}

// payload resolves a step's bytes: exactly one of src (a file of the role,
// or an absolute path on the machine running Packer) or inline content.
// With render, src is a template rendered with the role's variables.
func (c *checker) payload(src, content string, render bool) payload {
	if c.failed["src"] || c.failed["content"] {
		return payload{} // did not render: already reported
	}
	switch {
	case src != "" && content != "":
		c.errf("src", "give src or content, not both")
		return payload{}
	case src == "" && render:
		c.errf("src", "required")
		return payload{}
	case src == "" && content == "":
		c.errf("src", "give src (a file) or content (inline)")
		return payload{}
	case src == "":
		return payload{data: []byte(content)}
	}
	var (
		data []byte
		err  error
	)
	if filepath.IsAbs(src) {
		var abs string
		if abs, err = ReadableFile(src); err == nil && !render {
			// Read at apply time: it may be a large binary.
			return payload{local: abs}
		} else if err == nil {
			data, err = readFileLimit(abs)
		}
	} else if !fs.ValidPath(src) {
		err = fmt.Errorf("must name a file under the role's %s/ directory or be absolute", FilesDir)
	} else if data, err = fs.ReadFile(c.def.files, src); err != nil {
		err = fmt.Errorf("cannot read %s/%s of role %s (%s): %w", FilesDir, src, c.def.Name, c.def.Origin, unwrapPathError(err))
	}
	if err != nil {
		c.errf("src", "%q: %v", src, err)
		return payload{}
	}
	if render {
		s, err := c.r.str("src "+src, string(data))
		if err != nil {
			c.errf("src", "%s: %s", src, err)
		}
		data = []byte(s)
	}
	return payload{data: data}
}

// maxTemplate bounds a template file read into memory.
const maxTemplate = 1 << 20

func readFileLimit(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTemplate+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxTemplate {
		return nil, fmt.Errorf("larger than %d bytes: too large for a template", maxTemplate)
	}
	return b, nil
}

// invalid is the value of a variable that was refused. A field using it is
// not checked again: the variable's own error says what is wrong, and a
// second message about the same mistake would only be noise.
const invalid = "\x00invalid variable\x00"

var errInvalid = errors.New("uses an invalid variable")

// renderer renders Go templates with a role's variables.
type renderer struct {
	data  map[string]any
	funcs template.FuncMap
}

var (
	missingKeyRE = regexp.MustCompile(`map has no entry for key "([^"]*)"`)
	tmplPrefixRE = regexp.MustCompile(`^template: [^:]*:(\d+):(\d+:)? (executing "[^"]*" at )?`)
)

// str renders s as a template; strings without {{ are returned as is.
func (r *renderer) str(name, s string) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(r.funcs).Parse(s)
	if err == nil {
		var b bytes.Buffer
		if err = t.Execute(&b, r.data); err == nil {
			if strings.Contains(b.String(), invalid) {
				return "", errInvalid
			}
			return b.String(), nil
		}
	}
	for name, v := range r.data {
		if v == invalid && strings.Contains(s, "."+name) {
			return "", errInvalid
		}
	}
	msg := err.Error()
	if m := missingKeyRE.FindStringSubmatch(msg); m != nil {
		names := slices.Sorted(maps.Keys(r.data))
		msg = fmt.Sprintf("unknown variable %q", m[1])
		if s := suggest.Closest(m[1], names); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return "", fmt.Errorf("template: %s", msg)
	}
	return "", fmt.Errorf("template line %s", tmplPrefixRE.ReplaceAllString(msg, "$1: "))
}

// walk renders every string reachable from v in place — struct fields by
// their YAML names, list elements and map values — reporting errors on the
// field's path.
func (r *renderer) walk(v reflect.Value, field string, c *checker) {
	switch v.Kind() {
	case reflect.String:
		s, err := r.str(field, v.String())
		if errors.Is(err, errInvalid) {
			c.failed[field] = true
		} else if err != nil {
			c.errf(field, "%s", err)
		}
		if err != nil {
			v.SetString("")
			return
		}
		v.SetString(s)
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			r.walk(v.Field(i), join(field, name), c)
		}
	case reflect.Slice:
		for i := range v.Len() {
			r.walk(v.Index(i), fmt.Sprintf("%s[%d]", field, i), c)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			r.walk(e, join(field, fmt.Sprint(k.Interface())), c)
			v.SetMapIndex(k, e)
		}
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

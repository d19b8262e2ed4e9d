// Package role loads roles — roles/<name>/role.yaml plus files: data, not
// code — binds their variables, renders their steps and applies them to a
// build host.
//
// Everything that can be checked before a build starts is checked in Load
// and Bind, and every problem is returned at once, each naming the role, the
// step and the field, so an operator fixes a template in one edit.
//
// The engine is generic: it knows packages, files, units and downloads,
// not what a program installs with them. A program embedding it adds its
// own template functions and variable types with Extensions.
package role

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/zkaas/zkaas/internal/suggest"

	"gopkg.in/yaml.v3"
)

// FileName is the role definition inside a role's directory; FilesDir holds
// the files its steps refer to by relative path.
const (
	FileName = "role.yaml"
	FilesDir = "files"
)

// Source is a directory of roles: fs holds <name>/role.yaml.
type Source struct {
	Origin string // for messages: a directory path or "built-in"
	FS     fs.FS
}

// Def is a role as written, before its variables are bound.
type Def struct {
	Name        string
	Description string
	Origin      string
	Vars        []VarDef // in file order
	Steps       []StepDef
	files       fs.FS       // the role's files/ directory
	ext         *Extensions // the embedding program's functions and types
}

// StepDef is one step as written: its kind, its condition and the YAML
// node of its kind-specific fields, decoded again at Bind.
type StepDef struct {
	Index int
	Kind  string
	When  string
	node  *yaml.Node
}

// Label names the step in messages: "steps[2] (download)".
func (s StepDef) Label() string { return fmt.Sprintf("steps[%d] (%s)", s.Index, s.Kind) }

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// Find loads the role called name from the first source that has it, so
// operators' directories can override a built-in role. ext (may be nil)
// adds the embedding program's template functions and variable types.
func Find(name string, sources []Source, ext *Extensions) (*Def, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("role %q: a role name is lower-case letters, digits, - and _", name)
	}
	var searched []string
	for _, src := range sources {
		data, err := fs.ReadFile(src.FS, path.Join(name, FileName))
		if errors.Is(err, fs.ErrNotExist) {
			searched = append(searched, src.Origin)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("role %s (%s): %w", name, src.Origin, err)
		}
		files, err := fs.Sub(src.FS, path.Join(name, FilesDir))
		if err != nil {
			return nil, fmt.Errorf("role %s (%s): %w", name, src.Origin, err)
		}
		return Parse(name, src.Origin, data, files, ext)
	}
	return nil, fmt.Errorf("role %s: unknown role: no %s/%s in %s", name, name, FileName, strings.Join(searched, ", "))
}

// Parse decodes a role definition; ext (may be nil) adds the embedding
// program's template functions and variable types. The error, if any, is a
// *Problems listing everything wrong with the file.
func Parse(name, origin string, data []byte, files fs.FS, ext *Extensions) (*Def, error) {
	if err := ext.check(); err != nil {
		return nil, err
	}
	d := &Def{Name: name, Origin: origin, files: files, ext: ext}
	p := &Problems{}
	at := func(n *yaml.Node, format string, args ...any) {
		p.add(fmt.Errorf("role %s (%s/%s/%s line %d): %s", name, origin, name, FileName, n.Line, fmt.Sprintf(format, args...)))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.add(fmt.Errorf("role %s (%s/%s/%s): %w", name, origin, name, FileName, err))
		return nil, p
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		p.add(fmt.Errorf("role %s (%s/%s/%s): want a mapping with name, variables and steps", name, origin, name, FileName))
		return nil, p
	}
	top := fields(doc.Content[0], []string{"name", "description", "variables", "steps"}, func(n *yaml.Node, msg string) { at(n, "%s", msg) })
	if n := top["name"]; n == nil || n.Value != name {
		line := doc.Content[0]
		if n != nil {
			line = n
		}
		at(line, "name: must be %q, the name of the role's directory", name)
	}
	if n := top["description"]; n != nil {
		d.Description = n.Value
	}
	if n := top["variables"]; n != nil {
		d.Vars = parseVars(n, ext, func(n *yaml.Node, format string, args ...any) { at(n, "variables: "+format, args...) })
	}
	n := top["steps"]
	if n == nil || n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		at(doc.Content[0], "steps: a role needs a list of steps")
		return nil, p
	}
	for i, sn := range n.Content {
		s, err := parseStep(i, sn)
		if err != nil {
			for _, e := range err {
				at(e.node, "%s: %s", StepDef{Index: i, Kind: s.Kind}.Label(), e.msg)
			}
			continue
		}
		d.Steps = append(d.Steps, s)
	}
	if len(p.Errs) > 0 {
		return nil, p
	}
	return d, nil
}

type nodeErr struct {
	node *yaml.Node
	msg  string
}

// parseStep checks a step's kind and field names and decodes it once, so
// type errors (a list where a string belongs) surface at load time.
func parseStep(i int, n *yaml.Node) (StepDef, []nodeErr) {
	s := StepDef{Index: i, node: n}
	var errs []nodeErr
	if n.Kind != yaml.MappingNode {
		return s, []nodeErr{{n, "a step is a mapping with a kind"}}
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		switch n.Content[j].Value {
		case "kind":
			s.Kind = n.Content[j+1].Value
		case "when":
			s.When = n.Content[j+1].Value
		}
	}
	mk, ok := kinds[s.Kind]
	if !ok {
		return s, []nodeErr{{n, fmt.Sprintf("kind: unknown step kind %q (known: %s)", s.Kind, strings.Join(KindNames(), ", "))}}
	}
	k := mk()
	allowed := append([]string{"kind", "when"}, yamlFields(k)...)
	fields(n, allowed, func(n *yaml.Node, msg string) { errs = append(errs, nodeErr{n, msg}) })
	if err := n.Decode(k); err != nil {
		errs = append(errs, nodeErr{n, decodeMsg(err)})
	}
	return s, errs
}

// decodeMsg strips yaml's prefix and Go type names from a decode error.
func decodeMsg(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// fields indexes a mapping node by key and reports keys not in allowed,
// suggesting the closest allowed one.
func fields(n *yaml.Node, allowed []string, report func(*yaml.Node, string)) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		report(n, "want a mapping")
		return out
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k := n.Content[j]
		if !slices.Contains(allowed, k.Value) {
			msg := fmt.Sprintf("unknown field %q", k.Value)
			if s := suggest.Closest(k.Value, allowed); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			report(k, msg)
			continue
		}
		if _, dup := out[k.Value]; dup {
			report(k, fmt.Sprintf("field %q given twice", k.Value))
		}
		out[k.Value] = n.Content[j+1]
	}
	return out
}

// Problems is every problem found, in order.
type Problems struct{ Errs []error }

func (p *Problems) add(err error) { p.Errs = append(p.Errs, err) }

func (p *Problems) Error() string {
	msgs := make([]string, len(p.Errs))
	for i, e := range p.Errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.Is/As see each problem.
func (p *Problems) Unwrap() []error { return p.Errs }

// Errors flattens err into its problems (itself when it is not *Problems).
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	var p *Problems
	if errors.As(err, &p) {
		return p.Errs
	}
	return []error{err}
}

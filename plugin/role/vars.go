package role

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/zkaas/zkaas/internal/suggest"

	"gopkg.in/yaml.v3"
)

// builtinTypes are the variable types every role may use; Extensions add
// more. A value is checked against its type when the role is bound, so a
// bad checksum or an unreadable file stops the build before it starts.
var builtinTypes = []string{
	"string", // anything
	"int",    // a decimal integer; a number in templates
	"bool",   // true/false; a boolean in templates
	"choice", // one of choices
	"path",   // a readable regular file on the machine running Packer; absolute in templates
	"url",    // an http or https URL
	"sha512", // 128 hex digits
}

// VarDef is a declared role variable.
type VarDef struct {
	Name        string
	Type        string
	Description string
	Default     string
	HasDefault  bool
	Required    bool
	Choices     []string
}

func parseVars(n *yaml.Node, ext *Extensions, at func(*yaml.Node, string, ...any)) []VarDef {
	if n.Kind != yaml.MappingNode {
		at(n, "want a mapping of variable names to their definitions")
		return nil
	}
	var vars []VarDef
	for j := 0; j+1 < len(n.Content); j += 2 {
		key, val := n.Content[j], n.Content[j+1]
		v := VarDef{Name: key.Value, Type: "string"}
		if !varNameRE.MatchString(v.Name) {
			at(key, "%q: a variable name is letters, digits and _, starting with a letter", v.Name)
			continue
		}
		f := fields(val, []string{"type", "description", "default", "required", "choices"}, func(n *yaml.Node, msg string) { at(n, "%s: %s", v.Name, msg) })
		if t := f["type"]; t != nil {
			v.Type = t.Value
			if known := ext.typeNames(); !slices.Contains(known, v.Type) {
				at(t, "%s: type: unknown type %q (known: %s)", v.Name, v.Type, strings.Join(known, ", "))
			}
		}
		if d := f["description"]; d != nil {
			v.Description = d.Value
		}
		if d := f["default"]; d != nil {
			if d.Kind != yaml.ScalarNode {
				at(d, "%s: default: want a single value", v.Name)
			}
			v.Default, v.HasDefault = d.Value, true
		}
		if r := f["required"]; r != nil {
			if err := r.Decode(&v.Required); err != nil {
				at(r, "%s: required: want true or false", v.Name)
			}
		}
		if c := f["choices"]; c != nil {
			if err := c.Decode(&v.Choices); err != nil || len(v.Choices) == 0 {
				at(c, "%s: choices: want a list of values", v.Name)
			}
		}
		switch {
		case v.Required && v.HasDefault:
			at(key, "%s: a required variable has no default", v.Name)
		case v.Type == "choice" && len(v.Choices) == 0:
			at(key, "%s: a choice needs choices", v.Name)
		case v.Type != "choice" && len(v.Choices) > 0:
			at(key, "%s: choices are for type choice", v.Name)
		}
		vars = append(vars, v)
	}
	return vars
}

var varNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// Env is what binding depends on beyond the role and its variables.
type Env struct {
	// Family is the distro family's package manager: apt or dnf.
	Family string
}

// Families are the supported distro families.
var Families = []string{"apt", "dnf"}

// bindVars resolves each declared variable from overrides or its default
// and checks it against its type; the result is the template data.
func (d *Def) bindVars(overrides map[string]string, errf func(string, ...any)) map[string]any {
	data := map[string]any{}
	names := make([]string, len(d.Vars))
	for i, v := range d.Vars {
		names[i] = v.Name
	}
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		if !slices.Contains(names, name) {
			msg := fmt.Sprintf("variable %q: role %s has no such variable", name, d.Name)
			if s := suggest.Closest(name, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else if len(names) > 0 {
				msg += fmt.Sprintf(" (it has %s)", strings.Join(names, ", "))
			}
			errf("%s", msg)
		}
	}
	for _, v := range d.Vars {
		raw, set := overrides[v.Name]
		from := "value"
		if !set {
			raw, from = v.Default, "default"
		}
		if !set && !v.HasDefault && v.Required {
			errf("variable %s: required, set variables[%q]", v.Name, d.Name+"."+v.Name)
			data[v.Name] = invalid
			continue
		}
		val, err := v.convert(raw, d.ext)
		if err != nil {
			errf("variable %s: %s %q: %v", v.Name, from, raw, err)
			val = invalid
		}
		data[v.Name] = val
	}
	return data
}

// convert checks raw against the variable's type and returns the value
// templates see. Empty optional values are allowed for every type but
// choice; int and bool then read as 0 and false.
func (v VarDef) convert(raw string, ext *Extensions) (any, error) {
	if raw == "" && v.Type != "choice" {
		switch v.Type {
		case "int":
			return 0, nil
		case "bool":
			return false, nil
		}
		return "", nil
	}
	switch v.Type {
	case "int":
		n, err := strconv.Atoi(raw)
		if err != nil {
			return 0, fmt.Errorf("not an integer")
		}
		return n, nil
	case "bool":
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return false, fmt.Errorf("not true or false")
		}
		return b, nil
	case "choice":
		if !slices.Contains(v.Choices, raw) {
			return raw, fmt.Errorf("not one of %s", strings.Join(v.Choices, ", "))
		}
	case "path":
		return ReadableFile(raw)
	case "url":
		return raw, checkURL(raw)
	case "sha512":
		return strings.ToLower(raw), checkSHA512(raw)
	}
	if t, ok := ext.varType(v.Type); ok {
		return t.Check(raw)
	}
	return raw, nil
}

// ReadableFile checks that p names a regular file this process can read
// and returns its absolute path: the check of the path type, for
// extension types that name files.
func ReadableFile(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return abs, fmt.Errorf("cannot read: %w", unwrapPathError(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return abs, err
	}
	if !fi.Mode().IsRegular() {
		return abs, fmt.Errorf("not a regular file")
	}
	return abs, nil
}

// unwrapPathError drops the path the message already names.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("not an http or https URL")
	}
	if u.Host == "" {
		return fmt.Errorf("URL has no host")
	}
	return nil
}

var sha512RE = regexp.MustCompile(`^[0-9a-fA-F]{128}$`)

func checkSHA512(s string) error {
	if !sha512RE.MatchString(s) {
		return fmt.Errorf("not a sha512 (128 hex digits)")
	}
	return nil
}

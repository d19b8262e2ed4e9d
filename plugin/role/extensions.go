package role

import (
	"fmt"
	"maps"
	"slices"
	"text/template"
)

// Extensions is what a program embedding the engine adds to the role
// language: template functions beyond Go's built-ins, and variable types
// beyond the built-in ones. The engine itself knows nothing of what the
// roles install; the zkaas provisioner gives it zkaas's units and ensemble
// config this way.
type Extensions struct {
	// Funcs are callable from every template of every step.
	//
	// A function may be called with the value of a variable that was
	// refused (its own problem is already reported). When the function
	// returns an error for it, the field is left unchecked and nothing more
	// is reported: a second message about the same mistake is only noise.
	Funcs template.FuncMap
	// VarTypes are variable types by name, usable as `type:` in a role's
	// variables. A name may not shadow a built-in type.
	VarTypes map[string]VarType
}

// VarType checks values of a variable type when a role is bound, so a bad
// value stops the build before it starts.
type VarType struct {
	// Check gets a non-empty value (an empty optional value reads as "")
	// and returns what templates see, or an error saying what is wrong
	// with it; the engine prefixes the variable's name and value.
	Check func(raw string) (any, error)
}

// typeNames lists the variable types a role may use: the built-in ones in
// their documented order, then the extensions' sorted.
func (e *Extensions) typeNames() []string {
	names := slices.Clone(builtinTypes)
	if e != nil {
		names = append(names, slices.Sorted(maps.Keys(e.VarTypes))...)
	}
	return names
}

// varType returns the extension type called name.
func (e *Extensions) varType(name string) (VarType, bool) {
	if e == nil {
		return VarType{}, false
	}
	t, ok := e.VarTypes[name]
	return t, ok
}

func (e *Extensions) funcs() template.FuncMap {
	if e == nil {
		return nil
	}
	return e.Funcs
}

// check refuses extension types that shadow built-in ones or cannot check
// anything: mistakes of the embedding program, not of a role.
func (e *Extensions) check() error {
	if e == nil {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(e.VarTypes)) {
		switch {
		case slices.Contains(builtinTypes, name):
			return fmt.Errorf("role extensions: variable type %q shadows a built-in type", name)
		case e.VarTypes[name].Check == nil:
			return fmt.Errorf("role extensions: variable type %q has no Check", name)
		}
	}
	return nil
}

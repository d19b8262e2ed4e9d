package role

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"text/template"
)

// testExt stands for what an embedding program adds: a variable type
// ("even") and a function that refuses what is not a number, as the zkaas
// provisioner's ensemble function refuses what is not an ensemble config.
var testExt = &Extensions{
	Funcs: template.FuncMap{
		"half": func(v any) (int, error) {
			n, ok := v.(int)
			if !ok {
				return 0, errors.New("not a number")
			}
			return n / 2, nil
		},
	},
	VarTypes: map[string]VarType{
		"even": {Check: func(raw string) (any, error) {
			n, err := strconv.Atoi(raw)
			if err != nil || n%2 != 0 {
				return raw, errors.New("not even")
			}
			return n, nil
		}},
	},
}

func TestExtensions(t *testing.T) {
	const vars = "name: r\nvariables:\n  n: {type: even, default: '8'}\nsteps:\n"
	tests := []struct {
		name  string
		ext   *Extensions
		yaml  string
		set   map[string]string
		want  string   // the rendered content of steps[0]
		errs  []string // or the problems, by prefix
		parse bool     // the problems are Parse's
	}{
		{
			name: "a function and a type",
			ext:  testExt,
			yaml: vars + "  - {kind: file, dest: /x, content: '{{ half .n }}'}\n",
			want: "4",
		},
		{
			// The variable's own problem says it all: the function's
			// error on the refused value is not reported again.
			name: "a refused variable reaching a function",
			ext:  testExt,
			yaml: vars + "  - {kind: file, dest: /x, content: '{{ half .n }}'}\n  - {kind: file, dest: /y, content: '{{ half \"x\" }}', when: '{{ gt (half .n) 1 }}'}\n",
			set:  map[string]string{"n": "7"},
			errs: []string{`role r: variable n: value "7": not even`},
		},
		{
			name: "a function failing on a good value",
			ext:  testExt,
			yaml: vars + "  - {kind: file, dest: /x, content: '{{ half \"x\" }}'}\n",
			errs: []string{`role r: steps[0] (file): content: template line 1: <half "x">: error calling half: not a number`},
		},
		{
			name:  "without extensions the type is unknown",
			yaml:  vars + "  - {kind: group, name: g}\n",
			errs:  []string{`role r (test/r/role.yaml line 3): variables: n: type: unknown type "even" (known: string, int, bool, choice, path, url, sha512)`},
			parse: true,
		},
		{
			name:  "without extensions the function is unknown",
			yaml:  "name: r\nsteps:\n  - {kind: file, dest: /x, content: '{{ half 2 }}'}\n",
			errs:  []string{`role r: steps[0] (file): content: template line 1: function "half" not defined`},
			parse: false,
		},
		{
			name:  "a type shadowing a built-in",
			ext:   &Extensions{VarTypes: map[string]VarType{"path": {Check: func(string) (any, error) { return nil, nil }}}},
			yaml:  vars,
			errs:  []string{`role extensions: variable type "path" shadows a built-in type`},
			parse: true,
		},
		{
			name:  "a type without a check",
			ext:   &Extensions{VarTypes: map[string]VarType{"even": {}}},
			yaml:  vars,
			errs:  []string{`role extensions: variable type "even" has no Check`},
			parse: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse("r", "test", []byte(tt.yaml), fstest.MapFS{}, tt.ext)
			var r *Role
			if err == nil {
				if tt.parse {
					t.Fatalf("Parse succeeded, want %v", tt.errs)
				}
				r, err = d.Bind(tt.set, NewEnv("apt"))
			}
			errs := Errors(err)
			if len(errs) != len(tt.errs) {
				t.Fatalf("%d problems, want %d:\n%v", len(errs), len(tt.errs), err)
			}
			for i, w := range tt.errs {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("problem %d:\n got %s\nwant %s…", i, errs[i], w)
				}
			}
			if tt.errs != nil {
				return
			}
			if got := string(r.Steps[0].impl.(*fileStep).payload.data); got != tt.want {
				t.Errorf("content = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestKnowsNothingOfZkaas holds the line the Extensions draw: the engine
// imports no zkaas product package (the ensemble schema, firstboot's
// units and network files); the provisioner hands those in.
func TestKnowsNothingOfZkaas(t *testing.T) {
	const module = "github.com/zkaas/zkaas/"
	out, err := exec.Command("go", "list", "-deps", module+"plugin/role").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := []string{"plugin/role", "plugin/remote", "internal/"}
	for _, dep := range strings.Fields(string(out)) {
		rel, ours := strings.CutPrefix(dep, module)
		if !ours {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || rel == a || strings.HasPrefix(rel, strings.TrimSuffix(a, "/")+"/")
		}
		if !ok {
			t.Errorf("plugin/role depends on %s: give it to the engine through Extensions instead", dep)
		}
	}
}

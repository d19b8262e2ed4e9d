package role

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every problem, in order
	}{
		{
			name: "unknown kind",
			yaml: "name: r\nsteps:\n  - kind: copy\n    dest: /x\n",
			want: []string{`role r (test/r/role.yaml line 3): steps[0] (copy): kind: unknown step kind "copy" (known: assert, command, directory, download, file, group, limits, packages, sysctl, template, unit, user)`},
		},
		{
			name: "unknown field with suggestion",
			yaml: "name: r\nsteps:\n  - kind: download\n    url: http://x/y\n    sha256: abc\n    extract: /opt/y\n",
			want: []string{`line 5): steps[0] (download): unknown field "sha256" (did you mean "sha512"?)`},
		},
		{
			name: "wrong type",
			yaml: "name: r\nsteps:\n  - kind: packages\n    apt: openjdk\n",
			want: []string{"line 3): steps[0] (packages): line 4: cannot unmarshal !!str `openjdk` into []string"},
		},
		{
			name: "name differs from directory",
			yaml: "name: other\nsteps:\n  - kind: group\n    name: g\n",
			want: []string{`line 1): name: must be "r", the name of the role's directory`},
		},
		{
			name: "no steps",
			yaml: "name: r\ndescription: nothing\n",
			want: []string{"line 1): steps: a role needs a list of steps"},
		},
		{
			name: "step not a mapping",
			yaml: "name: r\nsteps:\n  - packages\n",
			want: []string{"line 3): steps[0] (): a step is a mapping with a kind"},
		},
		{
			name: "variables",
			yaml: `name: r
variables:
  a: {type: number}
  b: {required: true, default: "1"}
  c: {type: choice}
  d: {choices: [x]}
  e: {defualt: x}
  9z: {}
steps:
  - kind: group
    name: g
`,
			want: []string{
				`line 3): variables: a: type: unknown type "number" (known: string, int, bool, choice, path, url, sha512, even)`,
				"line 4): variables: b: a required variable has no default",
				"line 5): variables: c: a choice needs choices",
				"line 6): variables: d: choices are for type choice",
				`line 7): variables: e: unknown field "defualt" (did you mean "default"?)`,
				`line 8): variables: "9z": a variable name is letters, digits and _, starting with a letter`,
			},
		},
		{
			name: "every problem at once",
			yaml: "name: r\nstep: []\nsteps:\n  - kind: file\n    dst: /x\n  - kind: nope\n",
			want: []string{
				`line 2): unknown field "step" (did you mean "steps"?)`,
				`line 5): steps[0] (file): unknown field "dst" (did you mean "dest"?)`,
				`line 6): steps[1] (nope): kind: unknown step kind "nope"`,
			},
		},
		{
			name: "malformed yaml",
			yaml: "name: r\nsteps: [\n",
			want: []string{"role r (test/r/role.yaml): yaml: line 2: did not find expected node content"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("r", "test", []byte(tt.yaml), fstest.MapFS{}, testExt)
			errs := Errors(err)
			if len(errs) != len(tt.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("problem %d:\n got %s\nwant …%s…", i, errs[i], w)
				}
			}
		})
	}
}

func TestFind(t *testing.T) {
	ops := fstest.MapFS{
		"java/role.yaml":  {Data: []byte("name: java\ndescription: ours\nsteps:\n  - kind: group\n    name: j\n")},
		"extra/role.yaml": {Data: []byte("name: extra\nsteps:\n  - kind: group\n    name: e\n")},
	}
	builtin := fstest.MapFS{
		"java/role.yaml":      {Data: []byte("name: java\ndescription: built-in\nsteps:\n  - kind: group\n    name: j\n")},
		"zookeeper/role.yaml": {Data: []byte("name: zookeeper\nsteps:\n  - kind: group\n    name: z\n")},
	}
	sources := []Source{{Origin: "/ops/roles", FS: ops}, {Origin: "built-in", FS: builtin}}
	for _, tt := range []struct{ name, origin, desc string }{
		{"java", "/ops/roles", "ours"}, // an operator's directory overrides a built-in role
		{"extra", "/ops/roles", ""},
		{"zookeeper", "built-in", ""},
	} {
		d, err := Find(tt.name, sources, nil)
		if err != nil {
			t.Fatalf("Find(%s): %v", tt.name, err)
		}
		if d.Origin != tt.origin || d.Description != tt.desc {
			t.Errorf("Find(%s) = origin %s description %q, want %s %q", tt.name, d.Origin, d.Description, tt.origin, tt.desc)
		}
	}
	for name, want := range map[string]string{
		"jav":   "role jav: unknown role: no jav/role.yaml in /ops/roles, built-in",
		"../x":  `role "../x": a role name is lower-case letters, digits, - and _`,
		"Java1": `role "Java1": a role name is lower-case letters`,
	} {
		if _, err := Find(name, sources, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Find(%q) = %v, want %q", name, err, want)
		}
	}
}

package main

import "testing"

func TestStripHeader(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"front matter and title", "---\npage_title: x\n---\n\n# zkaas\n\nType: `zkaas`\n", "Type: `zkaas`\n"},
		{"title only", "# zkaas\nbody\n", "body\n"},
		{"neither", "body\n## section\n", "body\n## section\n"},
		{"a second-level title stays", "---\na: b\n---\n## Usage\n", "## Usage\n"},
	}
	for _, tt := range tests {
		if got := string(stripHeader([]byte(tt.in))); got != tt.want {
			t.Errorf("%s: stripHeader = %q, want %q", tt.name, got, tt.want)
		}
	}
}

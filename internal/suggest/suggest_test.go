package suggest

import "testing"

func TestClosest(t *testing.T) {
	names := []string{"client_port", "quorum_port", "heap", "ensemble"}
	for got, want := range map[string]string{
		"clientport": "client_port",
		"ensembel":   "ensemble",
		"haep":       "heap",
		"hp":         "", // too short to guess
		"xyzzy":      "",
	} {
		if s := Closest(got, names); s != want {
			t.Errorf("Closest(%q) = %q, want %q", got, s, want)
		}
	}
}

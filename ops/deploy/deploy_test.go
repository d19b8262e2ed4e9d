package deploy

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zkaas/zkaas/ensemble"
)

func load(t *testing.T, edit func(string) string) (ensemble.Config, []byte) {
	t.Helper()
	raw, err := os.ReadFile("../plan/testdata/ensemble.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		raw = []byte(edit(string(raw)))
	}
	cfg, _, err := ensemble.Parse("e", raw)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, raw
}

// The template's user data is what firstboot reads: the config, and in a
// per-node layout the node pinned.
func TestUserDataRoundTrip(t *testing.T) {
	cfg, raw := load(t, func(s string) string { return s + "  groups: per_node\n" })
	d, err := For(cfg, raw)
	if err != nil {
		t.Fatal(err)
	}
	var templates, groups int
	for _, r := range d.Resources {
		switch s := r.Spec.(type) {
		case TemplateSpec:
			templates++
			doc, ok, err := ensemble.FromUserData(s.UserData)
			if err != nil || !ok {
				t.Fatalf("%s: FromUserData: %v %v", r.Name, ok, err)
			}
			got, _, err := ensemble.Parse(ensemble.UserDataName, doc)
			if err != nil {
				t.Fatalf("%s: %v", r.Name, err)
			}
			if got.Node != s.Node || s.Node == 0 || got.Ensemble != "prod-zk" || got.Deploy.ImageID != cfg.Deploy.ImageID {
				t.Errorf("%s: node %d, want %d", r.Name, got.Node, s.Node)
			}
			if s.HopLimit != 1 {
				t.Errorf("hop limit %d", s.HopLimit)
			}
		case GroupSpec:
			groups++
			if s.Size != 1 || s.Node == 0 || s.Template != r.Name {
				t.Errorf("group %+v", s)
			}
		}
	}
	if templates != 3 || groups != 3 {
		t.Errorf("%d templates, %d groups, want 3 each", templates, groups)
	}
}

func TestGroupsPerAZ(t *testing.T) {
	cfg, raw := load(t, func(s string) string {
		return strings.Replace(s, "  - {id: 3, az: us-east-1c, ip: 10.0.3.10}\n", "  - {id: 3, az: us-east-1a, ip: 10.0.1.11}\n", 1)
	})
	d, err := For(cfg, raw)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{}
	for _, r := range d.Resources {
		if g, ok := r.Spec.(GroupSpec); ok {
			sizes[g.AZ] = g.Size
			// Grace covers the claim deadline, the ready timeout and a margin.
			if g.Grace < cfg.Claim.Deadline.D()+cfg.Health.ReadyTimeout.D()+time.Minute {
				t.Errorf("grace %s", g.Grace)
			}
			if g.Hook.Name != "zkaas-launch" || len(g.Suspended) != 1 || g.Suspended[0] != "AZRebalance" {
				t.Errorf("group %+v", g)
			}
		}
	}
	if len(sizes) != 2 || sizes["us-east-1a"] != 2 || sizes["us-east-1b"] != 1 {
		t.Errorf("sizes %v", sizes)
	}
}

func TestExistingProfile(t *testing.T) {
	cfg, raw := load(t, func(s string) string { return s + "  instance_profile: ops-zk\n" })
	d, err := For(cfg, raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Resources {
		if r.Kind == KindRole || r.Kind == KindProfile {
			t.Errorf("creates %s with an existing profile named", r)
		}
		if s, ok := r.Spec.(TemplateSpec); ok && s.Profile != "ops-zk" {
			t.Errorf("template profile %q", s.Profile)
		}
	}
}

func TestRefused(t *testing.T) {
	cfg, raw := load(t, nil)
	cfg.Deploy.ImageID = ""
	if _, err := For(cfg, raw); err == nil || !strings.Contains(err.Error(), "no deploy section") {
		t.Errorf("no deploy: %v", err)
	}
	cfg, raw = load(t, nil)
	if _, err := UserData(append(raw, []byte("# "+strings.Repeat("x", 16<<10)+"\n")...), 0); err == nil {
		t.Error("oversized user data accepted")
	}
}

// The pin goes after a leading document marker, or the user data would
// hold two YAML documents.
func TestUserDataPinAfterDocumentMarker(t *testing.T) {
	cfg, raw := load(t, func(s string) string { return "---\n" + s + "  groups: per_node\n" })
	for _, r := range mustFor(t, cfg, raw).Resources {
		s, ok := r.Spec.(TemplateSpec)
		if !ok {
			continue
		}
		doc, _, err := ensemble.FromUserData(s.UserData)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := ensemble.Parse(ensemble.UserDataName, doc)
		if err != nil || got.Node != s.Node {
			t.Errorf("%s: node %d, %v", r.Name, got.Node, err)
		}
	}
}

func mustFor(t *testing.T, cfg ensemble.Config, raw []byte) Desired {
	t.Helper()
	d, err := For(cfg, raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// ingress is the rules of the security group named group (NodesGroup,
// InstanceGroup) in d.
func ingress(t *testing.T, d Desired, group string) []Rule {
	t.Helper()
	r, ok := d.Find(KindSecurityGroup, group)
	if !ok {
		t.Fatalf("no %s group", group)
	}
	return r.Spec.(SecurityGroupSpec).Ingress
}

package role

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
)

// Apply converges the host to the step.
func (s *Step) Apply(ctx context.Context, sess *Session) (changed bool, err error) {
	return s.impl.apply(ctx, sess)
}

// Managed lists the paths the step owns.
func (s *Step) Managed() []Managed { return s.impl.managed() }

// Manifest describes what the roles put into an image: every path a step
// owns with its checksum as found on the host after provisioning. It is the
// record an exported image is verified against.
type Manifest struct {
	Roles   []string        `json:"roles"`
	Steps   int             `json:"steps"`
	Changed int             `json:"changed"` // steps that changed the host in this run
	Entries []ManifestEntry `json:"entries"`
}

// ManifestEntry is one owned path.
type ManifestEntry struct {
	Path string `json:"path"`
	Type string `json:"type"` // file, dir, link, tree
	Role string `json:"role"`
	Step string `json:"step"` // "steps[3] (download)"
	// SHA256 is the file's content, or for a tree its TreeDigest.
	SHA256 string `json:"sha256,omitempty"`
	Target string `json:"target,omitempty"` // a link's target
	Attr   string `json:"attr,omitempty"`   // owner:group:mode (octal)
}

// treeDigestScript is TreeDigest in sh: the sha256 of `sha256sum` lines of
// every regular file under the directory, sorted by path.
const treeDigestScript = `(cd "$p" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum | sha256sum | cut -d' ' -f1)`

// Inventory reads the checksums of every path the steps own, in one round
// trip.
func (s *Session) Inventory(ctx context.Context, steps []*Step) ([]ManifestEntry, error) {
	var entries []ManifestEntry
	var b strings.Builder
	b.WriteString("set -e\n")
	for _, st := range steps {
		for _, m := range st.Managed() {
			entries = append(entries, ManifestEntry{Path: m.Path, Type: m.Type, Role: st.Role, Step: StepDef{Index: st.Index, Kind: st.Kind}.Label()})
			fmt.Fprintf(&b, "p=%s\n", q(m.Path))
			switch m.Type {
			case "file":
				b.WriteString(`echo "$(sha256sum < "$p" | cut -d' ' -f1) - $(stat -c %U:%G:%a "$p")"` + "\n")
			case "dir":
				b.WriteString(`echo "- - $(stat -c %U:%G:%a "$p")"` + "\n")
			case "link":
				b.WriteString(`echo "- $(readlink "$p") -"` + "\n")
			case "tree":
				b.WriteString(`echo "` + "$" + treeDigestScript + ` - $(stat -c %U:%G:%a "$p")"` + "\n")
			}
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	r, err := s.Host.Must(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	lines := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
	if len(lines) != len(entries) {
		return nil, fmt.Errorf("inventory: %d lines for %d paths", len(lines), len(entries))
	}
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("inventory %s: unexpected %q", entries[i].Path, line)
		}
		e := &entries[i]
		if e.Type == "link" {
			e.Target = f[1]
		} else {
			e.SHA256 = dash(f[0])
			e.Attr = dash(f[2])
		}
	}
	return entries, nil
}

func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// TreeDigest is the digest the manifest records for an unpacked archive:
// the sha256 of the lines "<sha256>  ./<path>\n" of every regular file
// under dir, sorted by path bytewise — what the host computes with
// find, sort and sha256sum, recomputable from an exported image.
func TreeDigest(dir string) (string, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			paths = append(paths, "./"+filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	slices.Sort(paths)
	outer := sha256.New()
	for _, p := range paths {
		sum, err := payload{local: filepath.Join(dir, p)}.sha256()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(outer, "%s  %s\n", sum, p)
	}
	return hex.EncodeToString(outer.Sum(nil)), nil
}

package localbake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// inputTrees are what an image is made from, relative to the repository:
// the roles, the templates (the whole directory: the local build reads
// every file of it, the AWS source's included), and the source of the
// plugin and the firstboot binary (with go.mod/go.sum for their
// dependencies).
var inputTrees = []string{"roles", TemplateDir, "plugin", "firstboot", "ensemble", "internal", "go.mod", "go.sum"}

// Inputs fingerprints what a bake of repo with ensembleConfig would put
// into the image, so a cached image is reused only while nothing it was
// made from has changed. Test files and testdata do not count.
func Inputs(repo, ensembleConfig, extra string) (string, error) {
	h := sha256.New()
	add := func(path string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", strings.TrimPrefix(path, repo))
		_, err = io.Copy(h, f)
		return err
	}
	for _, tree := range inputTrees {
		err := filepath.WalkDir(filepath.Join(repo, tree), func(p string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case d.IsDir() && d.Name() == "testdata":
				return filepath.SkipDir
			case d.IsDir() || strings.HasSuffix(p, "_test.go"):
				return nil
			}
			return add(p)
		})
		if err != nil {
			return "", fmt.Errorf("fingerprint bake inputs: %w", err)
		}
	}
	if err := add(ensembleConfig); err != nil {
		return "", fmt.Errorf("fingerprint bake inputs: %w", err)
	}
	fmt.Fprintf(h, "vars\x00%s", extra)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Command docgen generates the plugin's documentation in the layout
// Packer's integration tooling reads (the layout of
// packer-plugin-scaffolding, rooted at plugin/):
//
//	docs/                  written by hand: README.md, provisioners/<name>.mdx
//	docs-partials/         generated from struct comments (packer-sdc struct-markdown)
//	.web-docs/README.md    generated: docs/ with the partials included
//	.web-docs/components/  (packer-sdc renderdocs), one README.md per component
//	.web-docs/metadata.hcl written by hand
//
// `go generate ./plugin/...` runs it; a test runs it into a temporary
// directory and fails when the committed files differ.
//
// packer-sdc struct-markdown finds a plugin's root by walking up to a
// directory named packer-plugin-*, which plugin/ is not (it is a directory
// of the zkaas repository, the root of the future packer-plugin-zkaas
// repository), so the Go files are copied into one of that name first.
//
// Usage: docgen -plugin <plugin dir> [-out <dir>] <file.go relative to it>...
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("docgen: ")
	plugin := flag.String("plugin", ".", "the plugin's directory: docs/ in, docs-partials/ and .web-docs/ out")
	out := flag.String("out", "", "where to write docs-partials/ and .web-docs/ (default: -plugin)")
	flag.Parse()
	if *out == "" {
		*out = *plugin
	}
	if err := run(*plugin, *out, flag.Args()); err != nil {
		log.Fatal(err)
	}
}

func run(plugin, out string, files []string) error {
	plugin, err := filepath.Abs(plugin)
	if err != nil {
		return err
	}
	if out, err = filepath.Abs(out); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "docgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	mirror := filepath.Join(tmp, "packer-plugin-zkaas")
	for _, f := range files {
		if err := partials(plugin, mirror, out, f); err != nil {
			return err
		}
	}
	rendered := filepath.Join(tmp, "rendered")
	if err := packerSDC(plugin, "renderdocs", "-src", filepath.Join(plugin, "docs"), "-partials", filepath.Join(out, "docs-partials"), "-dst", rendered); err != nil {
		return err
	}
	return webDocs(rendered, filepath.Join(out, ".web-docs"))
}

// partials runs struct-markdown on plugin/file (copied under mirror) and
// replaces out/docs-partials/<file's dir>/ with what it wrote.
func partials(plugin, mirror, out, file string) error {
	src := filepath.Join(mirror, file)
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(plugin, file))
	if err != nil {
		return err
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return err
	}
	if err := packerSDC(plugin, "struct-markdown", src); err != nil {
		return err
	}
	rel := filepath.Join("docs-partials", filepath.Dir(file))
	dst := filepath.Join(out, rel)
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	return copyTree(filepath.Join(mirror, rel), dst)
}

// componentTypes maps docs/ folders to the integration's component types.
var componentTypes = map[string]string{
	"builders":        "builder",
	"provisioners":    "provisioner",
	"post-processors": "post-processor",
	"datasources":     "data-source",
}

// webDocs compiles rendered docs into the integration's layout: README.md
// as is, each docs/<type>s/<slug>.mdx as components/<type>/<slug>/README.md
// without its front matter and title (the web page adds its own).
func webDocs(rendered, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	readme, err := os.ReadFile(filepath.Join(rendered, "README.md"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, "README.md"), readme, 0o644); err != nil {
		return err
	}
	components := filepath.Join(dst, "components")
	if err := os.RemoveAll(components); err != nil {
		return err
	}
	return filepath.WalkDir(rendered, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".mdx" || d.Name() == "index.mdx" {
			return err
		}
		rel, _ := filepath.Rel(rendered, p)
		folder, name, ok := strings.Cut(filepath.ToSlash(rel), "/")
		typ := componentTypes[folder]
		if !ok || typ == "" || strings.Contains(name, "/") {
			return fmt.Errorf("%s: component docs live in docs/{builders,provisioners,post-processors,datasources}/<name>.mdx", rel)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dir := filepath.Join(components, typ, strings.TrimSuffix(name, ".mdx"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "README.md"), stripHeader(data), 0o644)
	})
}

// stripHeader drops the front matter (--- ... ---) and the first-level
// title after it.
func stripHeader(b []byte) []byte {
	if rest, ok := bytes.CutPrefix(b, []byte("---\n")); ok {
		if i := bytes.Index(rest, []byte("\n---\n")); i >= 0 {
			b = rest[i+len("\n---\n"):]
		}
	}
	b = bytes.TrimLeft(b, "\n")
	if bytes.HasPrefix(b, []byte("# ")) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = bytes.TrimLeft(b[i+1:], "\n")
		}
	}
	return b
}

// packerSDC runs the module's packer-sdc from dir (inside the module).
func packerSDC(dir string, args ...string) error {
	cmd := exec.Command("go", append([]string{"tool", "packer-sdc"}, args...)...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("packer-sdc %s: %w\n%s", args[0], err, b)
	}
	return nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

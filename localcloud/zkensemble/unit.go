package zkensemble

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
)

// unitDirs are where systemd looks for system units, most important first
// (systemd.unit(5)), without the control, transient and generator
// directories only a running systemd fills.
var unitDirs = []string{
	"etc/systemd/system",
	"run/systemd/system",
	"usr/local/lib/systemd/system",
	"usr/lib/systemd/system",
	"lib/systemd/system",
}

// defaultPATH is the PATH systemd gives services.
const defaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"

// service is what starting a service unit takes, resolved the way systemd
// resolves it on the machine whose files fsys holds.
type service struct {
	Argv        []string // ExecStart, variables expanded
	User, Group string   // as the unit says them; empty for root
	Env         []string // Environment= then EnvironmentFile=, later wins
	Sources     []string // the unit file and its drop-ins, in the order applied
}

// loadService reads the service unit name and its drop-ins from fsys (a
// machine's "/"), as systemd would: the unit from the first unit directory
// holding it; drop-ins from <name>.d/*.conf in every unit directory, a
// file name in a more important directory hiding the same name in a less
// important one, applied in file name order; an empty assignment resets a
// list (ExecStart=, Environment=, EnvironmentFile=). EnvironmentFile= is
// read now, and ExecStart's $VAR (a word of its own: split into words) and
// ${VAR} (anywhere: one word) are expanded from the environment. Type=simple
// services only: one ExecStart, and no prefixes but "-" and ":".
func loadService(fsys fs.FS, name string) (service, error) {
	var svc service
	var main string
	for _, dir := range unitDirs {
		p := path.Join(dir, name)
		if fi, err := fs.Stat(fsys, p); err == nil {
			if !fi.Mode().IsRegular() {
				// A link to /dev/null, the way systemctl mask does it.
				return svc, fmt.Errorf("unit %s is masked (/%s)", name, p)
			}
			main = p
			break
		}
	}
	if main == "" {
		return svc, fmt.Errorf("unit %s not found in /%s", name, strings.Join(unitDirs, ", /"))
	}
	dropIns := map[string]string{} // file name -> path, the most important directory's
	for _, dir := range slices.Backward(unitDirs) {
		entries, err := fs.ReadDir(fsys, path.Join(dir, name+".d"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return svc, fmt.Errorf("drop-ins of %s: %w", name, err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".conf") {
				dropIns[e.Name()] = path.Join(dir, name+".d", e.Name())
			}
		}
	}
	svc.Sources = []string{"/" + main}
	for _, n := range slices.Sorted(maps.Keys(dropIns)) {
		svc.Sources = append(svc.Sources, "/"+dropIns[n])
	}

	var execStart, envFiles, env []string
	for _, src := range svc.Sources {
		b, err := fs.ReadFile(fsys, src[1:])
		if err != nil {
			return svc, fmt.Errorf("unit %s: %w", name, err)
		}
		settings, err := parseUnit(b)
		if err != nil {
			return svc, fmt.Errorf("%s: %w", src, err)
		}
		for _, s := range settings {
			if s.section != "Service" {
				continue
			}
			switch s.key {
			case "ExecStart":
				execStart = appendOrReset(execStart, s.value)
			case "EnvironmentFile":
				envFiles = appendOrReset(envFiles, s.value)
			case "Environment":
				if s.value == "" {
					env = nil
					continue
				}
				words, err := splitWords(s.value)
				if err != nil {
					return svc, fmt.Errorf("%s: Environment=%s: %w", src, s.value, err)
				}
				env = append(env, words...)
			case "User":
				svc.User = s.value
			case "Group":
				svc.Group = s.value
			case "Type":
				if s.value != "simple" && s.value != "exec" {
					return svc, fmt.Errorf("%s: Type=%s: only simple and exec services are supported", src, s.value)
				}
			}
		}
	}
	// Settings from files override Environment=, later ones earlier ones.
	for _, f := range envFiles {
		optional := strings.HasPrefix(f, "-")
		f = strings.TrimPrefix(f, "-")
		b, err := fs.ReadFile(fsys, strings.TrimPrefix(path.Clean(f), "/"))
		if err != nil {
			if optional && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return svc, fmt.Errorf("unit %s: EnvironmentFile=%s: %w", name, f, err)
		}
		vars, err := parseEnvFile(b)
		if err != nil {
			return svc, fmt.Errorf("unit %s: EnvironmentFile=%s: %w", name, f, err)
		}
		env = append(env, vars...)
	}
	svc.Env = dedupEnv(env)

	if len(execStart) != 1 {
		return svc, fmt.Errorf("unit %s: %d ExecStart= after drop-ins (%s), want exactly one", name, len(execStart), strings.Join(svc.Sources, ", "))
	}
	argv, err := commandLine(execStart[0], svc.Env)
	if err != nil {
		return svc, fmt.Errorf("unit %s: ExecStart=%s: %w", name, execStart[0], err)
	}
	svc.Argv = argv
	return svc, nil
}

func appendOrReset(list []string, v string) []string {
	if v == "" {
		return nil
	}
	return append(list, v)
}

// dedupEnv keeps the last assignment of each variable, in first-seen order.
func dedupEnv(env []string) []string {
	last := map[string]string{}
	var order []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, seen := last[k]; !seen {
			order = append(order, k)
		}
		last[k] = v
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+last[k])
	}
	return out
}

// setting is one Key=value line of a unit file.
type setting struct{ section, key, value string }

// parseUnit reads a unit file (systemd.syntax(7)): [Section] headers,
// Key=value lines, '#' and ';' comments, a trailing backslash continuing
// a line (joined with a space).
func parseUnit(b []byte) ([]setting, error) {
	var out []setting
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	var cont strings.Builder
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cont.Len() > 0 && (strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue // comments inside a continued line are dropped
		}
		if l, ok := strings.CutSuffix(line, `\`); ok {
			cont.WriteString(l + " ")
			continue
		}
		cont.WriteString(line)
		line = strings.TrimSpace(cont.String())
		cont.Reset()
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: bad section header %q", n, line)
			}
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is not Key=value", n, line)
			}
			out = append(out, setting{section, strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return out, sc.Err()
}

// parseEnvFile reads an EnvironmentFile as systemd does: KEY=value lines,
// '#' and ';' comment lines, whitespace around the value dropped; in the
// value, single quotes quote literally, double quotes keep everything but
// \", \\, \` and \$ (which stand for the character), and outside quotes a
// backslash makes the next character literal.
func parseEnvFile(b []byte) ([]string, error) {
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !validName(k) {
			return nil, fmt.Errorf("line %d: %q is not KEY=value", i+1, line)
		}
		v, err := envValue(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, k+"="+v)
	}
	return out, nil
}

func envValue(v string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\'':
			end := strings.IndexByte(v[i+1:], '\'')
			if end < 0 {
				return "", fmt.Errorf("unterminated ' in %q", v)
			}
			b.WriteString(v[i+1 : i+1+end])
			i += 1 + end
		case '"':
			i++
			for ; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\"\\`$", v[i+1]) >= 0 {
					i++
				}
				b.WriteByte(v[i])
			}
			if i == len(v) {
				return "", fmt.Errorf("unterminated \" in %q", v)
			}
		case '\\':
			if i+1 < len(v) {
				i++
				b.WriteByte(v[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func validName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// splitWords splits a value into words as systemd does: on whitespace,
// with double and single quotes grouping and C-style backslash escapes
// (outside single quotes).
func splitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'' || c == '"':
			inWord = true
			end := i + 1
			for ; end < len(s) && s[end] != c; end++ {
				if c == '"' && s[end] == '\\' && end+1 < len(s) {
					r, n, err := unescape(s[end+1:])
					if err != nil {
						return nil, err
					}
					w.WriteString(r)
					end += n
					continue
				}
				w.WriteByte(s[end])
			}
			if end == len(s) {
				return nil, fmt.Errorf("unterminated %c quote", c)
			}
			i = end
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("trailing backslash")
			}
			r, n, err := unescape(s[i+1:])
			if err != nil {
				return nil, err
			}
			w.WriteString(r)
			i += n
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// unescape decodes the escape after a backslash: s starts after it. It
// returns the text and how many bytes of s it used.
func unescape(s string) (string, int, error) {
	switch s[0] {
	case 'n':
		return "\n", 1, nil
	case 't':
		return "\t", 1, nil
	case 'a', 'b', 'f', 'r', 'v', 'x', 'u', 'U', '0', '1', '2', '3', '4', '5', '6', '7':
		// Quote enough of the escape for strconv to decode.
		for n := 1; n <= len(s) && n <= 10; n++ {
			if r, _, tail, err := strconv.UnquoteChar(`\`+s[:n], 0); err == nil && tail == "" {
				return string(r), n, nil
			}
		}
		return "", 0, fmt.Errorf("bad escape \\%s", s[:min(len(s), 4)])
	default:
		// \\, \", \', \$, \; and any other character stand for themselves.
		return s[:1], 1, nil
	}
}

// commandLine turns an ExecStart value into argv: words split as systemd
// splits them, the "-" (failure ignored) and ":" (no expansion) prefixes
// honoured, %% made %, then $NAME words replaced by the variable's value
// split into words (none if unset or empty) and ${NAME} replaced in place
// by the value as is.
func commandLine(v string, env []string) ([]string, error) {
	words, err := splitWords(v)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errors.New("empty command")
	}
	expand := true
	for len(words[0]) > 0 && strings.ContainsRune("-:@+!", rune(words[0][0])) {
		switch words[0][0] {
		case '-':
		case ':':
			expand = false
		default:
			return nil, fmt.Errorf("prefix %q is not supported", words[0][:1])
		}
		words[0] = words[0][1:]
	}
	if words[0] == "" {
		return nil, errors.New("no program after the prefixes")
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	var argv []string
	for _, w := range words {
		if w == ";" {
			return nil, errors.New("several commands in one ExecStart (';') are not supported")
		}
		w, err := specifiers(w)
		if err != nil {
			return nil, err
		}
		if !expand {
			argv = append(argv, w)
			continue
		}
		if name, ok := strings.CutPrefix(w, "$"); ok && validName(name) {
			split, err := splitWords(vars[name])
			if err != nil {
				return nil, fmt.Errorf("$%s: %w", name, err)
			}
			argv = append(argv, split...)
			continue
		}
		argv = append(argv, expandBraced(w, vars))
	}
	return argv, nil
}

// specifiers resolves %% and refuses the unit-specific specifiers (%n, %i,
// ...), which this reader does not know the values of.
func specifiers(w string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if w[i] != '%' {
			b.WriteByte(w[i])
			continue
		}
		if i+1 < len(w) && w[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		return "", fmt.Errorf("specifier %q is not supported", w[i:min(len(w), i+2)])
	}
	return b.String(), nil
}

// expandBraced replaces ${NAME} by the variable's value (empty if unset)
// and $$ by $; any other $ stays.
func expandBraced(w string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		switch {
		case w[i] != '$' || i+1 == len(w):
			b.WriteByte(w[i])
		case w[i+1] == '$':
			b.WriteByte('$')
			i++
		case w[i+1] == '{':
			end := strings.IndexByte(w[i+2:], '}')
			if end < 0 || !validName(w[i+2:i+2+end]) {
				b.WriteByte(w[i])
				continue
			}
			b.WriteString(vars[w[i+2:i+2+end]])
			i += 2 + end
		default:
			b.WriteByte(w[i])
		}
	}
	return b.String()
}

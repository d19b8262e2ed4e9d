package role

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zkaas/zkaas/plugin/remote"
)

// kind is one step kind: its YAML fields are the struct's, rendered before
// bind checks them; apply converges the host and reports whether it changed
// anything.
type kind interface {
	bind(c *checker)
	subject() string
	apply(ctx context.Context, s *Session) (changed bool, err error)
	managed() []Managed
}

var kinds = map[string]func() kind{
	"packages":  func() kind { return new(packagesStep) },
	"download":  func() kind { return new(downloadStep) },
	"user":      func() kind { return new(userStep) },
	"group":     func() kind { return new(groupStep) },
	"file":      func() kind { return new(fileStep) },
	"template":  func() kind { return &fileStep{template: true} },
	"directory": func() kind { return new(directoryStep) },
	"unit":      func() kind { return new(unitStep) },
	"sysctl":    func() kind { return new(sysctlStep) },
	"limits":    func() kind { return new(limitsStep) },
	"command":   func() kind { return new(commandStep) },
	"assert":    func() kind { return new(assertStep) },
}

// KindNames lists the step kinds.
func KindNames() []string { return slices.Sorted(maps.Keys(kinds)) }

// yamlFields lists the YAML field names of a kind.
func yamlFields(k kind) []string {
	t := reflect.TypeOf(k).Elem()
	var names []string
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// Session is one provisioning run against a host.
type Session struct {
	Host   *remote.Host
	Family string
	// Retries is how many times a failed package manager run is retried
	// (apt's lock held by cloud-init or unattended-upgrades, a flaky
	// mirror); RetryDelay is the first wait, doubled each time.
	Retries    int
	RetryDelay time.Duration
	// Log reports progress within a step (a retry).
	Log func(string)

	indexFresh bool // apt-get update ran in this session
}

// changedMark is printed by a step's script when it changed the host, so
// a check and its action cost one round trip.
const changedMark = "zkaas:changed"

func changedIn(r remote.Result) bool {
	return slices.Contains(strings.Split(r.Stdout, "\n"), changedMark)
}

func (s *Session) script(ctx context.Context, script string) (bool, error) {
	r, err := s.Host.Must(ctx, script)
	return changedIn(r), err
}

// Managed is a path a step owns, for the image manifest.
type Managed struct {
	Path string
	Type string // file, dir, link or tree (an unpacked archive)
}

var q = remote.Quote

// --- packages --------------------------------------------------------------

var packageRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+._:~-]*(=[A-Za-z0-9+._:~-]+)?$`)

type packagesStep struct {
	Apt  []string `yaml:"apt"`
	Dnf  []string `yaml:"dnf"`
	pkgs []string
}

func (k *packagesStep) bind(c *checker) {
	if !slices.Contains(Families, c.env.Family) {
		return // reported with distro_family
	}
	k.pkgs = map[string][]string{"apt": k.Apt, "dnf": k.Dnf}[c.env.Family]
	if len(k.pkgs) == 0 {
		c.errf(c.env.Family, "no packages for distro family %s", c.env.Family)
	}
	for i, p := range k.pkgs {
		if !packageRE.MatchString(p) {
			c.errf(fmt.Sprintf("%s[%d]", c.env.Family, i), "%q is not a package name", p)
		}
	}
}

func (k *packagesStep) subject() string { return strings.Join(k.pkgs, " ") }

func (k *packagesStep) managed() []Managed { return nil }

// apply installs the packages that are missing. Installed packages are
// found without touching the package index, so a converged host costs one
// cheap round trip; apt-get update runs at most once per session.
func (k *packagesStep) apply(ctx context.Context, s *Session) (bool, error) {
	var script string
	switch s.Family {
	case "apt":
		update := ""
		if !s.indexFresh {
			update = "apt-get -q -o DPkg::Lock::Timeout=300 update\n"
		}
		// DPkg::Lock::Timeout waits for cloud-init's or
		// unattended-upgrades' apt instead of failing at once.
		script = fmt.Sprintf(`set -e
missing=
for p in %s; do
  s=$(dpkg-query -W -f='${db:Status-Status}' "${p%%%%=*}" 2>/dev/null) || true
  [ "$s" = installed ] || missing="$missing $p"
done
[ -n "$missing" ] || exit 0
export DEBIAN_FRONTEND=noninteractive
%sapt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends $missing
echo %s`, quoteAll(k.pkgs), update, changedMark)
	case "dnf":
		script = fmt.Sprintf(`set -e
missing=
for p in %s; do rpm -q --quiet --whatprovides "$p" || missing="$missing $p"; done
[ -n "$missing" ] || exit 0
dnf -y -q install $missing
echo %s`, quoteAll(k.pkgs), changedMark)
	default:
		return false, fmt.Errorf("distro family %q", s.Family)
	}
	delay := s.RetryDelay
	for attempt := 1; ; attempt++ {
		r, err := s.Host.Must(ctx, script)
		if err == nil {
			changed := changedIn(r)
			if changed {
				s.indexFresh = true
			}
			return changed, nil
		}
		if _, ok := err.(*remote.CommandError); !ok || attempt > s.Retries {
			if attempt > 1 {
				err = fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			return false, err
		}
		s.Log(fmt.Sprintf("attempt %d of %d failed (%v); retrying in %s", attempt, s.Retries+1, err, delay))
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return false, ctx.Err()
		}
		delay = min(2*delay, time.Minute) // the retries are capped; so is each wait
	}
}

func quoteAll(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = q(s)
	}
	return strings.Join(out, " ")
}

// --- download --------------------------------------------------------------

type downloadStep struct {
	URL             string `yaml:"url"`
	SHA512          string `yaml:"sha512"`
	Dest            string `yaml:"dest"`
	Extract         string `yaml:"extract"`
	StripComponents int    `yaml:"strip_components"`
	Link            string `yaml:"link"`
	Owner           string `yaml:"owner"`
	Group           string `yaml:"group"`
	Mode            string `yaml:"mode"`
	attr            remote.Attr
}

func (k *downloadStep) bind(c *checker) {
	if k.URL == "" {
		c.errf("url", "required")
	} else if err := checkURL(k.URL); err != nil {
		c.errf("url", "%q: %v", k.URL, err)
	}
	if k.SHA512 == "" {
		c.errf("sha512", "required: every download is pinned by its checksum")
	} else if err := checkSHA512(k.SHA512); err != nil {
		c.errf("sha512", "%v", err)
	}
	k.SHA512 = strings.ToLower(k.SHA512)
	if k.Dest == "" && k.Extract == "" {
		c.errf("dest", "give dest (keep the file), extract (unpack it into a directory) or both")
	}
	c.absPath("dest", k.Dest, false)
	c.absPath("extract", k.Extract, false)
	c.absPath("link", k.Link, false)
	if k.StripComponents < 0 {
		c.errf("strip_components", "must not be negative")
	}
	if k.StripComponents > 0 && k.Extract == "" {
		c.errf("strip_components", "only with extract")
	}
	k.attr = remote.Attr{Owner: c.account("owner", k.Owner, "root"), Group: c.account("group", k.Group, "root"), Mode: c.mode("mode", k.Mode, 0o644)}
}

func (k *downloadStep) subject() string {
	if k.Extract != "" {
		return k.Extract
	}
	return k.Dest
}

func (k *downloadStep) managed() []Managed {
	var m []Managed
	if k.Dest != "" {
		m = append(m, Managed{k.Dest, "file"})
	}
	if k.Extract != "" {
		m = append(m, Managed{k.Extract, "tree"})
	}
	if k.Link != "" {
		m = append(m, Managed{k.Link, "link"})
	}
	return m
}

// markerName records, inside an unpacked directory, the sha512 of the
// archive it came from: a rerun with the same pin skips the download.
const markerName = ".zkaas-sha512"

// apply downloads on the build host (the image's network, not the
// operator's), verifies the sha512 before anything is installed, unpacks
// into a fresh directory renamed into place, and points the link at it.
func (k *downloadStep) apply(ctx context.Context, s *Session) (bool, error) {
	file := path.Base(k.URL)
	tmp := path.Join(s.Host.Staging(), "download-"+file)
	var b strings.Builder
	fmt.Fprintf(&b, `set -e
sha=%s tmp=%s url=%s file=%s changed=
fetch() {
  if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 --connect-timeout 30 -o "$tmp" "$url"
  elif command -v wget >/dev/null 2>&1; then wget -q -t 3 -T 30 -O "$tmp" "$url"
  else echo "download $url: neither curl nor wget is installed on the build host" >&2; exit 127; fi
  got=$(sha512sum < "$tmp" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    rm -f "$tmp"
    echo "download $url: sha512 mismatch for $file: got $got, want $sha" >&2; exit 65
  fi
}
`, q(k.SHA512), q(tmp), q(k.URL), q(file))
	if k.Dest != "" {
		fmt.Fprintf(&b, `dest=%s
if [ -f "$dest" ] && [ "$(sha512sum < "$dest" | cut -d' ' -f1)" = "$sha" ] && [ "$(stat -c %%U:%%G:%%a "$dest")" = %s ]; then
  tmp=$dest
else
  fetch
  mkdir -p "$(dirname "$dest")"
  install -o %s -g %s -m %o "$tmp" "$dest.zkaas-new"
  mv -f "$dest.zkaas-new" "$dest"
  rm -f "$tmp"; tmp=$dest changed=1
fi
`, q(k.Dest), q(k.attr.String()), q(k.attr.Owner), q(k.attr.Group), k.attr.Mode)
	}
	if k.Extract != "" {
		fetch := `[ -f "$tmp" ] || fetch`
		fmt.Fprintf(&b, `dir=%s
if [ "$(cat "$dir/%s" 2>/dev/null)" != "$sha" ]; then
  %s
  rm -rf "$dir.zkaas-new"; mkdir -p "$dir.zkaas-new"
  tar -xf "$tmp" -C "$dir.zkaas-new" --no-same-owner --strip-components=%d
  echo "$sha" > "$dir.zkaas-new/%s"
  chown -R %s:%s "$dir.zkaas-new"
  rm -rf "$dir"; mv "$dir.zkaas-new" "$dir"
  [ "$tmp" = "${dest:-}" ] || rm -f "$tmp"
  changed=1
fi
`, q(k.Extract), markerName, fetch, k.StripComponents, markerName, q(k.attr.Owner), q(k.attr.Group))
	}
	if k.Link != "" {
		target := k.Extract
		if target == "" {
			target = k.Dest
		}
		fmt.Fprintf(&b, `link=%s
if [ "$(readlink "$link" 2>/dev/null)" != %s ]; then
  if [ -e "$link" ] && [ ! -L "$link" ]; then echo "$link exists and is not a symbolic link" >&2; exit 1; fi
  ln -sfn %s "$link.zkaas-new"; mv -fT "$link.zkaas-new" "$link"; changed=1
fi
`, q(k.Link), q(target), q(target))
	}
	fmt.Fprintf(&b, `[ -z "$changed" ] || echo %s`, changedMark)
	return s.script(ctx, b.String())
}

// --- user, group -----------------------------------------------------------

type userStep struct {
	Name   string `yaml:"name"`
	Group  string `yaml:"group"`
	Home   string `yaml:"home"`
	Shell  string `yaml:"shell"`
	System bool   `yaml:"system"`
}

func (k *userStep) bind(c *checker) {
	if k.Name == "" {
		c.errf("name", "required")
	}
	k.Name = c.account("name", k.Name, "")
	k.Group = c.account("group", k.Group, "")
	if k.Home == "" {
		k.Home = "/nonexistent"
	}
	if k.Shell == "" {
		k.Shell = "/usr/sbin/nologin"
	}
	c.absPath("home", k.Home, true)
	c.absPath("shell", k.Shell, true)
}

func (k *userStep) subject() string    { return k.Name }
func (k *userStep) managed() []Managed { return nil }

// apply creates the user when missing. An existing user (a distro package
// may have made it) is left as it is.
func (k *userStep) apply(ctx context.Context, s *Session) (bool, error) {
	args := []string{"--no-create-home", "--home-dir", q(k.Home), "--shell", q(k.Shell)}
	if k.System {
		args = append(args, "--system")
	}
	if k.Group != "" {
		args = append(args, "--gid", q(k.Group))
	} else {
		args = append(args, "--user-group")
	}
	return s.script(ctx, fmt.Sprintf("set -e\nid -u %s >/dev/null 2>&1 && exit 0\nuseradd %s %s\necho %s",
		q(k.Name), strings.Join(args, " "), q(k.Name), changedMark))
}

type groupStep struct {
	Name   string `yaml:"name"`
	System bool   `yaml:"system"`
}

func (k *groupStep) bind(c *checker) {
	if k.Name == "" {
		c.errf("name", "required")
	}
	k.Name = c.account("name", k.Name, "")
}

func (k *groupStep) subject() string    { return k.Name }
func (k *groupStep) managed() []Managed { return nil }

func (k *groupStep) apply(ctx context.Context, s *Session) (bool, error) {
	sys := ""
	if k.System {
		sys = "--system "
	}
	return s.script(ctx, fmt.Sprintf("set -e\ngetent group %s >/dev/null && exit 0\ngroupadd %s%s\necho %s", q(k.Name), sys, q(k.Name), changedMark))
}

// --- file, template, unit, sysctl, limits ----------------------------------

// payload is the bytes of a file to install: in memory, or a local file
// read when the step runs (binaries).
type payload struct {
	data  []byte
	local string
}

func (p payload) open() (io.ReadCloser, error) {
	if p.local != "" {
		return os.Open(p.local)
	}
	return io.NopCloser(strings.NewReader(string(p.data))), nil
}

func (p payload) sha256() (string, error) {
	r, err := p.open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// installFile converges one file: its checksum and attributes are compared
// on the host first, and it is uploaded only when they differ.
func installFile(ctx context.Context, s *Session, dest string, p payload, attr remote.Attr) (bool, error) {
	sum, err := p.sha256()
	if err != nil {
		return false, fmt.Errorf("read %s: %w", p.local, err)
	}
	r, err := s.Host.Must(ctx, fmt.Sprintf(`f=%s
if [ -f "$f" ] && [ ! -L "$f" ]; then echo "$(sha256sum < "$f" | cut -d' ' -f1) $(stat -c %%U:%%G:%%a "$f")"; fi`, q(dest)))
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(r.Stdout) == sum+" "+attr.String() {
		return false, nil
	}
	rc, err := p.open()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	return true, s.Host.Put(ctx, dest, rc, attr)
}

type fileStep struct {
	Dest     string `yaml:"dest"`
	Src      string `yaml:"src"`
	Content  string `yaml:"content"`
	Owner    string `yaml:"owner"`
	Group    string `yaml:"group"`
	Mode     string `yaml:"mode"`
	template bool
	payload  payload
	attr     remote.Attr
}

func (k *fileStep) bind(c *checker) {
	c.absPath("dest", k.Dest, true)
	k.payload = c.payload(k.Src, k.Content, k.template)
	k.attr = remote.Attr{Owner: c.account("owner", k.Owner, "root"), Group: c.account("group", k.Group, "root"), Mode: c.mode("mode", k.Mode, 0o644)}
}

func (k *fileStep) subject() string    { return k.Dest }
func (k *fileStep) managed() []Managed { return []Managed{{k.Dest, "file"}} }

func (k *fileStep) apply(ctx context.Context, s *Session) (bool, error) {
	return installFile(ctx, s, k.Dest, k.payload, k.attr)
}

// unitDir is where unit steps install units: systemd's directory for the
// administrator's units, which win over the packages' in /usr/lib.
const unitDir = "/etc/systemd/system"

var unitRE = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|target|path|mount)$`)

type unitStep struct {
	Name    string `yaml:"name"`
	Src     string `yaml:"src"`
	Content string `yaml:"content"`
	Enable  bool   `yaml:"enable"`
	payload *payload
}

func (k *unitStep) bind(c *checker) {
	if !unitRE.MatchString(k.Name) {
		c.errf("name", "%q is not a systemd unit name", k.Name)
	}
	if k.Src != "" || k.Content != "" {
		p := c.payload(k.Src, k.Content, false)
		k.payload = &p
	} else if !k.Enable {
		c.errf("enable", "a unit step without src or content only enables a unit: set enable: true")
	}
}

func (k *unitStep) subject() string { return k.Name }

func (k *unitStep) managed() []Managed {
	if k.payload == nil {
		return nil
	}
	return []Managed{{path.Join(unitDir, k.Name), "file"}}
}

// apply installs the unit file and enables it with `systemctl --root=/`,
// which edits the [Install] symlinks on the file system without a running
// systemd: it works the same in a chroot and on a booted build instance,
// and the image's next boot loads the units afresh.
func (k *unitStep) apply(ctx context.Context, s *Session) (bool, error) {
	changed := false
	if k.payload != nil {
		c, err := installFile(ctx, s, path.Join(unitDir, k.Name), *k.payload, remote.Attr{Owner: "root", Group: "root", Mode: 0o644})
		if err != nil {
			return false, err
		}
		changed = c
	}
	if !k.Enable {
		return changed, nil
	}
	c, err := s.script(ctx, fmt.Sprintf(`set -e
[ "$(systemctl --root=/ is-enabled %[1]s 2>/dev/null)" = enabled ] && exit 0
systemctl --root=/ --quiet enable %[1]s
echo %[2]s`, q(k.Name), changedMark))
	return changed || c, err
}

var sysctlRE = regexp.MustCompile(`^[a-z0-9_]+([./][A-Za-z0-9_-]+)+$`)

// sysctlStep writes a sysctl.d file. It does not apply the settings: in a
// chroot that would change the build machine's kernel, and the image
// applies them at boot (systemd-sysctl).
type sysctlStep struct {
	File     string            `yaml:"file"`
	Settings map[string]string `yaml:"settings"`
	payload  payload
}

func (k *sysctlStep) bind(c *checker) {
	c.absPath("file", k.File, true)
	if len(k.Settings) == 0 {
		c.errf("settings", "required")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Managed by the zkaas bake (role %s).\n", c.def.Name)
	for _, key := range slices.Sorted(maps.Keys(k.Settings)) {
		v := k.Settings[key]
		if !sysctlRE.MatchString(key) {
			c.errf("settings."+key, "%q is not a sysctl name", key)
		}
		if v == "" || strings.ContainsAny(v, "\n") {
			c.errf("settings."+key, "want a one-line value")
		}
		fmt.Fprintf(&b, "%s = %s\n", key, v)
	}
	k.payload = payload{data: []byte(b.String())}
}

func (k *sysctlStep) subject() string    { return k.File }
func (k *sysctlStep) managed() []Managed { return []Managed{{k.File, "file"}} }

func (k *sysctlStep) apply(ctx context.Context, s *Session) (bool, error) {
	return installFile(ctx, s, k.File, k.payload, remote.Attr{Owner: "root", Group: "root", Mode: 0o644})
}

type limit struct {
	Domain string `yaml:"domain"`
	Type   string `yaml:"type"`
	Item   string `yaml:"item"`
	Value  string `yaml:"value"`
}

// limitItems are the items pam_limits knows (limits.conf(5)).
var limitItems = []string{"core", "data", "fsize", "memlock", "nofile", "rss", "stack", "cpu", "nproc", "as", "maxlogins", "maxsyslogins", "nonewprivs", "priority", "locks", "sigpending", "msgqueue", "nice", "rtprio"}

var limitValueRE = regexp.MustCompile(`^(-?[0-9]+|unlimited|infinity)$`)

// limitsStep writes a limits.d file for PAM sessions (an operator's
// zkCli.sh); services get their limits from their unit (LimitNOFILE=).
type limitsStep struct {
	File    string  `yaml:"file"`
	Entries []limit `yaml:"entries"`
	payload payload
}

func (k *limitsStep) bind(c *checker) {
	c.absPath("file", k.File, true)
	if len(k.Entries) == 0 {
		c.errf("entries", "required")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Managed by the zkaas bake (role %s).\n", c.def.Name)
	for i, e := range k.Entries {
		f := fmt.Sprintf("entries[%d]", i)
		if e.Domain == "" || strings.ContainsAny(e.Domain, " \t\n") {
			c.errf(f+".domain", "want a user, @group or *")
		}
		if !slices.Contains([]string{"soft", "hard", "-"}, e.Type) {
			c.errf(f+".type", "%q: want soft, hard or -", e.Type)
		}
		if !slices.Contains(limitItems, e.Item) {
			c.errf(f+".item", "%q is not a limits.conf item", e.Item)
		}
		if !limitValueRE.MatchString(e.Value) {
			c.errf(f+".value", "%q: want a number or unlimited", e.Value)
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", e.Domain, e.Type, e.Item, e.Value)
	}
	k.payload = payload{data: []byte(b.String())}
}

func (k *limitsStep) subject() string    { return k.File }
func (k *limitsStep) managed() []Managed { return []Managed{{k.File, "file"}} }

func (k *limitsStep) apply(ctx context.Context, s *Session) (bool, error) {
	return installFile(ctx, s, k.File, k.payload, remote.Attr{Owner: "root", Group: "root", Mode: 0o644})
}

// --- directory -------------------------------------------------------------

type directoryStep struct {
	Path  string `yaml:"path"`
	Owner string `yaml:"owner"`
	Group string `yaml:"group"`
	Mode  string `yaml:"mode"`
	attr  remote.Attr
}

func (k *directoryStep) bind(c *checker) {
	c.absPath("path", k.Path, true)
	k.attr = remote.Attr{Owner: c.account("owner", k.Owner, "root"), Group: c.account("group", k.Group, "root"), Mode: c.mode("mode", k.Mode, 0o755)}
}

func (k *directoryStep) subject() string    { return k.Path }
func (k *directoryStep) managed() []Managed { return []Managed{{k.Path, "dir"}} }

func (k *directoryStep) apply(ctx context.Context, s *Session) (bool, error) {
	return s.script(ctx, fmt.Sprintf(`set -e
d=%s
[ -d "$d" ] && [ ! -L "$d" ] && [ "$(stat -c %%U:%%G:%%a "$d")" = %s ] && exit 0
install -d -o %s -g %s -m %o "$d"
echo %s`, q(k.Path), q(k.attr.String()), q(k.attr.Owner), q(k.attr.Group), k.attr.Mode, changedMark))
}

// --- command ---------------------------------------------------------------

// commandStep is the last resort. It must say how to tell it is done —
// creates (a path it makes) or unless (a check that passes once done) — or
// be a check (read-only: runs every time, never a change), so a rerun
// converges instead of repeating it.
type commandStep struct {
	Name    string `yaml:"name"` // shown in progress lines instead of the command
	Run     string `yaml:"run"`
	Creates string `yaml:"creates"`
	Unless  string `yaml:"unless"`
	Check   bool   `yaml:"check"`
}

func (k *commandStep) bind(c *checker) {
	if strings.TrimSpace(k.Run) == "" {
		c.errf("run", "required")
	}
	c.absPath("creates", k.Creates, false)
	switch {
	case k.Check && (k.Creates != "" || k.Unless != ""):
		c.errf("check", "a check runs every time: no creates or unless")
	case !k.Check && k.Creates == "" && k.Unless == "":
		c.errf("run", "say how to tell the command is done: creates, unless, or check: true")
	}
}

func (k *commandStep) subject() string {
	if k.Name != "" {
		return k.Name
	}
	line, _, _ := strings.Cut(strings.TrimSpace(k.Run), "\n")
	return line
}

func (k *commandStep) managed() []Managed { return nil }

func (k *commandStep) apply(ctx context.Context, s *Session) (bool, error) {
	var b strings.Builder
	b.WriteString("set -e\n")
	if k.Creates != "" {
		fmt.Fprintf(&b, "[ -e %s ] && exit 0\n", q(k.Creates))
	}
	if k.Unless != "" {
		fmt.Fprintf(&b, "if sh -c %s >/dev/null 2>&1; then exit 0; fi\n", q(k.Unless))
	}
	fmt.Fprintf(&b, "sh -ec %s", q(k.Run))
	if k.Check {
		_, err := s.Host.Must(ctx, b.String())
		return false, err
	}
	fmt.Fprintf(&b, "\necho %s", changedMark)
	return s.script(ctx, b.String())
}

// --- assert ----------------------------------------------------------------

// assertStep checks the role's variables when the role is bound, before
// the build starts; Bind leaves it out of the role's steps.
type assertStep struct {
	That    string `yaml:"that"`
	Message string `yaml:"message"`
}

func (k *assertStep) bind(c *checker) {
	if k.Message == "" {
		c.errf("message", "required: say what is wrong when the assertion fails")
	}
	b, err := strconv.ParseBool(strings.TrimSpace(k.That))
	switch {
	case err != nil:
		c.errf("that", "renders to %q, want true or false", k.That)
	case !b:
		c.errf("that", "%s", k.Message)
	}
}

func (k *assertStep) subject() string    { return k.Message }
func (k *assertStep) managed() []Managed { return nil }

func (k *assertStep) apply(context.Context, *Session) (bool, error) { return false, nil }

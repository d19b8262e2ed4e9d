// Package zookeeper renders this node's ZooKeeper configuration (zoo.cfg,
// myid, java.env), writes it with the ownership an unprivileged ZooKeeper
// needs, and decides whether an empty data tree may be trusted (the
// `initialize` marker) — the one decision that can lose committed data.
//
// Facts checked against the ZooKeeper 3.8 source and a real 3.8 server:
//
//   - Keys of zoo.cfg that QuorumPeerConfig does not know become the system
//     property "zookeeper.<key>" while the file is parsed, before the data
//     tree is loaded. db.autocreate, datadir.autocreate, admin.* and
//     4lw.commands.whitelist are therefore set in zoo.cfg: every launcher
//     reads zoo.cfg, while java.env is read only by launchers that know it.
//   - With db.autocreate=false an empty data tree loads with zxid -1; such a
//     server ignores LOOKING notifications and its own are ignored by others,
//     so it never takes part in electing a leader, but it follows an
//     established one and syncs from it. A single-server ensemble in that
//     state stays LOOKING forever.
//   - FileTxnSnapLog looks for the `initialize` marker next to the
//     transaction log's version-2 directory, i.e. in dataLogDir (not dataDir),
//     and deletes it when it loads: the trust is granted once, then a
//     snapshot.0 exists.
//   - That untrusted start writes currentEpoch and acceptedEpoch = -1; a later
//     start with the marker then dies with "The current epoch,
//     ffffffffffffffff, is older than the last zxid, 0" unless they are
//     removed first (SetInitializeMarker does).
//   - srvr is always allowed, whatever 4lw.commands.whitelist says.
package zookeeper

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/internal/fsutil"
)

// DefaultConfDir holds zoo.cfg and java.env. It is ours alone: the distro's
// /etc/zookeeper/conf is managed by update-alternatives and the tarball's
// /opt/zookeeper/conf is replaced on upgrade. zookeeper.service reads it.
const DefaultConfDir = "/etc/zkaas/zookeeper"

// File names inside the layout's directories.
const (
	ZooCfgName     = "zoo.cfg"
	JavaEnvName    = "java.env"
	MyIDName       = "myid"
	InitializeName = "initialize"
	versionDir     = "version-2" // FileTxnSnapLog.version + VERSION
)

// Directory and file modes. Data is readable by the zookeeper group only;
// configuration holds no secrets.
const (
	confDirMode  fs.FileMode = 0o755
	confFileMode fs.FileMode = 0o644
	dataDirMode  fs.FileMode = 0o750
	dataFileMode fs.FileMode = 0o644
)

// Layout says where ZooKeeper's files live.
type Layout struct {
	ConfDir    string // zoo.cfg, java.env: root-owned
	DataDir    string // snapshots and myid, on the node's volume
	DataLogDir string // transaction logs and the initialize marker, on the volume
	// LogDir holds the JVM's GC log (zookeeper.gc_log), on the volume so
	// that a chatty JVM cannot fill the root disk and the log survives the
	// instance. Empty: no GC log can be written.
	LogDir string
	// SecretDir holds the files rendered from secret material (material.go),
	// on tmpfs.
	SecretDir string
}

// DefaultLayout puts the data on the mounted volume: <mount>/data and
// <mount>/datalog. Keeping them in subdirectories (not the mount root) keeps
// lost+found and the disk identity marker out of ZooKeeper's way.
func DefaultLayout(mountPoint string) Layout {
	return Layout{
		ConfDir:    DefaultConfDir,
		DataDir:    filepath.Join(mountPoint, "data"),
		DataLogDir: filepath.Join(mountPoint, "datalog"),
		LogDir:     filepath.Join(mountPoint, "logs"),
		SecretDir:  DefaultSecretDir,
	}
}

// ZooCfgPath is the file zookeeper.service passes to QuorumPeerMain.
func (l Layout) ZooCfgPath() string { return filepath.Join(l.ConfDir, ZooCfgName) }

// JavaEnvPath is the JVM environment file.
func (l Layout) JavaEnvPath() string { return filepath.Join(l.ConfDir, JavaEnvName) }

// MyIDPath is where QuorumPeerConfig reads the server id.
func (l Layout) MyIDPath() string { return filepath.Join(l.DataDir, MyIDName) }

// InitializePath is where FileTxnSnapLog looks for the marker: the parent of
// the transaction log's version-2 directory.
func (l Layout) InitializePath() string { return filepath.Join(l.DataLogDir, InitializeName) }

func (l Layout) validate() error {
	for _, d := range []struct{ name, path string }{
		{"conf dir", l.ConfDir}, {"data dir", l.DataDir}, {"data log dir", l.DataLogDir},
	} {
		if !filepath.IsAbs(d.path) || filepath.Clean(d.path) != d.path {
			return fmt.Errorf("layout: %s %q must be a clean absolute path", d.name, d.path)
		}
	}
	if l.LogDir != "" && (!filepath.IsAbs(l.LogDir) || filepath.Clean(l.LogDir) != l.LogDir) {
		return fmt.Errorf("layout: log dir %q must be a clean absolute path", l.LogDir)
	}
	if l.SecretDir != "" && (!filepath.IsAbs(l.SecretDir) || filepath.Clean(l.SecretDir) != l.SecretDir) {
		return fmt.Errorf("layout: secret dir %q must be a clean absolute path", l.SecretDir)
	}
	if l.DataDir == l.DataLogDir {
		// The initialize marker and the version-2 checks assume two
		// directories; one would work for ZooKeeper but not for HasData.
		return fmt.Errorf("layout: data dir and data log dir are both %s", l.DataDir)
	}
	return nil
}

// Files is the rendered configuration of one node.
type Files struct {
	Layout  Layout
	ZooCfg  []byte
	MyID    []byte
	JavaEnv []byte
	// Private are the files rendered from secret material (keystores, the
	// JAAS file), written to Layout.SecretDir.
	Private []PrivateFile
}

// Render produces the configuration of node nodeID. self is the address of
// the ENI this instance holds; it must be the address the config gives the
// node, or the node would advertise one address and listen on another. mat
// is the secret material zookeeper.tls and zookeeper.sasl need (zero when
// they are off).
func Render(cfg ensemble.Config, nodeID int, self netip.Addr, layout Layout, mat Material) (Files, error) {
	if err := layout.validate(); err != nil {
		return Files{}, err
	}
	node, ok := cfg.NodeByID(nodeID)
	if !ok {
		return Files{}, fmt.Errorf("render node %d: not in the ensemble config", nodeID)
	}
	if node.IP != self {
		return Files{}, fmt.Errorf("render node %d: ENI address %s is not the node's configured address %s", nodeID, self, node.IP)
	}
	var sec security
	for _, part := range []func(ensemble.Config, ensemble.Node, Layout, Material) (security, error){renderTLS, renderSASL, renderMetrics} {
		p, err := part(cfg, node, layout, mat)
		if err != nil {
			return Files{}, fmt.Errorf("render node %d: %w", nodeID, err)
		}
		sec.add(p)
	}
	if len(sec.private) > 0 && layout.SecretDir == "" {
		return Files{}, fmt.Errorf("render node %d: zookeeper.tls or zookeeper.sasl is on but the layout has no secret dir", nodeID)
	}
	nodes := slices.Clone(cfg.Nodes)
	slices.SortFunc(nodes, func(a, b ensemble.Node) int { return a.ID - b.ID })
	z := cfg.ZooKeeper

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Rendered by zkaas-firstboot for ensemble %s, node %d, at every boot: do not edit.", cfg.Ensemble, nodeID)
	w("tickTime=%d", z.TickTime)
	w("initLimit=%d", z.InitLimit)
	w("syncLimit=%d", z.SyncLimit)
	w("dataDir=%s", layout.DataDir)
	w("dataLogDir=%s", layout.DataLogDir)
	plaintext := !z.TLS.PlaintextClosed()
	if plaintext {
		w("clientPort=%d", z.ClientPort)
		w("clientPortAddress=%s", self)
	} else {
		// zookeeper.tls serves clients over TLS only: no plaintext
		// listener (QuorumPeerConfig opens one only for clientPort or a
		// server line's client address), the secure port below.
		w("# No plaintext client port: zookeeper.tls.client without client_plaintext.")
	}
	w("")
	w("# A static ensemble: never fall back to standalone, never rewrite this file.")
	w("standaloneEnabled=false")
	w("reconfigEnabled=false")
	w("# Quorum and election ports bind to this node's ENI address only.")
	w("quorumListenOnAllIPs=false")
	w("")
	w("# Refuse to start rather than create data directories: if the volume is")
	w("# not mounted, nothing is written to the root disk.")
	w("datadir.autocreate=false")
	w("# An empty data tree is not trusted (zxid -1: it cannot help elect a")
	w("# leader, it syncs from one) unless firstboot wrote %s/%s.", layout.DataLogDir, InitializeName)
	w("db.autocreate=false")
	w("")
	w("autopurge.snapRetainCount=%d", z.Autopurge.SnapRetainCount)
	w("autopurge.purgeInterval=%d", z.Autopurge.PurgeInterval)
	w("4lw.commands.whitelist=%s", strings.Join(fourLetterWords(z.FourLetterWords), ","))
	if z.AdminServer.Enabled {
		w("admin.enableServer=true")
		w("admin.serverAddress=127.0.0.1")
		w("admin.serverPort=%d", z.AdminServer.Port)
	} else {
		w("admin.enableServer=false")
	}
	w("")
	for _, n := range nodes {
		// The 3.5+ form: the client address after ';' is what peers and
		// clients of `conf` learn; for this node it equals clientPortAddress
		// (QuorumPeerConfig rejects a mismatch).
		if !plaintext {
			// The client part would set clientPortAddress (setupClientPort)
			// and open the plaintext port: omitted, as 3.8 allows.
			w("server.%d=%s:%d:%d", n.ID, n.IP, z.QuorumPort, z.ElectionPort)
			continue
		}
		w("server.%d=%s:%d:%d;%s:%d", n.ID, n.IP, z.QuorumPort, z.ElectionPort, n.IP, z.ClientPort)
	}

	if len(sec.zooCfg) > 0 {
		w("")
		for _, l := range sec.zooCfg {
			w("%s", l)
		}
	}

	// zookeeper.extra after zkaas's own keys, sorted so the bytes (and so
	// the write-only-when-changed check) do not depend on map order. The
	// validator refused every key written above, so none is overridden.
	// System properties (jute.maxbuffer) go to java.env instead.
	var extra, sysprops []string
	for _, k := range z.Extra.Keys() {
		if ensemble.SystemProperty(k) {
			sysprops = append(sysprops, fmt.Sprintf("-D%s=%s", k, z.Extra[k]))
		} else {
			extra = append(extra, k+"="+z.Extra[k])
		}
	}
	if len(extra) > 0 {
		w("")
		w("# zookeeper.extra: type-checked by zkaas where it knows the key.")
		for _, e := range extra {
			w("%s", e)
		}
	}

	// SERVER_JVMFLAGS: the heap; ExitOnOutOfMemoryError (a JVM that ran out
	// of heap is restarted by systemd instead of limping on as a half-dead
	// voter); the GC log; zookeeper.extra's system properties; then
	// zookeeper.jvm_flags, last so that they win where the JVM takes the
	// last of repeated options.
	flags := []string{"-Xms" + z.Heap, "-Xmx" + z.Heap, "-XX:+ExitOnOutOfMemoryError"}
	if z.GCLog {
		if layout.LogDir == "" {
			return Files{}, fmt.Errorf("render node %d: zookeeper.gc_log is on but the layout has no log dir", nodeID)
		}
		flags = append(flags, ensemble.GCLogFlag(layout.LogDir))
	}
	flags = append(flags, sysprops...)
	flags = append(flags, sec.jvmFlags...)
	flags = append(flags, z.JVMFlags...)

	// java.env is sourced by zkEnv.sh and read by systemd's EnvironmentFile=,
	// so it holds plain KEY="value" lines and nothing shell-only (the
	// validator keeps quotes, '$', '`', backslashes and whitespace out).
	javaEnv := fmt.Sprintf("# Rendered by zkaas-firstboot at every boot: do not edit.\n"+
		"SERVER_JVMFLAGS=\"%s\"\n", strings.Join(flags, " "))

	return Files{
		Layout:  layout,
		ZooCfg:  []byte(b.String()),
		MyID:    []byte(strconv.Itoa(nodeID) + "\n"),
		JavaEnv: []byte(javaEnv),
		Private: sec.private,
	}, nil
}

// fourLetterWords always includes srvr: ZooKeeper allows it regardless, the
// quorum probe of a replacement node depends on it, and writing it shows
// the effective list.
func fourLetterWords(words []string) []string {
	if slices.Contains(words, "srvr") || slices.Contains(words, "*") {
		return words
	}
	return append([]string{"srvr"}, words...)
}

// Owner is a numeric user and group.
type Owner struct{ UID, GID int }

var root = Owner{0, 0}

// LookupOwner resolves a user name (the zookeeper user the bake creates) and
// its primary group.
func LookupOwner(name string) (Owner, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return Owner{}, fmt.Errorf("look up user %s: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return Owner{}, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return Owner{}, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return Owner{uid, gid}, nil
}

// Write puts the files in place and returns the paths it created or
// changed; a second call with the same files changes nothing. The conf dir
// is created if missing and its files are root-owned. The data dirs (and
// their version-2 subdirectories, which datadir.autocreate=false makes
// ZooKeeper require), the GC log dir and myid belong to zk so ZooKeeper
// runs unprivileged. The data dirs' parent — the mounted volume — must already exist: Write
// never creates it, so an unmounted volume cannot be papered over with
// directories on the root disk.
func Write(f Files, zk Owner) (changed []string, err error) {
	l := f.Layout
	if err := l.validate(); err != nil {
		return nil, err
	}
	note := func(path string, c bool) {
		if c {
			changed = append(changed, path)
		}
	}
	if err := os.MkdirAll(filepath.Dir(l.ConfDir), confDirMode); err != nil {
		return changed, fmt.Errorf("create %s: %w", filepath.Dir(l.ConfDir), err)
	}
	c, err := ensureDir(l.ConfDir, confDirMode, root)
	note(l.ConfDir, c)
	if err != nil {
		return changed, err
	}
	dirs := []string{l.DataDir, filepath.Join(l.DataDir, versionDir), l.DataLogDir, filepath.Join(l.DataLogDir, versionDir)}
	if l.LogDir != "" {
		// The JVM refuses to start when -Xlog names a file in a missing
		// directory ("Invalid -Xlog option"), and runs as zookeeper.
		dirs = append(dirs, l.LogDir)
	}
	for _, d := range dirs {
		c, err := ensureDir(d, dataDirMode, zk)
		note(d, c)
		if err != nil {
			return changed, err
		}
	}
	if len(f.Private) > 0 {
		// The secret dir's parent is /run/zkaas (root's); the dir itself
		// and its files are zookeeper's alone.
		if err := os.MkdirAll(filepath.Dir(l.SecretDir), confDirMode); err != nil {
			return changed, fmt.Errorf("create %s: %w", filepath.Dir(l.SecretDir), err)
		}
		c, err := ensureDir(l.SecretDir, secretDirMode, zk)
		note(l.SecretDir, c)
		if err != nil {
			return changed, err
		}
		for _, p := range f.Private {
			path := p.Path(l)
			c, err := writeOwned(path, p.Data, secretFileMode, zk)
			note(path, c)
			if err != nil {
				return changed, err
			}
		}
	}
	for _, file := range []struct {
		path  string
		data  []byte
		mode  fs.FileMode
		owner Owner
	}{
		{l.MyIDPath(), f.MyID, dataFileMode, zk},
		{l.ZooCfgPath(), f.ZooCfg, confFileMode, root},
		{l.JavaEnvPath(), f.JavaEnv, confFileMode, root},
	} {
		c, err := writeOwned(file.path, file.data, file.mode, file.owner)
		note(file.path, c)
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// writeOwned is fsutil.WriteFile plus ownership.
func writeOwned(path string, data []byte, mode fs.FileMode, o Owner) (bool, error) {
	changed, err := fsutil.WriteFile(path, data, mode)
	if err != nil {
		return changed, err
	}
	chowned, err := ensureOwner(path, o)
	return changed || chowned, err
}

// ensureDir makes path a directory (not a symlink) with mode and owner. Its
// parent must exist.
func ensureDir(path string, mode fs.FileMode, o Owner) (bool, error) {
	changed := false
	if err := os.Mkdir(path, mode); err == nil {
		changed = true
	} else if !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("create %s: %w", path, err)
	}
	st, err := os.Lstat(path)
	if err != nil {
		return changed, fmt.Errorf("stat %s: %w", path, err)
	}
	if !st.IsDir() {
		return changed, fmt.Errorf("%s is a %s, not a directory", path, st.Mode().Type())
	}
	// Mkdir's mode is filtered by the umask; set it exactly.
	if st.Mode().Perm() != mode {
		if err := os.Chmod(path, mode); err != nil {
			return changed, fmt.Errorf("chmod %s: %w", path, err)
		}
		changed = true
	}
	chowned, err := ensureOwner(path, o)
	return changed || chowned, err
}

// ensureOwner chowns path (never following a symlink) unless it is already
// owned by o.
func ensureOwner(path string, o Owner) (bool, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) == o.UID && int(sys.Gid) == o.GID {
		return false, nil
	}
	if err := os.Lchown(path, o.UID, o.GID); err != nil {
		return false, fmt.Errorf("chown %s to %d:%d: %w", path, o.UID, o.GID, err)
	}
	return true, nil
}

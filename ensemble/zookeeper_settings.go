package ensemble

// The zoo.cfg settings large ensembles tune (zookeeper.extra), the JVM flags
// appended to SERVER_JVMFLAGS (zookeeper.jvm_flags) and the GC log
// (zookeeper.gc_log). Sources, checked against the 3.8 server:
//
//   - ZooKeeper Administrator's Guide, "Configuration Parameters":
//     https://zookeeper.apache.org/doc/r3.8.4/zookeeperAdmin.html#sc_configuration
//   - QuorumPeerConfig.parseProperties (3.8): the keys it knows are parsed
//     there (booleans strictly "true"/"false", ints with Integer.parseInt);
//     every other key becomes the system property "zookeeper.<key>" while the
//     file is parsed. minSessionTimeout and maxSessionTimeout default to 2
//     and 20 ticks, and the server refuses to start when the effective
//     minimum exceeds the maximum.
//   - jute.maxbuffer is read only as the system property "jute.maxbuffer"
//     (BinaryInputArchive's static initialiser; the Guide: "It is used only
//     as a Java system property. There is no zookeeper prefix on it."). In
//     zoo.cfg it would become zookeeper.jute.maxbuffer, which nothing reads,
//     so zkaas renders it as -Djute.maxbuffer in java.env instead.

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/zkaas/zkaas/internal/suggest"
)

// Extra is zookeeper.extra: zoo.cfg keys and their values, as written in the
// YAML (numbers and booleans in their YAML spelling).
type Extra map[string]string

var extraType = reflect.TypeFor[Extra]()

// Keys reports the keys in sorted order (the order they are rendered in).
func (e Extra) Keys() []string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// SystemProperty reports whether key must be passed to the JVM as
// -D<key>=<value> rather than written to zoo.cfg.
func SystemProperty(key string) bool {
	s, ok := knownSettings[key]
	return ok && s.sysprop
}

// GCLogFlag is the JVM's unified GC logging option for a log directory:
// bounded (5 files of 20 MiB, rotated by the JVM) and on the data volume,
// where zookeeper.service may write (ReadWritePaths= is the mount point).
// The JVM refuses to start if the directory does not exist, so firstboot
// creates it. https://docs.oracle.com/en/java/javase/17/docs/specs/man/java.html#enable-logging-with-the-jvm-unified-logging-framework
func GCLogFlag(logDir string) string {
	return "-Xlog:gc*:file=" + logDir + "/gc.log:time,uptime,level,tags:filecount=5,filesize=20m"
}

type settingKind int

const (
	kindInt          settingKind = iota // a decimal integer within [min, max]
	kindBool                            // true or false (QuorumPeerConfig.parseBoolean)
	kindYesNo                           // yes or no (the server compares the string)
	kindEnum                            // one of enum
	kindCipherSuites                    // comma-separated JSSE cipher suite names
)

// setting is one zoo.cfg key zkaas knows: its type, bounds, unit and where
// the Administrator's Guide documents it.
type setting struct {
	kind     settingKind
	min, max int64
	unit     string
	enum     []string
	fold     bool   // enum: ZooKeeper (or the JDK) ignores case
	list     bool   // enum: a comma-separated list of members (String.split(","), no trimming)
	sysprop  bool   // a JVM system property, not a zoo.cfg key
	doc      string // anchor in the Administrator's Guide
	warnWhen string // a value that deserves a warning
	warn     string
}

const maxInt32 = math.MaxInt32

// knownSettings are the keys large ensembles tune (Kafka's ZooKeeper
// especially). Bounds are ZooKeeper's where it has them, else what makes
// sense (a positive count). Each key was checked against Debian's 3.8.0
// jar: QuorumPeerConfig parses it, or the class that reads the system
// property zookeeper.<key> does (ZooKeeperServer: globalOutstandingLimit,
// snapCount, snapSizeLimitInKb, skipACL; FilePadding: preAllocSize;
// ZKDatabase: commitLogCount; FileTxnLog: forceSync ("no" turns it off),
// fsync.warningthresholdms; QuorumCnxManager: cnxTimeout, tcpKeepAlive;
// Leader: leaderServes; SnapStream: snapshot.compression.method;
// ServerCnxnFactory: maxCnxns).
var knownSettings = map[string]setting{
	// Largest znode or request, in bytes; default 0xfffff. Must be the same
	// on servers and clients (Kafka brokers: -Djute.maxbuffer too).
	"jute.maxbuffer": {kind: kindInt, min: 1024, max: maxInt32, unit: "bytes", sysprop: true, doc: "#Unsafe+Options"},
	// Transactions between snapshots; ZooKeeper randomises the point within
	// [snapCount/2, snapCount], so fewer than 2 makes no sense.
	"snapCount":         {kind: kindInt, min: 2, max: maxInt32, unit: "transactions", doc: "#sc_advancedConfiguration"},
	"snapSizeLimitInKb": {kind: kindInt, min: 0, max: math.MaxInt64, unit: "KB (0 disables)", doc: "#sc_advancedConfiguration"},
	"preAllocSize":      {kind: kindInt, min: 1, max: maxInt32, unit: "KB", doc: "#sc_advancedConfiguration"},
	"commitLogCount":    {kind: kindInt, min: 1, max: maxInt32, unit: "transactions", doc: "#sc_advancedConfiguration"},
	// Requests queued before the server throttles clients; default 1000.
	"globalOutstandingLimit": {kind: kindInt, min: 1, max: maxInt32, unit: "requests", doc: "#sc_advancedConfiguration"},
	// Connections per client IP (default 60; 0 is unlimited). Kafka
	// brokers behind one NAT address need more.
	"maxClientCnxns":          {kind: kindInt, min: 0, max: maxInt32, unit: "connections (0 is unlimited)", doc: "#sc_advancedConfiguration"},
	"maxCnxns":                {kind: kindInt, min: 0, max: maxInt32, unit: "connections (0 is unlimited)", doc: "#sc_advancedConfiguration"},
	"clientPortListenBacklog": {kind: kindInt, min: 1, max: maxInt32, unit: "connections", doc: "#sc_advancedConfiguration"},
	// Checked against each other and tick_time in checkSessionTimeouts.
	"minSessionTimeout": {kind: kindInt, min: 1, max: maxInt32, unit: "ms", doc: "#sc_advancedConfiguration"},
	"maxSessionTimeout": {kind: kindInt, min: 1, max: maxInt32, unit: "ms", doc: "#sc_advancedConfiguration"},
	// Leader election connection timeout (default 5000).
	"cnxTimeout":                    {kind: kindInt, min: 1, max: maxInt32, unit: "ms", doc: "#sc_clusterOptions"},
	"connectToLearnerMasterLimit":   {kind: kindInt, min: 0, max: maxInt32, unit: "ticks (0 means init_limit)", doc: "#sc_clusterOptions"},
	"syncEnabled":                   {kind: kindBool, doc: "#sc_clusterOptions"},
	"tcpKeepAlive":                  {kind: kindBool, doc: "#sc_clusterOptions"},
	"localSessionsEnabled":          {kind: kindBool, doc: "#sc_advancedConfiguration"},
	"localSessionsUpgradingEnabled": {kind: kindBool, doc: "#sc_advancedConfiguration"},
	"leaderServes":                  {kind: kindYesNo, doc: "#sc_clusterOptions"},
	"forceSync": {kind: kindYesNo, doc: "#Unsafe+Options", warnWhen: "no",
		warn: "transactions are acknowledged before they reach the disk: a power loss of a quorum loses committed data"},
	// skipACL=yes turns every znode's ACL off (the Guide's Unsafe Options):
	// allowed with a warning, refused on a hardened image.
	"skipACL": {kind: kindYesNo, doc: "#Unsafe+Options", warnWhen: "yes",
		warn: "every client may read and change every znode, whatever its ACL"},
	"fsync.warningthresholdms":    {kind: kindInt, min: 0, max: math.MaxInt64, unit: "ms", doc: "#sc_advancedConfiguration"},
	"snapshot.compression.method": {kind: kindEnum, enum: []string{"", "gz", "snappy"}, doc: "#sc_advancedConfiguration"},
	// The JVM pause monitor logs stop-the-world pauses next to the GC log.
	"jvm.pause.monitor":           {kind: kindBool, doc: "#sc_advancedConfiguration"},
	"jvm.pause.info-threshold.ms": {kind: kindInt, min: 1, max: math.MaxInt64, unit: "ms", doc: "#sc_advancedConfiguration"},
	"jvm.pause.warn-threshold.ms": {kind: kindInt, min: 1, max: math.MaxInt64, unit: "ms", doc: "#sc_advancedConfiguration"},
	"jvm.pause.sleep.time.ms":     {kind: kindInt, min: 1, max: math.MaxInt64, unit: "ms", doc: "#sc_advancedConfiguration"},
}

// sslSettings are X509Util's tunables, checked in Debian's 3.8.0 jar
// (javap -c X509Util: the keys are <prefix>protocol, enabledProtocols,
// ciphersuites, clientAuth, handshakeDetectionTimeoutMillis, with prefix
// ssl. for ClientX509Util and ssl.quorum. for QuorumX509Util, read from
// zoo.cfg as zookeeper.<key> properties). protocol is SSLContext.getInstance's
// algorithm (the JCA ignores case); enabledProtocols and ciphersuites are
// split on "," and handed to the SSLEngine, which matches names exactly;
// ClientAuth.fromPropertyValue upper-cases the value and takes NONE, WANT
// or NEED (empty is NEED; anything else throws and the server dies). The
// JDK 17 of the image disables TLSv1 and TLSv1.1 (jdk.tls.disabledAlgorithms).
var sslSettings = map[string]setting{
	"protocol":                        {kind: kindEnum, enum: []string{"TLSv1.3", "TLSv1.2", "TLS"}, fold: true, doc: "#sc_authOptions"},
	"enabledProtocols":                {kind: kindEnum, enum: []string{"TLSv1.3", "TLSv1.2"}, list: true, doc: "#sc_authOptions"},
	"ciphersuites":                    {kind: kindCipherSuites, doc: "#sc_authOptions"},
	"clientAuth":                      {kind: kindEnum, enum: []string{"none", "want", "need"}, fold: true, doc: "#sc_authOptions"},
	"handshakeDetectionTimeoutMillis": {kind: kindInt, min: 1, max: maxInt32, unit: "ms", doc: "#sc_authOptions"},
}

func init() {
	for k, s := range sslSettings {
		knownSettings["ssl."+k] = s
		knownSettings["ssl.quorum."+k] = s
	}
}

// cipherSuiteRe is a JSSE cipher suite name (TLS_AES_128_GCM_SHA256,
// TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, ...).
var cipherSuiteRe = regexp.MustCompile(`^(TLS|SSL)_[A-Z0-9_]+$`)

// ownedSetting is a key zkaas renders itself: why, and what to set instead.
type ownedSetting struct{ why, instead string }

var ownedSettings = map[string]ownedSetting{
	"clientPort":              {"zkaas renders it", "zookeeper.client_port"},
	"clientPortAddress":       {"zkaas binds the client port to the node's ENI address", "nodes[].ip"},
	"dataDir":                 {"the data lives on the node's EBS volume", "volume.mount_point"},
	"dataLogDir":              {"the transaction log lives on the node's EBS volume", "volume.mount_point"},
	"tickTime":                {"zkaas renders it and checks the other timeouts against it", "zookeeper.tick_time"},
	"initLimit":               {"zkaas renders it", "zookeeper.init_limit"},
	"syncLimit":               {"zkaas renders it", "zookeeper.sync_limit"},
	"standaloneEnabled":       {"a zkaas ensemble is static and never falls back to standalone", "nodes"},
	"reconfigEnabled":         {"a zkaas ensemble is static: membership is the nodes list", "nodes"},
	"dynamicConfigFile":       {"a zkaas ensemble is static: membership is the nodes list", "nodes"},
	"peerType":                {"every node of a zkaas ensemble is a voting participant", "nodes"},
	"quorumListenOnAllIPs":    {"quorum and election ports bind to the node's ENI address", "nodes[].ip"},
	"4lw.commands.whitelist":  {"zkaas renders it (srvr always included: the quorum probe needs it)", "zookeeper.four_letter_words"},
	"datadir.autocreate":      {"an unmounted volume must stop ZooKeeper, not be papered over on the root disk", "volume.mount_point"},
	"db.autocreate":           {"firstboot decides when an empty data tree is trusted (the initialize marker)", "claim.bootstrap_window"},
	"snapshot.trust.empty":    {"firstboot decides when an empty data tree is trusted (the initialize marker)", "claim.bootstrap_window"},
	"zookeeper.db.autocreate": {"firstboot decides when an empty data tree is trusted (the initialize marker)", "claim.bootstrap_window"},
	// TLS (tls.go): the stores are fetched at boot into a private tmpfs
	// directory, the secure port binds to the ENI address, and the
	// certificate is checked against the node before ZooKeeper starts.
	"serverCnxnFactory":               {"zkaas renders it (Netty when client TLS is on)", "zookeeper.tls.client"},
	"secureClientPort":                {"zkaas renders it", "zookeeper.tls.secure_client_port"},
	"secureClientPortAddress":         {"zkaas binds the secure client port to the node's ENI address", "nodes[].ip"},
	"sslQuorum":                       {"zkaas renders it", "zookeeper.tls.quorum"},
	"portUnification":                 {"zkaas renders it", "zookeeper.tls.quorum_port_unification"},
	"client.portUnification":          {"zkaas renders it", "zookeeper.tls.client_port_unification"},
	"authProvider.x509":               {"zkaas registers the x509 provider TLS clients need", "zookeeper.tls.client"},
	"ssl.quorum.hostnameVerification": {"peers are verified against their ENI address, which their certificate must carry", "zookeeper.tls.keystore"},
	"sslQuorumReloadCertFiles":        {"the stores are fetched at every boot into tmpfs, not reloaded", "zookeeper.tls.keystore"},
	// SASL (sasl.go): the quorum's authentication threads are sized to the
	// ensemble, and client enforcement follows zookeeper.sasl.
	"quorum.cnxn.threads.size":     {"zkaas sizes the quorum's SASL threads to the ensemble (twice the nodes, at least 20)", "zookeeper.sasl.quorum"},
	"sessionRequireClientSASLAuth": {"zkaas renders client SASL enforcement (enforce.auth.*)", "zookeeper.sasl.client_required"},
}

// ownedPrefixes are families of keys zkaas renders.
var ownedPrefixes = []struct {
	prefix string
	owned  ownedSetting
}{
	{"server.", ownedSetting{"zkaas renders every server line from the nodes list", "nodes"}},
	{"group.", ownedSetting{"hierarchical quorums are not supported: every node votes with weight 1", "nodes"}},
	{"weight.", ownedSetting{"hierarchical quorums are not supported: every node votes with weight 1", "nodes"}},
	{"admin.", ownedSetting{"zkaas renders the AdminServer (off, or on localhost only)", "zookeeper.admin_server"}},
	{"autopurge.", ownedSetting{"zkaas renders it", "zookeeper.autopurge"}},
	// TLS stores: fetched at boot (zookeeper.tls); other ssl.* keys
	// (protocol, ciphersuites, clientAuth, ...) stay the operator's.
	{"ssl.keyStore.", ownedSetting{"zkaas writes the keystore it fetched at boot", "zookeeper.tls.keystore"}},
	{"ssl.trustStore.", ownedSetting{"zkaas writes the truststore it fetched at boot", "zookeeper.tls.truststore"}},
	{"ssl.quorum.keyStore.", ownedSetting{"zkaas writes the keystore it fetched at boot", "zookeeper.tls.keystore"}},
	{"ssl.quorum.trustStore.", ownedSetting{"zkaas writes the truststore it fetched at boot", "zookeeper.tls.truststore"}},
	// The provider's endpoint is bound to the ENI address and opened in the
	// security group, and the image is checked to have the jar (metrics.go).
	{"metricsProvider.", ownedSetting{"zkaas renders the Prometheus provider, bound to the node's ENI address, where the image has its jar", "metrics.zookeeper"}},
	// SASL (sasl.go): the JAAS file is rendered from secrets, so nothing of
	// it may come from zoo.cfg, which every user of the instance can read.
	// (authProvider.x509 is TLS's, above.)
	{"quorum.auth.", ownedSetting{"zkaas renders quorum SASL and the JAAS sections it logs in with", "zookeeper.sasl"}},
	{"authProvider.", ownedSetting{"zkaas registers the SASL provider with zookeeper.sasl.clients", "zookeeper.sasl"}},
	{"enforce.auth.", ownedSetting{"zkaas renders client SASL enforcement", "zookeeper.sasl.client_required"}},
	{"sasl.", ownedSetting{"zkaas renders the JAAS file and names its sections", "zookeeper.sasl"}},
	{"SASLAuthenticationProvider.", ownedSetting{"a password in zoo.cfg is readable by every user of the instance", "zookeeper.sasl"}},
}

func owned(key string) (ownedSetting, bool) {
	if o, ok := ownedSettings[key]; ok {
		return o, true
	}
	for _, p := range ownedPrefixes {
		if strings.HasPrefix(key, p.prefix) {
			return p.owned, true
		}
	}
	return ownedSetting{}, false
}

// extraKeyRe is what a java.util.Properties key can be without escapes:
// no separators ('=', ':', whitespace), no comment characters, no
// backslash. ZooKeeper's own keys all fit.
var extraKeyRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// decodeExtra reads zookeeper.extra: a mapping of keys to scalar values.
// Only the shape is checked here; what the keys mean is checked by the
// validator, which knows tick_time and the ports however the file orders
// them.
func (d *decoder) decodeExtra(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping of zoo.cfg keys to values, got %s", describe(n))
		return
	}
	extra := Extra{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if val.Kind == yaml.AliasNode {
			val = val.Alias
		}
		fp := path + "." + key.Value
		switch {
		case key.Kind != yaml.ScalarNode:
			d.errorf(key, path, "want a zoo.cfg key, got %s", describe(key))
			continue
		case !extraKeyRe.MatchString(key.Value):
			d.errorf(key, fp, "%q is not a zoo.cfg key: letters, digits, '.', '_' and '-', starting with a letter or digit (no '=', ':' or whitespace)", key.Value)
			continue
		}
		if _, dup := extra[key.Value]; dup {
			d.errorf(key, fp, "set twice")
			continue
		}
		d.lines[fp] = key.Line
		if val.Kind != yaml.ScalarNode || val.Tag == "!!null" {
			d.errorf(val, fp, "want a string or a number, got %s", describe(val))
			continue
		}
		switch val.Tag {
		case "!!str", "!!int", "!!float", "!!bool":
		default:
			d.errorf(val, fp, "want a string or a number, got %s %q", val.Tag, val.Value)
			continue
		}
		// java.util.Properties reads a backslash as an escape (at the end
		// of a line, a continuation) and ends the value at a line break: a
		// value with either could smuggle in a key of its own. '=' and ':'
		// in a value are harmless (only the first separator splits).
		if i := strings.IndexFunc(val.Value, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }); i >= 0 {
			d.errorf(val, fp, "%q: a value may not contain a line break, a control character or a backslash", val.Value)
			continue
		}
		if strings.TrimSpace(val.Value) != val.Value {
			d.errorf(val, fp, "%q: ZooKeeper trims surrounding whitespace: remove it", val.Value)
			continue
		}
		extra[key.Value] = val.Value
	}
	v.Set(reflect.ValueOf(extra))
}

// zookeeperSettings checks zookeeper.extra, jvm_flags and gc_log; it needs
// the whole config (tick_time, the ports, the mount point).
func (v *validator) zookeeperSettings(c *Config) {
	z := &c.ZooKeeper
	known := make([]string, 0, len(knownSettings))
	for k := range knownSettings {
		known = append(known, k)
	}
	slices.Sort(known)
	ints := map[string]int64{}
	for _, key := range z.Extra.Keys() {
		val, f := z.Extra[key], "zookeeper.extra."+key
		if o, ok := owned(key); ok {
			v.errorf(f, "%s is zkaas's to set (%s): use %s", key, o.why, o.instead)
			continue
		}
		if rest, ok := strings.CutPrefix(key, "zookeeper."); ok {
			v.errorf(f, "ZooKeeper adds the zookeeper. prefix itself (%s becomes the system property zookeeper.%s): write %s", key, key, rest)
			continue
		}
		s, ok := knownSettings[key]
		if !ok {
			msg := fmt.Sprintf("%s is not a setting zkaas knows: written to zoo.cfg unchecked", key)
			if sug := suggest.Closest(key, known); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			}
			v.warnf(f, "%s", msg)
			continue
		}
		if n, ok := v.checkSetting(f, key, val, s); ok && s.kind == kindInt {
			ints[key] = n
		}
	}
	v.checkSessionTimeouts(z, ints)
	v.jvmFlags(z)
	if z.GCLog {
		if mp := c.Volume.MountPoint; strings.ContainsAny(mp, ":,\"' \t$`\\") {
			v.errorf("zookeeper.gc_log", "the GC log goes under volume.mount_point %q, and -Xlog cannot name a path with ':', ',', quotes or whitespace: change the mount point or set gc_log: false", mp)
		}
	}
}

// checkSetting type-checks one known key and normalises nothing: the value
// is rendered as written.
func (v *validator) checkSetting(f, key, val string, s setting) (int64, bool) {
	ref := "https://zookeeper.apache.org/doc/r3.8.4/zookeeperAdmin.html" + s.doc
	switch s.kind {
	case kindInt:
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			v.errorf(f, "%q: want an integer (%s; %s)", val, s.unit, ref)
			return 0, false
		}
		switch {
		case n < s.min:
			v.errorf(f, "%d: want at least %d %s", n, s.min, s.unit)
			return 0, false
		case n > s.max:
			// The server parses these with Integer.parseInt or Long.parseLong.
			v.errorf(f, "%d: want at most %d %s", n, s.max, s.unit)
			return 0, false
		}
		return n, true
	case kindBool:
		if val != "true" && val != "false" {
			v.errorf(f, "%q: want true or false (ZooKeeper refuses anything else)", val)
			return 0, false
		}
	case kindYesNo:
		if val != "yes" && val != "no" {
			v.errorf(f, "%q: want yes or no (%s)", val, ref)
			return 0, false
		}
	case kindEnum:
		members := []string{val}
		if s.list {
			members = strings.Split(val, ",")
		}
		for _, m := range members {
			if !slices.ContainsFunc(s.enum, func(e string) bool { return e == m || s.fold && strings.EqualFold(e, m) }) {
				v.errorf(f, "%q: want one of %q", m, s.enum)
				return 0, false
			}
		}
		// ssl.quorum.clientAuth other than need with quorum TLS: tls().
	case kindCipherSuites:
		for _, m := range strings.Split(val, ",") {
			if !cipherSuiteRe.MatchString(m) {
				v.errorf(f, "%q is not a cipher suite name such as TLS_AES_128_GCM_SHA256 (a comma-separated list, no spaces)", m)
				return 0, false
			}
		}
	}
	if s.warnWhen != "" && val == s.warnWhen {
		v.warnf(f, "%s=%s: %s", key, val, s.warn)
	}
	return 0, true
}

// checkSessionTimeouts applies QuorumPeerConfig's rule: unset, the minimum
// is 2 ticks and the maximum 20, and the server does not start when the
// minimum exceeds the maximum — so setting only one can break the other's
// default.
func (v *validator) checkSessionTimeouts(z *ZooKeeper, ints map[string]int64) {
	tick := int64(z.TickTime)
	lo, loSet := ints["minSessionTimeout"]
	hi, hiSet := ints["maxSessionTimeout"]
	_, loGiven := z.Extra["minSessionTimeout"]
	_, hiGiven := z.Extra["maxSessionTimeout"]
	if (loGiven && !loSet) || (hiGiven && !hiSet) {
		return // already reported
	}
	if !loSet {
		lo = 2 * tick
	}
	if !hiSet {
		hi = 20 * tick
	}
	if lo > hi {
		switch {
		case loSet && hiSet:
			v.errorf("zookeeper.extra.minSessionTimeout", "%d ms is above maxSessionTimeout (%d ms): ZooKeeper refuses to start", lo, hi)
		case loSet:
			v.errorf("zookeeper.extra.minSessionTimeout", "%d ms is above the default maxSessionTimeout, 20 ticks (%d ms at tick_time %d): ZooKeeper refuses to start; set maxSessionTimeout too", lo, hi, tick)
		default:
			v.errorf("zookeeper.extra.maxSessionTimeout", "%d ms is below the default minSessionTimeout, 2 ticks (%d ms at tick_time %d): ZooKeeper refuses to start; set minSessionTimeout too", hi, lo, tick)
		}
		return
	}
	// Sessions expire in tick-sized buckets: a timeout under two ticks
	// cannot be honoured, and clients asking for it get the minimum.
	if loSet && lo < 2*tick {
		v.warnf("zookeeper.extra.minSessionTimeout", "%d ms is under 2 ticks (%d ms at tick_time %d): sessions expire in tick-sized buckets", lo, 2*tick, tick)
	}
}

// jvmFlagRe is what a flag may contain: the JVM's option syntax without
// anything java.env's two readers would interpret — zkEnv.sh sources it
// (quotes, '$', '`', '\' inside double quotes) and systemd's
// EnvironmentFile= splits $SERVER_JVMFLAGS at whitespace.
var jvmFlagRe = regexp.MustCompile(`^-[A-Za-z0-9_.,:=+/@%*#~-]+$`)

// heapFlags set what zookeeper.heap sets.
var heapFlags = []string{"-Xmx", "-Xms", "-XX:MaxHeapSize=", "-XX:InitialHeapSize=", "-XX:MinHeapSize="}

func (v *validator) jvmFlags(z *ZooKeeper) {
	for i, flag := range z.JVMFlags {
		f := fmt.Sprintf("zookeeper.jvm_flags[%d]", i)
		why, risky := riskyFlag(flag)
		switch {
		case !strings.HasPrefix(flag, "-"):
			v.errorf(f, "%q: a JVM flag starts with '-'", flag)
		case strings.ContainsFunc(flag, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			v.errorf(f, "%q: one flag per list item, without whitespace or control characters", flag)
		case !jvmFlagRe.MatchString(flag):
			var bad rune
			for _, r := range flag {
				if !jvmFlagRe.MatchString("-" + string(r)) {
					bad = r
					break
				}
			}
			v.errorf(f, "%q: %q is not allowed in a flag (java.env is read by a shell and by systemd)", flag, string(bad))
		case slices.ContainsFunc(heapFlags, func(p string) bool { return strings.HasPrefix(flag, p) }):
			v.errorf(f, "%q sets the heap: use zookeeper.heap", flag)
		case slices.ContainsFunc(saslFlagPrefixes, func(p string) bool { return strings.HasPrefix(flag, p) }):
			v.errorf(f, "%q: zkaas renders ZooKeeper's JAAS file and authentication providers: use zookeeper.sasl (or zookeeper.tls for x509)", flag)
		case strings.HasPrefix(flag, "-Djute.maxbuffer="):
			v.errorf(f, "%q: use zookeeper.extra jute.maxbuffer (type-checked, rendered as this flag)", flag)
		case risky:
			v.warnf(f, "%q %s", flag, why)
		case z.GCLog && strings.HasPrefix(flag, "-Xlog:gc"):
			v.warnf(f, "%q: zkaas already logs GC to the data volume (zookeeper.gc_log); both apply", flag)
		}
	}
}

// riskyFlags open the JVM to the network or switch ZooKeeper's ACLs off:
// a remote debugger (JDWP), remote JMX, skipACL. They are warned about, and
// refused on a hardened image.
var riskyFlags = []struct{ prefix, why string }{
	{"-agentlib:jdwp", "opens a remote debugger: whoever reaches its port runs code in ZooKeeper"},
	{"-Xrunjdwp", "opens a remote debugger: whoever reaches its port runs code in ZooKeeper"},
	{"-Dcom.sun.management.jmxremote", "opens remote JMX, which can change the server's state"},
	{"-Dzookeeper.skipACL=", "switches every znode's ACL off"},
}

func riskyFlag(flag string) (string, bool) {
	for _, r := range riskyFlags {
		if strings.HasPrefix(flag, r.prefix) {
			return r.why, true
		}
	}
	return "", false
}

// hardenedSettings is the hardening role's limit on the settings: no
// setting that switches ACLs off or opens the JVM to the network.
func (v *validator) hardenedSettings(z *ZooKeeper) {
	if z.Extra["skipACL"] == "yes" {
		v.errorf("zookeeper.extra.skipACL", "this image is hardened: ACLs stay on")
	}
	for i, flag := range z.JVMFlags {
		if why, ok := riskyFlag(flag); ok {
			v.errorf(fmt.Sprintf("zookeeper.jvm_flags[%d]", i), "%q: this image is hardened: the flag %s", flag, why)
		}
	}
}

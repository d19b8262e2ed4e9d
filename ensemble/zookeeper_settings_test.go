package ensemble

import (
	"slices"
	"strings"
	"testing"
)

// zk puts lines under zookeeper: after base (5 lines), so "zookeeper:" is
// line 6 and the first line given is line 7.
func zk(lines ...string) string {
	return base + "zookeeper:\n" + strings.Join(lines, "\n") + "\n"
}

func TestZooKeeperSettingsValid(t *testing.T) {
	cfg, warns, err := Parse("ensemble.yaml", []byte(zk(
		"  extra:",
		"    jute.maxbuffer: 4194304",
		"    snapCount: 50000",
		"    maxClientCnxns: 0",
		"    syncEnabled: true",
		"    forceSync: \"yes\"",
		"    minSessionTimeout: 6000",
		"    maxSessionTimeout: 60000",
		"    snapshot.compression.method: snappy",
		"  jvm_flags: [-XX:+UseG1GC, -XX:MaxGCPauseMillis=200, -Djava.net.preferIPv4Stack=true]",
	)))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	z := cfg.ZooKeeper
	want := Extra{
		"jute.maxbuffer": "4194304", "snapCount": "50000", "maxClientCnxns": "0", "syncEnabled": "true",
		"forceSync": "yes", "minSessionTimeout": "6000", "maxSessionTimeout": "60000", "snapshot.compression.method": "snappy",
	}
	if len(z.Extra) != len(want) {
		t.Errorf("extra = %v, want %v", z.Extra, want)
	}
	for k, v := range want {
		if z.Extra[k] != v {
			t.Errorf("extra[%s] = %q, want %q", k, z.Extra[k], v)
		}
	}
	if !slices.Equal(z.JVMFlags, []string{"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=200", "-Djava.net.preferIPv4Stack=true"}) {
		t.Errorf("jvm_flags = %q", z.JVMFlags)
	}
	if !z.GCLog {
		t.Error("gc_log is off by default")
	}
	if !SystemProperty("jute.maxbuffer") || SystemProperty("snapCount") || SystemProperty("secureClientPort") {
		t.Error("SystemProperty: only jute.maxbuffer is a system property")
	}
	if got := z.Extra.Keys(); !slices.IsSorted(got) || len(got) != len(want) {
		t.Errorf("Keys() = %q", got)
	}

	off, _, err := Parse("x", []byte(zk("  gc_log: false")))
	if err != nil || off.ZooKeeper.GCLog {
		t.Errorf("gc_log: false → %v, %v", off.ZooKeeper.GCLog, err)
	}
}

func TestZooKeeperSettingsErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		// Keys zkaas owns: refused with the reason and the field to use.
		{"clientPort", zk("  extra:", "    clientPort: 2182"), "line 8: zookeeper.extra.clientPort: clientPort is zkaas's to set (zkaas renders it): use zookeeper.client_port"},
		{"dataDir", zk("  extra:", "    dataDir: /data"), "line 8: zookeeper.extra.dataDir: dataDir is zkaas's to set (the data lives on the node's EBS volume): use volume.mount_point"},
		{"server.N", zk("  extra:", "    server.4: 10.0.1.11:2888:3888"), "line 8: zookeeper.extra.server.4: server.4 is zkaas's to set (zkaas renders every server line from the nodes list): use nodes"},
		{"tickTime", zk("  extra:", "    tickTime: 3000"), "zookeeper.extra.tickTime: tickTime is zkaas's to set (zkaas renders it and checks the other timeouts against it): use zookeeper.tick_time"},
		{"initLimit", zk("  extra:", "    initLimit: 20"), "use zookeeper.init_limit"},
		{"whitelist", zk("  extra:", "    4lw.commands.whitelist: \"*\""), "line 8: zookeeper.extra.4lw.commands.whitelist: 4lw.commands.whitelist is zkaas's to set"},
		{"admin", zk("  extra:", "    admin.serverAddress: 0.0.0.0"), "use zookeeper.admin_server"},
		{"autopurge", zk("  extra:", "    autopurge.purgeInterval: 1"), "use zookeeper.autopurge"},
		{"reconfig", zk("  extra:", "    reconfigEnabled: true"), "a zkaas ensemble is static"},
		{"standalone", zk("  extra:", "    standaloneEnabled: true"), "zookeeper.extra.standaloneEnabled"},
		{"dynamic config", zk("  extra:", "    dynamicConfigFile: /x"), "zookeeper.extra.dynamicConfigFile"},
		{"db.autocreate", zk("  extra:", "    db.autocreate: true"), "firstboot decides when an empty data tree is trusted"},
		{"prefixed key", zk("  extra:", "    zookeeper.snapCount: 1000"), "line 8: zookeeper.extra.zookeeper.snapCount: ZooKeeper adds the zookeeper. prefix itself"},

		// Typed keys.
		{"int as text", zk("  extra:", "    jute.maxbuffer: 4MB"), "line 8: zookeeper.extra.jute.maxbuffer: \"4MB\": want an integer (bytes"},
		{"float", zk("  extra:", "    snapCount: 1.5"), "zookeeper.extra.snapCount: \"1.5\": want an integer"},
		{"snapCount 1", zk("  extra:", "    snapCount: 1"), "line 8: zookeeper.extra.snapCount: 1: want at least 2 transactions"},
		{"beyond an int", zk("  extra:", "    snapCount: 3000000000"), "zookeeper.extra.snapCount: 3000000000: want at most 2147483647 transactions"},
		{"negative cnxns", zk("  extra:", "    maxClientCnxns: -1"), "zookeeper.extra.maxClientCnxns: -1: want at least 0"},
		{"preAllocSize 0", zk("  extra:", "    preAllocSize: 0"), "zookeeper.extra.preAllocSize: 0: want at least 1 KB"},
		{"bool", zk("  extra:", "    syncEnabled: \"on\""), "zookeeper.extra.syncEnabled: \"on\": want true or false"},
		{"yes/no", zk("  extra:", "    forceSync: true"), "zookeeper.extra.forceSync: \"true\": want yes or no"},
		{"enum", zk("  extra:", "    snapshot.compression.method: zstd"), "want one of"},
		{"metrics provider", zk("  extra:", "    metricsProvider.className: org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"), "line 8: zookeeper.extra.metricsProvider.className: metricsProvider.className is zkaas's to set (zkaas renders the Prometheus provider, bound to the node's ENI address, where the image has its jar): use metrics.zookeeper"},
		{"metrics port", zk("  extra:", "    metricsProvider.httpPort: 7001"), "zookeeper.extra.metricsProvider.httpPort: metricsProvider.httpPort is zkaas's to set"},
		{"min above max", zk("  extra:", "    minSessionTimeout: 30000", "    maxSessionTimeout: 20000"), "line 8: zookeeper.extra.minSessionTimeout: 30000 ms is above maxSessionTimeout (20000 ms)"},
		{"min above default max", zk("  tick_time: 1000", "  extra:", "    minSessionTimeout: 30000"), "line 9: zookeeper.extra.minSessionTimeout: 30000 ms is above the default maxSessionTimeout, 20 ticks (20000 ms at tick_time 1000)"},
		{"max below default min", zk("  extra:", "    maxSessionTimeout: 3000", "  tick_time: 2000"), "zookeeper.extra.maxSessionTimeout: 3000 ms is below the default minSessionTimeout, 2 ticks (4000 ms"},

		// Shape and injection.
		{"not a mapping", zk("  extra: [snapCount]"), "line 7: zookeeper.extra: want a mapping of zoo.cfg keys to values, got a list"},
		{"list value", zk("  extra:", "    snapCount: [1]"), "line 8: zookeeper.extra.snapCount: want a string or a number, got a list"},
		{"null value", zk("  extra:", "    snapCount:"), "zookeeper.extra.snapCount: want a string or a number, got nothing"},
		{"key with =", zk("  extra:", "    \"a=b\": c"), "line 8: zookeeper.extra.a=b: \"a=b\" is not a zoo.cfg key"},
		{"key with space", zk("  extra:", "    \"a b\": c"), "is not a zoo.cfg key"},
		{"newline in value", zk("  extra:", "    foo: \"x\\nclientPort=1\""), "zookeeper.extra.foo: \"x\\nclientPort=1\": a value may not contain a line break"},
		{"backslash continuation", zk("  extra:", "    foo: \"x\\\\\""), "may not contain a line break, a control character or a backslash"},
		{"set twice", zk("  extra:", "    snapCount: 2", "    snapCount: 3"), "line 9: zookeeper.extra.snapCount: set twice"},

		// jvm_flags.
		{"no dash", zk("  jvm_flags: [XX:+UseG1GC]"), "line 7: zookeeper.jvm_flags[0]: \"XX:+UseG1GC\": a JVM flag starts with '-'"},
		{"two flags in one", zk("  jvm_flags: [\"-Da=1 -Db=2\"]"), "zookeeper.jvm_flags[0]: \"-Da=1 -Db=2\": one flag per list item"},
		{"newline flag", zk("  jvm_flags: [\"-Da=1\\nX=1\"]"), "one flag per list item"},
		{"quote", zk("  jvm_flags: [\"-Da=\\\"x\\\"\"]"), "is not allowed in a flag"},
		{"dollar", zk("  jvm_flags: [\"-Da=$(id)\"]"), "\"$\" is not allowed in a flag"},
		{"Xmx", zk("  jvm_flags: [-XX:+UseG1GC, -Xmx4g]"), "line 7: zookeeper.jvm_flags[1]: \"-Xmx4g\" sets the heap: use zookeeper.heap"},
		{"Xms", zk("  jvm_flags: [-Xms4g]"), "sets the heap: use zookeeper.heap"},
		{"MaxHeapSize", zk("  jvm_flags: [-XX:MaxHeapSize=4g]"), "sets the heap: use zookeeper.heap"},
		{"jute as flag", zk("  jvm_flags: [-Djute.maxbuffer=4194304]"), "use zookeeper.extra jute.maxbuffer"},

		// gc_log.
		{"gc_log type", zk("  gc_log: off"), "line 7: zookeeper.gc_log: want true or false"},
		{"gc log path", base + "volume:\n  mount_point: /data:zk\n", "zookeeper.gc_log: the GC log goes under volume.mount_point \"/data:zk\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkParse(t, tt.yaml, Options{}, tt.want) })
	}
}

func TestZooKeeperSettingsWarnings(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown key", zk("  extra:", "    ssl.context.supplier.class: com.example.Supplier"), "line 8: zookeeper.extra.ssl.context.supplier.class: ssl.context.supplier.class is not a setting zkaas knows: written to zoo.cfg unchecked"},
		{"typo", zk("  extra:", "    snapcount: 1000"), "line 8: zookeeper.extra.snapcount: snapcount is not a setting zkaas knows: written to zoo.cfg unchecked (did you mean \"snapCount\"?)"},
		{"forceSync no", zk("  extra:", "    forceSync: \"no\""), "zookeeper.extra.forceSync: forceSync=no: transactions are acknowledged before they reach the disk"},
		{"tiny session", zk("  extra:", "    minSessionTimeout: 1000"), "line 8: zookeeper.extra.minSessionTimeout: 1000 ms is under 2 ticks (4000 ms at tick_time 2000)"},
		{"skipACL", zk("  extra:", "    skipACL: \"yes\""), "line 8: zookeeper.extra.skipACL: skipACL=yes: every client may read and change every znode"},
		{"jdwp", zk("  jvm_flags: [\"-agentlib:jdwp=transport=dt_socket,server=y,address=5005\"]"), "opens a remote debugger"},
		{"second gc log", zk("  jvm_flags: [\"-Xlog:gc:stdout\"]"), "line 7: zookeeper.jvm_flags[0]: \"-Xlog:gc:stdout\": zkaas already logs GC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warns, err := Parse("ensemble.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, w := range warns {
				all = append(all, w.Error())
			}
			if !slices.ContainsFunc(all, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("warnings %q do not contain %q", all, tt.want)
			}
		})
	}
}

// TestZooKeeperSettingsHardened: a hardened image refuses what switches
// ACLs off or opens the JVM to the network, in user data as in the file.
func TestZooKeeperSettingsHardened(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{zk("  extra:", "    skipACL: \"yes\""), "line 8: zookeeper.extra.skipACL: this image is hardened: ACLs stay on"},
		{zk("  jvm_flags: [-Dcom.sun.management.jmxremote.port=9010]"), "line 7: zookeeper.jvm_flags[0]: \"-Dcom.sun.management.jmxremote.port=9010\": this image is hardened: the flag opens remote JMX"},
		{zk("  jvm_flags: [-Dzookeeper.skipACL=yes]"), "this image is hardened: the flag switches every znode's ACL off"},
	} {
		if _, _, err := Parse("x", []byte(tt.yaml)); err != nil {
			t.Errorf("not hardened: %v", err)
		}
		_, _, err := ParseWith("x", []byte(tt.yaml), Options{Hardened: true})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("hardened: %v, want %q", err, tt.want)
		}
	}
}

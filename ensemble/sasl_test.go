package ensemble

import (
	"slices"
	"strings"
	"testing"
)

// sasl is base with a zookeeper.sasl section; lines starts at line 8.
func sasl(lines ...string) string {
	return base + "zookeeper:\n  sasl:\n" + strings.Join(lines, "\n") + "\n"
}

func TestSASLValid(t *testing.T) {
	cfg, warns, err := Parse("ensemble.yaml", []byte(sasl(
		"    quorum: true",
		"    quorum_password: {secretsmanager: zk/prod/quorum}",
		"    clients:",
		"      - {name: kafka, password: {ssm: /zk/prod/kafka}}",
		"      - {name: kafka-admin.ops_1, password: {file: /etc/zkaas/admin.password}}",
		"    client_required: true",
	)))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	s := cfg.ZooKeeper.SASL
	if !s.On() || !s.Quorum || s.QuorumMigration != "" || !s.ClientRequired || len(s.Clients) != 2 || s.Clients[1].Name != "kafka-admin.ops_1" {
		t.Errorf("parsed %+v", s)
	}
	var fields []string
	for _, ns := range cfg.Secrets() {
		fields = append(fields, ns.Field+"="+ns.Secret.String())
	}
	want := []string{"zookeeper.sasl.quorum_password=secretsmanager:zk/prod/quorum",
		"zookeeper.sasl.clients[0].password=ssm:/zk/prod/kafka", "zookeeper.sasl.clients[1].password=file:/etc/zkaas/admin.password"}
	if !slices.Equal(fields, want) {
		t.Errorf("Secrets() = %q, want %q", fields, want)
	}

	// Off by default: no JAAS file, nothing fetched.
	def, _, err := Parse("ensemble.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if def.ZooKeeper.SASL.On() || def.ZooKeeper.SASL.ClientRequired || len(def.Secrets()) != 0 {
		t.Errorf("default SASL = %+v, secrets %v", def.ZooKeeper.SASL, def.Secrets())
	}
}

func TestSASLErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // "" = accepted
	}{
		{"quorum without password", sasl("    quorum: true"), "line 7: zookeeper.sasl.quorum_password: required: one of secretsmanager"},
		{"quorum password per node", sasl("    quorum: true", "    quorum_password: {ssm: \"/zk/node-{node}/quorum\"}"),
			"line 9: zookeeper.sasl.quorum_password.ssm: \"/zk/node-{node}/quorum\": every server checks its peers against the one quorum password: remove {node}"},
		{"quorum password two sources", sasl("    quorum: true", "    quorum_password: {ssm: /a, file: /b}"), "line 9: zookeeper.sasl.quorum_password: name exactly one of secretsmanager, ssm and file"},
		{"quorum password bad ARN", sasl("    quorum: true", "    quorum_password:", "      secretsmanager: arn:aws:secretsmanager:us-west-2:123456789012:secret:zk"),
			"line 10: zookeeper.sasl.quorum_password.secretsmanager: arn:aws:secretsmanager:us-west-2:123456789012:secret:zk is in region us-west-2 but the ensemble is in us-east-1"},
		{"migration without quorum", sasl("    quorum_migration: accept"), "line 8: zookeeper.sasl.quorum_migration: migrates a running ensemble to quorum SASL: set zookeeper.sasl.quorum too"},
		{"migration accept", sasl("    quorum: true", "    quorum_migration: accept", "    quorum_password: {file: /etc/zk/quorum}"), ""},
		{"migration authenticate", sasl("    quorum: true", "    quorum_migration: authenticate", "    quorum_password: {file: /etc/zk/quorum}"), ""},
		{"migration unknown", sasl("    quorum: true", "    quorum_migration: true", "    quorum_password: {file: /etc/zk/quorum}"),
			"line 9: zookeeper.sasl.quorum_migration: \"true\": want accept (the first roll), authenticate (the second) or nothing (quorum SASL required)"},
		{"client without name", sasl("    clients:", "      - password: {ssm: /k}"), "line 9: zookeeper.sasl.clients[0].name: required: the user name the client logs in as"},
		{"client without password", sasl("    clients:", "      - name: kafka"), "line 9: zookeeper.sasl.clients[0].password: required: one of secretsmanager"},
		{"client name with quote", sasl("    clients:", "      - {name: 'ka\"fka', password: {ssm: /k}}"), "line 9: zookeeper.sasl.clients[0].name: \"ka\\\"fka\" must be 1-64 letters, digits, '.', '_' or '-', starting with a letter"},
		{"client name with colon", sasl("    clients:", "      - {name: \"sasl:kafka\", password: {ssm: /k}}"), "zookeeper.sasl.clients[0].name: \"sasl:kafka\" must be"},
		{"client name with space", sasl("    clients:", "      - {name: \"kafka broker\", password: {ssm: /k}}"), "must be 1-64 letters"},
		{"client name starts with digit", sasl("    clients:", "      - {name: 1kafka, password: {ssm: /k}}"), "\"1kafka\" must be"},
		{"client name too long", sasl("    clients:", "      - {name: k"+strings.Repeat("a", 64)+", password: {ssm: /k}}"), "must be 1-64 letters"},
		{"client names twice", sasl("    clients:", "      - {name: kafka, password: {ssm: /k1}}", "      - {name: kafka, password: {ssm: /k2}}"),
			"line 10: zookeeper.sasl.clients[1].name: \"kafka\" is also the name of zookeeper.sasl.clients[0]"},
		{"names differ in case", sasl("    clients:", "      - {name: kafka, password: {ssm: /k1}}", "      - {name: Kafka, password: {ssm: /k2}}"), ""},
		{"client password per node", sasl("    clients:", "      - name: kafka", "        password: {secretsmanager: \"zk/{node}/kafka\"}"),
			"line 10: zookeeper.sasl.clients[0].password.secretsmanager: \"zk/{node}/kafka\": a client logs in to any server with one password: remove {node}"},
		{"client password file relative", sasl("    clients:", "      - name: kafka", "        password: {file: kafka.pw}"), "zookeeper.sasl.clients[0].password.file: \"kafka.pw\" must be a clean absolute path"},
		{"required without clients", sasl("    client_required: true"), "line 8: zookeeper.sasl.client_required: no client could connect: add the users to zookeeper.sasl.clients"},
		{"unknown field", sasl("    kerberos: true"), "zookeeper.sasl.kerberos"},
		{"quorum not a bool", sasl("    quorum: sasl"), "line 8: zookeeper.sasl.quorum"},

		// JVM flags that would take SASL out of zkaas's hands.
		{"jaas flag", base + "zookeeper:\n  jvm_flags: [-Djava.security.auth.login.config=/etc/jaas.conf]\n",
			"line 7: zookeeper.jvm_flags[0]: \"-Djava.security.auth.login.config=/etc/jaas.conf\": zkaas renders ZooKeeper's JAAS file and authentication providers: use zookeeper.sasl"},
		{"server section flag", base + "zookeeper:\n  jvm_flags: [-XX:+UseG1GC, -Dzookeeper.sasl.serverconfig=Other]\n", "line 7: zookeeper.jvm_flags[1]: \"-Dzookeeper.sasl.serverconfig=Other\": zkaas renders"},
		{"provider flag", base + "zookeeper:\n  jvm_flags: [-Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider]\n", "use zookeeper.sasl"},
		{"enforce flag", base + "zookeeper:\n  jvm_flags: [-Dzookeeper.enforce.auth.enabled=false]\n", "use zookeeper.sasl"},
		{"super password flag", base + "zookeeper:\n  jvm_flags: [-Dzookeeper.SASLAuthenticationProvider.superPassword=x]\n", "use zookeeper.sasl"},

		// zoo.cfg keys zkaas owns now.
		{"extra quorum.auth", base + "zookeeper:\n  extra:\n    quorum.auth.enableSasl: true\n",
			"line 8: zookeeper.extra.quorum.auth.enableSasl: quorum.auth.enableSasl is zkaas's to set (zkaas renders quorum SASL and the JAAS sections it logs in with): use zookeeper.sasl"},
		{"extra login context", base + "zookeeper:\n  extra:\n    quorum.auth.learner.saslLoginContext: Other\n", "quorum.auth.learner.saslLoginContext is zkaas's to set"},
		{"extra authProvider", base + "zookeeper:\n  extra:\n    authProvider.1: org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
			"line 8: zookeeper.extra.authProvider.1: authProvider.1 is zkaas's to set (zkaas registers the SASL provider with zookeeper.sasl.clients): use zookeeper.sasl"},
		{"extra enforce", base + "zookeeper:\n  extra:\n    enforce.auth.enabled: true\n", "line 8: zookeeper.extra.enforce.auth.enabled: enforce.auth.enabled is zkaas's to set (zkaas renders client SASL enforcement): use zookeeper.sasl.client_required"},
		{"extra enforce schemes", base + "zookeeper:\n  extra:\n    enforce.auth.schemes: sasl\n", "use zookeeper.sasl.client_required"},
		{"extra 3.6 enforce", base + "zookeeper:\n  extra:\n    sessionRequireClientSASLAuth: true\n", "use zookeeper.sasl.client_required"},
		{"extra threads", base + "zookeeper:\n  extra:\n    quorum.cnxn.threads.size: 50\n", "line 8: zookeeper.extra.quorum.cnxn.threads.size: quorum.cnxn.threads.size is zkaas's to set (zkaas sizes the quorum's SASL threads to the ensemble"},
		{"extra server section", base + "zookeeper:\n  extra:\n    sasl.serverconfig: Other\n", "zkaas renders the JAAS file and names its sections): use zookeeper.sasl"},
		{"extra super password", base + "zookeeper:\n  extra:\n    SASLAuthenticationProvider.superPassword: secret\n", "a password in zoo.cfg is readable by every user of the instance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkParse(t, tt.yaml, Options{}, tt.want) })
	}
}

func TestSASLWarnings(t *testing.T) {
	cfg, warns, err := Parse("ensemble.yaml", []byte(sasl("    quorum_password: {ssm: /zk/quorum}")))
	if err != nil {
		t.Fatal(err)
	}
	want := "line 8: zookeeper.sasl.quorum_password: zookeeper.sasl.quorum is off: the quorum password is not fetched or used"
	if len(warns) != 1 || warns[0].Error() != want {
		t.Errorf("warnings %v, want [%s]", warns, want)
	}
	if n := len(cfg.Secrets()); n != 0 {
		t.Errorf("Secrets() has %d references with quorum off, want none", n)
	}
}

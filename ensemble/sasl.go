package ensemble

// zookeeper.sasl: SASL (DIGEST-MD5) authentication of quorum members and of
// clients. Owned by the SASL work of issue 13; this file holds the schema and
// its validation (firstboot/zookeeper/sasl.go renders it).
//
// Checked against ZooKeeper 3.8.0 (Debian's zookeeper-3.8.0.jar, javap):
//
//   - QuorumPeerConfig parses quorum.auth.enableSasl, learnerRequireSasl,
//     serverRequireSasl, learner.saslLoginContext, server.saslLoginContext,
//     kerberos.servicePrincipal and quorum.cnxn.threads.size itself, and
//     refuses serverRequireSasl without learnerRequireSasl.
//   - Other zoo.cfg keys become "zookeeper.<key>" system properties:
//     authProvider.* (ProviderRegistry), enforce.auth.enabled and
//     enforce.auth.schemes (AuthenticationHelper, new in 3.7), the older
//     sessionRequireClientSASLAuth, sasl.serverconfig (the JAAS section the
//     server reads, "Server" by default) and
//     SASLAuthenticationProvider.superPassword.
//   - The server's DIGEST-MD5 users are the Server section's user_<name>
//     options (SaslServerCallbackHandler); the JAAS file is named by
//     -Djava.security.auth.login.config.

import (
	"fmt"
	"regexp"
)

// SASL turns on ZooKeeper's SASL authentication.
type SASL struct {
	// Quorum is quorum.auth.enableSasl with learner and server requiring
	// it: a server without the quorum password cannot join.
	Quorum bool `yaml:"quorum"`
	// QuorumMigration, with Quorum, is one of the first two of the three
	// rolls that turn quorum SASL on in a running ensemble without losing
	// quorum (ZooKeeper's Server-Server mutual authentication guide):
	// "accept" (every server can take an authenticating learner, none
	// authenticates or requires it), then "authenticate" (every learner
	// authenticates, servers still accept those that do not), then unset
	// (both sides require it). Turning it off is the same rolls backwards.
	QuorumMigration string `yaml:"quorum_migration"`
	// QuorumPassword is the DIGEST-MD5 password every server shares.
	QuorumPassword Secret `yaml:"quorum_password"`
	// Clients are the SASL users clients (Kafka brokers) log in as.
	Clients []SASLUser `yaml:"clients"`
	// ClientRequired refuses every client session that has not
	// authenticated with SASL (enforce.auth.enabled, enforce.auth.schemes
	// sasl): its first request closes it. Off by default, as Kafka's
	// zookeeper.set.acl expects: brokers authenticate and protect their
	// znodes with ACLs, the metadata stays world-readable, and brokers
	// migrate to SASL one roll at a time while others still connect
	// without it.
	ClientRequired bool `yaml:"client_required"`
}

// SASLUser is one DIGEST-MD5 client user and where its password is.
type SASLUser struct {
	Name     string `yaml:"name"`
	Password Secret `yaml:"password"`
}

// The quorum_migration rolls.
const (
	QuorumMigrationAccept       = "accept"
	QuorumMigrationAuthenticate = "authenticate"
)

func defaultSASL() SASL { return SASL{} }

// On reports whether the node renders a JAAS file.
func (s SASL) On() bool { return s.Quorum || len(s.Clients) > 0 }

// secrets lists the references this section uses: the quorum password only
// with quorum on (a node fetches only what it uses, and its policy grants
// only that).
func (s SASL) secrets() []NamedSecret {
	var out []NamedSecret
	if s.Quorum {
		out = append(out, NamedSecret{Field: "zookeeper.sasl.quorum_password", Secret: s.QuorumPassword})
	}
	for i, u := range s.Clients {
		out = append(out, NamedSecret{Field: fmt.Sprintf("zookeeper.sasl.clients[%d].password", i), Secret: u.Password, SASLUser: u.Name})
	}
	return out
}

// saslUserRe: a user name is the JAAS option key user_<name>, unquoted in
// the Server section (sun.security.provider.ConfigFile's tokenizer reads
// letters, digits, '.', '_' and '-' as one word), and the id of the
// client's sasl:<name> ACLs, which ',' and ':' would split. 64 characters
// is plenty for a broker's user.
var saslUserRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]{0,63}$`)

// saslFlagPrefixes are JVM flags that would take SASL out of zkaas's hands:
// zookeeper.jvm_flags come after zkaas's own flags, and the JVM keeps the
// last of repeated -D options. Refused with the other flags (jvmFlags).
var saslFlagPrefixes = []string{
	"-Djava.security.auth.login.config=",
	"-Dzookeeper.sasl.",
	"-Dzookeeper.authProvider.",
	"-Dzookeeper.enforce.auth.",
	"-Dzookeeper.sessionRequireClientSASLAuth=",
	"-Dzookeeper.SASLAuthenticationProvider.",
}

// sasl validates zookeeper.sasl.
func (v *validator) sasl(c *Config) {
	s := &c.ZooKeeper.SASL
	const f = "zookeeper.sasl"
	switch s.QuorumMigration {
	case "", QuorumMigrationAccept, QuorumMigrationAuthenticate:
	default:
		v.errorf(f+".quorum_migration", "%q: want %s (the first roll), %s (the second) or nothing (quorum SASL required)", s.QuorumMigration, QuorumMigrationAccept, QuorumMigrationAuthenticate)
	}
	if s.Quorum {
		if v.secret(f+".quorum_password", s.QuorumPassword, c.Region(), true) && s.QuorumPassword.PerNode() {
			v.errorf(f+".quorum_password."+s.QuorumPassword.Source(), "%q: every server checks its peers against the one quorum password: remove %s", s.QuorumPassword.Name(), NodePlaceholder)
		}
	} else {
		if s.QuorumPassword.IsSet() {
			v.warnf(f+".quorum_password", "zookeeper.sasl.quorum is off: the quorum password is not fetched or used")
		}
		if s.QuorumMigration != "" {
			v.errorf(f+".quorum_migration", "migrates a running ensemble to quorum SASL: set zookeeper.sasl.quorum too")
		}
	}
	names := map[string]int{}
	for i, u := range s.Clients {
		uf := fmt.Sprintf("%s.clients[%d]", f, i)
		switch {
		case u.Name == "":
			v.errorf(uf+".name", "required: the user name the client logs in as")
		case !saslUserRe.MatchString(u.Name):
			v.errorf(uf+".name", "%q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter (it becomes the JAAS option user_<name> and the id of sasl:<name> ACLs)", u.Name)
		case names[u.Name] > 0:
			v.errorf(uf+".name", "%q is also the name of zookeeper.sasl.clients[%d]", u.Name, names[u.Name]-1)
		default:
			names[u.Name] = i + 1
		}
		if v.secret(uf+".password", u.Password, c.Region(), true) && u.Password.PerNode() {
			v.errorf(uf+".password."+u.Password.Source(), "%q: a client logs in to any server with one password: remove %s", u.Password.Name(), NodePlaceholder)
		}
	}
	if s.ClientRequired && len(s.Clients) == 0 {
		v.errorf(f+".client_required", "no client could connect: add the users to zookeeper.sasl.clients")
	}
}

package zookeeper

// zookeeper.sasl's part of the configuration: zoo.cfg's quorum.auth.* and
// client provider lines, and the JAAS file the server logs in with.
//
// Checked against ZooKeeper 3.8.0 (Debian's zookeeper-3.8.0.jar, javap):
//
//   - QuorumAuth: quorum.auth.enableSasl, quorum.auth.learnerRequireSasl,
//     quorum.auth.serverRequireSasl, quorum.auth.learner.saslLoginContext
//     (default QuorumLearner), quorum.auth.server.saslLoginContext (default
//     QuorumServer). Guides that write quorum.auth.learner.loginContext name
//     a key nothing reads. QuorumPeerConfig refuses serverRequireSasl
//     without learnerRequireSasl, and either without enableSasl.
//   - QuorumCnxManager authenticates connections on a pool of
//     quorum.cnxn.threads.size threads (default 20); ZooKeeper's guide
//     (Server-Server mutual authentication) asks for twice the ensemble.
//   - The quorum's DIGEST-MD5 server (SaslQuorumServerCallbackHandler)
//     takes the QuorumServer section's user_<name> options; the learner
//     logs in with the QuorumLearner section's username and password.
//   - Clients: ServerCnxnFactory.configureSaslLogin reads the JAAS section
//     zookeeper.sasl.serverconfig (default "Server"); without one the
//     server offers no client SASL. SaslServerCallbackHandler takes its
//     user_<name> options. SASLAuthenticationProvider gives an
//     authenticated session the id sasl:<name>, which ACLs name; it is
//     registered through a zookeeper.authProvider.* property
//     (ProviderRegistry), i.e. authProvider.sasl in zoo.cfg.
//   - AuthenticationHelper (3.7+): zookeeper.enforce.auth.enabled and
//     zookeeper.enforce.auth.schemes (enforce.auth.* in zoo.cfg) close a
//     session whose first request comes before it authenticated with one of
//     the schemes. Four-letter words are answered before any session, so
//     zkaas's srvr probes keep working.
//
// The JAAS file's syntax is sun.security.provider.ConfigFile's: a
// StreamTokenizer with '"' as the quote character, so inside a quoted
// value a backslash escapes the next character and a line break ends the
// string; then every option value goes through PropertyExpander, which
// replaces ${name} by the system property and has no escape for "${".
// Passwords are quoted with their backslashes and quotes escaped, and a
// password with a line break, another control character or "${" is
// refused (CheckSASLPassword).

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/zkaas/zkaas/ensemble"
)

// JAASName is the JAAS file in Layout.SecretDir.
const JAASName = "jaas.conf"

// Names ZooKeeper's SASL uses.
const (
	// QuorumUser is the DIGEST-MD5 user the servers log in to each other
	// as; only its password is secret.
	QuorumUser = "zkquorum"
	// JAAS sections: ZooKeeper's defaults, written out in zoo.cfg anyway.
	QuorumServerSection  = "QuorumServer"
	QuorumLearnerSection = "QuorumLearner"
	ClientServerSection  = "Server" // zookeeper.sasl.serverconfig's default

	DigestLoginModule   = "org.apache.zookeeper.server.auth.DigestLoginModule"
	SASLProviderClass   = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
	minQuorumCnxThreads = 20 // QuorumPeer's default
)

// ErrSASLPassword marks a SASL password the JAAS file cannot carry: every
// node fetching it would fail the same way.
var ErrSASLPassword = errors.New("sasl password unusable")

type saslPasswordError struct{ msg string }

func (e saslPasswordError) Error() string        { return e.msg }
func (e saslPasswordError) Is(target error) bool { return target == ErrSASLPassword }

// CheckSASLPassword reports why pw cannot be a DIGEST-MD5 password in the
// JAAS file (nil if it can). The error wraps ErrSASLPassword and never
// contains the password.
func CheckSASLPassword(pw string) error {
	switch {
	case pw == "":
		return saslPasswordError{"the password is empty"}
	case strings.ContainsFunc(pw, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }):
		return saslPasswordError{"the password contains a line break or another control character (a JAAS quoted string cannot hold one)"}
	case strings.Contains(pw, "${"):
		return saslPasswordError{"the password contains \"${\", which Java expands as a system property in a JAAS file, with no escape"}
	case !utf8.ValidString(pw):
		return saslPasswordError{"the password is not valid UTF-8 (the JAAS file is read as UTF-8)"}
	}
	return nil
}

// jaasQuote is s as a JAAS quoted string: backslashes and quotes escaped
// (StreamTokenizer reads \\ as \ and \" as ").
func jaasQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// renderSASL is zookeeper.sasl's part of the configuration.
func renderSASL(cfg ensemble.Config, _ ensemble.Node, l Layout, m Material) (security, error) {
	s := cfg.ZooKeeper.SASL
	if !s.On() {
		return security{}, nil
	}
	var out security
	zoo := func(format string, args ...any) { out.zooCfg = append(out.zooCfg, fmt.Sprintf(format, args...)) }
	var jaas strings.Builder
	section := func(name string, options [][2]string) {
		fmt.Fprintf(&jaas, "%s {\n    %s required", name, DigestLoginModule)
		for _, o := range options {
			fmt.Fprintf(&jaas, "\n    %s=%s", o[0], jaasQuote(o[1]))
		}
		jaas.WriteString(";\n};\n")
	}
	jaas.WriteString("// Rendered by zkaas-firstboot from the secrets zookeeper.sasl names, at every boot.\n")
	f := PrivateFile{Name: JAASName, Data: nil}
	zoo("# SASL (zookeeper.sasl): DIGEST-MD5 users in %s, rendered at every boot.", f.Path(l))

	if s.Quorum {
		if err := CheckSASLPassword(m.QuorumPassword); err != nil {
			return security{}, fmt.Errorf("zookeeper.sasl.quorum_password: %w", err)
		}
		// The migration rolls (ensemble.SASL.QuorumMigration): with
		// learnerRequireSasl=false a learner skips SASL altogether
		// (SaslQuorumAuthLearner), with serverRequireSasl=false a server
		// lets a learner in without it.
		learner, server := true, true
		switch s.QuorumMigration {
		case ensemble.QuorumMigrationAccept:
			learner, server = false, false
		case ensemble.QuorumMigrationAuthenticate:
			server = false
		}
		zoo("quorum.auth.enableSasl=true")
		zoo("quorum.auth.learnerRequireSasl=%t", learner)
		zoo("quorum.auth.serverRequireSasl=%t", server)
		zoo("quorum.auth.learner.saslLoginContext=%s", QuorumLearnerSection)
		zoo("quorum.auth.server.saslLoginContext=%s", QuorumServerSection)
		zoo("quorum.cnxn.threads.size=%d", max(minQuorumCnxThreads, 2*len(cfg.Nodes)))
		section(QuorumServerSection, [][2]string{{"user_" + QuorumUser, m.QuorumPassword}})
		section(QuorumLearnerSection, [][2]string{{"username", QuorumUser}, {"password", m.QuorumPassword}})
	}
	if len(s.Clients) > 0 {
		opts := make([][2]string, 0, len(s.Clients))
		for i, u := range s.Clients {
			pw, ok := m.ClientPasswords[u.Name]
			if !ok {
				return security{}, fmt.Errorf("zookeeper.sasl.clients[%d].password: no password was fetched for user %s", i, u.Name)
			}
			if err := CheckSASLPassword(pw); err != nil {
				return security{}, fmt.Errorf("zookeeper.sasl.clients[%d].password (user %s): %w", i, u.Name, err)
			}
			opts = append(opts, [2]string{"user_" + u.Name, pw})
		}
		// Sorted: the file's bytes must not depend on the config's order
		// more than the users do (Write compares them).
		slices.SortFunc(opts, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		section(ClientServerSection, opts)
		zoo("authProvider.sasl=%s", SASLProviderClass)
		if s.ClientRequired {
			zoo("enforce.auth.enabled=true")
			zoo("enforce.auth.schemes=sasl")
		}
	}
	f.Data = []byte(jaas.String())
	out.private = []PrivateFile{f}
	out.jvmFlags = []string{"-Djava.security.auth.login.config=" + f.Path(l)}
	return out, nil
}

package ensemble

// zookeeper.sasl: SASL (DIGEST-MD5) authentication of quorum members and of
// clients. Owned by the SASL work of issue 13; this file holds the schema and
// its validation.

import "fmt"

// SASL turns on ZooKeeper's SASL authentication.
type SASL struct {
	// Quorum is quorum.auth.enableSasl with learner and server requiring
	// it: a server without the quorum password cannot join.
	Quorum bool `yaml:"quorum"`
	// QuorumPassword is the DIGEST-MD5 password every server shares.
	QuorumPassword Secret `yaml:"quorum_password"`
	// Clients are the SASL users clients (Kafka brokers) log in as.
	Clients []SASLUser `yaml:"clients"`
}

// SASLUser is one DIGEST-MD5 client user and where its password is.
type SASLUser struct {
	Name     string `yaml:"name"`
	Password Secret `yaml:"password"`
}

func defaultSASL() SASL { return SASL{} }

// secrets lists the references this section names.
func (s SASL) secrets() []NamedSecret {
	out := []NamedSecret{{"zookeeper.sasl.quorum_password", s.QuorumPassword}}
	for i, u := range s.Clients {
		out = append(out, NamedSecret{Field: fmt.Sprintf("zookeeper.sasl.clients[%d].password", i), Secret: u.Password})
	}
	return out
}

// sasl validates zookeeper.sasl.
func (v *validator) sasl(c *Config) {
	s := &c.ZooKeeper.SASL
	v.secret("zookeeper.sasl.quorum_password", s.QuorumPassword, c.Region(), s.Quorum)
	for i, u := range s.Clients {
		v.secret(fmt.Sprintf("zookeeper.sasl.clients[%d].password", i), u.Password, c.Region(), true)
	}
}

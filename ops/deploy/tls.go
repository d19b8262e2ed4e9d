package deploy

import "github.com/zkaas/zkaas/ensemble"

// tlsRules open the secure client port (zookeeper.tls.client) to the
// clients the plaintext port is open to, and to the nodes themselves (a
// client on a node, as for the plaintext port). The quorum and election
// ports need nothing new: with TLS on they are the same ports.
func tlsRules(cfg ensemble.Config) []Rule {
	t := cfg.ZooKeeper.TLS
	if !t.Client {
		return nil
	}
	const desc = "ZooKeeper TLS clients"
	out := sourceRules(t.SecureClientPort, cfg.Deploy.ClientPrefixes(), cfg.Deploy.Client.SecurityGroups, desc)
	return append(out, Rule{Port: t.SecureClientPort, SelfGroup: true, Description: desc + " (peers)"})
}

package iampolicy

import (
	"regexp"
	"slices"
	"strings"

	"github.com/zkaas/zkaas/ensemble"
)

// secretStatements grant reading exactly the secrets the config names —
// every node's expansion of {node}, since any instance may become any node
// — and decrypting with exactly the customer managed keys named for them.
// Nothing when the config names no secret in AWS (files need nothing).
func secretStatements(cfg ensemble.Config) []Statement {
	region, part := cfg.Region(), partition(cfg.Region())
	var sm, params, smKeys, ssmKeys []string
	for _, ns := range cfg.Secrets() {
		for _, s := range expand(cfg, ns.Secret) {
			switch s.Source() {
			case "secretsmanager":
				sm = append(sm, secretARN(part, region, s.SecretsManager))
				if s.KMSKey != "" {
					smKeys = append(smKeys, s.KMSKey)
				}
			case "ssm":
				params = append(params, parameterARN(part, region, s.SSM))
				if s.KMSKey != "" {
					ssmKeys = append(ssmKeys, s.KMSKey)
				}
			}
		}
	}
	var out []Statement
	if len(sm) > 0 {
		out = append(out, Statement{
			// GetSecretValue reads AWSCURRENT; nothing lists, describes
			// or writes secrets.
			Sid: "ReadEnsembleSecrets", Effect: "Allow",
			Action: []string{"secretsmanager:GetSecretValue"}, Resource: sorted(sm),
		})
	}
	if len(params) > 0 {
		out = append(out, Statement{
			Sid: "ReadEnsembleParameters", Effect: "Allow",
			Action: []string{"ssm:GetParameter"}, Resource: sorted(params),
		})
	}
	// Only the customer managed keys the config names, and only when the
	// service holding the secret asks on the node's behalf
	// (kms:ViaService): one statement per service with that service's
	// keys, so a Secrets Manager secret's key cannot be used through
	// Parameter Store or the other way round, and the node cannot decrypt
	// anything else with them. AWS managed keys need no grant.
	for _, d := range []struct {
		sid, service string
		keys         []string
	}{
		{"DecryptEnsembleSecrets", "secretsmanager", smKeys},
		{"DecryptEnsembleParameters", "ssm", ssmKeys},
	} {
		if len(d.keys) == 0 {
			continue
		}
		out = append(out, Statement{
			Sid: d.sid, Effect: "Allow",
			Action: []string{"kms:Decrypt"}, Resource: sorted(d.keys),
			Condition: map[string]map[string]any{"StringEquals": {"kms:ViaService": d.service + "." + region + ".amazonaws.com"}},
		})
	}
	return out
}

// expand is a reference for every node of the ensemble ({node} replaced),
// or the reference itself when it names one secret for all.
func expand(cfg ensemble.Config, s ensemble.Secret) []ensemble.Secret {
	if !s.PerNode() {
		return []ensemble.Secret{s}
	}
	out := make([]ensemble.Secret, 0, len(cfg.Nodes))
	for _, n := range cfg.Nodes {
		out = append(out, s.ForNode(n.ID))
	}
	return out
}

// completeSecretARN is a Secrets Manager ARN ending in the hyphen and six
// random characters Secrets Manager appends to the name. As Secrets
// Manager itself does, an ARN whose name ends so is taken as complete
// (https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot.html#ARN_secretnamehyphen).
var completeSecretARN = regexp.MustCompile(`:secret:.+-[A-Za-z0-9]{6}$`)

// secretARN is the Resource for a secret reference: a secret's ARN is its
// name plus "-" and six random characters, so a name (or a partial ARN) is
// matched with "-??????" — exactly six characters, where "*" would also
// match the secrets named <name>-anything
// (https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples.html,
// "wildcard": "Secrets Manager ... adds six random characters ... use
// -??????"). A complete ARN is granted as it is. The account is "*" as in
// the EC2 statements: the config does not know it, and the name and the
// region pin the secret.
func secretARN(part, region, ref string) string {
	switch {
	case completeSecretARN.MatchString(ref) && strings.HasPrefix(ref, "arn:"):
		return ref
	case strings.HasPrefix(ref, "arn:"):
		return ref + "-??????"
	}
	return "arn:" + part + ":secretsmanager:" + region + ":*:secret:" + ref + "-??????"
}

// parameterARN is a parameter's ARN: arn:…:parameter/<name without its
// leading slash> (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-access.html;
// the SAR's parameter resource type is
// arn:${Partition}:ssm:${Region}:${Account}:parameter/${ParameterNameWithoutLeadingSlash}).
func parameterARN(part, region, ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return "arn:" + part + ":ssm:" + region + ":*:parameter/" + strings.TrimPrefix(ref, "/")
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

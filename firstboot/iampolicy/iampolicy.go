// Package iampolicy renders the least-privilege IAM policy a node's instance
// profile needs for firstboot.
package iampolicy

import (
	"encoding/json"
	"strings"

	"github.com/zkaas/zkaas/ensemble"
)

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// For returns the policy for cfg:
//   - Describe* cannot be scoped to resources in EC2, so they get "*";
//   - attach, detach and the ENI attribute change only on ENIs and volumes
//     carrying this ensemble's tag;
//   - and only to the calling instance (the instance resource is
//     instance/${ec2:InstanceId}, with ec2:SourceInstanceARN as in AWS's
//     AWSEC2VssSnapshotPolicy), so a compromised node cannot move another
//     node's identity onto a third instance;
//   - CreateTags only for the initialized tag on the ensemble's volumes:
//     identity tags are the operator's, and an instance that could write
//     them could make itself any node;
//   - reading exactly the secrets zookeeper.tls and zookeeper.sasl name
//     (every node's), and kms:Decrypt only on the customer managed keys
//     named for them (secrets.go).
func For(cfg ensemble.Config) Document {
	d := forEC2(cfg)
	d.Statement = append(d.Statement, secretStatements(cfg)...)
	return d
}

func forEC2(cfg ensemble.Config) Document {
	region := cfg.Region()
	arn := func(kind string) string {
		return "arn:" + partition(region) + ":ec2:" + region + ":*:" + kind + "/*"
	}
	self := "arn:" + partition(region) + ":ec2:" + region + ":*:instance/${ec2:InstanceId}"
	tagged := map[string]map[string]any{
		"StringEquals": {"aws:ResourceTag/" + cfg.Claim.Tags.Ensemble: cfg.Ensemble},
	}
	return Document{
		Version: "2012-10-17",
		Statement: []Statement{
			{
				Sid:      "DescribeEnsemble",
				Effect:   "Allow",
				Action:   []string{"ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVolumes"},
				Resource: []string{"*"},
			},
			{
				Sid:       "EnsembleNetworkInterfaces",
				Effect:    "Allow",
				Action:    []string{"ec2:AttachNetworkInterface", "ec2:DetachNetworkInterface", "ec2:ModifyNetworkInterfaceAttribute"},
				Resource:  []string{arn("network-interface")},
				Condition: tagged,
			},
			{
				Sid:       "EnsembleVolumes",
				Effect:    "Allow",
				Action:    []string{"ec2:AttachVolume", "ec2:DetachVolume"},
				Resource:  []string{arn("volume")},
				Condition: tagged,
			},
			{
				// The instance resource of each action is the caller only:
				// the ARN is built from ${ec2:InstanceId}, and the condition
				// (the form of AWS's managed AWSEC2VssSnapshotPolicy) holds
				// only for requests signed with this instance's role
				// credentials. ${ec2:InstanceId} is the single-valued key
				// ec2:InstanceID (keys are case-insensitive) used as a
				// variable. Whether it resolves to the target instance's id
				// or the caller's, the pair is right: for the target's id
				// the condition says caller == target; for the caller's id
				// the Resource says target == caller.
				// ModifyNetworkInterfaceAttribute lists instance as an
				// optional resource type (SAR): granted on self only. It is
				// not narrowed with ec2:Attribute: users report that key
				// absent from the evaluated request context of EC2's
				// Modify*Attribute calls, which would deny every boot; the
				// security-group resource type is not granted, so a node
				// cannot change the ENIs' groups.
				Sid:      "OnlyThisInstance",
				Effect:   "Allow",
				Action:   []string{"ec2:AttachNetworkInterface", "ec2:DetachNetworkInterface", "ec2:ModifyNetworkInterfaceAttribute", "ec2:AttachVolume", "ec2:DetachVolume"},
				Resource: []string{self},
				Condition: map[string]map[string]any{
					"ArnLike": {"ec2:SourceInstanceARN": self},
				},
			},
			{
				// Which group this instance is in, and its launch hook
				// (package health). Neither action has resource-level
				// permissions (SAR: no resource type), so "*".
				Sid:      "DescribeOwnGroup",
				Effect:   "Allow",
				Action:   []string{"autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeLifecycleHooks"},
				Resource: []string{"*"},
			},
			{
				// Telling the group the truth: only on the ensemble's
				// groups (zkaas up tags them). Auto Scaling has no key for
				// the instance a call names, so a node could mark a peer of
				// its own ensemble Unhealthy; it cannot touch any other
				// group.
				Sid:       "TellEnsembleGroups",
				Effect:    "Allow",
				Action:    []string{"autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat", "autoscaling:SetInstanceHealth"},
				Resource:  []string{"arn:" + partition(region) + ":autoscaling:" + region + ":*:autoScalingGroup:*:autoScalingGroupName/*"},
				Condition: tagged,
			},
			{
				// The one tag firstboot writes: the record that a volume was
				// formatted, so it is never formatted again. Only that key,
				// only on the ensemble's volumes.
				Sid:      "MarkVolumeInitialized",
				Effect:   "Allow",
				Action:   []string{"ec2:CreateTags"},
				Resource: []string{arn("volume")},
				// Its value must look like the RFC 3339 second firstboot
				// writes (claim.TagInitialized), so a node cannot put
				// anything else in it.
				Condition: map[string]map[string]any{
					"StringEquals":              {"aws:ResourceTag/" + cfg.Claim.Tags.Ensemble: cfg.Ensemble},
					"ForAllValues:StringEquals": {"aws:TagKeys": []string{cfg.Claim.Tags.Initialized}},
					"StringLike":                {"aws:RequestTag/" + cfg.Claim.Tags.Initialized: InitializedPattern},
				},
			},
		},
	}
}

// InitializedPattern is the IAM StringLike pattern ('?' is one character)
// the initialized tag's value must match: an RFC 3339 time in UTC, to the
// second, as claim.TagInitialized writes it.
const InitializedPattern = "????-??-??T??:??:??Z"

// JSON renders the document indented, with a trailing newline.
func (d Document) JSON() []byte {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		panic(err) // only strings and slices: cannot fail
	}
	return append(b, '\n')
}

func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

package iampolicy

// Documented is every condition key and policy variable the policy may use,
// with where AWS documents it. A key not here fails TestDocumentedKeys.
var Documented = map[string]string{
	"aws:ResourceTag/":      "tag on the resource of the request; EC2 lists it for network-interface, volume, instance: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html; Auto Scaling for autoScalingGroup: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2autoscaling.html (IAM: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourcetag)",
	"aws:RequestTag/":       "tag key/value in the request (CreateTags): https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-requesttag; EC2 lists aws:RequestTag/${TagKey} for CreateTags in https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html",
	"aws:TagKeys":           "tag keys in the request (CreateTags): https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-tagkeys",
	"ec2:SourceInstanceARN": "ARN of the instance the request comes from (role credentials of an instance profile): https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html#amazonec2-policy-keys, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/iam-roles-for-amazon-ec2.html",
	"kms:ViaService":        "limits a KMS key's use to requests a named AWS service makes on the principal's behalf (values <service>.<region>.amazonaws.com): https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service; Decrypt lists it in https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html",
	"ec2:InstanceId":        "policy variable: EC2's single-valued condition key ec2:InstanceID (\"Filters access by the ID of an instance\", https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html#amazonec2-policy-keys; IAM keys are case-insensitive) used as a variable, which IAM allows for any single-valued context key (\"You can use any available single-valued context key as a policy variable\", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html); in exactly this form in AWS's managed policy AWSEC2VssSnapshotPolicy (arn:aws:iam::aws:policy/AWSEC2VssSnapshotPolicy)",
}

// ResourceTypes is, per action, the resource types the Service
// Authorization Reference lists (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html,
// read from salesforce/policy_sentry's copy shared/data/docs/list_amazonec2.html at
// 66e53f23fe3f0aee8a625cdcefe71d49f933e9be). "*" is for actions without
// resource-level permissions.
var ResourceTypes = map[string][]string{
	"ec2:DescribeInstances":               {"*"},
	"ec2:DescribeNetworkInterfaces":       {"*"},
	"ec2:DescribeVolumes":                 {"*"},
	"ec2:AttachNetworkInterface":          {"instance", "network-interface"},
	"ec2:DetachNetworkInterface":          {"instance", "network-interface"},
	"ec2:ModifyNetworkInterfaceAttribute": {"network-interface", "instance", "security-group"},
	"ec2:AttachVolume":                    {"instance", "volume"},
	"ec2:DetachVolume":                    {"volume", "instance"},
	"ec2:CreateTags":                      {"volume", "instance", "network-interface"},
	// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2autoscaling.html:
	// the autoScalingGroup resource type (condition keys
	// aws:ResourceTag/${TagKey}, autoscaling:ResourceTag/${TagKey}).
	"autoscaling:DescribeAutoScalingInstances":   {"*"},
	"autoscaling:DescribeLifecycleHooks":         {"*"},
	"autoscaling:CompleteLifecycleAction":        {"autoScalingGroup"},
	"autoscaling:RecordLifecycleActionHeartbeat": {"autoScalingGroup"},
	"autoscaling:SetInstanceHealth":              {"autoScalingGroup"},
	// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html:
	// GetSecretValue on the Secret resource type
	// (arn:${Partition}:secretsmanager:${Region}:${Account}:secret:${SecretId}).
	"secretsmanager:GetSecretValue": {"secret"},
	// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html:
	// GetParameter on the parameter resource type
	// (arn:${Partition}:ssm:${Region}:${Account}:parameter/${ParameterNameWithoutLeadingSlash}).
	"ssm:GetParameter": {"parameter"},
	// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html:
	// Decrypt on the key resource type
	// (arn:${Partition}:kms:${Region}:${Account}:key/${KeyId}).
	"kms:Decrypt": {"key"},
}

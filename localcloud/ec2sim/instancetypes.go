package ec2sim

import (
	"maps"
	"slices"
	"strings"
)

// DefaultInstanceType is what RunInstance launches.
const DefaultInstanceType = "t3.medium"

// maxNetworkInterfaces is the number of network interfaces (the primary one
// included) an instance of each type can have, from "Maximum IP addresses
// per network interface" in the EC2 User Guide
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/AvailableIpPerENI.html,
// the "Maximum network interfaces" column; the same figures are in
// awslabs/amazon-eks-ami's eni-max-pods.txt, derived from that page). The
// "Network interface attachments" page
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/network-interface-attachments.html)
// says: "The instance type of an instance determines how many network
// interfaces you can attach to the instance."
var maxNetworkInterfaces = map[string]int{
	"t2.nano": 2, "t2.micro": 2, "t2.small": 3, "t2.medium": 3, "t2.large": 3, "t2.xlarge": 3, "t2.2xlarge": 3,
	"t3.nano": 2, "t3.micro": 2, "t3.small": 3, "t3.medium": 3, "t3.large": 3, "t3.xlarge": 4, "t3.2xlarge": 4,
	"t3a.micro": 2, "t3a.small": 2, "t3a.medium": 3, "t3a.large": 3,
	"t4g.micro": 2, "t4g.small": 3, "t4g.medium": 3, "t4g.large": 3,
	"m5.large": 3, "m5.xlarge": 4, "m5.2xlarge": 4, "m5.4xlarge": 8,
	"m6i.large": 3, "m6i.xlarge": 4, "m6i.2xlarge": 4,
	"m6g.medium": 2, "m6g.large": 3, "m6g.xlarge": 4,
	"c5.large": 3, "c5.xlarge": 4, "c5.2xlarge": 4,
	"c6i.large": 3, "c6i.xlarge": 4,
	"r5.large": 3, "r5.xlarge": 4, "r5.2xlarge": 4,
	"r6i.large": 3, "r6i.xlarge": 4,
}

// MaxNetworkInterfaces returns how many network interfaces (the primary one
// included) an instance of the type can have, and whether the simulator
// knows the type.
func MaxNetworkInterfaces(instanceType string) (int, bool) {
	n, ok := maxNetworkInterfaces[instanceType]
	return n, ok
}

// checkInstanceType returns EC2's RunInstances error for a type the
// simulator does not know.
func checkInstanceType(instanceType string) error {
	if _, ok := maxNetworkInterfaces[instanceType]; ok {
		return nil
	}
	return clientError(CodeInvalidParameterValue, "Invalid value '%s' for InstanceType. (the simulator knows %s)",
		instanceType, strings.Join(slices.Sorted(maps.Keys(maxNetworkInterfaces)), ", "))
}

// errENILimit is AWS's answer to an attach beyond the instance type's
// interface limit. The code is documented ("AttachmentLimitExceeded" in the
// API reference's error codes, and AttachVolume's "If you exceed the volume
// attachment limit for an instance type, the attachment request fails with
// the AttachmentLimitExceeded error"); the message is the simulator's own
// wording, not copied from a real response.
func errENILimit(count int, instanceType string) *APIError {
	return clientError(CodeAttachmentLimitExceeded, "Interface count %d exceeds the limit for %s", count, instanceType)
}

func (i Instance) maxENIs() int {
	if n, ok := maxNetworkInterfaces[i.InstanceType]; ok {
		return n
	}
	return maxNetworkInterfaces[DefaultInstanceType]
}

package iampolicy

import (
	"testing"

	"github.com/zkaas/zkaas/internal/golden"

	"github.com/zkaas/zkaas/ensemble"
)

func TestForGolden(t *testing.T) {
	cfg, _, err := ensemble.Load("../../ensemble/testdata/ensemble.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := For(cfg).JSON()
	golden.Check(t, "testdata/policy.golden.json", got)
}

func TestForScoping(t *testing.T) {
	cfg, _, err := ensemble.Load("../../ensemble/testdata/ensemble.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range For(cfg).Statement {
		for _, a := range st.Action {
			if a == "ec2:*" {
				t.Errorf("%s grants %s", st.Sid, a)
			}
			if a == "ec2:CreateTags" {
				keys, _ := st.Condition["ForAllValues:StringEquals"]["aws:TagKeys"].([]string)
				if len(keys) != 1 || keys[0] != cfg.Claim.Tags.Initialized {
					t.Errorf("%s: CreateTags not limited to the initialized tag: %v", st.Sid, st.Condition)
				}
			}
			mutating := a != "ec2:DescribeInstances" && a != "ec2:DescribeNetworkInterfaces" && a != "ec2:DescribeVolumes"
			if mutating && (len(st.Condition) == 0 || st.Resource[0] == "*") {
				t.Errorf("%s grants %s without a resource scope and condition", st.Sid, a)
			}
		}
	}
	for region, want := range map[string]string{"us-east-1": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov"} {
		if got := partition(region); got != want {
			t.Errorf("partition(%s) = %s", region, got)
		}
	}
}

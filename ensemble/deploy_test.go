package ensemble

import (
	"net/netip"
	"strings"
	"testing"
)

func TestDeployValid(t *testing.T) {
	cfg, warns, err := Load("testdata/deploy.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	d := cfg.Deploy
	if !cfg.HasDeploy() || d.ImageID != "ami-0123456789abcdef0" || d.InstanceType != "m6i.large" {
		t.Errorf("deploy = %+v", d)
	}
	if id, ok := d.SubnetOf("us-east-1a"); !ok || id != "subnet-0123456789abcdef0" {
		t.Errorf("SubnetOf(us-east-1a) = %q, %v", id, ok)
	}
	if _, ok := d.SubnetOf("us-east-1b"); ok {
		t.Error("SubnetOf(us-east-1b): want looked up")
	}
	want := DeployVolume{Type: "gp3", SizeGiB: 50, IOPS: 4000, Throughput: 250, Encrypted: true, KMSKeyID: "alias/zookeeper"}
	if d.Volume != want {
		t.Errorf("volume = %+v, want %+v (encrypted by default)", d.Volume, want)
	}
	if p := d.ClientPrefixes(); len(p) != 1 || p[0] != netip.MustParsePrefix("10.0.0.0/16") {
		t.Errorf("client prefixes = %v", p)
	}
	if !d.Snapshots.Daily || d.Snapshots.Retain != 14 || d.Snapshots.ExecutionRole != "AWSDataLifecycleManagerDefaultRole" {
		t.Errorf("snapshots = %+v", d.Snapshots)
	}
	if d.Groups != GroupsPerAZ || cfg.RoleName() != "zkaas-prod-zk" {
		t.Errorf("groups %q role %q", d.Groups, cfg.RoleName())
	}
}

// A config without a deploy section is still a valid node config.
func TestNoDeploySection(t *testing.T) {
	cfg, _, err := Parse("t", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HasDeploy() {
		t.Error("HasDeploy without a deploy section")
	}
}

const deployBase = base + `deploy:
  image_id: ami-0123456789abcdef0
  instance_type: m6i.large
  client: {cidrs: [10.0.0.0/16]}
`

func TestDeployErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"image and type required", base + "deploy:\n  volume: {type: gp3}\n",
			[]string{"line 6: deploy.image_id: required", "line 6: deploy.instance_type: required"}},
		{"bad ids", base + `deploy:
  image_id: ami-xyz
  instance_type: large
  subnets: [{az: us-east-1a, id: sub-1}]
  client: {security_groups: [group-1]}
`, []string{`line 7: deploy.image_id: "ami-xyz" is not an AMI id`, `line 8: deploy.instance_type: "large"`,
			`line 9: deploy.subnets[0].id: "sub-1"`, `line 10: deploy.client.security_groups[0]: "group-1"`}},
		{"subnet of no node's AZ, twice", deployBase + `  subnets:
    - {az: us-east-1d, id: subnet-01234567}
    - {az: us-east-1a, id: subnet-01234567}
    - {az: us-east-1a, id: subnet-89abcdef}
`, []string{`line 11: deploy.subnets[0].az: "us-east-1d" is the AZ of no node`, "line 13: deploy.subnets[2].az: us-east-1a is also deploy.subnets[1]"}},
		{"unknown volume type", deployBase + "  volume: {type: gp4}\n", []string{`line 10: deploy.volume.type: "gp4": want gp3`}},
		{"size out of range", deployBase + "  volume: {type: st1, size_gib: 100}\n", []string{"deploy.volume.size_gib: 100 GiB: a st1 volume is 125..16384 GiB"}},
		{"iops on gp2", deployBase + "  volume: {type: gp2, iops: 3000}\n", []string{"deploy.volume.iops: a gp2 volume's IOPS cannot be set"}},
		{"io2 needs iops", deployBase + "  volume: {type: io2}\n", []string{"deploy.volume.iops: required for a io2 volume"}},
		{"iops per GiB", deployBase + "  volume: {type: io1, size_gib: 10, iops: 1000}\n", []string{"at most 50 IOPS per GiB (500 for 10 GiB)"}},
		{"gp3 iops below baseline", deployBase + "  volume: {iops: 1000}\n", []string{"deploy.volume.iops: 1000: a gp3 volume has 3000..80000 IOPS"}},
		{"throughput on io1", deployBase + "  volume: {type: io1, iops: 200, throughput: 200}\n", []string{"throughput cannot be set (only gp3)"}},
		{"throughput needs iops", deployBase + "  volume: {throughput: 1000}\n", []string{"1000 MiB/s needs at least 4000 IOPS"}},
		{"kms without encryption", deployBase + "  volume: {encrypted: false, kms_key_id: alias/k}\n", []string{"deploy.volume.kms_key_id: a KMS key needs deploy.volume.encrypted: true"}},
		{"bad kms", deployBase + "  volume: {kms_key_id: 'my key'}\n", []string{`"my key" is not a KMS key id`}},
		{"bad cidr", base + "deploy:\n  image_id: ami-01234567\n  instance_type: t3.micro\n  client: {cidrs: [10.0.0.0/33, 0.0.0.0/0]}\n",
			[]string{`deploy.client.cidrs[0]: "10.0.0.0/33" is not an IPv4 CIDR`, "deploy.client.cidrs[1]: 0.0.0.0/0 opens the client port to every address"}},
		{"bad profile name", deployBase + "  instance_profile: 'a b'\n", []string{`deploy.instance_profile: "a b" is not an instance profile name`}},
		{"retain", deployBase + "  snapshots: {daily: true, retain: 0}\n", []string{"deploy.snapshots.retain: 0: want 1..1000"}},
		{"groups", deployBase + "  groups: per_region\n", []string{`deploy.groups: "per_region": want per_az or per_node`}},
		{"pin with per_az groups", "node: 2\n" + deployBase, []string{"node: a pinned node and deploy.groups per_az contradict"}},
		{"role name too long", strings.Replace(deployBase, "ensemble: e1", "ensemble: "+strings.Repeat("e", 60), 1),
			[]string{"is too long for the IAM role"}},
		{"unknown field", deployBase + "  imge_id: ami-01234567\n", []string{`deploy.imge_id: unknown field (did you mean "image_id"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("t", []byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestDeployWarnsWithoutClients(t *testing.T) {
	_, warns, err := Parse("t", []byte(strings.Replace(deployBase, "  client: {cidrs: [10.0.0.0/16]}\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0].Error(), "deploy.client: no CIDR") {
		t.Errorf("warnings = %v", warns)
	}
}

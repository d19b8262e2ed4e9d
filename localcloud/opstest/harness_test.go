package opstest

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	gozk "github.com/go-zookeeper/zk"

	"github.com/zkaas/zkaas/localcloud"
	"github.com/zkaas/zkaas/localcloud/opsrig"
	"github.com/zkaas/zkaas/ops/zk"
)

// The ensemble the scenario deploys: three nodes, one per AZ, with daily
// snapshots.
const ensembleName = "opstest"

var spec = opsrig.Ensemble{
	Name: ensembleName,
	Nodes: []opsrig.Node{
		{ID: 1, AZ: "us-east-1a", IP: netip.MustParseAddr("10.0.1.10")},
		{ID: 2, AZ: "us-east-1b", IP: netip.MustParseAddr("10.0.2.10")},
		{ID: 3, AZ: "us-east-1c", IP: netip.MustParseAddr("10.0.3.10")},
	},
	ClaimDeadline: 20 * time.Second,
	Snapshots:     true,
}

var nodeIPs = spec.IPs()

// config is the ensemble's YAML with its deploy section, on image.
func config(image string) []byte { return spec.Config(image) }

// aws is the harness's view of the local cloud's APIs, through the real
// SDK clients from inside the VPC, signing as "harness" (not the
// operator).
type aws struct {
	cloud *localcloud.Cloud
	ec2   *ec2.Client
	asg   *autoscaling.Client
	iam   *iam.Client
}

func newAWS(cloud *localcloud.Cloud) *aws {
	creds := credentials.NewStaticCredentialsProvider("harness", "localcloud", "")
	return &aws{
		cloud: cloud,
		ec2:   cloud.EC2Client("harness"),
		asg:   cloud.AutoScalingClient(), // signs as "harness"
		iam: iam.New(iam.Options{Region: cloud.Region(), BaseEndpoint: sdk.String(cloud.IAMEndpoint()),
			HTTPClient: cloud.HTTPClient(), Credentials: creds}),
	}
}

func tagFilter(key, value string) ec2types.Filter {
	return ec2types.Filter{Name: sdk.String("tag:" + key), Values: []string{value}}
}

// resources counts what exists of each kind zkaas makes, as AWS lists it:
// by the ensemble tag for EC2, by name for IAM, by name prefix for the
// groups. A duplicate shows as a count above the config's.
type resources struct {
	ENIs, Volumes, SecurityGroups, Templates, Groups, Policies int
	Role, Profile                                              bool
}

func (a *aws) resources(t *testing.T) resources {
	t.Helper()
	ctx := t.Context()
	var r resources
	own := []ec2types.Filter{tagFilter("zkaas:ensemble", ensembleName), tagFilter("zkaas:managed-by", "zkaas")}
	enis, err := a.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: own})
	if err != nil {
		t.Fatal(err)
	}
	r.ENIs = len(enis.NetworkInterfaces)
	vols, err := a.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: own})
	if err != nil {
		t.Fatal(err)
	}
	r.Volumes = len(vols.Volumes)
	sgs, err := a.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: own})
	if err != nil {
		t.Fatal(err)
	}
	r.SecurityGroups = len(sgs.SecurityGroups)
	lts, err := a.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{Filters: own})
	if err != nil {
		t.Fatal(err)
	}
	r.Templates = len(lts.LaunchTemplates)
	groups, err := a.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.AutoScalingGroups {
		if strings.HasPrefix(sdk.ToString(g.AutoScalingGroupName), "zkaas-"+ensembleName+"-") {
			r.Groups++
		}
	}
	_, r.Role = a.cloud.IAM().Role("zkaas-" + ensembleName)
	_, r.Profile = a.cloud.IAM().InstanceProfile("zkaas-" + ensembleName)
	r.Policies = len(a.cloud.DLM().Policies())
	return r
}

// complete is what up makes for the config: two security groups, three
// ENIs and volumes, the role and profile, one template, a group per AZ and
// the snapshot policy.
var complete = resources{ENIs: 3, Volumes: 3, SecurityGroups: 2, Templates: 1, Groups: 3, Policies: 1, Role: true, Profile: true}

// suspend suspends (or resumes) a scaling process on every group.
func (a *aws) suspend(t *testing.T, process string, on bool) {
	t.Helper()
	for _, g := range spec.GroupNames() {
		var err error
		if on {
			_, err = a.asg.SuspendProcesses(t.Context(), &autoscaling.SuspendProcessesInput{AutoScalingGroupName: sdk.String(g), ScalingProcesses: []string{process}})
		} else {
			_, err = a.asg.ResumeProcesses(t.Context(), &autoscaling.ResumeProcessesInput{AutoScalingGroupName: sdk.String(g), ScalingProcesses: []string{process}})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func parseStatus(t testing.TB, r opsrig.Result) map[int]opsrig.StatusRow {
	t.Helper()
	rows, err := opsrig.ParseStatus(r, ensembleName)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// waitServing waits until every node serves, one of them leading.
func waitServing(t testing.TB, cloud *localcloud.Cloud, bound time.Duration) map[int]zk.Stat {
	t.Helper()
	stats, err := opsrig.WaitServing(t.Context(), cloud, spec.IPs(), bound)
	if err != nil {
		t.Fatal(err)
	}
	return stats
}

// connect opens a ZooKeeper session over every node.
func connect(t testing.TB, cloud *localcloud.Cloud) *gozk.Conn {
	t.Helper()
	c, err := opsrig.Connect(cloud, opsrig.Servers(spec.IPs()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startWriter(t testing.TB, cloud *localcloud.Cloud, dir string, bound time.Duration) *opsrig.Writer {
	t.Helper()
	w, err := opsrig.StartWriter(cloud, opsrig.Servers(spec.IPs()), dir, bound)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// finishWriter stops the writer and checks every acknowledged write is
// there and none failed past the bound.
func finishWriter(t testing.TB, w *opsrig.Writer, bound time.Duration) {
	t.Helper()
	r, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Failed {
		t.Errorf("write not acknowledged within %s: %s", bound, f)
	}
	for _, p := range r.Lost {
		t.Errorf("acknowledged write %s lost", p)
	}
	t.Logf("writer: %s", r)
}

// finishMonitor stops the monitor and checks that no two nodes were down
// at once: the roll takes one node out at a time, so the quorum (two of
// three) always has its members.
func finishMonitor(t testing.TB, m *opsrig.Monitor) {
	t.Helper()
	r := m.Finish()
	for _, d := range r.DownAt {
		t.Errorf("more than one node down at once: %s", d)
	}
	t.Logf("monitor: %s", r)
}

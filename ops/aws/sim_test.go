package aws_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/dlm"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/localcloud/asgsim"
	"github.com/zkaas/zkaas/localcloud/dlmsim"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/iamsim"
	opsaws "github.com/zkaas/zkaas/ops/aws"
	"github.com/zkaas/zkaas/ops/deploy"
	"github.com/zkaas/zkaas/ops/doctor"
	"github.com/zkaas/zkaas/ops/down"
	"github.com/zkaas/zkaas/ops/plan"
	"github.com/zkaas/zkaas/ops/roll"
	"github.com/zkaas/zkaas/ops/status"
)

// world is ec2sim, asgsim, iamsim and dlmsim behind the real SDK clients.
type world struct {
	calls atomic.Int64 // HTTP requests to any simulator
	sim   *ec2sim.Sim
	asg   *asgsim.Service
	iam   *iamsim.Service
	dlm   *dlmsim.Service
	ec2   *ec2.Client
	cloud *opsaws.Cloud
	cfg   ensemble.Config
	raw   []byte
}

func newWorld(t testing.TB, retries int) *world {
	t.Helper()
	w := &world{sim: ec2sim.New(ec2sim.Options{})}
	t.Cleanup(w.sim.Close)
	for az, cidr := range map[string]string{"us-east-1a": "10.0.1.0/24", "us-east-1b": "10.0.2.0/24", "us-east-1c": "10.0.3.0/24"} {
		if _, err := w.sim.CreateSubnet(az, cidr); err != nil {
			t.Fatal(err)
		}
	}
	w.asg = asgsim.New(asgsim.Options{EC2: asgsim.NewEC2Sim(w.sim)})
	w.iam = iamsim.New(iamsim.Options{Seed: 1})
	w.dlm = dlmsim.New(dlmsim.Options{Seed: 1})
	base := sdk.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), RetryMaxAttempts: retries}
	ec2srv := httptest.NewServer(w.count2(w.sim))
	asgsrv := httptest.NewServer(w.count2(w.asg))
	iamsrv := httptest.NewServer(w.count2(w.iam))
	dlmsrv := httptest.NewServer(w.count2(w.dlm))
	t.Cleanup(func() { ec2srv.Close(); asgsrv.Close(); iamsrv.Close(); dlmsrv.Close() })
	w.ec2 = ec2.NewFromConfig(base, func(o *ec2.Options) { o.BaseEndpoint = sdk.String(ec2srv.URL) })
	iamc := iam.NewFromConfig(base, func(o *iam.Options) { o.BaseEndpoint = sdk.String(iamsrv.URL) })
	w.cloud = &opsaws.Cloud{
		EC2:         &templates{Client: w.ec2, sim: w.sim, byID: map[string]*template{}},
		ASG:         autoscaling.NewFromConfig(base, func(o *autoscaling.Options) { o.BaseEndpoint = sdk.String(asgsrv.URL) }),
		IAM:         iamc,
		DLM:         dlm.NewFromConfig(base, func(o *dlm.Options) { o.BaseEndpoint = sdk.String(dlmsrv.URL) }),
		TagEnsemble: "zkaas:ensemble", TagNode: "zkaas:node", Log: slog.New(slog.DiscardHandler),
		Poll: 10 * time.Millisecond, Wait: 5 * time.Second,
	}
	// DLM's execution role exists before up, as `aws dlm create-default-role` makes it.
	_, err := iamc.CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: sdk.String("AWSDataLifecycleManagerDefaultRole"),
		AssumeRolePolicyDocument: sdk.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"dlm.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	w.raw, err = os.ReadFile("testdata/ensemble.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if w.cfg, _, err = ensemble.Parse("ensemble.yaml", w.raw); err != nil {
		t.Fatal(err)
	}
	return w
}

// count2 counts the requests h serves.
func (w *world) count2(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.calls.Add(1)
		h.ServeHTTP(rw, r)
	})
}

func (w *world) desired(t testing.TB) deploy.Desired {
	t.Helper()
	d, err := deploy.For(w.cfg, w.raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (w *world) up(ctx context.Context, t testing.TB) (int, error) {
	t.Helper()
	p, err := plan.Make(ctx, w.cloud, w.desired(t))
	if err != nil {
		return 0, err
	}
	return plan.Apply(ctx, w.cloud, p, slog.New(slog.DiscardHandler))
}

func (w *world) plan(t *testing.T) *plan.Plan {
	t.Helper()
	p, err := plan.Make(context.Background(), w.cloud, w.desired(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) count(t *testing.T) map[string]int {
	t.Helper()
	ctx := context.Background()
	n := map[string]int{}
	enis, err := w.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	if err != nil {
		t.Fatal(err)
	}
	n["eni"] = len(enis.NetworkInterfaces)
	vols, err := w.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
	if err != nil {
		t.Fatal(err)
	}
	n["volume"] = len(vols.Volumes)
	sgs, err := w.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: sdk.String("tag:zkaas:ensemble"), Values: []string{"sim-zk"}}}})
	if err != nil {
		t.Fatal(err)
	}
	n["sg"] = len(sgs.SecurityGroups)
	groups, err := w.cloud.ASG.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	n["group"] = len(groups.AutoScalingGroups)
	n["policy"] = len(w.dlm.Policies())
	return n
}

func TestUpAgainstTheSimulators(t *testing.T) {
	w := newWorld(t, 0)
	ctx := context.Background()
	before := w.calls.Load()
	start := time.Now()
	n, err := w.up(ctx, t)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up from nothing: %d API calls, %s", w.calls.Load()-before, time.Since(start))
	// A converged plan only reads.
	w.sim.ResetStats()
	if _, err := w.up(ctx, t); err != nil {
		t.Fatal(err)
	}
	for action := range w.sim.Stats().Calls {
		if !strings.HasPrefix(action, "Describe") {
			t.Errorf("a second up called %s", action)
		}
	}
	d := w.desired(t)
	if n != len(d.Resources) {
		t.Errorf("up changed %d, want %d", n, len(d.Resources))
	}
	if p := w.plan(t); p.Changes() != 0 || len(p.Conflicts()) != 0 {
		var b strings.Builder
		_ = plan.Print(&b, p)
		t.Fatalf("a second plan after up is not empty:\n%s", b.String())
	}
	if got := w.count(t); got["eni"] != 3 || got["volume"] != 3 || got["sg"] != 2 || got["group"] != 3 || got["policy"] != 1 {
		t.Errorf("counts %v", got)
	}
	// The ENIs are what firstboot claims: tagged, fixed IP, in the nodes' group.
	enis, err := w.cloud.ENIs(ctx, "sim-zk")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range enis {
		want := fmt.Sprintf("10.0.%d.10", e.Node)
		if e.IP.String() != want || e.Tags["zkaas:managed-by"] != "zkaas" || len(e.Groups) != 1 {
			t.Errorf("ENI %+v", e)
		}
	}
	// The template carries the config as user data, IMDSv2 required.
	lt, _, err := w.sim.ResolveLaunchTemplate("", "zkaas-sim-zk", "$Default")
	if err != nil {
		t.Fatal(err)
	}
	_ = lt
	if _, ok := w.iam.Role("zkaas-sim-zk"); !ok {
		t.Fatal("no role")
	}
	if _, ok := w.iam.InstanceProfile("zkaas-sim-zk"); !ok {
		t.Error("no instance profile")
	}
	groups, err := w.cloud.Groups(ctx, "sim-zk")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Spec.Hook.Name != "zkaas-launch" || g.Spec.Grace < 20*time.Minute || len(g.Spec.Suspended) != 1 {
			t.Errorf("group %+v", g.Spec)
		}
	}
	// Doctor on what up made: everything AWS-side passes; ZooKeeper was
	// not asked.
	inv, soft, err := w.cloud.Inventory(ctx, w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(soft) > 0 {
		t.Logf("soft errors: %v", soft)
	}
	inv.DryRun = w.cloud.DryRun(ctx, w.cfg, enis[0].Subnet)
	for _, f := range doctor.Run(doctor.Input{Config: w.cfg, Inv: inv}) {
		if !f.OK && f.Check != "zookeeper" {
			t.Errorf("doctor: %+v", f)
		}
	}
	// A denied permission shows up in doctor through DryRun.
	w.sim.Deny("CreateVolume")
	if got := w.cloud.DryRun(ctx, w.cfg, enis[0].Subnet); got["CreateVolume"] != "UnauthorizedOperation" || got["CreateNetworkInterface"] != "" {
		t.Errorf("DryRun with CreateVolume denied: %v", got)
	}
}

// With the SDK's retries, a lost answer of an IAM create (no client token)
// is retried into EntityAlreadyExists: up takes the role or profile it
// made (its tags) and goes on, in the same run. A same-named role without
// the ensemble's tags is still refused.
func TestUpRidesOutLostIAMAnswers(t *testing.T) {
	for _, action := range []string{"CreateRole", "CreateInstanceProfile"} {
		t.Run(action, func(t *testing.T) {
			w := newWorld(t, 0)
			w.iam.LoseNextResponse(action, 1)
			if _, err := w.up(context.Background(), t); err != nil {
				t.Fatalf("up with %s's answer lost once: %v", action, err)
			}
			if r, ok := w.iam.Role("zkaas-sim-zk"); !ok || len(r.Policies) != 1 {
				t.Errorf("role: %+v", r)
			}
			if p, ok := w.iam.InstanceProfile("zkaas-sim-zk"); !ok || p.Role != "zkaas-sim-zk" {
				t.Errorf("instance profile: %+v", p)
			}
			if p := w.plan(t); p.Changes() != 0 {
				t.Errorf("%d changes after up", p.Changes())
			}
		})
	}
	t.Run("foreign role", func(t *testing.T) {
		w := newWorld(t, 0)
		ctx := context.Background()
		// Made between plan and apply by someone else: no zkaas tags.
		p := w.plan(t)
		if _, err := w.cloud.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: sdk.String("zkaas-sim-zk"), AssumeRolePolicyDocument: sdk.String(deploy.AssumeEC2)}); err != nil {
			t.Fatal(err)
		}
		if _, err := plan.Apply(ctx, w.cloud, p, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "EntityAlreadyExists") ||
			!strings.Contains(err.Error(), "was not made by zkaas") {
			t.Errorf("up over a foreign role of the same name: %v, want EntityAlreadyExists and that zkaas did not make it", err)
		}
	})
}

// An up whose answers are lost (the change happened, the caller saw a 500
// and gave up) resumes on the next run with no duplicates.
func TestUpResumesAfterLostAnswers(t *testing.T) {
	for _, action := range []string{"CreateVolume", "CreateNetworkInterface", "CreateSecurityGroup", "AuthorizeSecurityGroupIngress",
		"iam:CreateRole", "iam:PutRolePolicy", "iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile", "dlm:CreateLifecyclePolicy"} {
		t.Run(action, func(t *testing.T) {
			w := newWorld(t, 1)
			switch svc, name, _ := strings.Cut(action, ":"); {
			case name == "":
				w.sim.LoseNextResponse(action, 1)
			case svc == "iam":
				w.iam.LoseNextResponse(name, 1)
			default:
				w.dlm.LoseNextResponse(name, 1)
			}
			if _, err := w.up(context.Background(), t); err == nil {
				t.Fatal("up with a lost answer succeeded")
			}
			if _, err := w.up(context.Background(), t); err != nil {
				t.Fatalf("second up: %v", err)
			}
			if got := w.count(t); got["eni"] != 3 || got["volume"] != 3 || got["sg"] != 2 || got["group"] != 3 || got["policy"] != 1 {
				t.Errorf("after resuming: %v", got)
			}
			if p, ok := w.iam.InstanceProfile("zkaas-sim-zk"); !ok || p.Role != "zkaas-sim-zk" {
				t.Errorf("instance profile after resuming: %+v", p)
			}
			if p := w.plan(t); p.Changes() != 0 {
				t.Errorf("%d changes after resuming", p.Changes())
			}
		})
	}
}

func TestUpCancelledMidwayResumes(t *testing.T) {
	w := newWorld(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once the first volume exists.
	go func() {
		for ctx.Err() == nil {
			if vols, _ := w.ec2.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{}); vols != nil && len(vols.Volumes) > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, err := w.up(ctx, t)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Logf("up ended with %v (it may have finished before the cancel)", err)
	}
	if _, err := w.up(context.Background(), t); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t); got["eni"] != 3 || got["volume"] != 3 || got["group"] != 3 {
		t.Errorf("after resuming: %v", got)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestDownAgainstTheSimulators(t *testing.T) {
	w := newWorld(t, 0)
	ctx := context.Background()
	// A foreign ENI and volume in the same subnets and one of another ensemble.
	sub, err := w.cloud.SubnetFor(ctx, "us-east-1a", mustAddr("10.0.1.50"))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := w.sim.CreateNetworkInterface(sub.ID, "10.0.1.50", map[string]string{"team": "other"})
	if err != nil {
		t.Fatal(err)
	}
	hand, err := w.sim.CreateVolume("us-east-1b", 10, map[string]string{"zkaas:ensemble": "other-zk", "zkaas:node": "2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.up(ctx, t); err != nil {
		t.Fatal(err)
	}
	d := w.desired(t)
	res, err := down.Run(ctx, w.cloud, d, down.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	got := w.count(t)
	if got["eni"] != 4 || got["volume"] != 4 || got["group"] != 0 || got["policy"] != 0 || got["sg"] != 1 {
		t.Errorf("after down: %v (kept %v)", got, res.Kept)
	}
	_, role := w.iam.Role("zkaas-sim-zk")
	_, prof := w.iam.InstanceProfile("zkaas-sim-zk")
	if role || prof {
		t.Error("role or profile left")
	}
	if _, err := down.Run(ctx, w.cloud, d, down.Options{DeleteData: true, Confirm: "sim-zk"}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	got = w.count(t)
	if got["eni"] != 1 || got["volume"] != 1 || got["sg"] != 0 {
		t.Errorf("after down -delete-data: %v", got)
	}
	if _, ok := w.sim.NetworkInterface(foreign.ID); !ok {
		t.Error("the foreign ENI was deleted")
	}
	if _, ok := w.sim.Volume(hand.ID); !ok {
		t.Error("the other ensemble's volume was deleted")
	}
}

// templates serves the launch template calls in memory and mirrors each
// template into the simulator's Go API, which the Auto Scaling simulator
// launches from: ec2sim registers its launch template actions on the wire
// only for its own tests so far (launchtemplate_register_test.go).
type templates struct {
	*ec2.Client
	sim  *ec2sim.Sim
	mu   sync.Mutex
	byID map[string]*template
}

type template struct {
	id, name string
	tags     []ec2types.Tag
	versions []*ec2types.ResponseLaunchTemplateData
	def      int64
}

func respData(d *ec2types.RequestLaunchTemplateData) *ec2types.ResponseLaunchTemplateData {
	r := &ec2types.ResponseLaunchTemplateData{ImageId: d.ImageId, InstanceType: d.InstanceType, SecurityGroupIds: d.SecurityGroupIds, UserData: d.UserData}
	if d.IamInstanceProfile != nil {
		r.IamInstanceProfile = &ec2types.LaunchTemplateIamInstanceProfileSpecification{Name: d.IamInstanceProfile.Name}
	}
	if m := d.MetadataOptions; m != nil {
		r.MetadataOptions = &ec2types.LaunchTemplateInstanceMetadataOptions{HttpTokens: m.HttpTokens, HttpPutResponseHopLimit: m.HttpPutResponseHopLimit}
	}
	return r
}

func (t *templates) CreateLaunchTemplate(_ context.Context, in *ec2.CreateLaunchTemplateInput, _ ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateOutput, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := in.LaunchTemplateData
	if _, err := base64.StdEncoding.DecodeString(sdk.ToString(d.UserData)); err != nil {
		return nil, fmt.Errorf("user data is not base64: %w", err)
	}
	lt, err := t.sim.CreateLaunchTemplate(sdk.ToString(in.LaunchTemplateName), ec2sim.LaunchTemplateData{
		ImageID: sdk.ToString(d.ImageId), InstanceType: string(d.InstanceType), UserData: sdk.ToString(d.UserData),
		IAMInstanceProfile: &ec2sim.IAMInstanceProfile{Name: sdk.ToString(d.IamInstanceProfile.Name)},
		MetadataOptions:    &ec2sim.MetadataOptions{HTTPTokens: string(d.MetadataOptions.HttpTokens), HTTPPutHopLimit: sdk.ToInt32(d.MetadataOptions.HttpPutResponseHopLimit)},
		SecurityGroupIDs:   d.SecurityGroupIds,
	})
	if err != nil {
		return nil, err
	}
	var tags []ec2types.Tag
	for _, ts := range in.TagSpecifications {
		tags = append(tags, ts.Tags...)
	}
	t.byID[lt.ID] = &template{id: lt.ID, name: lt.Name, tags: tags, versions: []*ec2types.ResponseLaunchTemplateData{respData(d)}, def: 1}
	return &ec2.CreateLaunchTemplateOutput{LaunchTemplate: &ec2types.LaunchTemplate{LaunchTemplateId: sdk.String(lt.ID), LaunchTemplateName: sdk.String(lt.Name)}}, nil
}

func (t *templates) DescribeLaunchTemplates(_ context.Context, in *ec2.DescribeLaunchTemplatesInput, _ ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := &ec2.DescribeLaunchTemplatesOutput{}
	for _, lt := range t.byID {
		match := true
		for _, f := range in.Filters {
			key, _ := strings.CutPrefix(sdk.ToString(f.Name), "tag:")
			found := false
			for _, tg := range lt.tags {
				if sdk.ToString(tg.Key) == key && len(f.Values) > 0 && sdk.ToString(tg.Value) == f.Values[0] {
					found = true
				}
			}
			match = match && found
		}
		if match {
			out.LaunchTemplates = append(out.LaunchTemplates, ec2types.LaunchTemplate{LaunchTemplateId: sdk.String(lt.id), LaunchTemplateName: sdk.String(lt.name), Tags: lt.tags, DefaultVersionNumber: sdk.Int64(lt.def)})
		}
	}
	return out, nil
}

func (t *templates) DescribeLaunchTemplateVersions(_ context.Context, in *ec2.DescribeLaunchTemplateVersionsInput, _ ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lt := t.byID[sdk.ToString(in.LaunchTemplateId)]
	if lt == nil {
		return nil, errors.New("InvalidLaunchTemplateId.NotFound")
	}
	return &ec2.DescribeLaunchTemplateVersionsOutput{LaunchTemplateVersions: []ec2types.LaunchTemplateVersion{{LaunchTemplateData: lt.versions[lt.def-1], VersionNumber: sdk.Int64(lt.def)}}}, nil
}

func (t *templates) CreateLaunchTemplateVersion(_ context.Context, in *ec2.CreateLaunchTemplateVersionInput, _ ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateVersionOutput, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lt := t.byID[sdk.ToString(in.LaunchTemplateId)]
	lt.versions = append(lt.versions, respData(in.LaunchTemplateData))
	return &ec2.CreateLaunchTemplateVersionOutput{LaunchTemplateVersion: &ec2types.LaunchTemplateVersion{VersionNumber: sdk.Int64(int64(len(lt.versions)))}}, nil
}

func (t *templates) ModifyLaunchTemplate(_ context.Context, in *ec2.ModifyLaunchTemplateInput, _ ...func(*ec2.Options)) (*ec2.ModifyLaunchTemplateOutput, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lt := t.byID[sdk.ToString(in.LaunchTemplateId)]
	fmt.Sscan(sdk.ToString(in.DefaultVersion), &lt.def)
	return &ec2.ModifyLaunchTemplateOutput{}, nil
}

func (t *templates) DeleteLaunchTemplate(_ context.Context, in *ec2.DeleteLaunchTemplateInput, _ ...func(*ec2.Options)) (*ec2.DeleteLaunchTemplateOutput, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byID, sdk.ToString(in.LaunchTemplateId))
	return &ec2.DeleteLaunchTemplateOutput{}, nil
}

// Per-node groups: one template per node with the node pinned in its user
// data, a group of one tagged with the node; the groups' launches wait in
// Pending:Wait on the zkaas-launch hook, which status shows.
func TestPerNodeGroups(t *testing.T) {
	w := newWorld(t, 0)
	w.raw = append(w.raw, []byte("  groups: per_node\n")...)
	var err error
	if w.cfg, _, err = ensemble.Parse("ensemble.yaml", w.raw); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := w.up(ctx, t); err != nil {
		t.Fatal(err)
	}
	if p := w.plan(t); p.Changes() != 0 {
		t.Errorf("%d changes after up", p.Changes())
	}
	for n := 1; n <= 3; n++ {
		name := fmt.Sprintf("zkaas-sim-zk-node-%d", n)
		_, v, err := w.sim.ResolveLaunchTemplate("", name, "$Default")
		if err != nil {
			t.Fatal(err)
		}
		ud, err := base64.StdEncoding.DecodeString(v.Data.UserData)
		if err != nil {
			t.Fatal(err)
		}
		doc, ok, err := ensemble.FromUserData(ud)
		if err != nil || !ok {
			t.Fatalf("%s: user data: %v %v", name, ok, err)
		}
		cfg, _, err := ensemble.Parse(ensemble.UserDataName, doc)
		if err != nil || cfg.Node != n {
			t.Errorf("%s: node %d, %v", name, cfg.Node, err)
		}
		if v.Data.MetadataOptions == nil || v.Data.MetadataOptions.HTTPTokens != "required" || v.Data.MetadataOptions.HTTPPutHopLimit != 1 {
			t.Errorf("%s: metadata options %+v", name, v.Data.MetadataOptions)
		}
	}
	if err := w.asg.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	groups, err := w.cloud.Groups(ctx, "sim-zk")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Spec.Node == 0 || g.Spec.Size != 1 {
			t.Errorf("group %s: %+v", g.Name, g.Spec)
		}
		if len(g.Instances) != 1 || g.Instances[0].Lifecycle != "Pending:Wait" {
			t.Errorf("group %s instances %+v: want one held by the launch hook", g.Name, g.Instances)
		}
	}
	// Play firstboot's claim for node 1 on its group's instance; status
	// then shows the holder, its state and its lifecycle state.
	var inst string
	for _, g := range groups {
		if g.Spec.Node == 1 {
			inst = g.Instances[0].ID
		}
	}
	enis, err := w.cloud.ENIs(ctx, "sim-zk")
	if err != nil {
		t.Fatal(err)
	}
	vols, err := w.cloud.Volumes(ctx, "sim-zk")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range enis {
		if e.Node == 1 {
			if _, err := w.ec2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: sdk.String(e.ID), InstanceId: sdk.String(inst), DeviceIndex: sdk.Int32(1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, v := range vols {
		if v.Node == 1 {
			if _, err := w.ec2.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: sdk.String(v.ID), InstanceId: sdk.String(inst), Device: sdk.String("/dev/xvdf")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	inv, soft, err := w.cloud.Inventory(ctx, w.cfg)
	if err != nil || len(soft) > 0 {
		t.Fatalf("inventory: %v %v", err, soft)
	}
	rows := status.Rows(w.cfg, inv, nil, nil)
	if r := rows[0]; r.Holder != inst || r.VolumeHolder != inst || r.State != "running" || r.Lifecycle != "Pending:Wait" || r.AZ != "us-east-1a" {
		t.Errorf("status row of node 1: %+v", r)
	}
	if r := rows[1]; r.Holder != "" || r.ENI == "" || r.Volume == "" {
		t.Errorf("status row of node 2: %+v", r)
	}
	// The holder is an instance of the ensemble (its group's tags
	// propagated): doctor's foreign-holder check passes.
	for _, f := range doctor.Run(doctor.Input{Config: w.cfg, Inv: inv}) {
		if f.Check == "foreign-holder" && !f.OK {
			t.Errorf("doctor: %+v", f)
		}
	}
	// Roll's view: node 1's holder runs the default version; after a
	// new template version it does not, and Replace has its group
	// terminate it without lowering the desired capacity.
	roller := opsaws.Roller{Cloud: w.cloud, Ensemble: "sim-zk"}
	nodes, err := roller.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := nodeOf(nodes, 1); n.Instance != inst || !n.Current {
		t.Errorf("node 1 before the new version: %+v", n)
	}
	w.cfg.Deploy.ImageID = "ami-0fedcba9876543210"
	if _, err := w.up(ctx, t); err != nil {
		t.Fatal(err)
	}
	if nodes, err = roller.Nodes(ctx); err != nil || nodeOf(nodes, 1).Current {
		t.Errorf("node 1 after the new version: %+v %v", nodeOf(nodes, 1), err)
	}
	if err := roller.Replace(ctx, inst); err != nil {
		t.Fatal(err)
	}
	groups, err = w.cloud.Groups(ctx, "sim-zk")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Spec.Node == 1 && g.Spec.Size != 1 {
			t.Errorf("Replace changed the desired capacity: %+v", g.Spec)
		}
	}
}

func nodeOf(nodes []roll.Node, id int) roll.Node {
	for _, n := range nodes {
		if n.ID == id {
			return n
		}
	}
	return roll.Node{}
}

// BenchmarkUpFromNothing: the API calls and time of a first up of a
// 3-node ensemble (simulators without latency: the time is zkaas's own
// plus the simulators' answers over local HTTP; localcloud/opstest's
// BenchmarkFiveNodeRoll times up with EC2's latency model).
func BenchmarkUpFromNothing(b *testing.B) {
	var calls int64
	var took time.Duration
	for b.Loop() {
		b.StopTimer()
		w := newWorld(b, 0)
		before := w.calls.Load()
		b.StartTimer()
		start := time.Now()
		if _, err := w.up(context.Background(), b); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
		calls += w.calls.Load() - before
	}
	b.ReportMetric(float64(calls)/float64(b.N), "api_calls/up")
	b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "ms/up")
}

// A foreign interface holding a node's IP makes the plan conflict; up
// makes nothing.
func TestPlanSeesATakenAddress(t *testing.T) {
	w := newWorld(t, 0)
	ctx := context.Background()
	sub, err := w.cloud.SubnetFor(ctx, "us-east-1b", mustAddr("10.0.2.10"))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := w.sim.CreateNetworkInterface(sub.ID, "10.0.2.10", map[string]string{"team": "other"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.up(ctx, t)
	if err == nil || !strings.Contains(err.Error(), "10.0.2.10 is already the address of "+foreign.ID) {
		t.Fatalf("up: %v", err)
	}
	if got := w.count(t); got["eni"] != 1 || got["volume"] != 0 || got["sg"] != 0 {
		t.Errorf("up made resources before refusing: %v", got)
	}
}

// Throttled and internal errors are the SDK retryer's: up goes through.
func TestUpRidesOutThrottling(t *testing.T) {
	w := newWorld(t, 0)
	w.sim.FailNext("CreateVolume", 2, "RequestLimitExceeded")
	w.sim.FailNext("CreateNetworkInterface", 1, "InternalError")
	if _, err := w.up(context.Background(), t); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t); got["eni"] != 3 || got["volume"] != 3 {
		t.Errorf("counts %v", got)
	}
	if errs := w.sim.Stats().Errors; errs["RequestLimitExceeded"] != 2 || errs["InternalError"] != 1 {
		t.Errorf("the faults were not injected: %v", errs)
	}
}

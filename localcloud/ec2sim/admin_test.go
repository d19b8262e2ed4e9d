package ec2sim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

func TestAdminErrors(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	e.eni(e.subA, "10.0.1.10", nil)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"subnet in another region", func() error { _, err := e.sim.CreateSubnet("eu-west-1a", "10.0.9.0/24"); return err }, "Invalid availability zone"},
		{"subnet overlaps", func() error { _, err := e.sim.CreateSubnet("us-east-1c", "10.0.1.128/25"); return err }, "overlaps " + e.subA},
		{"subnet not a network", func() error { _, err := e.sim.CreateSubnet("us-east-1c", "10.0.9.1/24"); return err }, "is not an IPv4 network"},
		{"ENI in unknown subnet", func() error { _, err := e.sim.CreateNetworkInterface("subnet-0123456789abcdef0", "", nil); return err }, "InvalidSubnetID.NotFound"},
		{"ENI address outside subnet", func() error { _, err := e.sim.CreateNetworkInterface(e.subA, "10.0.2.10", nil); return err }, "does not fall within"},
		{"ENI address reserved", func() error { _, err := e.sim.CreateNetworkInterface(e.subA, "10.0.1.1", nil); return err }, "reserved address range"},
		{"ENI address in use", func() error { _, err := e.sim.CreateNetworkInterface(e.subA, "10.0.1.10", nil); return err }, "InvalidIPAddress.InUse"},
		{"volume in bad AZ", func() error { _, err := e.sim.CreateVolume("us-east-1", 10, nil); return err }, "Invalid availability zone"},
		{"volume size", func() error { _, err := e.sim.CreateVolume("us-east-1a", 0, nil); return err }, "outside 1..16384"},
		{"terminate unknown", func() error { return e.sim.TerminateInstance("i-0123456789abcdef0") }, "InvalidInstanceID.NotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Addresses are handed out lowest first, skipping EC2's reserved ones
	// and used ones.
	small, err := e.sim.CreateSubnet("us-east-1c", "10.0.3.0/28")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 11 {
		if _, err := e.sim.CreateNetworkInterface(small, "", nil); err != nil {
			t.Fatalf("address %d of a /28: %v", i+1, err)
		}
	}
	if _, err := e.sim.RunInstance(small); err == nil || !strings.Contains(err.Error(), "InsufficientFreeAddressesInSubnet") {
		t.Fatalf("12th address of a /28: %v", err)
	}
}

func TestAdminHTTP(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	call := func(method, path, body string, out any) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx(t), method, e.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode == 200 {
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, data)
			}
		}
		return resp.StatusCode
	}

	var sub struct{ SubnetID string }
	if code := call("POST", "/_sim/subnets", `{"availabilityZone":"us-east-1c","cidrBlock":"10.0.3.0/24"}`, &sub); code != 200 || sub.SubnetID == "" {
		t.Fatalf("create subnet: %d %+v", code, sub)
	}
	var inst ec2sim.Instance
	if code := call("POST", "/_sim/instances", `{"subnetId":"`+sub.SubnetID+`"}`, &inst); code != 200 || inst.State != ec2sim.StateRunning {
		t.Fatalf("run instance: %d %+v", code, inst)
	}
	var n ec2sim.NetworkInterface
	if code := call("POST", "/_sim/network-interfaces", `{"subnetId":"`+sub.SubnetID+`","privateIpAddress":"10.0.3.10","tags":{"zkaas:node":"1"}}`, &n); code != 200 || n.PrivateIP != "10.0.3.10" {
		t.Fatalf("create ENI: %d %+v", code, n)
	}
	var v ec2sim.Volume
	if code := call("POST", "/_sim/volumes", `{"availabilityZone":"us-east-1c","sizeGiB":5,"tags":{"zkaas:node":"1"}}`, &v); code != 200 || v.SizeGiB != 5 {
		t.Fatalf("create volume: %d %+v", code, v)
	}
	if code := call("POST", "/_sim/stick/"+v.ID, "", nil); code != 204 {
		t.Fatalf("stick: %d", code)
	}
	if _, err := e.ec2.AttachVolume(ctx(t), &ec2.AttachVolumeInput{VolumeId: aws.String(v.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/xvdf")}); err != nil {
		t.Fatal(err)
	}
	var got ec2sim.Volume
	if code := call("GET", "/_sim/volumes/"+v.ID, "", &got); code != 200 || got.Attachment == nil || got.Attachment.State != ec2sim.AttachAttaching {
		t.Fatalf("stuck volume: %d %+v", code, got)
	}
	if code := call("PUT", "/_sim/faults", `{"throttleRate":1}`, nil); code != 204 {
		t.Fatalf("faults: %d", code)
	}
	_, err := e.client(noRetries).DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("vpc-id", n.VPCID)}})
	if code, _, status := apiError(t, err); code != "RequestLimitExceeded" || status != 503 {
		t.Fatalf("with throttleRate 1: %s %d", code, status)
	}
	var st ec2sim.Stats
	if code := call("GET", "/_sim/stats", "", &st); code != 200 || st.Calls["AttachVolume"] != 1 || st.Errors["RequestLimitExceeded"] != 1 {
		t.Fatalf("stats: %d %+v", code, st)
	}
	if code := call("POST", "/_sim/instances/"+inst.ID+"/terminate", "", nil); code != 204 {
		t.Fatalf("terminate: %d", code)
	}
	for _, path := range []string{"/_sim/instances/i-0123456789abcdef0", "/_sim/network-interfaces/eni-0123456789abcdef0"} {
		if code := call("GET", path, "", nil); code != 404 {
			t.Fatalf("GET %s: %d, want 404", path, code)
		}
	}
	if code := call("POST", "/_sim/instances/i-0123456789abcdef0/terminate", "", nil); code != 404 {
		t.Fatalf("terminate unknown: %d, want 404", code)
	}
	if code := call("POST", "/_sim/volumes", `{"availabilityZone":"us-east-1c","size":5}`, nil); code != 400 {
		t.Fatalf("unknown field: %d, want 400", code)
	}
}

func TestSeed(t *testing.T) {
	const doc = `
subnets:
  - name: a
    availabilityZone: us-east-1a
    cidrBlock: 10.0.1.0/24
  - name: b
    availabilityZone: us-east-1b
    cidrBlock: 10.0.2.0/24
networkInterfaces:
  - subnet: a
    privateIpAddress: 10.0.1.11
    tags: {"zkaas:ensemble": prod, "zkaas:node": "1"}
  - subnet: b
    tags:
      zkaas:ensemble: prod
      zkaas:node: "2"
volumes:
  - availabilityZone: us-east-1a
    sizeGiB: 10
    tags: {"zkaas:ensemble": prod, "zkaas:node": "1"}
instances:
  - subnet: a
    count: 2
  - subnet: b
`
	seed, err := ec2sim.ParseSeed([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	sim := ec2sim.New(ec2sim.Options{})
	t.Cleanup(sim.Close)
	got, err := sim.ApplySeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Subnets) != 2 || len(got.NetworkInterfaces) != 2 || len(got.Volumes) != 1 || len(got.Instances) != 3 {
		t.Fatalf("seeded %+v", got)
	}
	if n := got.NetworkInterfaces[1]; n.AZ != "us-east-1b" || n.Tags["zkaas:node"] != "2" || n.PrivateIP != "10.0.2.4" {
		t.Fatalf("second ENI %+v", n)
	}

	bad := []struct{ name, doc, want string }{
		{"unknown field", "subnets:\n  - name: a\n    zone: us-east-1a\n", "field zone not found"},
		{"wrong type", "volumes:\n  - sizeGiB: big\n", "cannot unmarshal"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ec2sim.ParseSeed([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	badApply := []struct{ name, doc, want string }{
		{"unknown subnet", "instances:\n  - subnet: nope\n", `unknown subnet "nope"`},
		{"duplicate name", "subnets:\n  - {name: a, availabilityZone: us-east-1a, cidrBlock: 10.0.1.0/24}\n  - {name: a, availabilityZone: us-east-1a, cidrBlock: 10.0.2.0/24}\n", "used twice"},
		{"bad cidr", "subnets:\n  - {name: a, availabilityZone: us-east-1a, cidrBlock: 10.0.1.0/33}\n", "is not an IPv4 network"},
	}
	for _, tc := range badApply {
		t.Run(tc.name, func(t *testing.T) {
			seed, err := ec2sim.ParseSeed([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			s := ec2sim.New(ec2sim.Options{})
			defer s.Close()
			if _, err := s.ApplySeed(seed); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ec2sim.ParseSeed(nil); err != nil {
		t.Fatalf("empty seed: %v", err)
	}
}

func TestCreateTagsAdmin(t *testing.T) {
	s := ec2sim.New(ec2sim.Options{})
	t.Cleanup(s.Close)
	v, err := s.CreateVolume("us-east-1a", 1, map[string]string{"zkaas:node": "2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTags([]string{v.ID}, map[string]string{"zkaas:node": "retired", "b": "1"}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Volume(v.ID)
	if got.Tags["zkaas:node"] != "retired" || got.Tags["b"] != "1" {
		t.Errorf("tags = %v", got.Tags)
	}
	if err := s.CreateTags([]string{"vol-0000000000000000f"}, map[string]string{"a": "b"}); err == nil {
		t.Error("tagging an unknown volume succeeded")
	}
}

// TestAdminKnobs covers the admin endpoints for instance types, lags,
// hidden attachments and reboots.
func TestAdminKnobs(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	call := func(method, path, body string, out any) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx(t), method, e.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode == 200 {
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, data)
			}
		}
		return resp.StatusCode
	}
	var inst ec2sim.Instance
	if code := call("POST", "/_sim/instances", `{"subnetId":"`+e.subA+`","instanceType":"m5.xlarge"}`, &inst); code != 200 || inst.InstanceType != "m5.xlarge" {
		t.Fatalf("run m5.xlarge: %d %+v", code, inst)
	}
	if code := call("POST", "/_sim/instances", `{"subnetId":"`+e.subA+`","instanceType":"x9.huge"}`, nil); code != 400 {
		t.Fatalf("unknown type: %d, want 400", code)
	}
	n := e.eni(e.subA, "", nil)
	if code := call("POST", "/_sim/hide/"+n.ID, "", nil); code != 204 {
		t.Fatalf("hide: %d", code)
	}
	e.attachENI(n.ID, inst.ID, 1)
	if got := e.describeENI(n.ID); got.Attachment != nil {
		t.Fatalf("hidden attachment shows: %+v", got.Attachment)
	}
	if code := call("POST", "/_sim/instances/"+inst.ID+"/reboot", "", nil); code != 204 {
		t.Fatalf("reboot: %d", code)
	}
	if code := call("POST", "/_sim/instances/i-0123456789abcdef0/reboot", "", nil); code != 404 {
		t.Fatalf("reboot unknown: %d, want 404", code)
	}
	other := e.run(e.subA)
	if code := call("POST", "/_sim/instances/"+other.ID+"/stop", "", nil); code != 204 {
		t.Fatalf("stop: %d", code)
	}
	eventually(t, "stopped", func() bool { i, _ := e.sim.Instance(other.ID); return i.State == ec2sim.StateStopped })
	if code := call("POST", "/_sim/instances/"+other.ID+"/start", "", nil); code != 204 {
		t.Fatalf("start: %d", code)
	}
	if code := call("POST", "/_sim/instances/i-0123456789abcdef0/stop", "", nil); code != 404 {
		t.Fatalf("stop unknown: %d, want 404", code)
	}
	if code := call("PUT", "/_sim/faults", `{"forcedDetachIndexLossRate":1,"forcedDetachDeviceHoldRate":1,"eniInUseCodeRate":1}`, nil); code != 204 {
		t.Fatalf("faults: %d", code)
	}
	wantError(t, e.attachAt(n.ID, inst.ID, 2), "InvalidNetworkInterface.InUse", "")
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"volumes":"300ms","instances":"1s","networkInterfaces":"0s","newIds":"200ms","random":true}`, 204},
		{`{"volumes":"soon"}`, 400},
		{`{"volumes":"-1s"}`, 400},
		{`{"lag":"1s"}`, 400},
	} {
		if code := call("PUT", "/_sim/lag", tc.body, nil); code != tc.code {
			t.Fatalf("PUT /_sim/lag %s: %d, want %d", tc.body, code, tc.code)
		}
	}
	// newIds 200ms now applies to API mutations on fresh ids.
	fresh := e.volume("us-east-1a", nil)
	_, err := e.ec2.AttachVolume(ctx(t), &ec2.AttachVolumeInput{VolumeId: aws.String(fresh.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/xvdf")})
	if code, _, _ := apiError(t, err); code != "InvalidVolume.NotFound" {
		t.Fatalf("attach of a fresh volume after PUT /_sim/lag: %s", code)
	}

	seed, err := ec2sim.ParseSeed([]byte("subnets:\n  - {name: a, availabilityZone: us-east-1a, cidrBlock: 10.0.1.0/24}\ninstances:\n  - {subnet: a, instanceType: t3.micro}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := ec2sim.New(ec2sim.Options{})
	defer s.Close()
	got, err := s.ApplySeed(seed)
	if err != nil || got.Instances[0].InstanceType != "t3.micro" {
		t.Fatalf("seeded %+v, %v", got.Instances, err)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/zkaas/zkaas/localcloud/asgsim"
	"github.com/zkaas/zkaas/localcloud/dlmsim"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
	"github.com/zkaas/zkaas/localcloud/iamsim"
)

// The real command finds the simulators through the SDK's standard
// endpoint variables, as an operator's machine finds AWS.
func TestStatusThroughEndpointVariables(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	t.Cleanup(sim.Close)
	subs := map[int]string{}
	for n, az := range map[int]string{1: "us-east-1a", 2: "us-east-1b", 3: "us-east-1c"} {
		id, err := sim.CreateSubnet(az, fmt.Sprintf("10.0.%d.0/24", n))
		if err != nil {
			t.Fatal(err)
		}
		subs[n] = id
	}
	for n := 1; n <= 3; n++ {
		tags := map[string]string{"zkaas:ensemble": "prod-zk", "zkaas:node": strconv.Itoa(n)}
		if _, err := sim.CreateNetworkInterface(subs[n], fmt.Sprintf("10.0.%d.10", n), tags); err != nil {
			t.Fatal(err)
		}
		if _, err := sim.CreateVolume(map[int]string{1: "us-east-1a", 2: "us-east-1b", 3: "us-east-1c"}[n], 20, tags); err != nil {
			t.Fatal(err)
		}
	}
	servers := map[string]*httptest.Server{
		"EC2":          httptest.NewServer(sim),
		"AUTO_SCALING": httptest.NewServer(asgsim.New(asgsim.Options{EC2: asgsim.NewEC2Sim(sim)})),
		"IAM":          httptest.NewServer(iamsim.New(iamsim.Options{})),
		"DLM":          httptest.NewServer(dlmsim.New(dlmsim.Options{})),
	}
	for name, srv := range servers {
		t.Cleanup(srv.Close)
		t.Setenv("AWS_ENDPOINT_URL_"+name, srv.URL)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	var out, errb bytes.Buffer
	e := env{stdout: &out, stderr: &errb, newCloud: realCloud}
	if code := e.run(context.Background(), []string{"status", "-config", "testdata/ensemble.yaml", "-o", "json", "-zookeeper=false"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got struct {
		Ensemble string
		Nodes    []struct {
			Node        int
			IP, ENI, AZ string
			Volume      string
		}
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if got.Ensemble != "prod-zk" || len(got.Nodes) != 3 {
		t.Fatalf("%s", out.String())
	}
	for _, n := range got.Nodes {
		if !strings.HasPrefix(n.ENI, "eni-") || !strings.HasPrefix(n.Volume, "vol-") {
			t.Errorf("node %+v", n)
		}
	}
	t.Logf("stderr: %s", errb.String())
}

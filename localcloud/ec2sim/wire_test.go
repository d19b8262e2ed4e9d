package ec2sim_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/zkaas/zkaas/internal/golden"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// post sends a raw ec2query request, as the SDK would, and returns status
// and body.
func post(t *testing.T, endpoint string, form url.Values, signed bool) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if signed {
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

var (
	timestampRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`)
	requestIDRE = regexp.MustCompile(`(<requestId>|<RequestID>)[0-9a-f-]{36}(</)`)
)

// normalize indents the XML and masks what changes between runs (times,
// request ids), leaving every element name and value EC2 clients read.
func normalize(t *testing.T, raw []byte) string {
	t.Helper()
	raw = timestampRE.ReplaceAll(raw, []byte("TIMESTAMP"))
	raw = requestIDRE.ReplaceAll(raw, []byte("${1}REQUEST-ID${2}"))
	dec := xml.NewDecoder(bytes.NewReader(raw))
	var b strings.Builder
	depth, leaf, text := 0, false, ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("response is not XML: %v\n%s", err, raw)
		}
		switch tok := tok.(type) {
		case xml.ProcInst:
			b.WriteString("<?" + tok.Target + " " + string(tok.Inst) + "?>")
		case xml.StartElement:
			b.WriteString("\n" + strings.Repeat("  ", depth) + "<" + tok.Name.Local)
			for _, a := range tok.Attr {
				b.WriteString(" " + a.Name.Local + `="` + a.Value + `"`)
			}
			b.WriteString(">")
			depth, leaf, text = depth+1, true, ""
		case xml.CharData:
			text += string(tok)
		case xml.EndElement:
			depth--
			if leaf {
				b.WriteString(text)
			} else {
				b.WriteString("\n" + strings.Repeat("  ", depth))
			}
			b.WriteString("</" + tok.Name.Local + ">")
			leaf = false
		}
	}
	return b.String() + "\n"
}

// TestWireFormat pins the exact XML of each response kind. A fixed seed
// makes ids and MACs reproducible.
func TestWireFormat(t *testing.T) {
	e := setup(t, ec2sim.Options{Seed: 1})
	inst := e.run(e.subA)
	n := e.eni(e.subA, "10.0.1.20", tags("prod", "1"))
	e.attachENI(n.ID, inst.ID, 1)
	v := e.volume("us-east-1a", tags("prod", "1"))
	form := func(kv ...string) url.Values {
		f := url.Values{"Version": {"2016-11-15"}}
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}

	tests := []struct {
		name   string
		form   url.Values
		signed bool
		status int
		before func() // settles state the response shows
	}{
		{"describe_network_interfaces", form("Action", "DescribeNetworkInterfaces",
			"Filter.1.Name", "tag:zkaas:ensemble", "Filter.1.Value.1", "prod"), true, 200, nil},
		{"describe_instances", form("Action", "DescribeInstances", "InstanceId.1", inst.ID), true, 200, nil},
		{"attach_volume", form("Action", "AttachVolume", "VolumeId", v.ID, "InstanceId", inst.ID, "Device", "/dev/xvdf"), true, 200, nil},
		{"describe_volumes", form("Action", "DescribeVolumes", "VolumeId.1", v.ID), true, 200, func() {
			eventually(t, "volume attached", func() bool { x, _ := e.sim.Volume(v.ID); return x.Attachment.State == ec2sim.AttachAttached })
		}},
		{"attach_network_interface", form("Action", "AttachNetworkInterface",
			"NetworkInterfaceId", e.eni(e.subA, "10.0.1.21", nil).ID, "InstanceId", inst.ID, "DeviceIndex", "2"), true, 200, nil},
		{"describe_subnets", form("Action", "DescribeSubnets", "SubnetId.1", e.subB), true, 200, nil},
		{"error_in_use", form("Action", "AttachNetworkInterface",
			"NetworkInterfaceId", n.ID, "InstanceId", inst.ID, "DeviceIndex", "3"), true, 400, nil},
		{"error_invalid_action", form("Action", "RunInstances"), true, 400, nil},
		{"error_missing_action", form(), true, 400, nil},
		{"error_auth", form("Action", "DescribeVolumes"), false, 401, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			status, body := post(t, e.url, tc.form, tc.signed)
			if status != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", status, tc.status, body)
			}
			golden.CheckNamed(t, tc.name, normalize(t, body))
		})
	}
}

func TestRequestsAlsoAcceptedAsQueryString(t *testing.T) {
	e := setup(t, ec2sim.Options{})
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, e.url+"/?Action=DescribeSubnets&Version=2016-11-15", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), e.subA) {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
}

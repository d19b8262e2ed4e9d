package claim

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/zkaas/zkaas/ensemble"
	"github.com/zkaas/zkaas/firstboot/identity"
	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// interceptor sees one EC2 Query request (its Action and form) before the
// simulator; a non-zero status is the answer on the wire instead.
type interceptor func(action string, form url.Values) (status int, body string)

// front puts the world's interceptor, when set, in front of the simulator:
// answers the simulator cannot be made to give (an error code on one call,
// an instance left out) still travel through the real SDK's deserializers.
func (w *world) front(sim http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		f := w.intercept.Load()
		if f == nil || strings.HasPrefix(r.URL.Path, "/_sim/") {
			sim.ServeHTTP(rw, r)
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		form, _ := url.ParseQuery(string(b))
		if status, body := (*f)(form.Get("Action"), form); status != 0 {
			rw.Header().Set("Content-Type", "text/xml;charset=UTF-8")
			rw.WriteHeader(status)
			_, _ = io.WriteString(rw, body)
			return
		}
		sim.ServeHTTP(rw, r)
	})
}

func (w *world) setIntercept(f interceptor) { w.intercept.Store(&f) }

// ec2Error is an EC2 Query API error response, as EC2 sends it.
func ec2Error(status int, code, msg string) (int, string) {
	var m bytes.Buffer
	_ = xml.EscapeText(&m, []byte(msg))
	return status, xml.Header + "<Response><Errors><Error><Code>" + code + "</Code><Message>" + m.String() +
		"</Message></Error></Errors><RequestID>11111111-2222-3333-4444-555555555555</RequestID></Response>"
}

// noInstances is a DescribeInstances answer that lists nothing.
func noInstances() (int, string) {
	return http.StatusOK, xml.Header + `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` +
		`<requestId>11111111-2222-3333-4444-555555555555</requestId><reservationSet/></DescribeInstancesResponse>`
}

// attachmentLimit is EC2's answer when the instance type holds no more
// attachments ("AttachmentLimitExceeded: You've reached the limit on the
// number of Amazon EBS volumes or network interfaces that can be attached
// to a single instance", Error codes for the Amazon EC2 API).
func attachmentLimit() (int, string) {
	return ec2Error(http.StatusBadRequest, "AttachmentLimitExceeded",
		"You've reached the limit on the number of Amazon EBS volumes or network interfaces that can be attached to a single instance.")
}

// eventually polls cond (which says what is still wrong, or "") until it
// holds or d passes.
func eventually(t *testing.T, d time.Duration, cond func() string) {
	t.Helper()
	var why string
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if why = cond(); why == "" {
			return
		}
	}
	t.Error(why)
}

// givenBack waits until, in the simulator's true state, node's ENI is
// available and the instance holds none of the ensemble's ENIs or volumes.
func (w *world) givenBack(t *testing.T, id identity.Instance, node int) {
	t.Helper()
	eventually(t, 3*time.Second, func() string {
		if e, _ := w.sim.NetworkInterface(w.enis[node]); e.Attachment != nil || e.Status != "available" {
			return "node's ENI " + e.ID + " is " + e.Status + ", still attached to " + id.InstanceID + ": not given back"
		}
		if v, _ := w.sim.Volume(w.vols[node]); v.Attachment != nil && v.Attachment.InstanceID == id.InstanceID {
			return "node's volume " + v.ID + " is still attached to " + id.InstanceID + ": not given back"
		}
		return ""
	})
	w.checkHoldsNothingBut(id, 0)
}

// wrongIP makes DescribeInstances show the ENI with another address than
// DescribeNetworkInterfaces did.
type wrongIP struct {
	EC2API
	eni, ip string
}

func (x *wrongIP) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	out, err := x.EC2API.DescribeInstances(ctx, in, o...)
	if err != nil {
		return out, err
	}
	for i := range out.Reservations {
		for j := range out.Reservations[i].Instances {
			nis := out.Reservations[i].Instances[j].NetworkInterfaces
			for k := range nis {
				if aws.ToString(nis[k].NetworkInterfaceId) == x.eni {
					nis[k].PrivateIpAddress = aws.String(x.ip)
				}
			}
		}
	}
	return out, nil
}

// TestFatalGivesBack: a claim that fails for good after it attached the
// node's ENI (and volume) detaches them, so the node's replacement can
// take them at once; the fatal error is still the answer, at once.
func TestFatalGivesBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		pinned bool
		setup  func(t *testing.T, w *world, id identity.Instance, c *Claimer)
		want   string
	}{
		{name: "no free device name", want: "no free device name from /dev/xvdp",
			setup: func(t *testing.T, w *world, id identity.Instance, c *Claimer) {
				// The only name the config allows is taken by another volume.
				c.Config.Volume.Device = "/dev/xvdp"
				other, err := w.sim.CreateVolume("us-east-1a", 10, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.EC2.AttachVolume(context.Background(), &ec2.AttachVolumeInput{
					VolumeId: aws.String(other.ID), InstanceId: aws.String(id.InstanceID), Device: aws.String("/dev/xvdp")}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "IP mismatch", want: "has IP 10.0.1.77, expected 10.0.1.10",
			setup: func(t *testing.T, w *world, id identity.Instance, c *Claimer) {
				c.EC2 = &wrongIP{EC2API: c.EC2, eni: w.enis[1], ip: "10.0.1.77"}
			}},
		{name: "volume attachment limit", want: "allows no more volumes",
			setup: func(t *testing.T, w *world, id identity.Instance, c *Claimer) {
				w.setIntercept(func(action string, _ url.Values) (int, string) {
					if action == "AttachVolume" {
						return attachmentLimit()
					}
					return 0, ""
				})
			}},
		{name: "volume attachment limit, pinned", pinned: true, want: "allows no more volumes",
			setup: func(t *testing.T, w *world, id identity.Instance, c *Claimer) {
				w.setIntercept(func(action string, _ url.Values) (int, string) {
					if action == "AttachVolume" {
						return attachmentLimit()
					}
					return 0, ""
				})
			}},
		{name: "DescribeVolumes unauthorized while waiting", want: "UnauthorizedOperation",
			setup: func(t *testing.T, w *world, id identity.Instance, c *Claimer) {
				// Another instance holds the volume: the wait asks
				// DescribeVolumes for it, and may not.
				squatter := w.launch("us-east-1a")
				if _, err := c.EC2.AttachVolume(context.Background(), &ec2.AttachVolumeInput{
					VolumeId: aws.String(w.vols[1]), InstanceId: aws.String(squatter.InstanceID), Device: aws.String("/dev/xvdf")}); err != nil {
					t.Fatal(err)
				}
				w.setIntercept(func(action string, form url.Values) (int, string) {
					if action == "DescribeVolumes" && form.Get("VolumeId.1") != "" {
						return ec2Error(http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation.")
					}
					return 0, ""
				})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
			if tt.pinned {
				w.cfg.Node = 1
			}
			id := w.launch("us-east-1a")
			c, _ := w.claimer(id, 1)
			tt.setup(t, w, id, c)
			start := time.Now()
			_, err := c.Claim(context.Background())
			if !errors.Is(err, ErrCannotClaim) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrCannotClaim saying %q", err, tt.want)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("failed after %s: waited instead of failing at once", took)
			}
			if n := w.sim.Stats().Calls["AttachNetworkInterface"]; n != 1 {
				t.Fatalf("AttachNetworkInterface called %d times, want 1: the case must fail after the ENI was taken", n)
			}
			w.givenBack(t, id, 1)
			if n := w.sim.Stats().Calls["DetachNetworkInterface"]; n != 1 {
				t.Errorf("DetachNetworkInterface called %d times, want 1", n)
			}
		})
	}
}

// TestVolumeWaitSaysWhy: a round that holds the ENI but cannot get the
// volume says at the deadline why: the volume's state when nobody holds it
// (creating), the last DescribeVolumes failure.
func TestVolumeWaitSaysWhy(t *testing.T) {
	t.Parallel()
	t.Run("creating", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
		w.cfg.Claim.Deadline = ensemble.Duration(1500 * time.Millisecond)
		id := w.launch("us-east-1a")
		c, _ := w.claimer(id, 1)
		ctx := context.Background()
		api, _ := w.client()
		// Node 1's volume is replaced by one still being created.
		if _, err := api.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(w.vols[1])}); err != nil {
			t.Fatal(err)
		}
		w.sim.SetVolumeCreateDelay(time.Minute)
		out, err := api.CreateVolume(ctx, &ec2.CreateVolumeInput{
			AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(10), VolumeType: types.VolumeTypeGp3,
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{
				{Key: aws.String("zkaas:ensemble"), Value: aws.String("zk-test")}, {Key: aws.String("zkaas:node"), Value: aws.String("1")}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		vol := aws.ToString(out.VolumeId)
		_, err = c.Claim(ctx)
		want := "volume " + vol + " is creating, not available"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want it to say %q", err, want)
		}
	})
	t.Run("DescribeVolumes failing", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
		w.cfg.Claim.Deadline = ensemble.Duration(1500 * time.Millisecond)
		squatter, id := w.launch("us-east-1a"), w.launch("us-east-1a")
		c, _ := w.claimer(id, 1)
		if _, err := c.EC2.AttachVolume(context.Background(), &ec2.AttachVolumeInput{
			VolumeId: aws.String(w.vols[1]), InstanceId: aws.String(squatter.InstanceID), Device: aws.String("/dev/xvdf")}); err != nil {
			t.Fatal(err)
		}
		// The wait's own look at the volume fails (as for an id EC2 has
		// not propagated yet), not fatally.
		var failed atomic.Int32
		w.setIntercept(func(action string, form url.Values) (int, string) {
			if action == "DescribeVolumes" && form.Get("VolumeId.1") != "" {
				failed.Add(1)
				return ec2Error(http.StatusBadRequest, "InvalidVolume.NotFound", "The volume '"+w.vols[1]+"' does not exist.")
			}
			return 0, ""
		})
		_, err := c.Claim(context.Background())
		if errors.Is(err, ErrCannotClaim) {
			t.Fatalf("err = %v: a NotFound while waiting is not fatal", err)
		}
		for _, want := range []string{"is still held by " + squatter.InstanceID,
			"last DescribeVolumes of " + w.vols[1] + " failed: InvalidVolume.NotFound"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to say %q", err, want)
			}
		}
		if failed.Load() == 0 {
			t.Error("the wait never asked DescribeVolumes")
		}
	})
}

// otherAttachmentFirst lists, before every volume's own attachments,
// another instance's attachment still detaching under another name (a
// previous holder; or a Multi-Attach volume's other instance).
type otherAttachmentFirst struct {
	EC2API
	other string
}

func (o *otherAttachmentFirst) DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, opts ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	out, err := o.EC2API.DescribeVolumes(ctx, in, opts...)
	if err != nil {
		return out, err
	}
	for i := range out.Volumes {
		v := &out.Volumes[i]
		if len(v.Attachments) > 0 {
			v.Attachments = append([]types.VolumeAttachment{{
				InstanceId: aws.String(o.other), VolumeId: v.VolumeId, Device: aws.String("/dev/xvdz"),
				State: types.VolumeAttachmentStateDetaching,
			}}, v.Attachments...)
		}
	}
	return out, nil
}

// TestReusedVolumeOwnDevice: a volume this instance already holds is
// reused under the device name of this instance's attachment, not of the
// first one listed.
func TestReusedVolumeOwnDevice(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
	id, other := w.launch("us-east-1a"), w.launch("us-east-1a")
	c, _ := w.claimer(id, 1)
	first, err := c.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := w.sim.Stats()
	c2, _ := w.claimer(id, 2)
	c2.EC2 = &otherAttachmentFirst{EC2API: c2.EC2, other: other.InstanceID}
	r, err := c2.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Reused || r.Device != first.Device {
		t.Errorf("rerun: reused %v at %s, want reused at %s (this instance's attachment)", r.Reused, r.Device, first.Device)
	}
	after := w.sim.Stats()
	for _, action := range []string{"AttachVolume", "DetachVolume"} {
		if after.Calls[action] != before.Calls[action] {
			t.Errorf("rerun called %s %d times", action, after.Calls[action]-before.Calls[action])
		}
	}
	w.checkConsistent(id, r)
}

// TestStuckBoundWhileInstanceUnseen: the stuck bound counts from the
// attach call even while DescribeInstances fails (a lagging view of a
// just-launched instance answers InvalidInstanceID.NotFound) or leaves the
// instance out: the attachment is let go after the bound and a new round
// made, instead of waiting for the claim's deadline.
func TestStuckBoundWhileInstanceUnseen(t *testing.T) {
	t.Parallel()
	t.Run("DescribeInstances failing", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, ec2sim.Options{Latency: fast, Lag: ec2sim.Lag{Instances: time.Minute}}, []azNodes{{"us-east-1a", 1}})
		w.cfg.Claim.StuckAttach = ensemble.Duration(700 * time.Millisecond)
		w.cfg.Claim.Deadline = ensemble.Duration(2500 * time.Millisecond)
		id := w.launch("us-east-1a")
		c, _ := w.claimer(id, 1)
		_, err := c.Claim(context.Background())
		if err == nil {
			t.Fatal("claimed although DescribeInstances never showed the instance")
		}
		st := w.sim.Stats()
		if st.Errors["InvalidInstanceID.NotFound"] == 0 {
			t.Fatalf("DescribeInstances never failed (errors %v)", st.Errors)
		}
		if st.Calls["DetachNetworkInterface"] == 0 {
			t.Errorf("the unconfirmed ENI was never let go within the %s deadline (stuck bound %s); calls %v",
				w.cfg.Claim.Deadline, w.cfg.Claim.StuckAttach, st.Calls)
		}
	})
	t.Run("instance left out", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, ec2sim.Options{Latency: fast}, []azNodes{{"us-east-1a", 1}})
		w.cfg.Claim.StuckAttach = ensemble.Duration(700 * time.Millisecond)
		w.cfg.Claim.Deadline = ensemble.Duration(6 * time.Second)
		// DescribeInstances lists nothing until the first attachment is
		// let go; then it answers truly.
		var detached atomic.Bool
		w.setIntercept(func(action string, _ url.Values) (int, string) {
			switch {
			case action == "DetachNetworkInterface":
				detached.Store(true)
			case action == "DescribeInstances" && !detached.Load():
				return noInstances()
			}
			return 0, ""
		})
		id := w.launch("us-east-1a")
		c, _ := w.claimer(id, 1)
		r, err := c.Claim(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		w.checkConsistent(id, r)
		w.checkHoldsNothingBut(id, 1)
		if n := w.sim.Stats().Calls["DetachNetworkInterface"]; n != 1 {
			t.Errorf("DetachNetworkInterface called %d times, want 1", n)
		}
	})
}

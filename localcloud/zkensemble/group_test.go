package zkensemble

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/zkaas/zkaas/localcloud/ec2sim"
)

// newGroups creates the ensemble's groups, deleted (their instances
// terminated) when the test ends, before the cloud closes.
func newGroups(t *testing.T, e *Ensemble, o GroupOptions) *Groups {
	t.Helper()
	g, err := e.CreateGroups(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close groups: %v", err)
		}
	})
	return g
}

// activity finds the group's activity whose description starts with
// prefix; nil if none.
func activity(t *testing.T, g *Groups, group, prefix string) *astypes.Activity {
	t.Helper()
	acts, err := g.Activities(t.Context(), group)
	if err != nil {
		t.Fatal(err)
	}
	for i := range acts {
		if strings.HasPrefix(aws.ToString(acts[i].Description), prefix) {
			return &acts[i]
		}
	}
	return nil
}

// waitActivity waits until the activity exists and has finished.
func waitActivity(t *testing.T, g *Groups, group, prefix string, bound time.Duration) astypes.Activity {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		a := activity(t, g, group, prefix)
		if a != nil && a.Progress != nil && *a.Progress == 100 {
			return *a
		}
		if time.Now().After(deadline) {
			t.Fatalf("no finished activity %q in %s after %s (%+v)", prefix, group, bound, a)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestGroupHeals (machines): the ensemble's three groups (one per AZ)
// launch every node from the launch template's user data; a node killed
// with -9 is seen gone by its group (EC2 state), which launches a
// replacement that becomes the same node — its IP, its volume — and
// rejoins by DIFF with the data; then two groups lose their instance at
// once (quorum lost) and both replacements bring the quorum back.
func TestGroupHeals(t *testing.T) {
	hook := hasUnit(sharedImage(t), "zkaas-ready.service")
	e := newEnsembleWith(t, onMachines, ec2sim.Options{}, nodes("us-east-1a", "us-east-1b", "us-east-1c"), Options{Deadline: 20 * time.Second})
	g := newGroups(t, e, GroupOptions{Hook: hook})
	start := time.Now()
	if _, err := g.WaitNodes(t.Context(), 3*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WaitServing(t.Context(), 2*time.Minute, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	t.Logf("three groups: ensemble serving %s after the groups were created (launch hook: %v)", time.Since(start).Round(time.Millisecond), hook)
	writeZnodes(t, e, e.Node(1).IP, 200)

	t.Run("kill -9 node 2", func(t *testing.T) {
		old := e.Node(2)
		group := g.GroupOf(2)
		killed := time.Now()
		if err := e.Terminate(t.Context(), old); err != nil {
			t.Fatal(err)
		}
		n, err := g.WaitNode(t.Context(), 3*time.Minute, 2, old.Instance.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.WaitServing(t.Context(), 2*time.Minute, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		t.Logf("node 2 killed -9 (%s) → %s serving as node 2 after %s", old.Instance.ID, n.Instance.ID, time.Since(killed).Round(time.Millisecond))
		if n.IP != old.IP || n.Instance.AZ != old.Instance.AZ || n.Report.Claim.Volume != e.Slot(2).Volume.ID {
			t.Errorf("replacement: ip %s az %s volume %s; want %s %s %s", n.IP, n.Instance.AZ, n.Report.Claim.Volume, old.IP, old.Instance.AZ, e.Slot(2).Volume.ID)
		}
		if n.Report.Disk.Formatted {
			t.Error("replacement formatted node 2's volume")
		}
		checkZnodes(t, e, n.IP, 200)
		if modes := e.Modes(t.Context()); modes[2] == "follower" {
			eventuallySync(t, n, "DIFF")
		}
		term := waitActivity(t, g, group, "Terminating EC2 instance: "+old.Instance.ID, 30*time.Second)
		if !strings.Contains(aws.ToString(term.Cause), "EC2 health check") || term.StatusCode != astypes.ScalingActivityStatusCodeSuccessful {
			t.Errorf("termination activity %s: %s (%s)", aws.ToString(term.Description), aws.ToString(term.Cause), term.StatusCode)
		}
		launch := waitActivity(t, g, group, "Launching a new EC2 instance: "+n.Instance.ID, time.Minute)
		if launch.StatusCode != astypes.ScalingActivityStatusCodeSuccessful {
			t.Errorf("launch activity of %s: %s %s", n.Instance.ID, launch.StatusCode, aws.ToString(launch.StatusMessage))
		}
	})

	t.Run("two groups at once", func(t *testing.T) {
		old1, old3 := e.Node(1), e.Node(3)
		killed := time.Now()
		for _, n := range []*Node{old1, old3} {
			if err := e.Terminate(t.Context(), n); err != nil {
				t.Fatal(err)
			}
		}
		for _, old := range []*Node{old1, old3} {
			if _, err := g.WaitNode(t.Context(), 3*time.Minute, old.ID, old.Instance.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.WaitServing(t.Context(), 2*time.Minute, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		t.Logf("nodes 1 and 3 killed at once → both replaced and quorum back after %s", time.Since(killed).Round(time.Millisecond))
		checkZnodes(t, e, e.Node(3).IP, 200)
	})
}

// eventuallySync waits, a little, for the node's log to tell how it
// synced: ZooKeeper logs it as the follower starts serving.
func eventuallySync(t *testing.T, n *Node, want string) {
	t.Helper()
	got := ""
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = n.Sync(); got != "" {
			break
		}
	}
	if got != want {
		t.Errorf("node %d (%s) synced by %q, want %s", n.ID, n.Instance.ID, got, want)
	}
}

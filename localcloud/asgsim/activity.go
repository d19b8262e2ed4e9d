package asgsim

import (
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// Activity status codes (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Activity.html,
// StatusCode). The ones for Spot requests and load balancers never occur
// here.
const (
	StatusPreInService             = "PreInService"
	StatusInProgress               = "InProgress"
	StatusMidLifecycleAction       = "MidLifecycleAction"
	StatusWaitingForInstanceWarmup = "WaitingForInstanceWarmup"
	StatusSuccessful               = "Successful"
	StatusFailed                   = "Failed"
	StatusCancelled                = "Cancelled"
)

type activity struct {
	id, description, cause string
	start, end             time.Time
	status, message        string
	progress               int
	details                map[string]string
}

func (a *activity) inProgress() bool {
	return a.status != StatusSuccessful && a.status != StatusFailed && a.status != StatusCancelled
}

func (a *activity) finish(status, message string, now time.Time) {
	if !a.inProgress() {
		return
	}
	a.status, a.message, a.end, a.progress = status, message, now, 100
}

func (s *Service) newActivity(g *group, description, cause string, now time.Time, subnet, az string) *activity {
	a := &activity{id: s.uuidLocked(), description: description, cause: cause, start: now, status: StatusInProgress, progress: 0}
	if subnet != "" {
		a.details = map[string]string{"Subnet ID": subnet, "Availability Zone": az}
	}
	g.activities = append(g.activities, a)
	return a
}

// takeCause returns the group's pending user-request cause joined to the
// controller's own sentence, as Auto Scaling words it ("At … a user request
// … changing the desired capacity from 1 to 2.  At … an instance was started
// in response to a difference between desired and actual capacity,
// increasing the capacity from 1 to 2."), and clears it.
func (g *group) takeCause(own string) string {
	c := own
	if g.cause != "" {
		c = g.cause + "  " + own
		g.cause = ""
	}
	return c
}

type xmlActivity struct {
	ID          string `xml:"ActivityId"`
	Group       string `xml:"AutoScalingGroupName"`
	Description string `xml:"Description"`
	Cause       string `xml:"Cause"`
	StartTime   string `xml:"StartTime"`
	EndTime     string `xml:"EndTime,omitempty"`
	StatusCode  string `xml:"StatusCode"`
	Message     string `xml:"StatusMessage,omitempty"`
	Progress    int    `xml:"Progress"`
	Details     string `xml:"Details"`
	GroupState  string `xml:"AutoScalingGroupState,omitempty"`
	GroupARN    string `xml:"AutoScalingGroupARN"`
}

func (a *activity) xml(g *group) xmlActivity {
	x := xmlActivity{ID: a.id, Group: g.name, Description: a.description, Cause: a.cause, StartTime: xmlTime(a.start),
		StatusCode: a.status, Message: a.message, Progress: a.progress, Details: "{}", GroupARN: g.arn}
	if !a.end.IsZero() {
		x.EndTime = xmlTime(a.end)
	}
	if a.details != nil {
		b, _ := json.Marshal(a.details)
		x.Details = string(b)
	}
	if g.removed {
		x.GroupState = "Deleted"
	}
	return x
}

// describeActivities is DescribeScalingActivities
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html):
// newest first; MaxRecords default 100; a deleted group's activities only
// with IncludeDeletedGroups. Unknown names give an empty list.
func (s *Service) describeActivities(q query, _ time.Time) (any, *apiError) {
	name := q.str("AutoScalingGroupName")
	ids := q.list("ActivityIds")
	includeDeleted, _ := q.bool("IncludeDeletedGroups")
	type row struct {
		g *group
		a *activity
	}
	var rows []row
	add := func(g *group) {
		if name != "" && g.name != name {
			return
		}
		for _, a := range g.activities {
			if len(ids) == 0 || slices.Contains(ids, a.id) {
				rows = append(rows, row{g, a})
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.groups)) {
		add(s.groups[name])
	}
	if includeDeleted {
		for _, g := range s.deleted {
			add(g)
		}
	}
	// Newest first; among equal start times, the later recorded first.
	slices.Reverse(rows)
	slices.SortStableFunc(rows, func(a, b row) int { return b.a.start.Compare(a.a.start) })
	page, next, err := paginate(q, rows, func(r row) string { return r.a.id }, 100, 100)
	if err != nil {
		return nil, err
	}
	out := struct {
		Activities []xmlActivity `xml:"Activities>member"`
		NextToken  string        `xml:"NextToken,omitempty"`
	}{Activities: []xmlActivity{}, NextToken: next}
	for _, r := range page {
		out.Activities = append(out.Activities, r.a.xml(r.g))
	}
	return out, nil
}

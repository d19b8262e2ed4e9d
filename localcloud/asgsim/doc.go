// Package asgsim is a wire-level simulator of Amazon EC2 Auto Scaling and
// its group controller, for the local cloud's tests.
//
// # The API
//
// A Service is an http.Handler for the Auto Scaling Query API (protocol
// awsquery: form-encoded POSTs with Action and Version=2011-01-01, XML
// answers <XxxResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
// <XxxResult>…</XxxResult><ResponseMetadata><RequestId>…, errors as
// <ErrorResponse><Error><Type>Sender</Type><Code>…</Code><Message>…),
// driven in tests by the real aws-sdk-go-v2 autoscaling client. It serves
// CreateAutoScalingGroup, UpdateAutoScalingGroup, DeleteAutoScalingGroup,
// DescribeAutoScalingGroups, DescribeAutoScalingInstances,
// SetDesiredCapacity, TerminateInstanceInAutoScalingGroup,
// SetInstanceHealth, SuspendProcesses, ResumeProcesses, PutLifecycleHook,
// DescribeLifecycleHooks, DeleteLifecycleHook, CompleteLifecycleAction,
// RecordLifecycleActionHeartbeat and DescribeScalingActivities, with the
// validation and error codes of the Amazon EC2 Auto Scaling API Reference
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/), each
// handler citing its page. Messages are AWS's where they are known from
// real answers (group and instance not found, capacity bounds,
// ResourceInUse and ScalingActivityInProgress on delete, no active
// lifecycle action); the others follow AWS's style.
//
// # The controller
//
// Reconcile is one pass of the group controller over a clock the caller
// controls (Options.Now): it keeps each group at its desired capacity,
// balanced across the AZs of its subnets; holds launches in Pending:Wait
// while a launching hook's action is pending, until CompleteLifecycleAction
// or the heartbeat timeout (RecordLifecycleActionHeartbeat extends it; the
// global timeout caps it) gives a result — ABANDON terminates the instance
// and the group launches another; holds terminations in Terminating:Wait
// likewise; replaces an instance that is Unhealthy (SetInstanceHealth, or
// an EC2 state other than running) once its health check grace period has
// passed, unless HealthCheck or ReplaceUnhealthy is suspended; scales in by
// the default termination policy; rebalances AZs unless AZRebalance is
// suspended (launch first, then terminate); and records scaling activities
// with Auto Scaling's descriptions, causes and status codes. Every instance
// it launches carries the group's PropagateAtLaunch tags and
// aws:autoscaling:groupName. Run calls Reconcile on a real ticker.
//
// Launches, terminations and instance states go through the EC2 interface,
// so that the local cloud can boot a real machine per launch; NewEC2Sim
// adapts ec2sim's Go API (its launch templates, RunInstanceFromTemplate,
// TerminateInstance, Instance) for tests.
//
// # Not modelled
//
// Launch configurations, mixed instances policies, warm pools, instance
// refresh, scheduled and scaling policies, CloudWatch alarms, load
// balancers and ELB health checks (HealthCheckType ELB is accepted and
// behaves as EC2), lifecycle notifications to SNS/SQS/EventBridge (the
// token is only visible through the API and logs), instance protection,
// standby, detach/attach of instances, capacity rebalancing, max instance
// lifetime, default instance warmup, cooldowns beyond HonorCooldown, API
// latency and throttling, and eventual consistency (Describe answers are
// current). Terminated instances leave the group as soon as EC2 reports
// them terminated.
package asgsim

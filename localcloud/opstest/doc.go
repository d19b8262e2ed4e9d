// Package opstest runs the operator command, the built `zkaas` binary, on
// the local cloud against real ZooKeeper on machines booting the baked
// image under systemd: `up` from nothing (interrupted midway, then resumed),
// `status` and `doctor` on the ensemble the groups launched, `roll` to a new
// image while a client writes (stopped midway, then resumed), and `down`
// with and without -delete-data; and the benchmark of a 5-node roll. The
// binary runs in the VPC's network namespace, as on an operator's machine
// inside the VPC: it finds EC2, Auto Scaling, IAM and DLM through the SDK's
// AWS_ENDPOINT_URL_* variables and asks the nodes' client ports itself.
// The package has tests only; the rig they use (the cloud, the operator,
// the writer and the monitor) is localcloud/opsrig, which the demo shares.
package opstest

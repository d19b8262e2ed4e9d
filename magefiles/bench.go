//go:build mage

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// target is one figure the benchmarks report, with its reference and goal
// (0: reported, no goal); the ratio is measured in the same run as the
// figure. atLeast goals are minimums, the others maximums.
type target struct {
	bench, metric, reference, ratio string
	goal                            float64
	atLeast                         bool
	desc                            string
}

var targets = []target{
	{"BenchmarkClaim", "claim_ms", "floor_ms", "claim/floor", 1.03, false, "claim critical path vs floor (longer attach + necessary round trips)"},
	{"BenchmarkClaim", "claim_ms", "sequential_ms", "claim/sequential", 1, false, "claim critical path vs ENI-then-volume"},
	// The claim's calls; a whole first boot of a fresh volume adds three
	// (the initialized tag re-read, tagging it, the peer listing).
	{"BenchmarkClaim", "ec2_calls/claim", "", "", 7, false, "EC2 calls per uncontended claim"},
	{"BenchmarkConcurrentBoot", "failed_boots", "", "", 0.5, false, "failed boots when 20 nodes boot at once"},
	{"BenchmarkConcurrentBoot", "throttled_calls", "", "", 0.5, false, "RequestLimitExceeded answers when 20 nodes boot at once"},
	{"BenchmarkConcurrentBoot", "ec2_calls/claim", "", "", 0, false, "EC2 requests per claim when 20 nodes boot at once (with retries)"},
	// The blank check before mkfs on a 1 TiB device (a loop device as
	// root): both 16 MiB ends, the ext4/xfs backup headers, a sample
	// across the device; reference: the old 1 MiB-ends check.
	{"BenchmarkBlankCheck", "blank_check_ms", "ends_ms", "ratio", 0, false, "blank check of a 1 TiB device vs reading both 1 MiB ends (ms)"},
	{"BenchmarkBlankCheck", "blank_check_ms", "", "", 2000, false, "blank check of a 1 TiB device (ms; goal 2 s)"},
	{"BenchmarkRejoin", "fresh_MB", "", "", 0, false, "MB a replacement with a fresh volume receives (200 MB ensemble)"},
	{"BenchmarkRejoin", "own_MB", "", "", 0, false, "MB a replacement with its own volume receives"},
	{"BenchmarkRejoin", "fresh/own_bytes", "", "", 20, true, "bytes saved by reattaching the node's volume (fresh/own)"},
	{"BenchmarkRejoin", "own_s", "", "", 0, false, "launch to serving with its own volume (s)"},
	{"BenchmarkRejoin", "fresh_s", "", "", 0, false, "launch to serving with a fresh volume (s)"},
	{"BenchmarkColdBoot/3-nodes", "quorum_s", "floor_s", "quorum/floor", 0, false, "3-node cold boot to quorum vs attach + election floor (s)"},
	{"BenchmarkColdBoot/5-nodes", "quorum_s", "floor_s", "quorum/floor", 0, false, "5-node cold boot to quorum vs attach + election floor (s)"},
	// Booting the image under systemd vs host mode, from the same Launch
	// call. firstboot started: no goal — host mode's figure is only the
	// harness's own launch (namespaces, mounts, IMDS), so the ratio
	// mostly says how long PID 1 takes to reach the unit (~0.2 s here);
	// the value is the figure to watch. Replacement serving: a generous
	// 1.5× — attach latencies and ZooKeeper's sync dominate, systemd
	// should add little more than its boot, and 1.5× still catches a unit
	// waiting on something that never comes (network-online.target,
	// a timeout) without flaking on a small, busy machine.
	{"BenchmarkSystemdBoot", "systemd_firstboot_started_ms", "host_firstboot_started_ms", "systemd/host_firstboot", 0, false, "launch to zkaas-firstboot started, systemd vs host mode (ms)"},
	{"BenchmarkSystemdBoot", "systemd_replacement_serving_s", "host_replacement_serving_s", "systemd/host_serving", 1.5, false, "launch to a replacement serving, systemd vs host mode (s)"},
	// TLS on the rejoin path: a replacement with its own volume, launch to
	// the ensemble serving, zookeeper.tls (client and quorum) vs plaintext
	// in the same run, both on machines booting the image. A generous
	// 1.5×: the fetch and check cost milliseconds; what TLS adds is the
	// JVM's TLS setup and the quorum's handshakes (1.24× here), and 1.5×
	// still catches a handshake waiting on something (a reverse-DNS
	// lookup when a certificate misses an address, a timeout).
	{"BenchmarkTLSRejoin", "tls_rejoin_s", "plain_rejoin_s", "tls/plain_rejoin", 1.5, false, "own-volume rejoin, launch to serving, TLS vs plaintext (s)"},
	{"BenchmarkTLSRejoin", "tls_secrets_stage_ms", "", "", 0, false, "TLS boot's secrets stage: keystore + truststore fetched and checked (ms)"},
	{"BenchmarkBake", "zkaas_ms", "shell_ms", "zkaas/shell", 1.05, false, "local bake: zkaas provisioner vs Packer's shell, same commands (ms)"},
	// Self-healing through the group: kill -9 a node, the group's
	// replacement serving as the same node, against detection interval +
	// measured launch + modelled claim + measured rejoin.
	{"BenchmarkGroupHeal", "heal_s", "heal_floor_s", "heal/floor", 1.2, false, "kill -9 → the group's replacement serving, vs its floor (s)"},
	{"BenchmarkGroupHeal", "failed_hold_s", "failed_hold_bound_s", "failed_hold/bound", 1, false, "longest a failed boot holds a node's ENI/volume vs claim deadline + grace (s)"},
	{"BenchmarkUpFromNothing", "api_calls/up", "", "", 0, false, "AWS API calls of `zkaas up` for a 3-node ensemble from nothing"},
	{"BenchmarkUpFromNothing", "ms/up", "", "", 0, false, "`zkaas up` of 3 nodes from nothing, simulators without latency (ms)"},
	// The built zkaas binary on the local cloud: 5 nodes up from nothing
	// (EC2's scaled-down latency), status, then a roll to a new image
	// while a client writes, against 5 × the replace floor (one
	// follower's instance terminated in its group with nothing gating it,
	// until the ensemble is healthy again, measured in the same run).
	// Goals of 0 are written 0.5: a count must stay below it.
	{"BenchmarkFiveNodeRoll", "up_api_calls", "", "", 0, false, "AWS API calls of `zkaas up` for 5 nodes from nothing (local cloud)"},
	{"BenchmarkFiveNodeRoll", "up_s", "", "", 0, false, "`zkaas up` of 5 nodes from nothing, EC2's latency model (s)"},
	{"BenchmarkFiveNodeRoll", "status_ms", "", "", 0, false, "`zkaas status` on 5 serving nodes (ms)"},
	{"BenchmarkFiveNodeRoll", "roll_s", "replace_floor_s", "roll/5floor", 1.3, false, "5-node `zkaas roll` vs 5 × the replace floor (s)"},
	{"BenchmarkFiveNodeRoll", "lost_writes", "", "", 0.5, false, "acknowledged writes lost during the 5-node roll"},
	{"BenchmarkFiveNodeRoll", "no_quorum", "", "", 0.5, false, "moments without a quorum of nodes up during the roll"},
	{"BenchmarkFiveNodeRoll", "elections", "", "", 1, false, "leader elections during the roll (only the leader's step)"},
	{"BenchmarkFiveNodeRoll", "no_leader_s", "", "", 0, false, "time without a leader during the roll: the election (s)"},
}

// Bench runs the benchmarks and prints each figure next to its reference
// and target.
// The local-cloud benchmarks (a real ensemble with 200 MB of data) and the
// bake benchmark need root and take a few minutes each.
func Bench() error {
	var out bytes.Buffer
	for _, run := range []struct{ pkg, benchtime, what string }{
		{"./firstboot/claim/", "5x", "the claim against the EC2 simulator (about a minute)"},
		{"./firstboot/disk/", "3x", "the blank check on a 1 TiB sparse device (seconds)"},
		{"./ops/aws/", "3x", "zkaas up against the simulators (seconds)"},
		{"./localcloud/zkensemble/", "1x", "a real ensemble on the local cloud, host mode and booting the baked image under systemd (a few minutes; root; bakes the image first if its inputs changed)"},
		{"./localcloud/localbake/", "1x", "two real packer builds, zkaas vs shell provisioner (a few minutes; root)"},
		{"./localcloud/opstest/", "1x", "the zkaas binary on the local cloud: 5 nodes up, status, a roll while a client writes (a few minutes; root)"},
	} {
		fmt.Println("running benchmarks:", run.what)
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchtime", run.benchtime, "-timeout", "30m", run.pkg)
		cmd.Stdout = io.MultiWriter(&out, os.Stdout)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return err
		}
	}
	metrics := parseBench(out.String())
	fmt.Printf("\n%-62s %12s %12s %8s %8s\n", "figure", "value", "reference", "ratio", "target")
	for _, t := range targets {
		m := metrics[t.bench]
		v, ok := m[t.metric]
		if !ok {
			fmt.Printf("%-62s %12s (not run: needs root?)\n", t.desc, "-")
			continue
		}
		ref, ratio, goal, mark := "-", "-", "-", ""
		check := v
		if t.ratio != "" {
			ref = strconv.FormatFloat(m[t.reference], 'f', 1, 64)
			ratio = fmt.Sprintf("%.3f", m[t.ratio])
			check = m[t.ratio]
		}
		if t.goal != 0 {
			op, miss := "<=", check > t.goal
			if t.atLeast {
				op, miss = ">=", check < t.goal
			}
			goal, mark = fmt.Sprintf("%s %g", op, t.goal), "ok"
			if miss {
				mark = "MISSED"
			}
		}
		fmt.Printf("%-62s %12.1f %12s %8s %8s %s\n", t.desc, v, ref, ratio, goal, mark)
	}
	return nil
}

// parseBench reads `go test -bench` lines into bench -> metric -> value.
func parseBench(out string) map[string]map[string]float64 {
	res := map[string]map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // the GOMAXPROCS suffix
			}
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		res[name] = m
	}
	return res
}

//go:build mage

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// target is one figure the benchmarks must report, with its reference and
// goal; the ratio is measured in the same run as the figure.
type target struct {
	bench, metric, reference, ratio string
	goal                            float64
	lowerIsBetter                   bool
	desc                            string
}

var targets = []target{
	{"BenchmarkClaim", "claim_ms", "floor_ms", "claim/floor", 1.15, true, "claim critical path vs floor (longer attach + necessary round trips)"},
	{"BenchmarkClaim", "claim_ms", "sequential_ms", "claim/sequential", 1, true, "claim critical path vs ENI-then-volume"},
	{"BenchmarkClaim", "ec2_calls/boot", "", "", 10, true, "EC2 calls per uncontended boot"},
	{"BenchmarkConcurrentBoot", "failed_boots", "", "", 0, true, "failed boots when 5 nodes boot at once"},
	{"BenchmarkConcurrentBoot", "throttled_calls", "", "", 0, true, "RequestLimitExceeded answers when 5 nodes boot at once"},
}

// Bench runs the benchmarks and prints each figure next to its reference
// and target.
func Bench() error {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchtime", "5x", "./firstboot/cloud/")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	fmt.Println("running benchmarks (about a minute)...")
	if err := cmd.Run(); err != nil {
		os.Stdout.Write(out.Bytes())
		return err
	}
	os.Stdout.Write(out.Bytes())
	metrics := parseBench(out.String())
	fmt.Printf("\n%-62s %12s %12s %8s %8s\n", "figure", "value", "reference", "ratio", "target")
	for _, t := range targets {
		m := metrics[t.bench]
		v, ok := m[t.metric]
		if !ok {
			return fmt.Errorf("%s did not report %s", t.bench, t.metric)
		}
		ref, ratio, goal := "-", "-", fmt.Sprintf("<= %g", t.goal)
		check := v
		if t.ratio != "" {
			ref = strconv.FormatFloat(m[t.reference], 'f', 0, 64)
			ratio = fmt.Sprintf("%.3f", m[t.ratio])
			check = m[t.ratio]
			goal = fmt.Sprintf("<= %gx", t.goal)
		}
		mark := "ok"
		if check > t.goal {
			mark = "MISSED"
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
			name = name[:i]
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

package localcloud

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// trackingHierarchy returns the mounted cgroup hierarchy that tracks every
// process (what systemd itself tracks with): the unified one on a cgroup v2
// host, the named "name=systemd" one on a legacy or hybrid host, and the
// harness's own cgroup in it. A machine's cgroup is made under the latter,
// so that everything of one machine — nspawn, its PID 1 and whatever PID 1
// forks — can be listed and killed by PID (see killCgroup).
func trackingHierarchy() (mount, self string, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &st); err != nil {
		return "", "", fmt.Errorf("statfs %s: %w", cgroupRoot, err)
	}
	unified := st.Type == unix.CGROUP2_SUPER_MAGIC
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-id:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case unified && parts[0] == "0" && parts[1] == "":
			return cgroupRoot, parts[2], nil
		case !unified && parts[1] == "name=systemd":
			return filepath.Join(cgroupRoot, "systemd"), parts[2], nil
		}
	}
	return "", "", errors.New("no cgroup v2 hierarchy and no name=systemd hierarchy: systemd-nspawn needs one of them")
}

// remountScript mounts the tracking hierarchy at its place, for a process
// in a new cgroup and mount namespace (so rooted at its own cgroup). The
// old mount goes first: the same hierarchy mounted again on itself is
// EBUSY.
func remountScript(mount string) string {
	if mount == cgroupRoot {
		return "umount --lazy " + mount + " && mount -t cgroup2 localcloud " + mount
	}
	// nspawn 252 on a legacy host takes it for a hybrid one (the "0::/"
	// line) and only attaches to "payload" and "supervisor" in the named
	// hierarchy, expecting them made in the unified one: make them.
	return "umount --lazy " + mount + " && mount -t cgroup -o name=systemd localcloud " + mount +
		" && mkdir -p " + mount + "/payload " + mount + "/supervisor"
}

// machineCgroup creates the cgroup a machine runs in: under the harness's
// own, named after the machine's network namespace (Prefix + run id +
// instance id), so that it is told apart by its owner's pid like every
// other leftover. Its path is recorded in the instance's directory under
// the run directory for reclaim.
func machineCgroup(runDir, name string) (dir, remount string, err error) {
	mount, self, err := trackingHierarchy()
	if err != nil {
		return "", "", err
	}
	dir = filepath.Join(mount, self, name)
	// Recorded first, so that a crash right after leaves nothing unknown.
	if err := os.MkdirAll(filepath.Join(runDir, "cgroups"), 0o700); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(runDir, "cgroups", name), []byte(dir), 0o600); err != nil {
		return "", "", fmt.Errorf("record cgroup %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	return dir, remountScript(mount), nil
}

// cgroupPIDs lists the processes in a cgroup and all its descendants
// (nspawn makes sub-cgroups for the payload, systemd one per unit).
func cgroupPIDs(dir string) ([]int, error) {
	var pids []int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed under us
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids, err
}

// killCgroup SIGKILLs every process of a cgroup tree by PID — again and
// again, since a process may fork while its siblings die — until none is
// left, then removes the cgroups, innermost first. cgroup v1 has no
// cgroup.kill, and the named hierarchy no freezer, hence the loop; it is
// bounded by killWait. A cgroup already gone is fine.
func killCgroup(dir string) error {
	if err := killCgroupProcs(dir); err != nil {
		return err
	}
	return removeCgroup(dir)
}

// removeCgroup removes an empty cgroup tree, innermost first. A process
// that has died but not been reaped yet still counts (EBUSY) for a moment.
func removeCgroup(dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	deadline := time.Now().Add(killWait)
	for _, d := range slices.Backward(dirs) {
		for {
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w", d, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// reclaimCgroups kills the machines a crashed run left behind, by the PIDs
// in the cgroups it recorded (never by process name), and removes the
// cgroups.
func reclaimCgroups(runDir string) error {
	entries, err := os.ReadDir(filepath.Join(runDir, "cgroups"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(runDir, "cgroups", e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dir := string(b)
		// Only a cgroup of ours: named as recorded, under a hierarchy.
		if filepath.Base(dir) != e.Name() || !strings.HasPrefix(dir, cgroupRoot+"/") {
			errs = append(errs, fmt.Errorf("cgroup record %s names %q", e.Name(), dir))
			continue
		}
		errs = append(errs, killCgroup(dir))
	}
	return errors.Join(errs...)
}

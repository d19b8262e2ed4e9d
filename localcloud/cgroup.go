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
	"sync"
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
	// On a hybrid host the unified hierarchy (at /sys/fs/cgroup/unified)
	// is mounted again too, rooted at the machine's cgroup v2.
	const unified = cgroupRoot + "/unified"
	return "umount --lazy " + mount + " && mount -t cgroup -o name=systemd localcloud " + mount +
		" && mkdir -p " + mount + "/payload " + mount + "/supervisor" +
		" && { ! findmnt --noheadings --mountpoint " + unified + " >/dev/null || { umount --lazy " + unified + " && mount -t cgroup2 localcloud " + unified + "; }; }"
}

// machineCgroup creates the cgroup a machine runs in: under the harness's
// own, named after the machine's network namespace (Prefix + run id +
// instance id), so that it is told apart by its owner's pid like every
// other leftover. Its path is recorded in the run directory for reclaim.
//
// On a legacy host it also creates one in the cgroup v2 hierarchy, which
// the kernel always has but the host does not mount: runDir/cgroup2 (under
// the run directory's private mount, so invisible to the host). Without it
// every machine's systemd, which nspawn gives a cgroup v2 mount rooted
// where the machine's process sits in that hierarchy, would share its root
// with every other machine — and one machine's systemd removing
// system.slice/<unit> under another's starting the same unit fails it
// ("Failed at step CGROUP": ENODEV, ENOENT).
func machineCgroup(runDir, name string) (dir, v2 string, remount string, err error) {
	mount, self, err := trackingHierarchy()
	if err != nil {
		return "", "", "", err
	}
	dir = filepath.Join(mount, self, name)
	if mount != cgroupRoot {
		v2mnt := filepath.Join(runDir, "cgroup2")
		if err := mountCgroup2(v2mnt); err != nil {
			return "", "", "", err
		}
		v2 = filepath.Join(v2mnt, name)
	}
	// Recorded first, so that a crash right after leaves nothing unknown.
	if err := os.MkdirAll(filepath.Join(runDir, "cgroups"), 0o700); err != nil {
		return "", "", "", err
	}
	if err := os.WriteFile(filepath.Join(runDir, "cgroups", name), []byte(strings.TrimSpace(dir+"\n"+v2)), 0o600); err != nil {
		return "", "", "", fmt.Errorf("record cgroup %s: %w", dir, err)
	}
	for _, d := range []string{dir, v2} {
		if d == "" {
			continue
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", "", "", fmt.Errorf("create cgroup %s: %w", d, err)
		}
	}
	return dir, v2, remountScript(mount), nil
}

// cgroup2Mu serializes mounting a run's cgroup v2 hierarchy.
var cgroup2Mu sync.Mutex

// mountCgroup2 mounts the cgroup v2 hierarchy at dir unless it is there.
func mountCgroup2(dir string) error {
	cgroup2Mu.Lock()
	defer cgroup2Mu.Unlock()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("localcloud", dir, "cgroup2", 0, ""); err != nil {
		return fmt.Errorf("mount cgroup2 at %s: %w", dir, err)
	}
	return nil
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
		for _, dir := range strings.Split(string(b), "\n") {
			// Only a cgroup of ours: named as recorded, under a hierarchy
			// or the run's own cgroup v2 mount.
			if filepath.Base(dir) != e.Name() || !strings.HasPrefix(dir, cgroupRoot+"/") && !strings.HasPrefix(dir, filepath.Join(runDir, "cgroup2")+"/") {
				errs = append(errs, fmt.Errorf("cgroup record %s names %q", e.Name(), dir))
				continue
			}
			errs = append(errs, killCgroup(dir))
		}
	}
	return errors.Join(errs...)
}

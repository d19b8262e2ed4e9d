package localcloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zkaas/zkaas/internal/procutil"
)

// stateRecord tells a later run where a run kept its volume files, so that
// it can release their loop devices (and remove a temporary directory)
// after a crash.
type stateRecord struct {
	Dir       string `json:"dir"`
	Temporary bool   `json:"temporary"`
}

const stateRecordFile = "state.json"

func (r stateRecord) write(runDir string) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(runDir, stateRecordFile), b, 0o600)
}

func readStateRecord(runDir string) (stateRecord, bool, error) {
	var r stateRecord
	b, err := os.ReadFile(filepath.Join(runDir, stateRecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return r, false, nil // crashed before it chose one
	}
	if err != nil {
		return r, false, err
	}
	if err := json.Unmarshal(b, &r); err != nil || !filepath.IsAbs(r.Dir) {
		return r, false, fmt.Errorf("state record of %s is unreadable: %v", runDir, err)
	}
	return r, true, nil
}

// owned lists the network namespaces and run directories of runs whose
// owner pid matches.
func owned(match func(pid int) bool) (netnsPaths, runDirs []string, err error) {
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("list %s: %w", netnsDir, err)
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), Prefix)
		if pid, isRun := ownerPID(rest); ok && isRun && match(pid) {
			netnsPaths = append(netnsPaths, filepath.Join(netnsDir, e.Name()))
		}
	}
	entries, err = os.ReadDir(RunRoot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("list %s: %w", RunRoot, err)
	}
	for _, e := range entries {
		if pid, ok := ownerPID(e.Name()); ok && match(pid) {
			runDirs = append(runDirs, filepath.Join(RunRoot, e.Name()))
		}
	}
	return netnsPaths, runDirs, nil
}

// reclaim removes what runs whose process is gone left behind: their
// processes (by PID, found through their namespaces), network namespaces
// (with every veth in them), mount namespaces (with every mount in them),
// loop devices on their volume files, temporary state directories and run
// directories.
func (c *Cloud) reclaim(ctx context.Context) (err error) {
	netnsPaths, runDirs, err := owned(func(pid int) bool { return !procutil.Alive(pid) })
	if err != nil || len(netnsPaths)+len(runDirs) == 0 {
		return err
	}
	defer c.step("reclaim", "netns", len(netnsPaths), "runs", len(runDirs)).Defer(&err)
	var errs []error
	for _, p := range netnsPaths {
		c.log.Warn("reclaiming a crashed run's network namespace", "step", "reclaim", "netns", p)
		errs = append(errs, deleteNetNS(p))
	}
	for _, dir := range runDirs {
		c.log.Warn("reclaiming a crashed run's directory", "step", "reclaim", "dir", dir)
		rec, ok, rerr := readStateRecord(dir)
		// Machines first, by the PIDs in their cgroups: they hold mount
		// namespaces of their own. Then the instances' mount namespaces:
		// their mounts hold the loop devices.
		errs = append(errs, rerr, reclaimCgroups(dir), removeRunDir(dir))
		if ok {
			errs = append(errs, c.reclaimStateDir(ctx, rec))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reclaim leftovers of crashed runs: %w", err)
	}
	return nil
}

// reclaimStateDir releases the loop devices on a crashed run's volume files
// and removes its temporary state directory — unless a live Cloud has
// taken the directory over since: those devices are its own.
func (c *Cloud) reclaimStateDir(ctx context.Context, rec stateRecord) error {
	lock, err := lockStateDir(rec.Dir)
	switch {
	case errors.Is(err, errStateDirInUse):
		return nil
	case errors.Is(err, fs.ErrNotExist):
		// Deleted under its loop devices: nobody can be using it.
	case err != nil:
		return fmt.Errorf("state dir %s: %w", rec.Dir, err)
	default:
		defer lock.Close()
	}
	err = releaseLoopsUnder(ctx, c.log, rec.Dir)
	if rec.Temporary {
		err = errors.Join(err, os.RemoveAll(rec.Dir))
	}
	return err
}

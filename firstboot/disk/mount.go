package disk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Mounting is a mount(2) call rather than the mount binary: the filesystem
// type is known exactly from the probe, so nothing is left for mount(8) to
// guess; it would also consult /etc/fstab and mount.<type> helpers we do
// not want involved; and the syscall returns an errno (EBUSY, EINVAL) rather
// than text to parse. The price is the small option table below.

// mountFlags are the options that are mount(2) flags, not filesystem data.
// Options that only restate the kernel default map to 0.
var mountFlags = map[string]uintptr{
	"defaults":    0,
	"rw":          0,
	"async":       0,
	"dev":         0,
	"suid":        0,
	"exec":        0,
	"ro":          unix.MS_RDONLY,
	"noatime":     unix.MS_NOATIME,
	"nodiratime":  unix.MS_NODIRATIME,
	"relatime":    unix.MS_RELATIME,
	"strictatime": unix.MS_STRICTATIME,
	"lazytime":    unix.MS_LAZYTIME,
	"nodev":       unix.MS_NODEV,
	"nosuid":      unix.MS_NOSUID,
	"noexec":      unix.MS_NOEXEC,
	"sync":        unix.MS_SYNCHRONOUS,
	"dirsync":     unix.MS_DIRSYNC,
}

// splitMountOptions turns mount(8)-style options into mount(2) flags and
// the filesystem-specific data string (e.g. "discard", "data=ordered"),
// which the filesystem itself validates.
func splitMountOptions(opts []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			flags |= f
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

// mountAt returns the mount visible at dir — the last (topmost) of any
// stacked mounts there — or nil if dir is not a mount point. A dir that does
// not exist is not a mount point. Callers compare devices by major:minor,
// never by source name: the source is whatever path the mounter used
// (/dev/nvme1n1, a by-id link, /dev/root).
func mountAt(mountinfoPath, dir string) (*mountinfo.Info, error) {
	canon, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resolve mount point %s: %w", dir, err)
	}
	f, err := os.Open(mountinfoPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The library undoes the kernel's escaping (\040 for a space, ...), so
	// mount points compare as the paths they are.
	entries, err := mountinfo.GetMountsFromReader(f, func(m *mountinfo.Info) (skip, stop bool) {
		return m.Mountpoint != canon, false
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mountinfoPath, err)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	return entries[len(entries)-1], nil
}

// deviceNumber returns the major and minor number of the block device dev,
// typed as mountinfo reports them.
func deviceNumber(dev string) (int, int, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return 0, 0, fmt.Errorf("stat %s: %w", dev, err)
	}
	return int(unix.Major(st.Rdev)), int(unix.Minor(st.Rdev)), nil
}

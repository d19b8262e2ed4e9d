package disk

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zkaas/zkaas/internal/mountinfo"

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

// mountEntry is one line of /proc/self/mountinfo (proc(5)).
type mountEntry struct {
	Major, Minor uint32
	Root         string // path inside the filesystem that is mounted ("/" unless a bind mount)
	MountPoint   string
	FSType       string
	Source       string
}

// mountAt returns the mount visible at dir — the last (topmost) of any
// stacked mounts there — or nil if dir is not a mount point. A dir that does
// not exist is not a mount point.
func mountAt(mountinfo, dir string) (*mountEntry, error) {
	canon, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resolve mount point %s: %w", dir, err)
	}
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := parseMountInfo(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mountinfo, err)
	}
	var top *mountEntry
	for i := range entries {
		if entries[i].MountPoint == canon {
			top = &entries[i]
		}
	}
	return top, nil
}

// parseMountInfo parses mountinfo lines:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Devices are compared by major:minor, never by source name: the source is
// whatever path the mounter used (/dev/nvme1n1, a by-id link, /dev/root).
func parseMountInfo(r io.Reader) ([]mountEntry, error) {
	var entries []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 7 || sep < 0 || sep+2 >= len(fields) {
			return nil, fmt.Errorf("malformed mountinfo line %q", sc.Text())
		}
		maj, min, ok := strings.Cut(fields[2], ":")
		major, err1 := strconv.ParseUint(maj, 10, 32)
		minor, err2 := strconv.ParseUint(min, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("malformed device %q in mountinfo line %q", fields[2], sc.Text())
		}
		entries = append(entries, mountEntry{
			Major:      uint32(major),
			Minor:      uint32(minor),
			Root:       mountinfo.Unescape(fields[3]),
			MountPoint: mountinfo.Unescape(fields[4]),
			FSType:     fields[sep+1],
			Source:     mountinfo.Unescape(fields[sep+2]),
		})
	}
	return entries, sc.Err()
}

// deviceNumber returns the major and minor number of the block device dev.
func deviceNumber(dev string) (uint32, uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return 0, 0, fmt.Errorf("stat %s: %w", dev, err)
	}
	return unix.Major(st.Rdev), unix.Minor(st.Rdev), nil
}

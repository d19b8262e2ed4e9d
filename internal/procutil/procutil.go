// Package procutil answers questions about processes by PID, for the
// helpers that name what they create after their own PID and reclaim what
// a process that is gone left behind.
package procutil

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Alive reports whether a process with this pid exists. EPERM (it exists
// but belongs to someone else) counts as alive: only ESRCH says it is gone.
func Alive(pid int) bool {
	return pid > 0 && !errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

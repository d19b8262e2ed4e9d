package disk

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// Commands are the helper programs this package runs, in one place (as
// ignition's distro package does) so a packager or a test can point them
// elsewhere. Mounting needs no program: it is a mount(2) call (see mount.go).
type Commands struct {
	Blkid    string
	MkfsExt4 string
	MkfsXFS  string
}

// DefaultCommands are absolute paths, because a systemd unit's PATH is not
// ours to trust; Debian 12 and Amazon Linux 2023 are both /usr-merged, so
// /usr/sbin holds all three (packages util-linux, e2fsprogs, xfsprogs).
var DefaultCommands = Commands{
	Blkid:    "/usr/sbin/blkid",
	MkfsExt4: "/usr/sbin/mkfs.ext4",
	MkfsXFS:  "/usr/sbin/mkfs.xfs",
}

// withDefaults fills each empty path from DefaultCommands.
func (c Commands) withDefaults() Commands {
	return Commands{
		Blkid:    cmp.Or(c.Blkid, DefaultCommands.Blkid),
		MkfsExt4: cmp.Or(c.MkfsExt4, DefaultCommands.MkfsExt4),
		MkfsXFS:  cmp.Or(c.MkfsXFS, DefaultCommands.MkfsXFS),
	}
}

// mkfsArgs is the exact command line that formats dev. Deliberately no
// force flag (-F for ext4, -f for xfs): mkfs.xfs then refuses a device that
// holds any known signature, a second line of defence behind Probe.
// mkfs.ext4 only asks "Proceed anyway?" on a terminal and silently
// overwrites otherwise (checked with e2fsprogs 1.47), so for ext4 the probe
// is the only guard — which is why formatting is decided there, never here.
func (c Commands) mkfsArgs(fsType, label, dev string) []string {
	switch fsType {
	case "xfs":
		return []string{c.MkfsXFS, "-q", "-L", label, dev}
	default:
		return []string{c.MkfsExt4, "-q", "-L", label, dev}
	}
}

// run runs argv and returns its stdout. A failure carries the program, the
// exit status and the first meaningful line of what it printed (see
// firstMeaningfulLine): mkfs answers a bad device or option with its
// version banner and pages of usage text, which would bury the one line
// that says what is wrong. Callers that care about the status use
// errors.As with *exec.ExitError.
func run(ctx context.Context, argv ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := firstMeaningfulLine(stderr.String())
		if msg == "" {
			msg = firstMeaningfulLine(stdout.String())
		}
		if msg != "" {
			msg = ": " + msg
		}
		return stdout.Bytes(), fmt.Errorf("%s: %w%s", strings.Join(argv, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// bannerLine is a program announcing its version ("mke2fs 1.47.0
// (5-Feb-2023)"), which e2fsprogs prints before any error.
var bannerLine = regexp.MustCompile(`^\S+ \d+\.\d+(\.\d+)*( \(.*\))?$`)

// firstMeaningfulLine is the first line of out that says something: not
// blank, not a version banner. What follows it (usage text, hints) is
// dropped; a program that prints only usage text is quoted by its first
// usage line.
func firstMeaningfulLine(out string) string {
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line != "" && !bannerLine.MatchString(line) {
			return line
		}
	}
	return ""
}

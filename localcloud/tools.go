package localcloud

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// tools are the programs the harness runs, found once by New so that a
// missing package is reported up front, with its Debian name.
type tools struct {
	ip, nsenter, unshare, sh, umount, chroot string
	// With BootSystemd only.
	nspawn, journalctl string
}

func findTools(boot BootMode) (*tools, error) {
	t := &tools{}
	for _, tool := range []struct {
		name, pkg string
		path      *string
	}{
		{"ip", "iproute2", &t.ip},
		{"nsenter", "util-linux", &t.nsenter},
		{"unshare", "util-linux", &t.unshare},
		{"sh", "dash", &t.sh},
		{"umount", "mount", &t.umount},
		{"chroot", "coreutils", &t.chroot},
		// Run by the instance mount namespace setup script.
		{"mount", "mount", new(string)},
		{"mkdir", "coreutils", new(string)},
		{"findmnt", "util-linux", new(string)},
	} {
		p, err := exec.LookPath(tool.name)
		if err != nil {
			return nil, fmt.Errorf("localcloud needs %s (Debian package %s): %w", tool.name, tool.pkg, err)
		}
		*tool.path = p
	}
	if boot == BootSystemd {
		for _, tool := range []struct {
			name string
			path *string
		}{{"systemd-nspawn", &t.nspawn}, {"journalctl", &t.journalctl}} {
			p, err := exec.LookPath(tool.name)
			if err != nil {
				return nil, fmt.Errorf("localcloud: BootSystemd needs %s (Debian package systemd-container, and systemd): %w", tool.name, err)
			}
			*tool.path = p
		}
	}
	return t, nil
}

// run runs a program to completion; its error carries the program's stderr.
func (t *tools) run(ctx context.Context, name string, args ...string) error {
	_, err := t.output(ctx, name, args...)
	return err
}

// output runs a program and returns its stdout.
func (t *tools) output(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

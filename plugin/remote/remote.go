// Package remote runs shell scripts and installs files on the machine being
// built, over a Packer communicator. It is the one place that knows how a
// command reaches the host: POSIX sh, root directly or through `sudo -n`,
// uploads staged in a private directory and moved into place by root.
package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Result is how a remote script ended.
type Result struct {
	Stdout, Stderr string
	Exit           int
}

// CommandError is a script that ran and exited non-zero.
type CommandError struct {
	Result
}

func (e *CommandError) Error() string {
	msg := lastLine(e.Stderr)
	if msg == "" {
		msg = lastLine(e.Stdout)
	}
	if msg == "" {
		return fmt.Sprintf("exit status %d", e.Exit)
	}
	return fmt.Sprintf("exit status %d: %s", e.Exit, msg)
}

// Output is everything the failed script printed, for the build log.
func (e *CommandError) Output() string {
	return strings.TrimRight(e.Stdout+e.Stderr, "\n")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// Host is a connected build machine.
type Host struct {
	comm    packersdk.Communicator
	sudo    bool   // the login user is not root: prefix `sudo -n`
	staging string // private upload directory, owned by the login user
	uploads int
}

// Open finds out whether the login user is root (otherwise every script
// runs under `sudo -n`, which must not ask for a password) and creates the
// staging directory for uploads, in one round trip.
func Open(ctx context.Context, comm packersdk.Communicator) (*Host, error) {
	h := &Host{comm: comm}
	// The staging directory is made by the login user, not root: the
	// communicator uploads as that user.
	r, err := h.run(ctx, false, "id -u && mktemp -d /tmp/zkaas-bake.XXXXXXXX")
	if err != nil {
		return nil, fmt.Errorf("open build host: %w", err)
	}
	f := strings.Fields(r.Stdout)
	if r.Exit != 0 || len(f) != 2 || !strings.HasPrefix(f[1], "/tmp/zkaas-bake.") {
		return nil, fmt.Errorf("open build host: id -u; mktemp -d: %w", &CommandError{Result: r})
	}
	uid, err := strconv.Atoi(f[0])
	if err != nil {
		return nil, fmt.Errorf("open build host: id -u printed %q", f[0])
	}
	h.staging = f[1]
	if uid != 0 {
		h.sudo = true
		if _, err := h.Must(ctx, "true"); err != nil {
			return nil, fmt.Errorf("open build host: the login user (uid %d) is not root and cannot run `sudo -n` without a password: %w", uid, err)
		}
	}
	return h, nil
}

// Sudo reports whether scripts run through sudo.
func (h *Host) Sudo() bool { return h.sudo }

// Staging is the private directory uploads land in.
func (h *Host) Staging() string { return h.staging }

// Run runs script with sh as root. The error is for a transport failure
// only; a non-zero exit is in the Result.
func (h *Host) Run(ctx context.Context, script string) (Result, error) {
	return h.run(ctx, h.sudo, script)
}

// Must runs script as root and turns a non-zero exit into *CommandError.
func (h *Host) Must(ctx context.Context, script string) (Result, error) {
	r, err := h.Run(ctx, script)
	if err != nil {
		return r, err
	}
	if r.Exit != 0 {
		return r, &CommandError{Result: r}
	}
	return r, nil
}

func (h *Host) run(ctx context.Context, sudo bool, script string) (Result, error) {
	cmd := "sh -c " + Quote(script)
	if sudo {
		cmd = "sudo -n " + cmd
	}
	var stdout, stderr bytes.Buffer
	rc := &packersdk.RemoteCmd{Command: cmd, Stdout: &stdout, Stderr: &stderr}
	if err := h.comm.Start(ctx, rc); err != nil {
		return Result{}, fmt.Errorf("start remote command: %w", err)
	}
	exited := make(chan int, 1)
	go func() { exited <- rc.Wait() }()
	var exit int
	select {
	case exit = <-exited:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("remote command: %w", ctx.Err())
	}
	if exit == packersdk.CmdDisconnect {
		return Result{}, fmt.Errorf("remote command: the build host disconnected")
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Exit: exit}, nil
}

// Attr is the ownership and permission of an installed file.
type Attr struct {
	Owner, Group string
	Mode         uint32
}

// String is the form `stat -c %U:%G:%a` prints, so a file's state can be
// compared in one string.
func (a Attr) String() string {
	return fmt.Sprintf("%s:%s:%o", a.Owner, a.Group, a.Mode)
}

// Put installs the bytes from r at dest with attr, creating missing
// parent directories (root, 0755). The bytes are uploaded into the staging
// directory and moved into place with a rename, so dest is never seen
// half-written and a retried build converges.
func (h *Host) Put(ctx context.Context, dest string, r io.Reader, attr Attr) error {
	h.uploads++
	staged := path.Join(h.staging, strconv.Itoa(h.uploads))
	if err := h.comm.Upload(staged, r, nil); err != nil {
		return fmt.Errorf("upload %s: %w", dest, err)
	}
	tmp := dest + ".zkaas-new"
	script := fmt.Sprintf("set -e\nmkdir -p %s\ninstall -o %s -g %s -m %o %s %s\nmv -f %s %s\nrm -f %s",
		Quote(path.Dir(dest)), Quote(attr.Owner), Quote(attr.Group), attr.Mode,
		Quote(staged), Quote(tmp), Quote(tmp), Quote(dest), Quote(staged))
	if _, err := h.Must(ctx, script); err != nil {
		return fmt.Errorf("install %s: %w", dest, err)
	}
	return nil
}

// Close removes the staging directory.
func (h *Host) Close(ctx context.Context) error {
	if _, err := h.Must(ctx, "rm -rf "+Quote(h.staging)); err != nil {
		return fmt.Errorf("remove staging directory %s: %w", h.staging, err)
	}
	return nil
}

// Quote makes s one word for sh.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

package remote

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkaas/zkaas/internal/commtest"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/zkaas/ensemble.yaml": "/etc/zkaas/ensemble.yaml",
		"root:root:644":            "root:root:644",
		"":                         "''",
		"a b":                      "'a b'",
		"it's":                     `'it'\''s'`,
		"$HOME;rm -rf /":           `'$HOME;rm -rf /'`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name     string
		idReply  commtest.Reply
		sudo     commtest.Reply
		wantSudo bool
		wantErr  string
	}{
		{name: "root", idReply: commtest.Reply{Stdout: "0\n/tmp/zkaas-bake.abc\n"}},
		{name: "admin with sudo", idReply: commtest.Reply{Stdout: "1000\n/tmp/zkaas-bake.abc\n"}, wantSudo: true},
		{
			name:    "admin without passwordless sudo",
			idReply: commtest.Reply{Stdout: "1000\n/tmp/zkaas-bake.abc\n"},
			sudo:    commtest.Reply{Stderr: "sudo: a password is required\n", Exit: 1},
			wantErr: "open build host: the login user (uid 1000) is not root and cannot run `sudo -n` without a password: exit status 1: sudo: a password is required",
		},
		{
			name:    "no mktemp",
			idReply: commtest.Reply{Stdout: "0\n", Stderr: "sh: 1: mktemp: not found\n", Exit: 127},
			wantErr: "open build host: id -u; mktemp -d: exit status 127: sh: 1: mktemp: not found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &commtest.Comm{}
			c.On(`^sh -c 'id -u`, tt.idReply)
			c.On(`^sudo -n sh -c true$`, tt.sudo)
			h, err := Open(context.Background(), c)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Open = %v\nwant %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Sudo() != tt.wantSudo || h.Staging() != "/tmp/zkaas-bake.abc" {
				t.Errorf("sudo %v staging %s", h.Sudo(), h.Staging())
			}
			if _, err := h.Must(context.Background(), "echo hi"); err != nil {
				t.Fatal(err)
			}
			calls := c.Calls()
			last := calls[len(calls)-1].Command
			if want := map[bool]string{true: "sudo -n sh -c 'echo hi'", false: "sh -c 'echo hi'"}[tt.wantSudo]; last != want {
				t.Errorf("command = %s, want %s", last, want)
			}
		})
	}
}

func TestTranscript(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "transcript")
	c := &commtest.Comm{}
	c.On(`^sh -c 'id -u`, commtest.Reply{Stdout: "0\n/tmp/zkaas-bake.abc\n"})
	tr, err := NewTranscript(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := Open(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Put(ctx, "/etc/a b", strings.NewReader("x=1\n"), Attr{"root", "root", 0o640}); err != nil {
		t.Fatal(err)
	}
	cmds, _ := os.ReadFile(filepath.Join(dir, "commands.sh"))
	uploads, _ := os.ReadFile(filepath.Join(dir, "uploads.tsv"))
	data, _ := os.ReadFile(filepath.Join(dir, "uploads", "1"))
	wantCmds := "sh -c 'id -u && mktemp -d /tmp/zkaas-bake.XXXXXXXX'\n" +
		"sh -c 'set -e\nmkdir -p /etc\ninstall -o root -g root -m 640 /tmp/zkaas-bake.abc/1 '\\''/etc/a b.zkaas-new'\\''\nmv -f '\\''/etc/a b.zkaas-new'\\'' '\\''/etc/a b'\\''\nrm -f /tmp/zkaas-bake.abc/1'\n"
	if string(cmds) != wantCmds || string(uploads) != "1\t/tmp/zkaas-bake.abc/1\n" || string(data) != "x=1\n" {
		t.Errorf("transcript:\n%s\n%s\n%q", cmds, uploads, data)
	}
	// The wrapped communicator still got everything.
	if calls := c.Calls(); len(calls) != 3 || calls[1].Op != "upload" || string(calls[1].Data) != "x=1\n" {
		t.Errorf("calls: %v", calls)
	}
}

package zkensemble

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"strings"
)

// account is a user as a machine's /etc/passwd has it; ids as text, as
// setpriv takes them.
type account struct{ name, uid, gid, home, shell string }

// lookupUser finds a user by name or uid in fsys's /etc/passwd: the
// image's users, whose ids need not be the host's.
func lookupUser(fsys fs.FS, user string) (account, error) {
	var a account
	err := scanDB(fsys, "etc/passwd", 7, func(f []string) bool {
		if f[0] == user || f[2] == user {
			a = account{name: f[0], uid: f[2], gid: f[3], home: f[5], shell: f[6]}
			return true
		}
		return false
	})
	return a, err
}

// lookupGroup finds a group's gid by name or gid in fsys's /etc/group.
func lookupGroup(fsys fs.FS, group string) (string, error) {
	var gid string
	err := scanDB(fsys, "etc/group", 4, func(f []string) bool {
		if f[0] == group || f[2] == group {
			gid = f[2]
			return true
		}
		return false
	})
	return gid, err
}

// scanDB calls match on each entry of a colon-separated database until it
// returns true; no match is an error.
func scanDB(fsys fs.FS, name string, fields int, match func([]string) bool) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= fields && match(f) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("/%s: %w", name, err)
	}
	return fmt.Errorf("not in /%s", name)
}

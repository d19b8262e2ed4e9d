// Package commtest is a recording packer Communicator for tests: it keeps
// every command and upload in order (the SDK's MockCommunicator remembers
// only the last one) and answers commands from a script of rules.
package commtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Call is one thing the code under test did over the communicator.
type Call struct {
	Op      string // "start" or "upload"
	Command string // for start
	Path    string // for upload
	Data    []byte // for upload
}

func (c Call) String() string {
	if c.Op == "upload" {
		return fmt.Sprintf("upload %s (%d bytes)", c.Path, len(c.Data))
	}
	return "start " + c.Command
}

// Reply is how a scripted command ends.
type Reply struct {
	Stdout, Stderr string
	Exit           int
}

type rule struct {
	re    *regexp.Regexp
	reply func(cmd string, n int) Reply
	n     int
}

// Comm implements packersdk.Communicator. The zero value answers every
// command with exit 0 and no output. Safe for concurrent use.
type Comm struct {
	mu    sync.Mutex
	calls []Call
	rules []*rule
}

var _ packersdk.Communicator = (*Comm)(nil)

// On answers commands matching the regular expression pattern with r. The
// rule registered last wins, so a test can override a general rule.
func (c *Comm) On(pattern string, r Reply) {
	c.OnFunc(pattern, func(string, int) Reply { return r })
}

// OnFunc answers commands matching pattern with f(command, n), n counting
// this rule's matches from 0 — for "fails twice, then succeeds".
func (c *Comm) OnFunc(pattern string, f func(cmd string, n int) Reply) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rules = append(c.rules, &rule{re: regexp.MustCompile(pattern), reply: f})
}

// Calls returns everything recorded so far, in order.
func (c *Comm) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.calls...)
}

// Transcript renders the calls one per line, for golden files; small text
// uploads are followed by their content, indented.
func (c *Comm) Transcript() string {
	var b strings.Builder
	for _, call := range c.Calls() {
		b.WriteString(call.String())
		b.WriteByte('\n')
		if call.Op == "upload" && len(call.Data) <= 4096 && utf8.Valid(call.Data) && !bytes.ContainsRune(call.Data, 0) {
			for _, line := range strings.SplitAfter(string(call.Data), "\n") {
				if line != "" {
					b.WriteString("  | " + strings.TrimSuffix(line, "\n") + "\n")
				}
			}
		}
	}
	return b.String()
}

func (c *Comm) Start(ctx context.Context, rc *packersdk.RemoteCmd) error {
	c.mu.Lock()
	c.calls = append(c.calls, Call{Op: "start", Command: rc.Command})
	reply := Reply{}
	for i := len(c.rules) - 1; i >= 0; i-- {
		r := c.rules[i]
		if r.re.MatchString(rc.Command) {
			reply = r.reply(rc.Command, r.n)
			r.n++
			break
		}
	}
	c.mu.Unlock()
	go func() {
		if rc.Stdout != nil {
			io.WriteString(rc.Stdout, reply.Stdout)
		}
		if rc.Stderr != nil {
			io.WriteString(rc.Stderr, reply.Stderr)
		}
		rc.SetExited(reply.Exit)
	}()
	return nil
}

func (c *Comm) Upload(path string, r io.Reader, _ *os.FileInfo) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, Call{Op: "upload", Path: path, Data: bytes.Clone(data)})
	return nil
}

func (c *Comm) UploadDir(dst, src string, _ []string) error {
	return fmt.Errorf("commtest: UploadDir %s -> %s not supported", src, dst)
}

func (c *Comm) Download(path string, _ io.Writer) error {
	return fmt.Errorf("commtest: Download %s not supported", path)
}

func (c *Comm) DownloadDir(src, dst string, _ []string) error {
	return fmt.Errorf("commtest: DownloadDir %s -> %s not supported", src, dst)
}

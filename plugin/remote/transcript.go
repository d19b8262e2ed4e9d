package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Transcript wraps a communicator and keeps, in a directory, everything
// sent through it: commands.sh holds every command line in order, and
// uploads/<n> the bytes of upload n with uploads.tsv listing "<n>\t<remote
// path>". It shows exactly what a provisioning did, and Packer's file and
// shell provisioners can replay it (the bake benchmark does).
type Transcript struct {
	packersdk.Communicator
	dir string

	mu      sync.Mutex
	uploads int
}

// NewTranscript starts an empty transcript in dir.
func NewTranscript(comm packersdk.Communicator, dir string) (*Transcript, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("transcript: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "uploads"), 0o755); err != nil {
		return nil, fmt.Errorf("transcript: %w", err)
	}
	return &Transcript{Communicator: comm, dir: dir}, nil
}

func (t *Transcript) Start(ctx context.Context, rc *packersdk.RemoteCmd) error {
	if err := t.append("commands.sh", rc.Command+"\n"); err != nil {
		return err
	}
	return t.Communicator.Start(ctx, rc)
}

func (t *Transcript) Upload(path string, r io.Reader, fi *os.FileInfo) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	t.mu.Lock()
	t.uploads++
	n := strconv.Itoa(t.uploads)
	t.mu.Unlock()
	if err := os.WriteFile(filepath.Join(t.dir, "uploads", n), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("transcript: %w", err)
	}
	if err := t.append("uploads.tsv", n+"\t"+path+"\n"); err != nil {
		return err
	}
	return t.Communicator.Upload(path, &buf, fi)
}

func (t *Transcript) append(name, line string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(t.dir, name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("transcript: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("transcript: %w", err)
	}
	return nil
}

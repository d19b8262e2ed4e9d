package disk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// Probe is what is on a device before anything touches it.
type Probe struct {
	// Blank: blkid found no signature at all, and the first and last MiB
	// both read back successfully as zeros. Only a blank device may be
	// formatted.
	Blank  bool
	FSType string // blkid TYPE (ext4, xfs, crypto_LUKS, ...)
	PTType string // blkid PTTYPE (gpt, dos, ...)
	UUID   string
	Label  string
}

// probeSpan is how much is read at each end of the device: partition
// tables and most superblocks live in the first MiB, GPT's backup header and
// md 0.9/1.0 superblocks in the last.
const probeSpan = 1 << 20

// blkidNothingFound is blkid's exit status for "no signature" — and also for
// "could not read the device", which is why it is believed only after our
// own read of both ends succeeded.
const blkidNothingFound = 2

// Probe reads dev and reports its signatures. It never writes. Any failure
// to read is an error: a device that cannot be read is not blank.
func (p *Preparer) Probe(ctx context.Context, dev string) (Probe, error) {
	nonZero, err := readEnds(dev)
	if err != nil {
		return Probe{}, err
	}
	out, err := run(ctx, p.Commands.withDefaults().Blkid, "-p", "-o", "export", dev)
	var exit *exec.ExitError
	switch {
	case err == nil:
		// Exit 0: something was found, even if it is neither TYPE nor
		// PTTYPE, so never blank.
		return parseBlkid(out), nil
	case errors.As(err, &exit) && exit.ExitCode() == blkidNothingFound:
		return Probe{Blank: !nonZero}, nil
	default:
		// 4 usage/internal error, 8 ambivalent (several signatures), or
		// blkid could not run at all.
		return Probe{}, fmt.Errorf("probe %s: %w", dev, err)
	}
}

// readEnds reads the first and last probeSpan bytes of dev with O_DIRECT, so
// the bytes (and any I/O error) come from the device, not a page cache that
// could hide an error, and reports whether any byte is non-zero.
func readEnds(dev string) (nonZero bool, err error) {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_DIRECT, 0)
	if errors.Is(err, unix.EINVAL) {
		// Some devices refuse O_DIRECT. A plain read still fails on
		// blocks that are not cached; a cached block was read
		// successfully before, by udev's probe or ours.
		f, err = os.Open(dev)
	}
	if err != nil {
		return false, fmt.Errorf("open %s for probing: %w", dev, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, fmt.Errorf("size of %s: %w", dev, err)
	}
	if size == 0 {
		return false, fmt.Errorf("%s has size 0", dev)
	}
	// O_DIRECT needs a buffer aligned to the logical block size; an
	// anonymous mapping is page aligned, which covers every block size.
	buf, err := unix.Mmap(-1, 0, probeSpan, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return false, fmt.Errorf("probe buffer: %w", err)
	}
	defer unix.Munmap(buf)

	span := min(size, probeSpan)
	for _, off := range []int64{0, size - span} {
		b := buf[:span]
		if _, err := f.ReadAt(b, off); err != nil {
			return false, fmt.Errorf("read %d bytes of %s at offset %d: %w", span, dev, off, err)
		}
		if bytes.Count(b, []byte{0}) != len(b) {
			nonZero = true
		}
	}
	return nonZero, nil
}

// parseBlkid reads `blkid -o export` output: KEY=value lines, where blkid
// backslash-escapes shell-special characters in values.
func parseBlkid(out []byte) Probe {
	var pr Probe
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		value = unescapeBlkid(value)
		switch key {
		case "TYPE":
			pr.FSType = value
		case "PTTYPE":
			pr.PTType = value
		case "UUID":
			pr.UUID = value
		case "LABEL":
			pr.Label = value
		}
	}
	return pr
}

func unescapeBlkid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

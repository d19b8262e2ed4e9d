package disk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Probe is what is on a device before anything touches it.
type Probe struct {
	// Blank: blkid found no signature at all, and the blank check (see
	// blank.go) read zeros everywhere it looked. Only a blank device may be
	// formatted.
	Blank bool
	// NonZero says where the blank check found data when blkid found no
	// signature ("non-zero data at offset ... (check)"); empty otherwise.
	NonZero string
	FSType  string // blkid TYPE (ext4, xfs, crypto_LUKS, ...)
	PTType  string // blkid PTTYPE (gpt, dos, ...)
	UUID    string
	Label   string
}

// blkidNothingFound is blkid's exit status for "no signature" — and also for
// "could not read the device", which is why it is believed only after our
// own blank check read the device successfully.
const blkidNothingFound = 2

// Probe reads dev and reports its signatures. It never writes. Any failure
// to read is an error: a device that cannot be read is not blank. The blank
// check runs only when blkid found nothing: a device with a signature is
// never formatted, so reading it further would only cost time on every
// boot.
func (p *Preparer) Probe(ctx context.Context, dev string) (Probe, error) {
	out, err := run(ctx, p.Commands.withDefaults().Blkid, "-p", "-o", "export", dev)
	var exit *exec.ExitError
	switch {
	case err == nil:
		// Exit 0: something was found, even if it is neither TYPE nor
		// PTTYPE, so never blank.
		return parseBlkid(out), nil
	case errors.As(err, &exit) && exit.ExitCode() == blkidNothingFound:
		nz, err := checkBlank(dev)
		if err != nil {
			return Probe{}, err
		}
		if nz != nil {
			return Probe{NonZero: nz.String()}, nil
		}
		return Probe{Blank: true}, nil
	default:
		// 4 usage/internal error, 8 ambivalent (several signatures), or
		// blkid could not run at all.
		return Probe{}, fmt.Errorf("probe %s: %w", dev, err)
	}
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

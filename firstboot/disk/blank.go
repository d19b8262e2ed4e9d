package disk

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// A device is formatted only when it is blank, and "blank" must mean more
// than "both ends are zero": wipefs, or a partition tool, or a half-finished
// mkfs clears the primary signature and leaves everything else, so a zeroed
// header can sit in front of a whole filesystem. The blank check therefore
// reads, with O_DIRECT so the bytes come from the device:
//
//   - the first and last 16 MiB in full: partition tables, the primary
//     superblocks of every filesystem blkid knows, the GPT backup header
//     (the device's last LBA) and its partition entries, md 0.9/1.0 and LVM
//     metadata;
//   - ext4's backup superblocks (sparse_super: groups 0, 1 and the powers of
//     3, 5 and 7) for 4 KiB blocks (128 MiB groups), 2 KiB blocks (32 MiB)
//     and 1 KiB blocks (8 MiB groups, offset by the first data block);
//   - xfs's allocation group headers: each AG starts with a copy of the
//     superblock, and the first 4 KiB of every candidate AG start is read.
//     The AG geometry is not known, so the candidates are the geometry
//     mkfs.xfs picks by default for the device's size (xfsAGSizes, after
//     calc_default_ag_geometry in xfsprogs' libxfs/topology.c: AGs of the
//     maximum size from 4 TiB up, 2^28-1 blocks, not 1 TiB) and, for any
//     other count from 2 to maxXFSAGCount (-d agcount=, striped devices),
//     the AG size mkfs.xfs derives from that count (the device size
//     rounded up to a whole number of AGs);
//   - a sparse sample across the whole device: sampleCount reads, each in
//     the middle of its slice, so that no sample sits on a round boundary
//     that one of the checks above already covers.
//
// A freshly created EBS volume (not from a snapshot) reads zero everywhere,
// so none of this can refuse one.
const (
	blankEndSpan  = 16 << 20
	blankPoint    = 4 << 10 // one read at a point: a superblock fits
	blankChunk    = 1 << 20 // the ends are read in chunks of this size
	sampleCount   = 1024
	maxXFSAGCount = 64
	// blankWorkers reads run at once: an EBS volume serves many requests in
	// parallel (its IOPS figure), one at a time each costs a round trip.
	blankWorkers = 32
)

// blankRead is one read of the blank check, with the checks that want it.
type blankRead struct {
	off, len int64
	checks   []string
}

// blankReads lists the reads of the blank check for a device of size bytes,
// ordered by offset, each within the device, aligned to 4 KiB (so O_DIRECT
// accepts them on any logical block size up to 4 KiB) except that the last
// one ends at the device's end. A point inside the two ends is not read
// again.
func blankReads(size int64) []blankRead {
	const align = 4 << 10
	var reads []blankRead
	// The ends, in chunks.
	endStart := max(0, size-blankEndSpan) &^ (align - 1)
	headEnd := min(size, blankEndSpan)
	if endStart <= headEnd {
		endStart = headEnd // small device: the ends meet, read it all once
	}
	for off := int64(0); off < headEnd; off += blankChunk {
		reads = append(reads, blankRead{off, min(blankChunk, headEnd-off), []string{"first 16 MiB"}})
	}
	for off := endStart; off < size; off += blankChunk {
		reads = append(reads, blankRead{off, min(blankChunk, size-off), []string{"last 16 MiB"}})
	}

	points := map[int64][]string{}
	add := func(off int64, check string) {
		off &^= align - 1
		if off < headEnd || off+blankPoint > endStart || off+blankPoint > size {
			return // inside the ends, read in full already
		}
		if !slices.Contains(points[off], check) {
			points[off] = append(points[off], check)
		}
	}
	// ext4 backup superblocks, sparse_super: groups 1, 3^k, 5^k, 7^k.
	for _, geo := range []struct {
		name       string
		groupBytes int64 // block size * 8 * block size (blocks per group)
		firstBlock int64 // byte offset of group 0: 1 KiB blocks start at block 1
	}{
		{"ext4 backup superblock (4 KiB blocks)", 128 << 20, 0},
		{"ext4 backup superblock (2 KiB blocks)", 32 << 20, 0},
		{"ext4 backup superblock (1 KiB blocks)", 8 << 20, 1 << 10},
	} {
		groups := size / geo.groupBytes
		for _, base := range []int64{3, 5, 7} {
			for g := int64(1); g < groups; g *= base {
				add(geo.firstBlock+g*geo.groupBytes, geo.name)
			}
		}
	}
	// xfs AG headers, with 4 KiB blocks (mkfs.xfs's default).
	for _, agBlocks := range xfsAGSizes(size / xfsBlock) {
		for start := agBlocks; start < size/xfsBlock; start += agBlocks {
			add(start*xfsBlock, "xfs allocation group header")
		}
	}
	// The sparse sample.
	slice := size / sampleCount
	for i := int64(0); i < sampleCount && slice >= blankPoint; i++ {
		add(i*slice+slice/2, "sparse sample")
	}

	for off, checks := range points {
		reads = append(reads, blankRead{off, blankPoint, checks})
	}
	slices.SortFunc(reads, func(a, b blankRead) int { return cmp.Compare(a.off, b.off) })
	return reads
}

const (
	xfsBlock = 4096 // mkfs.xfs's default block size
	// xfsMaxAGBlocks is XFS_AG_MAX_BLOCKS for 4 KiB blocks: an AG is at
	// most 1 TiB minus one byte, (2^40-1)>>12 = 2^28-1 blocks
	// (xfsprogs include/xfs_multidisk.h, XFS_AG_MAX_BYTES).
	xfsMaxAGBlocks = (1<<40 - 1) / xfsBlock
)

// xfsAGSizes lists the AG sizes, in 4 KiB blocks, that mkfs.xfs may give a
// filesystem of dblocks blocks, most likely first, without duplicates.
//
// The default (calc_default_ag_geometry, xfsprogs libxfs/topology.c): from
// 32 TiB always, and from 4 TiB on a single device, the maximum AG size;
// on a single device from 128 MiB, 4 AGs; on a striped one 2^shift AGs,
// shift 5 above 512 GiB, 4 above 8 GiB, 3 from 128 MiB. The size is
// dblocks >> shift, rounded up when that leaves a remainder (so the last
// AG is not lost), and never above the maximum. Then any count from 2 to
// maxXFSAGCount, sized the same way (-d agcount=N), where that fits in the
// maximum AG size: a larger one mkfs.xfs would not make.
func xfsAGSizes(dblocks int64) []int64 {
	const (
		tib = 1 << 40 / xfsBlock
		gib = 1 << 30 / xfsBlock
		mib = 1 << 20 / xfsBlock
	)
	var sizes []int64
	addSize := func(s int64) {
		if s > 0 && s <= xfsMaxAGBlocks && !slices.Contains(sizes, s) {
			sizes = append(sizes, s)
		}
	}
	byShift := func(shift uint) int64 {
		s := dblocks >> shift
		if dblocks&(1<<shift-1) != 0 && s < xfsMaxAGBlocks {
			s++
		}
		return s
	}
	// Single device.
	switch {
	case dblocks >= 4*tib:
		addSize(xfsMaxAGBlocks)
	case dblocks >= 128*mib:
		addSize(byShift(2))
	}
	// Striped device (multidisk).
	switch {
	case dblocks >= 32*tib:
		addSize(xfsMaxAGBlocks)
	case dblocks > 512*gib:
		addSize(byShift(5))
	case dblocks > 8*gib:
		addSize(byShift(4))
	case dblocks >= 128*mib:
		addSize(byShift(3))
	}
	for n := int64(2); n <= maxXFSAGCount; n++ {
		addSize((dblocks + n - 1) / n)
	}
	return sizes
}

// nonZero is where the blank check found data.
type nonZero struct {
	off    int64 // the first non-zero byte of the read
	checks []string
}

func (n *nonZero) String() string {
	return fmt.Sprintf("non-zero data at offset %d (%s)", n.off, strings.Join(n.checks, ", "))
}

// checkBlank runs the blank check on dev. It returns the lowest non-zero
// place found (nil if every read was zero), or an error if any read failed:
// a device that cannot be read is not blank.
func checkBlank(dev string) (*nonZero, error) {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_DIRECT, 0)
	if errors.Is(err, unix.EINVAL) {
		// Some devices refuse O_DIRECT. A plain read still fails on
		// blocks that are not cached; a cached block was read
		// successfully before, by udev's probe or ours.
		f, err = os.Open(dev)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s for probing: %w", dev, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("size of %s: %w", dev, err)
	}
	if size == 0 {
		return nil, fmt.Errorf("%s has size 0", dev)
	}
	reads := blankReads(size)

	var (
		mu    sync.Mutex
		found *nonZero
		errs  []error
		next  = make(chan blankRead)
		wg    sync.WaitGroup
	)
	for range min(blankWorkers, len(reads)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// O_DIRECT needs a buffer aligned to the logical block size;
			// an anonymous mapping is page aligned, which covers every
			// block size.
			buf, err := unix.Mmap(-1, 0, blankChunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("probe buffer: %w", err))
				mu.Unlock()
				for range next {
				}
				return
			}
			defer unix.Munmap(buf)
			for r := range next {
				b := buf[:r.len]
				if _, err := f.ReadAt(b, r.off); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("read %d bytes of %s at offset %d (%s): %w", r.len, dev, r.off, strings.Join(r.checks, ", "), err))
					mu.Unlock()
					continue
				}
				if i := firstNonZero(b); i >= 0 {
					mu.Lock()
					if found == nil || r.off+int64(i) < found.off {
						found = &nonZero{off: r.off + int64(i), checks: r.checks}
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, r := range reads {
		next <- r
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errs[0] // one is enough to refuse, and stable for a message
	}
	return found, nil
}

// zeroPage is compared against: bytes.Equal is the assembly memcmp, far
// faster than a byte loop over the 32 MiB every blank check reads.
var zeroPage [4096]byte

// firstNonZero is the index of the first non-zero byte of b, -1 if none.
func firstNonZero(b []byte) int {
	for i := 0; i < len(b); i += len(zeroPage) {
		n := min(len(zeroPage), len(b)-i)
		if bytes.Equal(b[i:i+n], zeroPage[:n]) {
			continue
		}
		for j := i; j < i+n; j++ {
			if b[j] != 0 {
				return j
			}
		}
	}
	return -1
}

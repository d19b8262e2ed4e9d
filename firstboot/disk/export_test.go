package disk

// BlankRead is one read of the blank check, for the external tests that
// plant data where exactly one check looks.
type BlankRead struct {
	Off, Len int64
	Checks   []string
}

// BlankReads lists the blank check's reads for a device of size bytes.
func BlankReads(size int64) []BlankRead {
	var out []BlankRead
	for _, r := range blankReads(size) {
		out = append(out, BlankRead{r.off, r.len, r.checks})
	}
	return out
}

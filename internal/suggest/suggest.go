// Package suggest finds the name an operator probably meant, for "unknown
// field (did you mean …?)" messages.
package suggest

// Closest returns the name in names nearest to got, if it is near enough to
// be a typo: at most three edits and at most half of got's length; else "".
func Closest(got string, names []string) string {
	best, bestD := "", min(3, len(got)/2)+1
	for _, n := range names {
		if d := distance(got, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein edit distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

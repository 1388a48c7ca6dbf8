// Package didyoumean finds the known name a misspelt one was meant to be,
// by edit distance, for error messages such as "did you mean revenue?".
package didyoumean

import "strings"

// Suggest returns the known name closest to name, or "" when none is close
// enough to be a likely typo: at most 2 edits (insert, delete, substitute
// or swap two neighbours), and fewer than half of name's length, so that
// short names do not suggest unrelated ones. Case is ignored; ties go to
// the alphabetically first name.
func Suggest(name string, known []string) string {
	n := []rune(strings.ToLower(name))
	limit := min(2, (len(n)-1)/2)
	if limit < 1 {
		return ""
	}
	best, bestD := "", limit+1
	for _, k := range known {
		if k == name {
			continue
		}
		d := distance(n, []rune(strings.ToLower(k)), limit)
		if d < bestD || d == bestD && best != "" && k < best {
			best, bestD = k, d
		}
	}
	if bestD > limit {
		return ""
	}
	return best
}

// distance is the optimal string alignment distance of a and b (Levenshtein
// with transpositions of neighbours); beyond limit it returns limit+1.
func distance(a, b []rune, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], limit+1)
}

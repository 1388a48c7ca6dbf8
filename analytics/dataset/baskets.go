package dataset

import (
	"bufio"
	"io"
	"strings"
)

// ReadBaskets reads one basket per line, items separated by sep (',' when
// zero), as in the arules Groceries file. Items are trimmed, surrounding
// double quotes removed, duplicates within a basket dropped (a basket is a
// set) and blank items ignored. Blank lines are skipped: a trailing newline
// must not become an empty transaction that lowers every support.
func ReadBaskets(r io.Reader, sep rune) ([][]string, error) {
	if sep == 0 {
		sep = ','
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var out [][]string
	line := 0
	for {
		s, err := br.ReadString('\n')
		if len(s) > 0 {
			line++
			if len(s) > maxLine {
				return nil, lineError(line, "line longer than %d bytes", maxLine)
			}
			if line == 1 {
				s = strings.TrimPrefix(s, "\ufeff")
			}
			if b := splitBasket(s, sep); len(b) > 0 {
				out = append(out, b)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, lineError(line+1, "%v", err)
		}
	}
	return out, nil
}

func splitBasket(s string, sep rune) []string {
	s = strings.TrimRight(s, "\r\n")
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, string(sep))
	out := parts[:0]
	var seen map[string]bool
	if len(parts) > 16 {
		// Long baskets: a set beats the quadratic scan below.
		seen = make(map[string]bool, len(parts))
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
			p = strings.TrimSpace(strings.ReplaceAll(p[1:len(p)-1], `""`, `"`))
		}
		if p == "" {
			continue
		}
		if seen != nil {
			if seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
			continue
		}
		dup := false
		for _, q := range out {
			if q == p {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil
	}
	// Copy so the basket does not pin the whole split slice's strings.
	return append([]string(nil), out...)
}

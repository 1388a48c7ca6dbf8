package linkage

// soundex is American Soundex of a lower-case Latin word: the first letter and
// three digits for the consonant classes that follow. It is a blocking key,
// not a comparator: it groups "smith" with "smyth" so that a typo in a name
// does not keep a duplicate out of every block. Words that do not start with
// a Latin letter (Chinese names, digits) are returned unchanged, which blocks
// them on the exact value.
func soundex(w string) string {
	if w == "" || w[0] < 'a' || w[0] > 'z' {
		return w
	}
	code := func(c byte) byte {
		switch c {
		case 'b', 'f', 'p', 'v':
			return '1'
		case 'c', 'g', 'j', 'k', 'q', 's', 'x', 'z':
			return '2'
		case 'd', 't':
			return '3'
		case 'l':
			return '4'
		case 'm', 'n':
			return '5'
		case 'r':
			return '6'
		case 'h', 'w':
			return 'h' // does not separate equal codes
		}
		return 0 // vowels and y separate equal codes
	}
	out := []byte{w[0], '0', '0', '0'}
	n := 1
	last := code(w[0])
	for i := 1; i < len(w) && n < 4; i++ {
		c := w[i]
		if c < 'a' || c > 'z' {
			break
		}
		k := code(c)
		switch {
		case k == 'h':
			continue
		case k == 0:
			last = 0
		case k != last:
			out[n] = k
			n++
			last = k
		}
	}
	return string(out)
}

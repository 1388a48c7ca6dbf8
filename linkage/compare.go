package linkage

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// jaroWinkler returns the Jaro-Winkler similarity of a and b in [0, 1] with
// the usual prefix scale 0.1 over at most four characters. It works on runes
// so that Chinese names compare character by character.
func jaroWinkler(a, b []rune) float64 {
	if len(a) == 0 || len(b) == 0 {
		if len(a) == 0 && len(b) == 0 {
			return 1
		}
		return 0
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	window := len(b)/2 - 1
	if window < 0 {
		window = 0
	}
	// Names are short; fixed-size stack buffers avoid an allocation per pair.
	var amBuf, bmBuf [64]bool
	var am, bm []bool
	if len(a) <= 64 && len(b) <= 64 {
		am, bm = amBuf[:len(a)], bmBuf[:len(b)]
	} else {
		am, bm = make([]bool, len(a)), make([]bool, len(b))
	}
	matches := 0
	for i, r := range a {
		lo, hi := i-window, i+window+1
		if lo < 0 {
			lo = 0
		}
		if hi > len(b) {
			hi = len(b)
		}
		for j := lo; j < hi; j++ {
			if !bm[j] && b[j] == r {
				am[i], bm[j] = true, true
				matches++
				break
			}
		}
	}
	if matches == 0 {
		return 0
	}
	trans, j := 0, 0
	for i := range a {
		if !am[i] {
			continue
		}
		for !bm[j] {
			j++
		}
		if a[i] != b[j] {
			trans++
		}
		j++
	}
	m := float64(matches)
	jaro := (m/float64(len(a)) + m/float64(len(b)) + (m-float64(trans/2))/m) / 3
	prefix := 0
	for prefix < 4 && prefix < len(a) && a[prefix] == b[prefix] {
		prefix++
	}
	return jaro + float64(prefix)*0.1*(1-jaro)
}

// editDistance is the optimal-string-alignment distance (Levenshtein plus
// adjacent transposition), the error model of hand-typed digits: one wrong,
// missing, extra or swapped character counts as one.
func editDistance(a, b []rune) int {
	if len(a) < len(b) {
		a, b = b, a
	}
	if len(b) == 0 {
		return len(a)
	}
	// Three rows of the DP table; on the stack for the short values this
	// is used on (codes, dates, ids).
	var buf [3 * 33]int
	var prev2, prev, cur []int
	if len(b) < 33 {
		prev2, prev, cur = buf[0:len(b)+1], buf[33:33+len(b)+1], buf[66:66+len(b)+1]
	} else {
		prev2, prev, cur = make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	}
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// tokenSimilarity compares two token sets softly: each token of the smaller
// set is matched to its most similar unused token of the other set
// (Jaro-Winkler ≥ 0.9 counts, weighted by the similarity), and the matched
// weight is divided by the size of the larger set. Word order does not
// matter, and one misspelt word lowers the score only a little.
func tokenSimilarity(a, b [][]rune) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	var usedBuf [16]bool
	used := usedBuf[:0]
	if len(b) <= len(usedBuf) {
		used = usedBuf[:len(b)]
	} else {
		used = make([]bool, len(b))
	}
	total := 0.0
	for _, ta := range a {
		best, bi := 0.0, -1
		for j, tb := range b {
			if used[j] {
				continue
			}
			s := jaroWinkler(ta, tb)
			if s > best {
				best, bi = s, j
			}
		}
		if bi >= 0 && best >= 0.9 {
			used[bi] = true
			total += best
		}
	}
	return total / float64(len(b))
}

// comparator maps a pair of prepared values to an agreement level: 0 is the
// strongest agreement, levels()-1 is disagreement. Missing values never reach
// a comparator; they are neutral in the model.
type comparator interface {
	levels() int
	compare(a, b *value) int
}

// value is a field value prepared once per record, so that the pairwise loop
// does no normalisation or allocation.
type value struct {
	s      string   // normalised text
	r      []rune   // normalised runes
	tokens [][]rune // words, for token-set comparison
	// Names only: the pinyin form in order and the order-free pinyin key
	// (see chinese.go); equal to the text itself for one Latin word.
	pykey string
	words [][]rune // pinyin words in order
	han   bool
}

func prepare(kind Kind, raw string) value {
	var s string
	switch kind {
	case KindDate:
		s = normalizeDate(raw)
	case KindCode:
		s = strings.ToLower(alnumOnly(normalize(raw)))
	case KindID:
		if f := strings.ToLower(width.Fold.String(norm.NFKC.String(raw))); strings.Contains(f, "@") {
			s = strings.Join(strings.Fields(f), "") // an e-mail keeps its @ and dots
		} else {
			s = canonicalMobile(strings.ToLower(alnumOnly(normalize(raw))))
		}
	default:
		s = normalize(raw)
	}
	if kind == KindAddress && hasHan(s) {
		// A Chinese address is written without spaces; a space typed in
		// one (西湖区 文三路 188号) is noise, not a word boundary.
		s = strings.Join(strings.Fields(s), "")
	}
	v := value{s: s, r: []rune(s)}
	if kind == KindAddress {
		v.han = hasHan(s)
	}
	if kind == KindAddress || kind == KindText || kind == KindName {
		for _, t := range strings.Fields(s) {
			v.tokens = append(v.tokens, []rune(t))
		}
	}
	if kind == KindName && s != "" {
		words, key := pinyinWords(s)
		v.pykey, v.han = key, hasHan(s)
		for _, w := range words {
			v.words = append(v.words, []rune(w))
		}
	}
	return v
}

// canonicalMobile drops the country code of a Chinese mobile number
// (+86 138…, 0086-138…, 86138…), so that one number typed three ways is one
// identifier. Other values pass unchanged.
func canonicalMobile(s string) string {
	switch {
	case len(s) == 13 && strings.HasPrefix(s, "861") && allDigits(s):
		return s[2:]
	case len(s) == 15 && strings.HasPrefix(s, "00861") && allDigits(s):
		return s[4:]
	}
	return s
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// normalizeDate brings a date to YYYYMMDD when its shape is recognisable
// (2024-03-05, 2024/3/5, 20240305, 5/3/2024, 2024年3月5日); anything else is
// kept as its digits, so that it still compares digit-wise. Day-first versus
// month-first does not need deciding here: the comparator treats a swapped
// day and month as a near agreement.
func normalizeDate(raw string) string {
	var parts []string
	cur := strings.Builder{}
	for _, r := range norm2(raw) {
		if unicode.IsDigit(r) {
			cur.WriteRune(r)
		} else if cur.Len() > 0 {
			parts = append(parts, cur.String())
			cur.Reset()
		}
	}
	if cur.Len() > 0 {
		parts = append(parts, cur.String())
	}
	pad := func(s string) string {
		if len(s) == 1 {
			return "0" + s
		}
		return s
	}
	if len(parts) >= 3 && len(parts[0]) <= 2 && len(parts[1]) <= 2 && len(parts[2]) == 4 {
		return parts[2] + pad(parts[1]) + pad(parts[0])
	}
	if len(parts) >= 3 && len(parts[0]) == 4 && len(parts[1]) <= 2 && len(parts[2]) <= 2 {
		return parts[0] + pad(parts[1]) + pad(parts[2])
	}
	return strings.Join(parts, "")
}

// norm2 folds full-width digits before date parsing.
func norm2(s string) string { return normalize(s) }

// textLevels are the Jaro-Winkler cut-offs of the name and text comparators:
// exact, near (one typo in a long word), similar (phonetic variants), and
// different.
var textLevels = []float64{1, 0.94, 0.85}

func jwLevel(s float64) int {
	for i, t := range textLevels {
		if s >= t {
			return i
		}
	}
	return len(textLevels)
}

type textComparator struct{}

func (textComparator) levels() int { return len(textLevels) + 1 }
func (textComparator) compare(a, b *value) int {
	if a.s == b.s {
		return 0
	}
	s := jaroWinkler(a.r, b.r)
	if s >= 1 {
		s = 0.999 // equal after JW but not byte-equal cannot be "exact"
	}
	return jwLevel(s)
}

// nameComparator is textComparator made aware of Chinese names: two
// spellings with the same pinyin key (朱秀英 / Zhu Xiuying / Xiuying Zhu, or
// the homophone 张伟 / 张玮) agree at the "near" level. Similarity on the
// whole pinyin string is not used for Chinese names: 张伟 and 张文 are
// zhangwei and zhangwen, nearly equal strings of different people. Only a
// typo inside a pinyin word (Zhu Xiuyin for 朱秀英) counts as similar.
type nameComparator struct{}

func (nameComparator) levels() int { return len(textLevels) + 1 }
func (nameComparator) compare(a, b *value) int {
	if a.s == b.s {
		return 0
	}
	if a.pykey != "" && a.pykey == b.pykey {
		return 1
	}
	if !a.han && !b.han {
		return textComparator{}.compare(a, b)
	}
	l := len(textLevels)
	if a.han && b.han {
		l = jwLevel(min(jaroWinkler(a.r, b.r), 0.999))
	}
	if wordsSimilar(a.words, b.words) {
		l = min(l, 2)
	}
	return l
}

// wordsSimilar: the same number of pinyin words, each pair (in order or
// reversed) within one typo's similarity.
func wordsSimilar(a, b [][]rune) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	fwd, rev := true, true
	for i := range a {
		if jaroWinkler(a[i], b[i]) < 0.9 {
			fwd = false
		}
		if jaroWinkler(a[i], b[len(b)-1-i]) < 0.9 {
			rev = false
		}
	}
	return fwd || rev
}

type addressComparator struct{}

func (addressComparator) levels() int { return 4 }
func (addressComparator) compare(a, b *value) int {
	if a.s == b.s {
		return 0
	}
	if a.han && b.han && sameChineseAddress(a.s, b.s) {
		return 1
	}
	ts := tokenSimilarity(a.tokens, b.tokens)
	jw := jaroWinkler(a.r, b.r)
	switch {
	case ts >= 0.8 || jw >= 0.95:
		return 1
	case ts >= 0.4 || jw >= 0.85:
		return 2
	}
	return 3
}

// sameChineseAddress reports one Chinese address written with and without
// its leading regions (杭州市西湖区文三路188号 / 西湖区文三路188号, 浙江省杭州市…):
// the shorter is the end of the longer, what is cut off ends in a region
// (省, 市, 区, 县), and what is left names a place below the city (six
// characters or more), not a bare house number.
func sameChineseAddress(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if utf8.RuneCountInString(a) < 6 || !strings.HasSuffix(b, a) {
		return false
	}
	prefix := []rune(strings.TrimSuffix(b, a))
	switch prefix[len(prefix)-1] {
	case '省', '市', '区', '县':
		return true
	}
	return false
}

// codeComparator: exact, one edit (typo, transposition, dropped digit), or
// different. Hand-typed codes rarely suffer more than one error, and two
// different codes one edit apart are rare enough for EM to weigh.
type codeComparator struct{}

func (codeComparator) levels() int { return 3 }
func (codeComparator) compare(a, b *value) int {
	if a.s == b.s {
		return 0
	}
	if d := len(a.r) - len(b.r); d > 1 || d < -1 {
		return 2
	}
	if editDistance(a.r, b.r) <= 1 && !numberedMailboxes(a, b) {
		return 1
	}
	return 2
}

// numberedMailboxes reports two e-mail addresses (kept with their "@" by
// prepare) that differ where one holds a digit: wang.fang12@ and
// wang.fang21@, or two QQ numbers, are different mailboxes, not a typo.
func numberedMailboxes(a, b *value) bool {
	if !strings.Contains(a.s, "@") || !strings.Contains(b.s, "@") {
		return false
	}
	x, y := a.s, b.s
	for len(x) > 0 && len(y) > 0 && x[0] == y[0] {
		x, y = x[1:], y[1:]
	}
	for len(x) > 0 && len(y) > 0 && x[len(x)-1] == y[len(y)-1] {
		x, y = x[:len(x)-1], y[:len(y)-1]
	}
	return strings.ContainsAny(x+y, "0123456789")
}

// dateComparator: exact; one digit off or day and month swapped; same year
// and one of month/day; different.
type dateComparator struct{}

func (dateComparator) levels() int { return 4 }
func (dateComparator) compare(a, b *value) int {
	if a.s == b.s {
		return 0
	}
	if len(a.s) == 8 && len(b.s) == 8 {
		if a.s[:4] == b.s[:4] && a.s[4:6] == b.s[6:8] && a.s[6:8] == b.s[4:6] {
			return 1
		}
	}
	if editDistance(a.r, b.r) <= 1 {
		return 1
	}
	if len(a.s) == 8 && len(b.s) == 8 && a.s[:4] == b.s[:4] && (a.s[4:6] == b.s[4:6] || a.s[6:8] == b.s[6:8]) {
		return 2
	}
	return 3
}

type categoryComparator struct{}

func (categoryComparator) levels() int { return 2 }
func (categoryComparator) compare(a, b *value) int {
	if a.s == b.s {
		return 0
	}
	return 1
}

func comparatorFor(k Kind) comparator {
	switch k {
	case KindName:
		return nameComparator{}
	case KindText:
		return textComparator{}
	case KindAddress:
		return addressComparator{}
	case KindDate:
		return dateComparator{}
	case KindCode, KindID:
		return codeComparator{}
	case KindCategory:
		return categoryComparator{}
	}
	return nil
}

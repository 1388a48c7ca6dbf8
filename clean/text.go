package clean

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mozillazg/go-pinyin"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// Text normalises free text: Unicode NFKC, full-width forms folded to
// half-width (ＡＢＣ１２３ → ABC123, the ideographic space → space), control
// characters dropped, and runs of whitespace collapsed to one space.
// Chinese characters are left as they are: width folding only touches
// characters that have a narrow counterpart. Case is kept; callers that
// compare lower-case themselves.
func Text(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", invalid("text", strings.ToValidUTF8(raw, "\uFFFD"), "not valid UTF-8")
	}
	// Invisible characters go before normalising, not only after: between
	// a letter and a combining mark (A, U+0080, U+0323) they keep the two
	// apart, and removing them afterwards left a sequence that the next
	// normalisation composes, so Text(Text(x)) differed from Text(x).
	s := width.Fold.String(norm.NFKC.String(strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		return r
	}, raw)))
	var b strings.Builder
	b.Grow(len(s))
	pendingSpace := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			pendingSpace = b.Len() > 0
		case invisible(r):
		default:
			if pendingSpace {
				b.WriteByte(' ')
				pendingSpace = false
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// invisible reports characters pasted from web pages and Excel that show
// nothing: controls, zero-width space and joiner, byte-order mark. Spaces
// are not among them (they are collapsed, not removed).
func invisible(r rune) bool {
	return !unicode.IsSpace(r) && (unicode.IsControl(r) || r == '\u200b' || r == '\ufeff' || r == '\u200d')
}

// Name normalises a person's name with Text and checks that it has at least
// one letter. A Chinese name keeps its characters and loses the spaces that
// are sometimes typed between them ("张 三" → "张三"), since Chinese names
// are written without spaces; Latin names keep single spaces ("Zhang  San" →
// "Zhang San"). The middle dot of transliterated names is normalised to "·".
func Name(raw string) (string, error) {
	s, err := Text(raw)
	if err != nil {
		return "", err
	}
	s = strings.NewReplacer("•", "·", "・", "·", "‧", "·").Replace(s)
	letters, han := 0, 0
	for _, r := range s {
		if unicode.IsLetter(r) {
			letters++
		}
		if unicode.Is(unicode.Han, r) {
			han++
		}
		if unicode.IsDigit(r) {
			return "", invalid("name", raw, "contains digits")
		}
	}
	if letters == 0 {
		return "", invalid("name", raw, "has no letters")
	}
	if han > 0 && han*2 >= letters {
		// Mostly Chinese: spaces are typing noise.
		s = strings.ReplaceAll(s, " ", "")
	}
	return s, nil
}

var pinyinArgs = func() pinyin.Args {
	a := pinyin.NewArgs()
	a.Style = pinyin.Normal // toneless: what people type in a search box
	return a
}()

// Pinyin returns the toneless pinyin of the Chinese characters of a name as
// space-separated syllables ("张三" → "zhang san"), for search. Non-Chinese
// letters and digits pass through lower-cased, so a mixed name still
// searches. Polyphonic characters take their most common reading; surname
// readings (单 Shan, 曾 Zeng) are not special-cased by the library, which
// is a known limit of dictionary pinyin.
func Pinyin(name string) string {
	var out []string
	var latin strings.Builder
	flush := func() {
		if latin.Len() > 0 {
			out = append(out, strings.ToLower(latin.String()))
			latin.Reset()
		}
	}
	for _, r := range name {
		if unicode.Is(unicode.Han, r) {
			flush()
			py := pinyin.SinglePinyin(r, pinyinArgs)
			if len(py) > 0 && py[0] != "" {
				out = append(out, py[0])
			}
			continue
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			latin.WriteRune(r)
		} else {
			flush()
		}
	}
	flush()
	return strings.Join(out, " ")
}

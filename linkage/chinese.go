package linkage

import (
	"slices"
	"strings"
	"unicode"

	"github.com/portrait-cdp/portrait/clean"
)

// Chinese names. Soundex knows only Latin letters, and the same person is
// written 张伟, Zhang Wei, Wei Zhang or 张玮 (a homophone picked from the
// input method's list). Pinyin is the common ground: every name gets a form
// made of toneless syllables, the surname first and the given name as one
// word, so that 朱秀英 and "Zhu Xiuying" agree, and a key with its words
// sorted, so that swapped order agrees too.

// compoundSurnames are the two-character surnames common enough to matter;
// every other Chinese name takes its first character as the surname.
var compoundSurnames = map[string]bool{
	"欧阳": true, "司马": true, "上官": true, "诸葛": true, "东方": true, "皇甫": true,
	"尉迟": true, "公孙": true, "慕容": true, "长孙": true, "宇文": true, "司徒": true,
	"夏侯": true, "轩辕": true, "令狐": true, "钟离": true, "端木": true, "独孤": true,
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

// nameWords returns a normalised name as pinyin words: a Chinese name as
// [surname, given name] ("朱秀英" → zhu, xiuying), a Latin name as its words.
// Mixed or longer Chinese strings fall back to one word per character.
func nameWords(s string) []string {
	if !hasHan(s) {
		return strings.Fields(s)
	}
	compact := strings.ReplaceAll(s, " ", "")
	rs := []rune(compact)
	allHan := true
	for _, r := range rs {
		if !unicode.Is(unicode.Han, r) {
			allHan = false
			break
		}
	}
	if !allHan || len(rs) < 2 || len(rs) > 5 {
		return strings.Fields(clean.Pinyin(s))
	}
	cut := 1
	if len(rs) >= 3 && compoundSurnames[string(rs[:2])] {
		cut = 2
	}
	sur := strings.ReplaceAll(clean.Pinyin(string(rs[:cut])), " ", "")
	given := strings.ReplaceAll(clean.Pinyin(string(rs[cut:])), " ", "")
	return []string{sur, given}
}

// pinyinWords returns the name's pinyin words in order and the order-free
// key ("朱秀英" → [zhu xiuying], "xiuying zhu").
func pinyinWords(s string) (words []string, key string) {
	words = nameWords(s)
	sorted := slices.Clone(words)
	slices.Sort(sorted)
	return words, strings.Join(sorted, " ")
}

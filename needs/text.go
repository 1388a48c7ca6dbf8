package needs

import (
	_ "embed"
	"os"
	"strings"
	"sync"
	"unicode"

	"github.com/go-ego/gse"

	"github.com/portrait-cdp/portrait"
)

// words.txt is the compact dictionary: the 52,795 words of frequency 50 or
// more in gse's simplified Chinese dictionary (data/dict/zh/s_1.txt of
// github.com/go-ego/gse v0.80.3, Apache-2.0; itself from jieba's, MIT), in
// gse's format. The whole dictionary (352,279 words) takes 11 s to load on
// a busy two-core machine (a minute under the race detector); this one takes
// 1 s and splits customer-service text the same way in the cases tested
// (needs_test.go). A deployment that wants the whole one names it in
// Config.Dictionary.
//
//go:embed words.txt
var compactWords string

// segmenters are loaded once per dictionary and shared; keywords of the
// taxonomies in use are added to them (a word more in a dictionary harms no
// other taxonomy). Cut runs under the read lock, AddToken under the write
// lock.
var (
	segMu      sync.RWMutex
	segmenters = map[string]*segmenter{}
)

type segmenter struct {
	once sync.Once
	seg  gse.Segmenter
	err  error
}

// loadSegmenter returns the segmenter of a dictionary file ("": the
// compact embedded one), loading it on first use.
func loadSegmenter(dict string, keywords []string) (*segmenter, error) {
	segMu.Lock()
	s := segmenters[dict]
	if s == nil {
		s = &segmenter{}
		segmenters[dict] = s
	}
	segMu.Unlock()
	s.once.Do(func() {
		s.seg.SkipLog = true
		if dict == "" {
			s.err = s.seg.LoadDictStr(compactWords)
			return
		}
		b, err := os.ReadFile(dict)
		if err != nil {
			s.err = portrait.Errorf(portrait.EINVALID, "needs: cannot read dictionary %s: %v", dict, err)
			return
		}
		s.err = s.seg.LoadDictStr(string(b))
	})
	if s.err != nil {
		return nil, s.err
	}
	segMu.Lock()
	defer segMu.Unlock()
	for _, k := range keywords {
		if isHanWord(k) {
			if f, _, _ := s.seg.Find(k); f == 0 {
				if err := s.seg.AddToken(k, 1000); err != nil {
					return nil, err
				}
			}
		}
	}
	return s, nil
}

func (s *segmenter) cut(text string) []string {
	segMu.RLock()
	defer segMu.RUnlock()
	return s.seg.Cut(text, true)
}

// englishStop are words that name no topic.
var englishStop = map[string]bool{"the": true, "a": true, "an": true, "and": true, "or": true, "is": true, "it": true, "to": true,
	"of": true, "in": true, "on": true, "for": true, "my": true, "i": true, "me": true, "was": true, "were": true, "be": true, "this": true,
	"that": true, "with": true, "have": true, "has": true, "had": true, "but": true, "not": true, "no": true, "at": true, "we": true, "you": true,
	"your": true, "our": true, "they": true, "so": true, "very": true, "after": true, "still": true, "got": true, "get": true, "are": true,
	"from": true, "by": true, "as": true, "been": true, "did": true, "do": true, "does": true, "just": true, "than": true, "too": true, "can": true}

// chineseStop are common function words the segmenter leaves as words.
var chineseStop = map[string]bool{"的": true, "了": true, "是": true, "我": true, "你": true, "他": true, "她": true, "在": true, "也": true, "都": true,
	"就": true, "和": true, "很": true, "还": true, "又": true, "没有": true, "不": true, "这个": true, "那个": true, "一个": true, "我们": true, "你们": true,
	"什么": true, "怎么": true, "已经": true, "但是": true, "而且": true, "因为": true, "所以": true, "非常": true, "还是": true, "这": true, "那": true, "有": true}

// Tokens splits text into lower-case words with the compact dictionary.
func Tokens(text string) ([]string, error) {
	s, err := loadSegmenter("", nil)
	if err != nil {
		return nil, err
	}
	return s.tokens(text), nil
}

// tokens splits text into lower-case words: runs of Han characters by the
// segmenter, everything else at non-letters. Stop words and one-letter
// Latin tokens are dropped.
func (sg *segmenter) tokens(text string) []string {
	var out []string
	var run []rune
	han := false
	flush := func() {
		if len(run) == 0 {
			return
		}
		s := string(run)
		run = run[:0]
		if han {
			for _, w := range sg.cut(s) {
				w = strings.TrimSpace(w)
				if w != "" && !chineseStop[w] {
					out = append(out, w)
				}
			}
			return
		}
		w := strings.ToLower(s)
		if len([]rune(w)) > 1 && !englishStop[w] {
			out = append(out, w)
		}
	}
	for _, r := range text {
		isHan := unicode.Is(unicode.Han, r)
		isWord := isHan || unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\''
		if !isWord || isHan != han {
			flush()
		}
		if isWord {
			han = isHan
			run = append(run, r)
		}
	}
	flush()
	return out
}

// matcher finds the keys whose keywords a text names: a keyword matches a
// token equal to it, or (for a Chinese keyword the segmenter cut
// differently, or an English phrase or stem) a token containing it.
type matcher struct {
	keys     []string
	keywords [][]string
}

func newMatcher(keys []string, keywords [][]string) *matcher {
	m := &matcher{keys: keys, keywords: make([][]string, len(keywords))}
	for i, kw := range keywords {
		m.keywords[i] = lowerAll(kw)
	}
	return m
}

// match returns the matched keys in taxonomy order and, for each, the
// tokens that matched.
func (m *matcher) match(tokens []string) (keys []string, terms map[string][]string) {
	for i, kws := range m.keywords {
		var hit []string
		for _, t := range tokens {
			for _, kw := range kws {
				if kw != "" && (t == kw || strings.Contains(t, kw) || (isHanWord(kw) && strings.Contains(kw, t) && len([]rune(t)) > 1)) {
					hit = appendUnique(hit, t)
					break
				}
			}
		}
		if len(hit) > 0 {
			keys = append(keys, m.keys[i])
			if terms == nil {
				terms = map[string][]string{}
			}
			terms[m.keys[i]] = hit
		}
	}
	return keys, terms
}

func isHanWord(s string) bool {
	for _, r := range s {
		if !unicode.Is(unicode.Han, r) {
			return false
		}
	}
	return s != ""
}

func appendUnique(l []string, s string) []string {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}

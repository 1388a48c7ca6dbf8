package console_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/access"
)

var (
	// An object literal without braces inside, as the locale files write
	// their maps of words.
	objectRe = regexp.MustCompile(`\{[^{}]*\}`)
	// A key and its word: public: '公开'.
	entryRe = regexp.MustCompile(`(?m)\b([a-z_]+)\s*:\s*'([^']*)'`)
)

// localeMaps finds the maps of words in a language's locale files that
// hold words for the keys want names: each object literal with at least
// one of them among its keys, by file and line.
func localeMaps(t *testing.T, lang string, want ...string) map[string]map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("src", "locales", lang, "*.ts"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no locale files for %s: %v", lang, err)
	}
	out := map[string]map[string]string{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range objectRe.FindAllStringIndex(string(src), -1) {
			words := map[string]string{}
			for _, m := range entryRe.FindAllStringSubmatch(string(src[at[0]:at[1]]), -1) {
				words[m[1]] = m[2]
			}
			if !slices.ContainsFunc(want, func(k string) bool { return words[k] != "" }) {
				continue
			}
			line := 1 + strings.Count(string(src[:at[0]]), "\n")
			out[fmt.Sprintf("%s:%d", filepath.Base(f), line)] = words
		}
	}
	return out
}

// levelMaps finds the maps of classification level words.
func levelMaps(t *testing.T, lang string) map[string]map[string]string {
	return localeMaps(t, lang, "confidential", "secret")
}

// Every page of the console names the classification levels (issue 15)
// with the same words: the keys page, the tags page's classifications,
// a delivery's recorded clearance, the audit trail and the signed-in
// clearance in the shell read their own maps, and in Chinese those are the
// API's level_zh (公开, 内部, 秘密, 机密). A page that says 机密 for
// confidential, or 绝密 for secret, or writes a level in another case,
// fails here.
func TestLevelWordsAgree(t *testing.T) {
	levels := slices.Sorted(maps.Keys(access.LevelNamesZh))
	for _, lang := range []string{"zh-CN", "en"} {
		found := levelMaps(t, lang)
		if len(found) < 4 {
			t.Fatalf("%s: %d maps of level words found, want common, keys, tags and segments at least: %v", lang, len(found), found)
		}
		var want map[string]string
		var from string
		if lang == "zh-CN" {
			want, from = access.LevelNamesZh, "the API's level_zh"
		}
		for _, where := range slices.Sorted(maps.Keys(found)) {
			words := found[where]
			for _, l := range levels {
				if words[l] == "" {
					t.Errorf("%s %s: no word for %s: %v", lang, where, l, words)
				}
			}
			if want == nil {
				want, from = words, where
				continue
			}
			for _, l := range levels {
				if words[l] != want[l] {
					t.Errorf("%s %s says %s is %q; %s says %q", lang, where, l, words[l], from, want[l])
				}
			}
		}
	}
}

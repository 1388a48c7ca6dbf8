package console_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/access"
)

// roleMaps finds the maps of access role words in a language's locale
// files: each object literal with analyst or auditor among its keys.
func roleMaps(t *testing.T, lang string) map[string]map[string]string {
	return localeMaps(t, lang, access.RoleAnalyst, access.RoleAuditor)
}

// rawRoleRe finds a template or message argument that shows a role as the
// API names it ({{ row.role }}, role: session.principal.role) instead of
// through roleWord.
var rawRoleRe = regexp.MustCompile(`\{\{\s*[\w.?]*\.role\s*(\}\}|\|\|)|role:\s*[\w.?]+\.role\b`)

// The console names the access roles (access.Roles and custom) in words
// from one table, common.roles, read through roleWord (src/roles.ts): the
// shell's signed-in user, the keys page, the audit trail and a delivery's
// record. Each language names every role the API knows, Chinese in
// Chinese, and no page shows a role raw.
func TestRoleWordsAgree(t *testing.T) {
	roles := append(slices.Clone(access.Roles), access.RoleCustom)
	for _, lang := range []string{"zh-CN", "en"} {
		found := roleMaps(t, lang)
		var common string
		for where := range found {
			if strings.HasPrefix(where, "common.ts:") {
				common = where
			}
		}
		if common == "" {
			t.Errorf("%s: common.ts has no table of role words (common.roles); found %v", lang, found)
			continue
		}
		want := found[common]
		for _, r := range roles {
			w := want[r]
			switch {
			case w == "":
				t.Errorf("%s %s: no word for the role %s: %v", lang, common, r, want)
			case lang == "zh-CN" && !regexp.MustCompile(`\p{Han}`).MatchString(w):
				t.Errorf("%s %s: the role %s is %q, not in Chinese", lang, common, r, w)
			}
		}
		for _, where := range slices.Sorted(maps.Keys(found)) {
			for _, r := range roles {
				if w := found[where][r]; w != "" && w != want[r] {
					t.Errorf("%s %s says %s is %q; %s says %q", lang, where, r, w, common, want[r])
				}
			}
		}
	}
	err := filepath.WalkDir("src", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".vue") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, at := range rawRoleRe.FindAllIndex(src, -1) {
			if m := string(src[at[0]:at[1]]); strings.Contains(m, "role.role") || strings.Contains(m, "role?.role") {
				continue // a person's buying role on an account (EB, UB, TB, Coach: issue 16), not an access role
			}
			line := 1 + strings.Count(string(src[:at[0]]), "\n")
			t.Errorf("%s:%d shows a role raw (%s): use roleWord", p, line, src[at[0]:at[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

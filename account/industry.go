package account

import (
	"bufio"
	_ "embed"
	"strings"
	"sync"

	"github.com/portrait-cdp/portrait"
)

// gbt4754 is the national industry classification GB/T 4754-2017 (国民经济
// 行业分类) down to its groups (中类): 20 sections (门类, A-T), 97 divisions
// (大类, two digits) and 473 groups (三位数字). Classes (小类, four digits) are
// accepted and read as their group: three levels are what the ICP and the
// console compare on, and a 1,380-row table would be noise there.
//
//go:embed gbt4754.tsv
var gbt4754 string

// Industry is one entry of GB/T 4754.
type Industry struct {
	Code    string `json:"code"`    // "I", "65" or "651"
	Section string `json:"section"` // "I"
	Level   string `json:"level"`   // section, division or group
	Name    string `json:"name"`
}

// Industry levels.
const (
	IndustrySection  = "section"
	IndustryDivision = "division"
	IndustryGroup    = "group"
)

var industries = sync.OnceValue(func() map[string]Industry {
	m := map[string]Industry{}
	sc := bufio.NewScanner(strings.NewReader(gbt4754))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		lvl := IndustryGroup
		switch len(f[0]) {
		case 1:
			lvl = IndustrySection
		case 2:
			lvl = IndustryDivision
		}
		m[f[0]] = Industry{Code: f[0], Section: f[1], Level: lvl, Name: f[2]}
	}
	return m
})

// Industries lists the classification: sections, divisions and groups.
func Industries() []Industry {
	m := industries()
	out := make([]Industry, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// LookupIndustry finds a code written the ways CRMs write it: "I65",
// "65", "651", "6511" (a class, read as its group 651), "i 65", "C39". A
// section letter before the digits must be the digits' section: "J65" is
// a typo, not software.
func LookupIndustry(raw string) (Industry, error) {
	s := strings.ToUpper(strings.Join(strings.Fields(raw), ""))
	s = strings.TrimPrefix(s, "GB/T4754:")
	if s == "" {
		return Industry{}, portrait.Errorf(portrait.EINVALID, "industry code is empty")
	}
	m := industries()
	letter := ""
	if s[0] >= 'A' && s[0] <= 'Z' {
		letter, s = s[:1], s[1:]
		if s == "" {
			if in, ok := m[letter]; ok {
				return in, nil
			}
			return Industry{}, portrait.Errorf(portrait.EINVALID, "industry section %q does not exist in GB/T 4754 (A-T)", letter)
		}
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return Industry{}, portrait.Errorf(portrait.EINVALID, "industry code %q is not a GB/T 4754 code (a section letter A-T and 2-4 digits)", raw)
		}
	}
	if len(s) == 4 {
		s = s[:3]
	}
	in, ok := m[s]
	if !ok || (len(s) != 2 && len(s) != 3) {
		return Industry{}, portrait.Errorf(portrait.EINVALID, "industry code %q is not in GB/T 4754-2017", raw)
	}
	if letter != "" && letter != in.Section {
		return Industry{}, portrait.Errorf(portrait.EINVALID, "industry code %q: %s belongs to section %s, not %s", raw, s, in.Section, letter)
	}
	return in, nil
}

// IndustryPath is the section, division and group of a code (the ones it
// has), broadest first.
func IndustryPath(in Industry) []Industry {
	m := industries()
	out := []Industry{m[in.Section]}
	if len(in.Code) >= 2 && in.Level != IndustrySection {
		out = append(out, m[in.Code[:2]])
	}
	if len(in.Code) == 3 {
		out = append(out, in)
	}
	return out
}

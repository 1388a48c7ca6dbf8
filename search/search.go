// Package search finds profiles as a person types: by name prefix in
// Chinese characters or pinyin (zhangsan, zhang san, zs finds 张三), by phone
// in any format, by email in any case, by any identifier value.
//
// The index lives in memory and follows the processor's changes, like the
// segment index: a lookup must answer in a few milliseconds while the user
// types, and it must see a profile the moment the processor writes it. A
// table in the store would put a write on the processor's path for every
// changed profile; here a change costs a few map operations.
package search

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
)

// Fields a hit can match on, best first.
const (
	FieldName     = "name"
	FieldPinyin   = "name_pinyin"
	FieldPhone    = "phone"
	FieldEmail    = "email"
	FieldInitials = "name_initials"
	// any other identifier matches on its type (user_id, crm_id, ...)
)

func rank(field string) int {
	switch field {
	case FieldName:
		return 0
	case FieldPinyin:
		return 1
	case FieldPhone:
		return 2
	case FieldEmail:
		return 3
	case FieldInitials:
		return 5
	}
	return 4
}

// Hit is a profile found, with what matched.
type Hit struct {
	ProfileID string
	Field     string // what matched: name, name_pinyin, phone, email, name_initials or an identifier type
	Value     string // the value that matched, as the profile holds it
	Exact     bool   // the whole value, not a prefix of it
}

// posting is one profile holding a key.
type posting struct {
	field, value string
}

// maxCandidates bounds the postings one query looks at: a one-letter
// query over a million names must not walk them all. Exact matches come
// first in the key order, so they are never the ones cut.
const maxCandidates = 5000

// Index maps search keys (lower-cased, spaces removed) to the profiles
// holding them. Keys are kept sorted for prefix ranges in two slices: a
// large base, and the keys new since the last compaction, small enough to
// insert into in place; past freshMax they are merged into the base in one
// linear pass. A key no profile holds any more stays in the slices until
// then, and queries skip it.
type Index struct {
	// Normalize standardises an identifier value (phones to E.164): the
	// same function the identity graph keys on, so any format finds it.
	Normalize func(typ, value string) (string, bool)

	mu    sync.RWMutex
	post  map[string]map[string]posting // key → profile → what it is
	base  []string                      // sorted keys (some may have no postings left)
	fresh []string                      // sorted keys not in base yet
	byID  map[string]profileKeys        // what each profile put in
}

type profileKeys struct {
	sig  string // name and identifiers: unchanged means nothing to do
	keys []string
}

// NewIndex returns an empty index.
func NewIndex(normalize func(typ, value string) (string, bool)) *Index {
	return &Index{Normalize: normalize, post: map[string]map[string]posting{}, byID: map[string]profileKeys{}}
}

// Len is the number of profiles indexed.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.byID)
}

// OnChange is the processor hook: changed profiles are re-indexed, deleted
// ones (merged away, erased) dropped. It reads only strings from the
// profiles, which the processor may reuse afterwards.
func (ix *Index) OnChange(changed []*portrait.Profile, deleted []string, _ map[string][]*portrait.Event) {
	for _, p := range changed {
		ix.Upsert(p)
	}
	for _, id := range deleted {
		ix.Remove(id)
	}
}

// NormKey is how keys and queries are compared: lower case, without the
// spaces, dashes, parentheses and name dots (·) people type between parts.
func NormKey(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		if unicode.IsSpace(r) || r == '-' || r == '(' || r == ')' || r == '·' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

type keyed struct {
	key string
	p   posting
}

// sigOf is what a profile's keys are made of, its name and identifiers:
// a profile whose signature is unchanged needs no work.
func sigOf(p *portrait.Profile) (name, sig string) {
	name, _ = p.Traits["name"].Value.(string)
	name = strings.TrimSpace(name)
	n := len(name)
	for _, id := range p.Identifiers {
		n += 2 + len(id.Type) + len(id.Value)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(name)
	for _, id := range p.Identifiers {
		b.WriteByte(0)
		b.WriteString(id.Type)
		b.WriteByte(1)
		b.WriteString(id.Value)
	}
	return name, b.String()
}

// keysOf lists what a profile can be found by.
func (ix *Index) keysOf(p *portrait.Profile, name string) []keyed {
	var out []keyed
	add := func(key, field, value string) {
		if key != "" {
			out = append(out, keyed{key, posting{field, value}})
		}
	}
	if name != "" {
		add(NormKey(name), FieldName, name)
		if strings.ContainsFunc(name, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
			// the cleaner's pinyin ("zhang san"): typed with or without
			// spaces, or as initials
			py := clean.Pinyin(name)
			add(NormKey(py), FieldPinyin, py)
			var ini strings.Builder
			for _, syl := range strings.Fields(py) {
				ini.WriteByte(syl[0])
			}
			add(ini.String(), FieldInitials, py)
		} else {
			for _, w := range strings.Fields(name) { // "smith" finds Anna Smith
				add(NormKey(w), FieldName, name)
			}
		}
	}
	for _, id := range p.Identifiers {
		v := id.Value
		switch id.Type {
		case portrait.IDPhone:
			add(NormKey(v), FieldPhone, v)
			if n, ok := strings.CutPrefix(v, "+86"); ok { // typed without the country code
				add(n, FieldPhone, v)
			}
		case portrait.IDEmail:
			add(NormKey(v), FieldEmail, v)
		default:
			add(NormKey(v), id.Type, v)
		}
	}
	return out
}

// Upsert (re)indexes a profile.
func (ix *Index) Upsert(p *portrait.Profile) {
	// Most changes (events, computed traits) leave the name and identifiers
	// as they were: checked before the keys (pinyin, normalised forms) are
	// made, which on the processor's goroutine cost more than the index
	// itself (issue 12 §5).
	name, sig := sigOf(p)
	ix.mu.RLock()
	old, had := ix.byID[p.ID]
	ix.mu.RUnlock()
	if had && old.sig == sig {
		return
	}
	ks := ix.keysOf(p, name)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old, had = ix.byID[p.ID]
	if had && old.sig == sig {
		return
	}
	ix.drop(p.ID, old.keys)
	keys := make([]string, 0, len(ks))
	for _, k := range ks {
		m := ix.post[k.key]
		if m == nil {
			m = map[string]posting{}
			ix.post[k.key] = m
			ix.addFresh(k.key)
		}
		if prev, ok := m[p.ID]; ok && rank(prev.field) <= rank(k.p.field) {
			continue // one key, two fields (a name that is also an id): keep the better
		}
		if _, ok := m[p.ID]; !ok {
			keys = append(keys, k.key)
		}
		m[p.ID] = k.p
	}
	ix.byID[p.ID] = profileKeys{sig: sig, keys: keys}
	if len(ix.fresh) > freshMax {
		ix.compact()
	}
}

// Remove drops a profile.
func (ix *Index) Remove(id string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.byID[id]; ok {
		ix.drop(id, old.keys)
		delete(ix.byID, id)
	}
}

func (ix *Index) drop(id string, keys []string) {
	for _, k := range keys {
		if m := ix.post[k]; m != nil {
			delete(m, id)
			if len(m) == 0 {
				delete(ix.post, k) // the slices keep it until compaction; queries skip it
			}
		}
	}
}

// freshMax bounds the keys inserted in place: inserting moves up to this
// many strings, and each compaction costs one pass over the base.
const freshMax = 8192

// addFresh inserts a key in the sorted fresh slice (unless a slice holds
// it already: a key dropped and added again).
func (ix *Index) addFresh(k string) {
	if i, ok := slices.BinarySearch(ix.base, k); ok && i < len(ix.base) {
		return
	}
	i, ok := slices.BinarySearch(ix.fresh, k)
	if !ok {
		ix.fresh = slices.Insert(ix.fresh, i, k)
	}
}

// compact merges the fresh keys into the base, both sorted, in one pass,
// and forgets keys no profile holds any more.
func (ix *Index) compact() {
	merged := make([]string, 0, len(ix.base)+len(ix.fresh))
	i, j := 0, 0
	for i < len(ix.base) || j < len(ix.fresh) {
		var k string
		if j >= len(ix.fresh) || (i < len(ix.base) && ix.base[i] < ix.fresh[j]) {
			k, i = ix.base[i], i+1
		} else {
			k, j = ix.fresh[j], j+1
		}
		if ix.post[k] != nil && (len(merged) == 0 || merged[len(merged)-1] != k) {
			merged = append(merged, k)
		}
	}
	ix.base, ix.fresh = merged, nil
}

// Search returns up to limit profiles matching q: exact matches before
// prefixes, names before pinyin, phones, emails, other identifiers and
// initials, shorter values before longer, each profile once.
func (ix *Index) Search(q string, limit int) []Hit {
	if limit <= 0 {
		return nil
	}
	type cand struct {
		Hit
		keyLen int
	}
	best := map[string]cand{}
	seen := 0
	consider := func(key string, exact bool) {
		for id, p := range ix.post[key] {
			seen++
			c := cand{Hit{ProfileID: id, Field: p.field, Value: p.value, Exact: exact}, len(key)}
			if b, ok := best[id]; ok && !better(c.Hit, c.keyLen, b.Hit, b.keyLen) {
				continue
			}
			best[id] = c
		}
	}
	prefixes := []string{NormKey(q)}
	// a whole phone number or email in any format: its standard form
	if ix.Normalize != nil {
		for _, typ := range []string{portrait.IDPhone, portrait.IDEmail} {
			if v, ok := ix.Normalize(typ, q); ok && v != "" {
				prefixes = append(prefixes, NormKey(v))
			}
		}
	}
	if d := digitsOnly(q); len(d) >= 3 && d != prefixes[0] {
		prefixes = append(prefixes, d) // "138-0013" as typed so far
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, pre := range prefixes {
		if pre == "" {
			continue
		}
		consider(pre, true)
		for _, keys := range [][]string{ix.base, ix.fresh} {
			i := sort.SearchStrings(keys, pre)
			for ; i < len(keys) && strings.HasPrefix(keys[i], pre) && seen < maxCandidates; i++ {
				if keys[i] != pre {
					consider(keys[i], false)
				}
			}
		}
	}
	out := make([]cand, 0, len(best))
	for _, c := range best {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b cand) int {
		if better(a.Hit, a.keyLen, b.Hit, b.keyLen) {
			return -1
		}
		if better(b.Hit, b.keyLen, a.Hit, a.keyLen) {
			return 1
		}
		return cmp.Compare(a.ProfileID, b.ProfileID)
	})
	hits := make([]Hit, 0, min(limit, len(out)))
	for _, c := range out[:min(limit, len(out))] {
		hits = append(hits, c.Hit)
	}
	return hits
}

func better(a Hit, alen int, b Hit, blen int) bool {
	if a.Exact != b.Exact {
		return a.Exact
	}
	if ra, rb := rank(a.Field), rank(b.Field); ra != rb {
		return ra < rb
	}
	return alen < blen
}

// digitsOnly is q's digits when q looks like a phone being typed (digits,
// spaces, +, -, parentheses), else "".
func digitsOnly(q string) string {
	var b strings.Builder
	for _, r := range q {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '+' || r == '-' || r == '(' || r == ')':
		default:
			return ""
		}
	}
	return b.String()
}

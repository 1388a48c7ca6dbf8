package linkage

import (
	"slices"
	"sort"
	"strings"
)

// Blocking. Comparing all n²/2 pairs does not scale, and no single blocking
// key keeps recall high when any field may carry a typo. So several passes are
// unioned:
//
//   - conjunction passes: every record gets a short signature per blockable
//     field (Soundex of a name or the first word of a text, the exact value of
//     a date, code or identifier). For every pair of fields a key made of both
//     signatures puts records into blocks. A duplicate is found when any two
//     of its fields survived intact, which is what makes recall high: a pair
//     must be damaged in nearly every field to escape all passes.
//   - sorted-neighbourhood passes: records sorted by an identifier, a date and
//     the full name, each compared with the next few in order, which catches
//     a typo near the end of a value that changes every exact signature.
//
// Blocks larger than MaxBlockSize are skipped: a key shared by that many
// records carries little evidence and would dominate the cost; the other
// passes still cover those records.

type blocker struct {
	fields  []Field
	vals    [][]value // [record][field]
	maxSize int
	window  int
}

// signature of one prepared value for blocking, "" when missing.
func signature(k Kind, v *value) string {
	if v.s == "" {
		return ""
	}
	switch k {
	case KindName, KindText, KindAddress:
		if k == KindName && v.han {
			return v.pykey // Soundex cannot encode Chinese; pinyin can
		}
		if len(v.tokens) == 0 {
			return ""
		}
		// The first word is the most stable part of a name or place; an
		// address's house number is its own field or ignored by Soundex.
		for _, t := range v.tokens {
			w := string(t)
			if w[0] >= '0' && w[0] <= '9' && k == KindAddress {
				continue
			}
			return soundex(w)
		}
		return ""
	case KindDate, KindCode, KindID, KindCategory:
		return v.s
	}
	return ""
}

func (b *blocker) candidates() map[uint64]struct{} {
	n := len(b.vals)
	pairs := make(map[uint64]struct{})
	add := func(i, j int) {
		if i == j {
			return
		}
		if i > j {
			i, j = j, i
		}
		pairs[uint64(i)<<32|uint64(j)] = struct{}{}
	}

	// Signatures per record. Name parts also contribute one combined
	// signature, the sorted set of their Soundex codes, so that a record
	// whose given name and surname were swapped still blocks with the
	// original.
	var sigFields []int
	var nameFields []int
	for f, fd := range b.fields {
		switch fd.Kind {
		case KindIgnore:
		default:
			sigFields = append(sigFields, f)
		}
		if fd.Kind == KindName {
			nameFields = append(nameFields, f)
		}
	}
	nsig := len(sigFields)
	if len(nameFields) > 1 {
		nsig++
	}
	// With Chinese names present, one more signature: the sorted pinyin
	// words of all name fields, which 朱秀英, Zhu Xiuying and Xiuying Zhu
	// share.
	pinyinSig := -1
	for i := 0; i < n && pinyinSig < 0; i++ {
		for _, f := range nameFields {
			if b.vals[i][f].han {
				pinyinSig = nsig
				nsig++
				break
			}
		}
	}
	nameKey := func(i int) string {
		var words []string
		for _, f := range nameFields {
			if k := b.vals[i][f].pykey; k != "" {
				words = append(words, strings.Fields(k)...)
			}
		}
		sort.Strings(words)
		return strings.Join(words, " ")
	}
	sigs := make([][]string, n)
	for i := range n {
		s := make([]string, nsig)
		for k, f := range sigFields {
			s[k] = signature(b.fields[f].Kind, &b.vals[i][f])
		}
		if len(nameFields) > 1 {
			var parts []string
			for _, f := range nameFields {
				if p := signature(KindName, &b.vals[i][f]); p != "" {
					parts = append(parts, p)
				}
			}
			if len(parts) == len(nameFields) {
				sort.Strings(parts)
				s[len(sigFields)] = strings.Join(parts, "|")
			}
		}
		if pinyinSig >= 0 {
			s[pinyinSig] = nameKey(i)
		}
		sigs[i] = s
	}

	blocks := make(map[string][]int32)
	flush := func() {
		for _, members := range blocks {
			if len(members) < 2 || len(members) > b.maxSize {
				continue
			}
			for x := 0; x < len(members); x++ {
				for y := x + 1; y < len(members); y++ {
					add(int(members[x]), int(members[y]))
				}
			}
		}
		clear(blocks)
	}
	var key strings.Builder
	for p := 0; p < nsig; p++ {
		for q := p + 1; q < nsig; q++ {
			for i := range n {
				sp, sq := sigs[i][p], sigs[i][q]
				if sp == "" || sq == "" {
					continue
				}
				key.Reset()
				key.WriteString(sp)
				key.WriteByte(0)
				key.WriteString(sq)
				blocks[key.String()] = append(blocks[key.String()], int32(i))
			}
			flush()
		}
	}

	// Sorted neighbourhood on the values that identify best.
	for f, fd := range b.fields {
		if fd.Kind != KindID && fd.Kind != KindDate {
			continue
		}
		b.sortedNeighbourhood(func(i int) string { return b.vals[i][f].s }, add)
	}
	if len(nameFields) > 0 {
		full := func(order []int) func(i int) string {
			return func(i int) string {
				var sb strings.Builder
				for _, f := range order {
					sb.WriteString(b.vals[i][f].s)
					sb.WriteByte(' ')
				}
				return sb.String()
			}
		}
		b.sortedNeighbourhood(full(nameFields), add)
		if pinyinSig >= 0 {
			b.sortedNeighbourhood(nameKey, add)
		}
		rev := slices.Clone(nameFields)
		slices.Reverse(rev)
		if len(rev) > 1 {
			b.sortedNeighbourhood(full(rev), add)
		}
	}
	return pairs
}

func (b *blocker) sortedNeighbourhood(key func(int) string, add func(i, j int)) {
	type kv struct {
		k string
		i int
	}
	var items []kv
	for i := range b.vals {
		if k := key(i); strings.TrimSpace(k) != "" {
			items = append(items, kv{k, i})
		}
	}
	sort.Slice(items, func(x, y int) bool {
		if items[x].k != items[y].k {
			return items[x].k < items[y].k
		}
		return items[x].i < items[y].i
	})
	for x := range items {
		for y := x + 1; y < len(items) && y <= x+b.window; y++ {
			add(items[x].i, items[y].i)
		}
	}
}

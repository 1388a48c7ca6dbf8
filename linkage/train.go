package linkage

import (
	"math"
	"slices"
	"sort"
)

// Training, as Splink does it. EM over all candidate pairs works while
// duplicates are a good share of them (FEBRL), but on a large population of
// common names the candidates are mostly look-alikes (王芳 and 王芳 in the
// same city) and EM's "match" class becomes them. So the model is learned
// in sessions instead:
//
//   - u, what distinct people look like, is measured on random record pairs
//     (nearly all of which are distinct people) and held fixed;
//   - each session takes the pairs that agree exactly on one field (the same
//     phone, the same birth date, the same name) and fits by EM only m and
//     the share of matches among them, leaving that field out: among pairs
//     with one phone most are the same person, and the other fields say how
//     duplicates differ;
//   - each field's m is the mean over the sessions that did not select on
//     it; the prior is the number of duplicate pairs a session implies
//     (its matches over the chance that a duplicate agrees on the selecting
//     field), over all record pairs.
//
// Posteriors are then over all record pairs, with every field's evidence
// (the blocking fields' too), which is what makes them comparable between
// data sets and honest about look-alikes.

// trainBlock bounds the records sharing one value in a session: a value
// shared by more (a default birth date, the commonest names) says little and
// would flood the session.
const trainBlock = 50

// maxSessionPairs bounds the pairs of one session.
const maxSessionPairs = 300_000

type session struct {
	field int
	pairs float64
	m     [][]float64
	prior float64
	seen  []float64 // pairs in which each field was observed
}

// sessionKey is the value a session selects on for a field, "" to skip.
func sessionKey(k Kind, v *value) string {
	switch k {
	case KindID, KindDate:
		return v.s
	case KindName:
		if v.pykey != "" {
			return v.pykey
		}
		return v.s
	}
	return ""
}

func trainModel(c *comparer, n int, uRand [][]float64, obsRand []float64, maxIter int) *Model {
	fields := c.fields
	nf := len(fields)
	var sessions []*session
	for f, fd := range fields {
		if fd.Kind != KindID && fd.Kind != KindDate && fd.Kind != KindName {
			continue
		}
		if s := runSession(c, n, f, uRand, maxIter); s != nil {
			sessions = append(sessions, s)
		}
	}
	m := &Model{Fields: fields, M: make([][]float64, nf), U: make([][]float64, nf), Version: modelVersion}
	for f := range nf {
		m.U[f] = slices.Clone(uRand[f])
		sum := make([]float64, c.nlevels[f])
		k := 0
		for _, s := range sessions {
			if s.field == f || s.seen[f] < 20 {
				continue
			}
			for l, v := range s.m[f] {
				sum[l] += v
			}
			k++
		}
		if k == 0 {
			m.M[f] = initialM(c.nlevels[f])
			continue
		}
		m.M[f] = make([]float64, c.nlevels[f])
		normalizeInto(m.M[f], sum)
	}
	// Prior: duplicate pairs implied by each session, median over sessions.
	var totals []float64
	for _, s := range sessions {
		agree := m.M[s.field][0] * obsRand[s.field]
		if agree <= 0 || s.pairs == 0 {
			continue
		}
		totals = append(totals, s.prior*s.pairs/agree)
	}
	all := math.Max(float64(n)*float64(n-1)/2, 1)
	// One duplicate pair when nothing else is known, but never even odds:
	// with two records that would make any candidate a match.
	m.Prior = math.Min(1/all, 0.01)
	if len(totals) > 0 {
		sort.Float64s(totals)
		m.Prior = math.Min(math.Max(totals[len(totals)/2]/all, 1e-12), 0.5)
	}
	return m
}

func runSession(c *comparer, n, field int, uRand [][]float64, maxIter int) *session {
	kind := c.fields[field].Kind
	blocks := map[string][]int32{}
	for i := range n {
		if k := sessionKey(kind, &c.vals[i][field]); k != "" {
			blocks[k] = append(blocks[k], int32(i))
		}
	}
	keys := make([]string, 0, len(blocks))
	for k, b := range blocks {
		if len(b) >= 2 && len(b) <= trainBlock {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys) // reproducible
	nf := len(c.fields)
	idx := map[string]int{}
	var pats []pattern
	buf := make([]int8, nf)
	key := make([]byte, nf)
	pairs := 0
	for _, k := range keys {
		b := blocks[k]
		for x := 0; x < len(b) && pairs < maxSessionPairs; x++ {
			for y := x + 1; y < len(b) && pairs < maxSessionPairs; y++ {
				c.compare(int(b[x]), int(b[y]), buf)
				buf[field] = -1 // the selecting field teaches nothing here
				for f, l := range buf {
					key[f] = byte(l)
				}
				if j, ok := idx[string(key)]; ok {
					pats[j].count++
				} else {
					idx[string(key)] = len(pats)
					pats = append(pats, pattern{levels: slices.Clone(buf), count: 1})
				}
				pairs++
			}
		}
	}
	if pairs < 10 {
		return nil
	}
	s := &session{field: field, pairs: float64(pairs), seen: make([]float64, nf)}
	for _, p := range pats {
		for f, l := range p.levels {
			if l >= 0 {
				s.seen[f] += p.count
			}
		}
	}
	s.m, s.prior = emFixedU(c.nlevels, pats, uRand, maxIter, 1e-9)
	return s
}

// emFixedU fits m and the share of matches by EM with u held fixed.
func emFixedU(nlevels []int, pats []pattern, u [][]float64, maxIter int, tol float64) ([][]float64, float64) {
	nf := len(nlevels)
	m := make([][]float64, nf)
	num := make([][]float64, nf)
	for f := range nf {
		m[f] = initialM(nlevels[f])
		num[f] = make([]float64, nlevels[f])
	}
	prior, total := 0.5, 0.0
	for _, p := range pats {
		total += p.count
	}
	prevLL := math.Inf(-1)
	for range maxIter {
		for f := range nf {
			clear(num[f])
		}
		gSum, ll := 0.0, 0.0
		for _, p := range pats {
			lm, lu := math.Log(prior), math.Log(1-prior)
			for f, l := range p.levels {
				if l >= 0 {
					lm += math.Log(m[f][l])
					lu += math.Log(u[f][l])
				}
			}
			mx := math.Max(lm, lu)
			den := mx + math.Log(math.Exp(lm-mx)+math.Exp(lu-mx))
			g := math.Exp(lm - den)
			ll += p.count * den
			gSum += p.count * g
			for f, l := range p.levels {
				if l >= 0 {
					num[f][l] += p.count * g
				}
			}
		}
		prior = clamp(gSum / total)
		for f := range nf {
			normalizeInto(m[f], num[f])
		}
		if math.Abs(ll-prevLL) < tol*math.Abs(ll) {
			break
		}
		prevLL = ll
	}
	return m, prior
}

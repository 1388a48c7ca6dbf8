package linkage

import "math"

// Term-frequency adjustment (as Splink does it). Agreeing on 王芳 is weak
// evidence, because thousands of customers are called 王芳; agreeing on a
// rare name is strong evidence. The model's m and u describe a field's
// levels on average; for exact agreement on a value v the Bayes factor is
// rescaled by how common v is compared with the values agreeing pairs
// usually share:
//
//	adjustment(v) = log2( E[tf] / tf(v) )
//
// where tf(v) is the share of records holding v and E[tf] is the mean of tf
// over agreeing record pairs (a value held by c records makes c(c−1)/2 such
// pairs). The adjustment is zero on average over agreeing pairs, so the
// fitted model keeps its scale; it only moves weight from common values to
// rare ones. Names are adjusted for the exact characters and, when two
// spellings share their pinyin key (the "near" level), for the key.

// maxTFAdjust bounds the adjustment in bits: one value held by half the
// records must not wipe out the evidence of every other field.
const maxTFAdjust = 10

type tfTable struct {
	adj map[string]float64
}

func newTFTable(vals []string) *tfTable {
	count := map[string]int{}
	n := 0
	for _, v := range vals {
		if v != "" {
			count[v]++
			n++
		}
	}
	t := &tfTable{adj: map[string]float64{}}
	var pairs, weighted float64
	for _, c := range count {
		if c > 1 {
			p := float64(c) * float64(c-1) / 2
			pairs += p
			weighted += p * float64(c) / float64(n)
		}
	}
	if pairs == 0 {
		return t // no two records agree: nothing to rescale
	}
	mean := weighted / pairs
	for v, c := range count {
		if c > 1 {
			a := math.Log2(mean / (float64(c) / float64(n)))
			t.adj[v] = math.Max(-maxTFAdjust, math.Min(maxTFAdjust, a))
		}
	}
	return t
}

// tfKinds are the kinds whose values are specific enough for a frequency to
// mean something; a category (gender, province) is left to its m and u.
func tfKind(k Kind) bool {
	return k == KindName || k == KindText || k == KindAddress || k == KindDate || k == KindCode || k == KindID
}

// tfAdjuster holds, per record and field, the adjustment of the record's
// value at exact agreement and (names) at pinyin agreement.
type tfAdjuster struct {
	exact [][]float64
	py    [][]float64
}

func newTFAdjuster(fields []Field, vals [][]value) *tfAdjuster {
	n, nf := len(vals), len(fields)
	a := &tfAdjuster{exact: make([][]float64, n), py: make([][]float64, n)}
	for i := range n {
		a.exact[i] = make([]float64, nf)
		a.py[i] = make([]float64, nf)
	}
	col := make([]string, n)
	for f, fd := range fields {
		if !tfKind(fd.Kind) {
			continue
		}
		for i := range n {
			col[i] = vals[i][f].s
		}
		t := newTFTable(col)
		for i := range n {
			a.exact[i][f] = t.adj[col[i]]
		}
		if fd.Kind == KindName {
			for i := range n {
				col[i] = vals[i][f].pykey
			}
			t := newTFTable(col)
			for i := range n {
				a.py[i][f] = t.adj[col[i]]
			}
		}
	}
	return a
}

// adjust returns the term-frequency adjustment, in bits, of a compared pair.
func (a *tfAdjuster) adjust(fields []Field, vals [][]value, x, y int, levels []int8) float64 {
	w := 0.0
	for f, l := range levels {
		switch {
		case l == 0:
			w += a.exact[x][f]
		case l == 1 && fields[f].Kind == KindName && vals[x][f].pykey == vals[y][f].pykey:
			w += a.py[x][f]
		}
	}
	return w
}

package linkage

import (
	"math"
)

// Model holds the Fellegi-Sunter parameters of every field: M[f][l] is the
// probability that a true match shows agreement level l on field f, U[f][l]
// the same for a non-match, and Prior the share of matches among the
// candidate pairs. They are estimated with EM from the comparison patterns of
// the candidate pairs alone, so no labelled pairs are needed.
type Model struct {
	Fields     []Field     `json:"fields"`
	M          [][]float64 `json:"m"`
	U          [][]float64 `json:"u"`
	Prior      float64     `json:"prior"`
	Iterations int         `json:"iterations"`
}

// Weight returns the match weight of one comparison vector: the sum over
// non-missing fields of log2(m/u). Missing fields (level < 0) are neutral.
func (m *Model) Weight(levels []int8) float64 {
	w := 0.0
	for f, l := range levels {
		if l < 0 {
			continue
		}
		w += math.Log2(m.M[f][l] / m.U[f][l])
	}
	return w
}

// Probability returns the posterior probability that a pair with the given
// comparison vector is a match.
func (m *Model) Probability(levels []int8) float64 {
	// Work in log space: with many fields the products underflow.
	lw := m.Weight(levels)*math.Ln2 + math.Log(m.Prior/(1-m.Prior))
	return 1 / (1 + math.Exp(-lw))
}

// pattern is one distinct comparison vector with the number of candidate
// pairs that showed it. EM runs over distinct patterns, which are few
// (hundreds) however many pairs there are.
type pattern struct {
	levels []int8
	count  float64
}

// minProb keeps every estimated probability away from 0 and 1: a level never
// seen among the matches in this sample is unlikely, not impossible, and a
// zero would make a single field veto a pair.
const minProb = 1e-4

func fitEM(fields []Field, nlevels []int, pats []pattern, uInit [][]float64, maxIter int, tol float64) *Model {
	nf := len(fields)
	m := &Model{Fields: fields, M: make([][]float64, nf), U: make([][]float64, nf), Prior: 0.1}
	for f := range nf {
		L := nlevels[f]
		m.M[f] = make([]float64, L)
		m.U[f] = make([]float64, L)
		// Matches mostly agree: most mass on level 0, decreasing geometrically
		// towards disagreement.
		rest := 0.1
		m.M[f][0] = 0.9
		for l := 1; l < L; l++ {
			share := rest / 2
			if l == L-1 {
				share = rest
			}
			m.M[f][l] = share
			rest -= share
		}
		copy(m.U[f], uInit[f])
	}

	total := 0.0
	for _, p := range pats {
		total += p.count
	}
	if total == 0 {
		return m
	}
	mNum := make([][]float64, nf)
	uNum := make([][]float64, nf)
	for f := range nf {
		mNum[f] = make([]float64, nlevels[f])
		uNum[f] = make([]float64, nlevels[f])
	}
	prevLL := math.Inf(-1)
	for it := 1; it <= maxIter; it++ {
		m.Iterations = it
		for f := range nf {
			clear(mNum[f])
			clear(uNum[f])
		}
		gSum, ll := 0.0, 0.0
		for _, p := range pats {
			lm, lu := math.Log(m.Prior), math.Log(1-m.Prior)
			for f, l := range p.levels {
				if l < 0 {
					continue
				}
				lm += math.Log(m.M[f][l])
				lu += math.Log(m.U[f][l])
			}
			mx := math.Max(lm, lu)
			den := mx + math.Log(math.Exp(lm-mx)+math.Exp(lu-mx))
			g := math.Exp(lm - den)
			ll += p.count * den
			gSum += p.count * g
			for f, l := range p.levels {
				if l < 0 {
					continue
				}
				mNum[f][l] += p.count * g
				uNum[f][l] += p.count * (1 - g)
			}
		}
		m.Prior = clamp(gSum / total)
		for f := range nf {
			normalizeInto(m.M[f], mNum[f])
			normalizeInto(m.U[f], uNum[f])
		}
		if math.Abs(ll-prevLL) < tol*math.Abs(ll) {
			break
		}
		prevLL = ll
	}
	return m
}

func clamp(p float64) float64 {
	return math.Min(math.Max(p, minProb), 1-minProb)
}

func normalizeInto(dst, num []float64) {
	s := 0.0
	for _, v := range num {
		s += v
	}
	if s <= 0 {
		return // field never observed: keep the previous estimate
	}
	t := 0.0
	for l, v := range num {
		dst[l] = math.Max(v/s, minProb)
		t += dst[l]
	}
	for l := range dst {
		dst[l] /= t
	}
}

package linkage

import (
	"fmt"
	"math"
)

// Model holds the Fellegi-Sunter parameters of every field: M[f][l] is the
// probability that a true match shows agreement level l on field f, U[f][l]
// the same for a non-match, and Prior the share of matches among the
// candidate pairs. They are estimated with EM from the comparison patterns of
// the candidate pairs alone, so no labelled pairs are needed.
type Model struct {
	Fields []Field     `json:"fields"`
	M      [][]float64 `json:"m"`
	U      [][]float64 `json:"u"`
	// Prior is the probability that two records drawn at random are the
	// same entity (over all record pairs, not only the candidates).
	Prior      float64 `json:"prior"`
	Iterations int     `json:"iterations,omitempty"`
	// Dependence[f][g] > 0: exact agreement on f and g goes together among
	// different people (a city and its province); when both agree, the
	// later field's evidence is reduced by its strongest such dependence
	// on an earlier agreeing field, in bits.
	Dependence [][]float64 `json:"dependence,omitempty"`
	// Version of the model's meaning; a saved model of another version is
	// not reused.
	Version int `json:"version"`
}

// modelVersion 2: u from random pairs, m from training sessions, prior over
// all record pairs.
const modelVersion = 2

// Weight returns the match weight of one comparison vector: the sum over
// non-missing fields of log2(m/u). Missing fields (level < 0) are neutral.
func (m *Model) Weight(levels []int8) float64 {
	w := 0.0
	for f, l := range levels {
		if l < 0 {
			continue
		}
		w += math.Log2(m.M[f][l] / m.U[f][l])
		if l == 0 && f < len(m.Dependence) {
			d := 0.0
			for g := 0; g < f; g++ {
				if levels[g] == 0 && g < len(m.Dependence[f]) {
					d = math.Max(d, m.Dependence[f][g])
				}
			}
			w -= d
		}
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

// credible checks that a fitted model describes duplicates, not look-alikes.
// EM always finds two classes; on a population with few or no duplicates
// the "match" class it finds is whatever agrees most among distinct people
// (same common name, same city, same gender), and every such pair would be
// merged. Two symptoms give that away:
//   - the fitted share of matches implies more matched pairs than records:
//     every customer would exist many times over;
//   - the pairs called matches mostly disagree on an identifying field (an
//     id, phone, email, or a date such as the birth date) that is filled in
//     for a good share of the candidate pairs: duplicates of one person keep
//     their identifiers far more often than not.
//
// It returns "" when the model is credible, or the reason it is not.
func (m *Model) credible(pats []pattern, records int) string {
	total := 0.0
	for _, p := range pats {
		total += p.count
	}
	if total == 0 {
		return ""
	}
	if implied := m.Prior * float64(records) * float64(records-1) / 2; implied > float64(records) {
		return fmt.Sprintf("the fitted match share implies %.0f duplicate pairs, more than records (%d): the model learned look-alikes, not duplicates", implied, records)
	}
	for f, fd := range m.Fields {
		if fd.Kind != KindID && fd.Kind != KindDate {
			continue
		}
		seen := 0.0
		for _, p := range pats {
			if p.levels[f] >= 0 {
				seen += p.count
			}
		}
		last := len(m.M[f]) - 1
		if seen >= 0.1*total && m.M[f][last] >= 0.5 {
			return fmt.Sprintf("pairs the model calls matches disagree on %s %.0f%% of the time: the model learned look-alikes, not duplicates", fd.Name, 100*m.M[f][last])
		}
	}
	return ""
}

// fallbackModel is the conservative model used when the fitted one is not
// credible: agreement mostly at level 0 for matches, u measured on random
// record pairs, and a prior of one duplicate per hundred records over all
// pairs. Its scores only rank pairs for review; nothing is merged on them.
func fallbackModel(fields []Field, nlevels []int, uRandom [][]float64, records int) *Model {
	m := &Model{Fields: fields, M: make([][]float64, len(fields)), U: make([][]float64, len(fields)), Version: modelVersion}
	for f := range fields {
		m.M[f] = initialM(nlevels[f])
		m.U[f] = append([]float64(nil), uRandom[f]...)
	}
	m.Prior = 0.02 / float64(max(records-1, 1))
	return m
}

// initialM puts most of a match's mass on agreement, decreasing
// geometrically towards disagreement.
func initialM(levels int) []float64 {
	out := make([]float64, levels)
	rest := 0.1
	out[0] = 0.9
	for l := 1; l < levels; l++ {
		share := rest / 2
		if l == levels-1 {
			share = rest
		}
		out[l] = share
		rest -= share
	}
	return out
}

package traits

import (
	"math"
	"sort"
	"time"
)

// purchases summarises a customer's purchases in bounded space, exactly for
// what the built-in traits and the lifecycle need, and mergeably:
//
//   - the count and the sum, and the last purchase;
//   - the K earliest purchases (K = LoyalPurchases), which carry the
//     new → repeat → loyal transitions;
//   - the gaps between consecutive purchases longer than AtRisk, which
//     carry the at-risk and churned episodes and the returns after them.
//
// Adding a purchase can only split a gap, or open one before the first or
// after the last purchase. Under a merge, a long gap of the union is a
// stretch free of purchases on both sides, so it is the intersection of a
// long free stretch of each (counting the open stretches before the first
// and after the last purchase), when that is still long. Keeping every
// purchase instead made the state, and every write of the profile, grow with
// the customer's history.
type purchases struct {
	N     int64      `json:"n,omitempty"`
	Sum   int64      `json:"s,omitempty"` // millionths
	Early []purchase `json:"e,omitempty"` // the K earliest, sorted by key
	Last  *purchase  `json:"l,omitempty"`
	Gaps  []gap      `json:"g,omitempty"` // sorted
}

// gap is a stretch between two consecutive purchases, A and B (unix µs);
// M is the message id of the purchase at B.
type gap struct {
	A int64  `json:"a"`
	B int64  `json:"b"`
	M string `json:"m,omitempty"`
}

const (
	minusInf = math.MinInt64
	plusInf  = math.MaxInt64
)

func (s *purchases) first() purchase { return s.Early[0] }

func (s *purchases) add(p purchase, l Lifecycle) {
	long := int64(l.AtRisk / time.Microsecond)
	if s.N > 0 {
		f, last := s.first(), *s.Last
		switch {
		case less(p.T, p.M, f.T, f.M):
			if f.T-p.T > long {
				s.Gaps = append([]gap{{A: p.T, B: f.T, M: f.M}}, s.Gaps...)
			}
		case less(last.T, last.M, p.T, p.M):
			if p.T-last.T > long {
				s.Gaps = append(s.Gaps, gap{A: last.T, B: p.T, M: p.M})
			}
		default:
			i := sort.Search(len(s.Gaps), func(i int) bool { return s.Gaps[i].B >= p.T })
			if i < len(s.Gaps) && s.Gaps[i].B == p.T {
				// Another purchase at the instant a gap ends: the gap
				// ends with whichever comes first in canonical order.
				if p.M < s.Gaps[i].M {
					s.Gaps[i].M = p.M
				}
				break
			}
			if i < len(s.Gaps) && s.Gaps[i].A < p.T {
				g := s.Gaps[i]
				var split []gap
				if p.T-g.A > long {
					split = append(split, gap{A: g.A, B: p.T, M: p.M})
				}
				if g.B-p.T > long {
					split = append(split, gap{A: p.T, B: g.B, M: g.M})
				}
				s.Gaps = append(s.Gaps[:i], append(split, s.Gaps[i+1:]...)...)
			}
		}
	}
	s.N++
	s.Sum = satAdd(s.Sum, p.A)
	switch {
	case s.Last == nil:
		cp := p
		s.Last = &cp
	case less(s.Last.T, s.Last.M, p.T, p.M):
		// In place: a summary owns its Last (clone and merge copy it),
		// and most purchases are a customer's latest.
		*s.Last = p
	}
	k := max(l.LoyalPurchases, 2)
	if s.Early == nil {
		// Room for the K earliest and the one insertPurchase adds before
		// the cut, when K is a handful as usual.
		s.Early = make([]purchase, 0, min(k, 7)+1)
	}
	s.Early = insertPurchase(s.Early, p)
	if len(s.Early) > k {
		s.Early = s.Early[:k]
	}
}

// free lists the long purchase-free stretches, the open ends included.
func (s *purchases) free() []gap {
	out := make([]gap, 0, len(s.Gaps)+2)
	f := s.first()
	out = append(out, gap{A: minusInf, B: f.T, M: f.M})
	out = append(out, s.Gaps...)
	return append(out, gap{A: s.Last.T, B: plusInf})
}

func (s *purchases) merge(o *purchases, l Lifecycle) {
	if o == nil || o.N == 0 {
		return
	}
	if s.N == 0 {
		*s = *o.clone()
		return
	}
	long := int64(l.AtRisk / time.Microsecond)
	var gaps []gap
	a, b := s.free(), o.free()
	for i, j := 0, 0; i < len(a) && j < len(b); {
		lo, hi := max(a[i].A, b[j].A), min(a[i].B, b[j].B)
		if lo != minusInf && hi != plusInf && hi-lo > long {
			m := a[i].M
			if b[j].B < a[i].B || (b[j].B == a[i].B && b[j].M < a[i].M) {
				m = b[j].M
			}
			gaps = append(gaps, gap{A: lo, B: hi, M: m})
		}
		if a[i].B < b[j].B {
			i++
		} else {
			j++
		}
	}
	s.Gaps = gaps
	s.N += o.N
	s.Sum = satAdd(s.Sum, o.Sum)
	if less(s.Last.T, s.Last.M, o.Last.T, o.Last.M) {
		cp := *o.Last
		s.Last = &cp
	}
	for _, p := range o.Early {
		s.Early = insertPurchase(s.Early, p)
	}
	if k := max(l.LoyalPurchases, 2); len(s.Early) > k {
		s.Early = s.Early[:k]
	}
}

func (s *purchases) clone() *purchases {
	c := *s
	c.Early = append([]purchase(nil), s.Early...)
	c.Gaps = append([]gap(nil), s.Gaps...)
	if s.Last != nil {
		l := *s.Last
		c.Last = &l
	}
	return &c
}

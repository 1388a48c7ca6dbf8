package segment

import (
	"encoding/json"
	"math"
	"sort"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Summary is a profile's behaviour as segments see it: per track event name,
// the exact total and the MaxRecent most recent events (time and amount).
// It is bounded so that a million profiles fit in memory whatever their
// history: conditions over windows read the recent events, all-time counts
// read the total.
type Summary map[string]*History

// History is one event name's summary on one profile.
type History struct {
	Total uint32
	// recs are ordered oldest first; at most MaxRecent.
	recs []rec
}

// rec packs an event in 8 bytes: unix seconds (good until 2106) and the
// amount as float32, precise enough for thresholds on money.
type rec struct {
	t uint32
	a float32
}

func toSec(t time.Time) uint32 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// AmountProperties are the event properties read, in order, as an event's
// amount.
var AmountProperties = []string{"amount", "revenue", "total", "value", "price"}

// Amount extracts an event's amount from its decoded properties (0 when
// none is a number).
func Amount(props map[string]any) float64 {
	for _, k := range AmountProperties {
		if f, ok := props[k].(float64); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
	}
	return 0
}

// Add records one event.
func (s Summary) Add(name string, at time.Time, amount float64) {
	h := s[name]
	if h == nil {
		h = &History{}
		s[name] = h
	}
	h.add(rec{t: toSec(at), a: float32(amount)})
}

func (h *History) add(r rec) {
	h.Total++
	i := sort.Search(len(h.recs), func(i int) bool { return h.recs[i].t > r.t })
	if len(h.recs) >= MaxRecent {
		if i == 0 {
			return // older than everything kept
		}
		copy(h.recs, h.recs[1:i])
		h.recs[i-1] = r
		return
	}
	h.recs = append(h.recs, rec{})
	copy(h.recs[i+1:], h.recs[i:])
	h.recs[i] = r
}

// AddEvent records a track event (other types are ignored).
func (s Summary) AddEvent(e *portrait.Event) {
	if e.Type != portrait.EventTrack || e.Name == "" {
		return
	}
	var props map[string]any
	if len(e.Properties) > 0 {
		json.Unmarshal(e.Properties, &props) // a malformed payload counts with amount 0
	}
	s.Add(e.Name, e.Timestamp, Amount(props))
}

// Len is the number of events kept (for sizing).
func (h *History) Len() int { return len(h.recs) }

func (h *History) last() (uint32, bool) {
	if h == nil || len(h.recs) == 0 {
		return 0, false
	}
	return h.recs[len(h.recs)-1].t, true
}

// metric computes a behaviour metric; nil means "no value" (days since an
// event that never happened).
func metric(h *History, l *behLeaf, now time.Time) any {
	switch l.metric {
	case metricDaysSince:
		t, ok := h.last()
		if !ok {
			return nil
		}
		return float64(now.Unix()-int64(t)) / 86400
	case metricCount:
		if h == nil {
			return 0.0
		}
		if l.window == 0 && l.filter == nil {
			return float64(h.Total)
		}
	}
	if h == nil {
		return 0.0
	}
	var from int64 = math.MinInt64
	if l.window > 0 {
		from = now.Add(-l.window).Unix()
	}
	i := sort.Search(len(h.recs), func(i int) bool { return int64(h.recs[i].t) >= from })
	n, sum := 0.0, 0.0
	for _, r := range h.recs[i:] {
		a := float64(r.a)
		if l.filter != nil && !l.filter.test(a) {
			continue
		}
		n++
		sum += a
	}
	if l.metric == metricSum {
		return sum
	}
	return n
}

// sequence tests "did A but not B within the window".
func sequence(a, b *History, l *seqLeaf, now time.Time) bool {
	ta, ok := a.last()
	if !ok || int64(ta) < now.Add(-l.window).Unix() {
		return false
	}
	tb, ok := b.last()
	return !ok || tb < ta
}

// Summary returns a copy of the behaviour summary the index holds for a
// profile (empty when it holds none).
func (ix *Index) Summary(id string) Summary {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s := Summary{}
	n, ok := ix.nums[id]
	if !ok || !ix.live.Contains(n) {
		return s
	}
	for name, ec := range ix.events {
		if ec.did.Contains(n) && int(n) < len(ec.lists) && ec.lists[n] != nil {
			h := ec.lists[n]
			s[name] = &History{Total: h.Total, recs: append([]rec(nil), h.recs...)}
		}
	}
	return s
}

// extend adds a profile's newly applied events to the summary the index
// holds for it, and reports whether the result accounts for every track
// event the profile has (its totals equal the profile's track counts); if
// not — a profile merged or re-ordered, or one the index never saw — the
// history must be read again.
func (ix *Index) extend(p *portrait.Profile, applied []*portrait.Event) (Summary, bool) {
	s := ix.Summary(p.ID)
	for _, e := range applied {
		if !e.System() {
			s.AddEvent(e)
		}
	}
	if len(s) != len(p.TrackCounts) {
		return nil, false
	}
	for name, n := range p.TrackCounts {
		if h := s[name]; h == nil || int(h.Total) != n {
			return nil, false
		}
	}
	return s, true
}

package traits

import (
	"slices"
	"sync"
	"time"
)

// StageCounts keeps the lifecycle over time from every customer's stage
// history, as the histories change rather than by reading them all on
// each question: for each day, how many customers entered and left each
// stage, and the flows between stages that happened on it. The stages held
// at the end of a period are then the entries minus the leavings before its
// end, and a period's flows the sum of its days: exact after every change,
// at the cost of a walk over the days that saw a transition.
//
// It follows the lifecycle_history trait of the segment index
// (segment.Index.Follow), so it agrees with a full count of the histories
// the index holds (CountStages, CountFlows) whatever the order of events,
// merges, erasures or a rebuild: each is a change of a history.
type StageCounts struct {
	mu    sync.RWMutex
	days  map[int64]*dayCounts
	order []int64 // the days in days, sorted; nil: to be sorted again
}

type dayCounts struct {
	net   map[string]int  // entries minus leavings, by stage
	flows map[FlowKey]int // transitions on the day ("" from: a first stage)
}

// NewStageCounts returns counts of no history.
func NewStageCounts() *StageCounts { return &StageCounts{days: map[int64]*dayCounts{}} }

const secondsPerDay = 86400

// dayOf is the day (since 1970-01-01, UTC) holding t.
func dayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / secondsPerDay
	if s%secondsPerDay < 0 {
		d--
	}
	return d
}

// Change replaces one customer's history old by new (either nil: none),
// as the lifecycle_history trait's values (segment.Follower).
func (c *StageCounts) Change(old, new any) {
	o, n := ParseHistory(old), ParseHistory(new)
	if len(o) == 0 && len(n) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(o, -1)
	c.add(n, +1)
}

func (c *StageCounts) day(d int64) *dayCounts {
	dc := c.days[d]
	if dc == nil {
		dc = &dayCounts{net: map[string]int{}, flows: map[FlowKey]int{}}
		c.days[d] = dc
		c.order = nil
	}
	return dc
}

// add counts a history in (sign +1) or out (-1). Days whose counts come
// back to nothing are dropped, so the days walked are those with a
// transition on them now.
func (c *StageCounts) add(hist []Transition, sign int) {
	for i, t := range hist {
		d := dayOf(t.At)
		dc := c.day(d)
		prev := ""
		if i > 0 {
			prev = hist[i-1].Stage
			c.bump(c.day(d), prev, -sign)
		}
		c.bump(dc, t.Stage, sign)
		k := FlowKey{prev, t.Stage}
		if dc.flows[k] += sign; dc.flows[k] == 0 {
			delete(dc.flows, k)
		}
		if len(dc.net) == 0 && len(dc.flows) == 0 {
			delete(c.days, d)
			c.order = nil
		}
	}
}

func (c *StageCounts) bump(dc *dayCounts, stage string, by int) {
	if dc.net[stage] += by; dc.net[stage] == 0 {
		delete(dc.net, stage)
	}
}

func (c *StageCounts) sorted() []int64 {
	if c.order == nil {
		c.order = make([]int64, 0, len(c.days))
		for d := range c.days {
			c.order = append(c.order, d)
		}
		slices.Sort(c.order)
	}
	return c.order
}

// aligned reports whether t is a midnight (UTC): the counts answer for
// bounds on whole days only.
func aligned(t time.Time) bool { return t.Unix()%secondsPerDay == 0 }

// Distribution fills the periods' counts (see Periods): the stages held at
// the end of each, as CountStages over every history. It reports false
// when a period does not end at a midnight (never, for Periods).
func (c *StageCounts) Distribution(periods []Period) bool {
	for _, p := range periods {
		if !aligned(p.End) {
			return false
		}
	}
	// The order is sorted under the write lock: a read lock cannot
	// publish it.
	c.mu.Lock()
	defer c.mu.Unlock()
	order := c.sorted()
	held := map[string]int{}
	i := 0
	for p := range periods {
		end := dayOf(periods[p].End) // days before end count
		for ; i < len(order) && order[i] < end; i++ {
			for st, n := range c.days[order[i]].net {
				held[st] += n
			}
		}
		for st, n := range held {
			if n != 0 {
				periods[p].Counts[st] = n
			}
		}
	}
	return true
}

// Flows counts the transitions in [from, end) by their stages, as
// CountFlows over every history. It reports false when from or end is not
// a midnight: the days cannot answer for part of one.
func (c *StageCounts) Flows(from, end time.Time) (map[FlowKey]int, bool) {
	if !aligned(from) || !aligned(end) {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[FlowKey]int{}
	order := c.sorted()
	lo, hi := dayOf(from), dayOf(end)
	i, _ := slices.BinarySearch(order, lo)
	for ; i < len(order) && order[i] < hi; i++ {
		for k, n := range c.days[order[i]].flows {
			out[k] += n
		}
	}
	for k, n := range out {
		if n == 0 {
			delete(out, k)
		}
	}
	return out, true
}

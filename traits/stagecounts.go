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
	mu sync.RWMutex
	// Stages are counted by a small number: a million histories at
	// start-up hashed their stage names on every transition.
	names []string          // by number; 0 is "" (before a first stage)
	nums  map[string]uint32 // the reverse
	days  map[int64]*dayCounts
	order []int64 // the days in days, sorted; nil: to be sorted again
}

type dayCounts struct {
	net     []int       // entries minus leavings, by stage number
	nonzero int         // entries of net that are not 0
	flows   []flowCount // transitions on the day, a handful
}

type flowCount struct {
	from, to uint32 // stage numbers; from 0: a first stage
	n        int
}

// NewStageCounts returns counts of no history.
func NewStageCounts() *StageCounts {
	return &StageCounts{names: []string{""}, nums: map[string]uint32{"": 0}, days: map[int64]*dayCounts{}}
}

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

// step is one transition as the counts need it: the stage and its day.
type step struct {
	stage string
	day   int64
}

// Change replaces one customer's history old by new (either nil: none),
// as the lifecycle_history trait's values (segment.Follower).
func (c *StageCounts) Change(old, new any) {
	// Parsed outside the lock, into the stack for the usual history.
	var ob, nb [24]step
	o, n := historyDays(old, ob[:0]), historyDays(new, nb[:0])
	if len(o) == 0 && len(n) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(o, -1)
	c.add(n, +1)
}

// historyDays appends to buf the transitions ParseHistory reads from v,
// with their days. The "at" the enricher writes (UTC, RFC 3339) is read
// by hand; any other form goes through ParseHistory's time.Parse, so both
// keep and skip the same entries.
func historyDays(v any, buf []step) []step {
	list, ok := v.([]any)
	if !ok {
		return buf
	}
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		stage, _ := m["stage"].(string)
		if stage == "" {
			continue
		}
		var at time.Time
		switch x := m["at"].(type) {
		case string:
			if d, ok := utcDay(x); ok {
				buf = append(buf, step{stage, d})
				continue
			}
			at, _ = time.Parse(time.RFC3339Nano, x)
		case time.Time:
			at = x
		}
		if at.IsZero() {
			continue
		}
		buf = append(buf, step{stage, dayOf(at)})
	}
	return buf
}

// utcDay reads the day of a time written as stamp writes it,
// 2006-01-02T15:04:05[.999999999]Z, reporting false for anything else
// (another form, an impossible date, a year before 2: the zero time is
// no transition) so that time.Parse decides those.
func utcDay(s string) (int64, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return 0, false
	}
	if len(s) > 20 {
		// A fraction: a dot and 1 to 9 digits.
		if s[19] != '.' || len(s) > 30 || len(s) < 22 {
			return 0, false
		}
		for i := 20; i < len(s)-1; i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
		}
	}
	y, mo, d, h, mi, sec := digits(s[0:4]), digits(s[5:7]), digits(s[8:10]), digits(s[11:13]), digits(s[14:16]), digits(s[17:19])
	if y < 2 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return 0, false
	}
	if d > daysIn(time.Month(mo), y) {
		return 0, false
	}
	return civilDay(y, mo, d), true
}

// digits is the number s writes in decimal, -1 if it is not all digits.
func digits(s string) int {
	v := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		v = v*10 + int(s[i]-'0')
	}
	return v
}

func daysIn(m time.Month, y int) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// civilDay is the day since 1970-01-01 of a proleptic Gregorian date
// (Howard Hinnant's days_from_civil).
func civilDay(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// num is the stage's number, given one at first sight. Names are kept
// once seen, as the days they were counted on are.
func (c *StageCounts) num(stage string) uint32 {
	// Among the few usual stages a look costs less than a hash.
	if len(c.names) <= 8 {
		for i, s := range c.names {
			if s == stage {
				return uint32(i)
			}
		}
	} else if n, ok := c.nums[stage]; ok {
		return n
	}
	n := uint32(len(c.names))
	c.names = append(c.names, stage)
	c.nums[stage] = n
	return n
}

func (c *StageCounts) day(d int64) *dayCounts {
	dc := c.days[d]
	if dc == nil {
		dc = &dayCounts{}
		c.days[d] = dc
		c.order = nil
	}
	return dc
}

// add counts a history in (sign +1) or out (-1). Days whose counts come
// back to nothing are dropped, so the days walked are those with a
// transition on them now.
func (c *StageCounts) add(hist []step, sign int) {
	var prev uint32 // "" before the first
	var dc *dayCounts
	for i, t := range hist {
		if i == 0 || t.day != hist[i-1].day {
			dc = c.day(t.day)
		}
		cur := c.num(t.stage)
		if i > 0 {
			dc.bump(prev, -sign)
		}
		dc.bump(cur, sign)
		dc.flow(prev, cur, sign)
		if dc.nonzero == 0 && len(dc.flows) == 0 {
			delete(c.days, t.day)
			c.order = nil
			dc = nil
			if i+1 < len(hist) && hist[i+1].day == t.day {
				dc = c.day(t.day)
			}
		}
		prev = cur
	}
}

func (dc *dayCounts) bump(stage uint32, by int) {
	if int(stage) >= len(dc.net) {
		dc.net = append(dc.net, make([]int, int(stage)+1-len(dc.net))...)
	}
	was := dc.net[stage]
	dc.net[stage] += by
	switch {
	case was == 0:
		dc.nonzero++
	case dc.net[stage] == 0:
		dc.nonzero--
	}
}

func (dc *dayCounts) flow(from, to uint32, by int) {
	for i := range dc.flows {
		f := &dc.flows[i]
		if f.from == from && f.to == to {
			if f.n += by; f.n == 0 {
				dc.flows[i] = dc.flows[len(dc.flows)-1]
				dc.flows = dc.flows[:len(dc.flows)-1]
			}
			return
		}
	}
	dc.flows = append(dc.flows, flowCount{from, to, by})
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
	held := make([]int, len(c.names))
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
				periods[p].Counts[c.names[st]] = n
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
	order := c.sorted()
	lo, hi := dayOf(from), dayOf(end)
	sum := map[[2]uint32]int{}
	i, _ := slices.BinarySearch(order, lo)
	for ; i < len(order) && order[i] < hi; i++ {
		for _, f := range c.days[order[i]].flows {
			sum[[2]uint32{f.from, f.to}] += f.n
		}
	}
	out := make(map[FlowKey]int, len(sum))
	for k, n := range sum {
		if n != 0 {
			out[FlowKey{c.names[k[0]], c.names[k[1]]}] = n
		}
	}
	return out, true
}

package traits

import (
	"fmt"
	"strconv"
	"time"
)

// BenchDefinitions are the 20 computed traits of the processor benchmark:
// all ten aggregates of an order's revenue or category, over all time and
// then over windows of 7 to 70 days with a filter on the revenue. Tests of
// both packages use them (this file is compiled into the tests only).
func BenchDefinitions() []Definition {
	aggs := []string{AggCount, AggSum, AggAvg, AggMin, AggMax, AggFirst, AggLast, AggMostFrequent, AggUnique, AggDistinctCount}
	var defs []Definition
	for i := range 20 {
		d := Definition{Name: fmt.Sprintf("ct%02d", i), Aggregate: aggs[i%10], Event: "Order Completed", Property: "revenue"}
		switch d.Aggregate {
		case AggMostFrequent, AggUnique, AggDistinctCount, AggFirst, AggLast:
			d.Property = "category"
		}
		if i >= 10 {
			d.Window = fmt.Sprintf("%dd", 7*(i-9))
			d.Filter = fmt.Sprintf("properties.revenue > %d", i)
		}
		defs = append(defs, d)
	}
	return defs
}

// HistoryValue is the lifecycle_history value the enricher writes, as of
// now, for a customer first seen at firstSeen who bought at the given
// times (the default lifecycle): benchmarks build realistic stage
// histories with the enricher's own rules.
func HistoryValue(firstSeen time.Time, buys []time.Time, now time.Time) []any {
	l := DefaultConfig().Lifecycle
	var ps *purchases
	if len(buys) > 0 {
		ps = &purchases{}
		for i, b := range buys {
			ps.add(purchase{T: micros(b), M: "m" + strconv.Itoa(i), A: 1e8}, l)
		}
	}
	hist := LifecycleHistory(l, ps, firstSeen, "first", now)
	if len(hist) > maxHistory {
		hist = hist[len(hist)-maxHistory:]
	}
	return historyValue(hist)
}

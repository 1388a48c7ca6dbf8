package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/tracking"
)

// group is a run of consecutive rows with the same group key (an invoice's
// lines). Only lines that became events count: a quarantined line is not
// part of the order, and is accounted for in the quarantine.
type group struct {
	key      string
	firstRow int
	lastRow  int
	name     string
	lines    int
	first    *portrait.Event
	keep     map[string]any
	sums     map[string]float64
	products []map[string]any
}

func (g *group) add(rowNum int, ev *portrait.Event, props map[string]any, a *Aggregate) {
	if g.first == nil {
		g.first = ev
		g.keep = map[string]any{}
		for _, k := range a.Keep {
			if v, ok := props[k]; ok {
				g.keep[k] = v
			}
		}
		g.sums = map[string]float64{}
	}
	g.lines++
	g.lastRow = rowNum
	for out, in := range a.Sum {
		if f, ok := number(props[in]); ok {
			g.sums[out] += f
		}
	}
	if len(a.Products) > 0 {
		p := make(map[string]any, len(a.Products))
		for _, k := range a.Products {
			if v, ok := props[k]; ok {
				p[k] = v
			}
		}
		g.products = append(g.products, p)
	}
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	}
	return 0, false
}

// aggregateEvent builds the group's event (an "Order Completed" from its
// lines) for the same parser as every other event. An order with more lines
// than fit in the 32 KB event limit keeps its totals and as many products as
// fit, and says how many it left out: the lines themselves are all in the
// log as their own events.
func (im *Importer) aggregateEvent(g *group, m *Mapping, opt Options, sum *Summary, receivedAt time.Time) (*portrait.Event, *portrait.Rejected) {
	a := m.Aggregate
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00agg\x00%s\x00%d", opt.Source, sum.FileSHA256, g.key, g.firstRow)
	msgID := "imp-" + hex.EncodeToString(h.Sum(nil)[:16])
	props := map[string]any{}
	for k, v := range g.keep {
		props[k] = v
	}
	for k, v := range g.sums {
		// Sums of cents in floating point drift (15.299999999); money is
		// kept to a millionth.
		props[k] = math.Round(v*1e6) / 1e6
	}
	if a.Count != "" {
		props[a.Count] = g.lines
	}
	ev := map[string]any{"type": portrait.EventTrack, "messageId": msgID, "event": g.name,
		"timestamp": g.first.Timestamp.Format(time.RFC3339Nano), "properties": props}
	if g.first.UserID != "" {
		ev["userId"] = g.first.UserID
	}
	if g.first.AnonymousID != "" {
		ev["anonymousId"] = g.first.AnonymousID
	}
	var fctx map[string]any
	if len(g.first.Context) > 0 {
		_ = json.Unmarshal(g.first.Context, &fctx)
	}
	ctx := map[string]any{"import": map[string]any{"source": opt.Source, "file": opt.fileLabel(sum), "rows": []int{g.firstRow, g.lastRow}, "aggregate": true}}
	for _, k := range []string{"externalIds", "traits"} {
		if v, ok := fctx[k]; ok {
			ctx[k] = v
		}
	}
	ev["context"] = ctx
	products := g.products
	var body []byte
	for {
		if len(a.Products) > 0 {
			props["products"] = products
			if omitted := len(g.products) - len(products); omitted > 0 {
				props["products_omitted"] = omitted
			}
		}
		var err error
		body, err = json.Marshal(ev)
		if err != nil {
			return nil, im.groupQuarantine(g, opt, sum, msgID, "cannot encode the aggregate: "+err.Error(), nil, receivedAt)
		}
		if len(body) <= tracking.MaxEventBytes || len(products) == 0 {
			break
		}
		// Shrink in proportion to the excess, then by one, so the loop
		// ends within a few rounds.
		keep := len(products) * (tracking.MaxEventBytes - 512) / len(body)
		if keep >= len(products) {
			keep = len(products) - 1
		}
		products = products[:max(keep, 0)]
	}
	res, _ := im.Parser.ParseSingle(body, portrait.EventTrack, opt.Source, receivedAt)
	if len(res.Rejected) > 0 {
		return nil, im.groupQuarantine(g, opt, sum, msgID, res.Rejected[0].Reason, body, receivedAt)
	}
	return res.Events[0], nil
}

func (im *Importer) groupQuarantine(g *group, opt Options, sum *Summary, key, reason string, body []byte, at time.Time) *portrait.Rejected {
	rec := quarantineRecord{ImportKey: key, Source: opt.Source, File: sum.File, Row: g.firstRow, Event: body,
		Values: map[string]string{"rows": strconv.Itoa(g.firstRow) + "-" + strconv.Itoa(g.lastRow)}}
	raw, _ := json.Marshal(rec)
	return &portrait.Rejected{Source: opt.Source, Index: g.firstRow, Reason: fmt.Sprintf("rows %d-%d (aggregate %s): %s", g.firstRow, g.lastRow, g.name, reason), Raw: raw, ReceivedAt: at}
}

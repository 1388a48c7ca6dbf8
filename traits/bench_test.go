package traits_test

import (
	"context"
	"fmt"
	json "github.com/goccy/go-json"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/tag"
	"github.com/portrait-cdp/portrait/traits"
)

func benchEvents(n int) []*portrait.Event {
	cats := []string{"books", "music", "games", "food"}
	evs := make([]*portrait.Event, n)
	for i := range evs {
		at := t0.Add(time.Duration(i) * time.Minute)
		e := &portrait.Event{MessageID: fmt.Sprintf("b%07d", i), Source: "web", UserID: fmt.Sprintf("u%d", i%2000), Timestamp: at, ReceivedAt: at}
		switch i % 4 {
		case 0:
			e.Type, e.Name = portrait.EventPage, "Home"
			e.Properties = []byte(`{"path":"/","channel":"web"}`)
		case 1:
			e.Type, e.Name = portrait.EventTrack, "Product Viewed"
			e.Properties = []byte(fmt.Sprintf(`{"category":%q,"price":%d}`, cats[i%4], i%97))
		default:
			e.Type, e.Name = portrait.EventTrack, "Order Completed"
			e.Properties = []byte(fmt.Sprintf(`{"revenue":%d.5,"category":%q}`, i%300, cats[(i/4)%4]))
		}
		evs[i] = e
	}
	return evs
}

// mixedEvents is a storefront's stream: every customer browses, some add to
// cart, fewer buy (one event in ten is an order), some identify — the mix
// the ingest benchmark sends. benchEvents is the stress case beside it:
// half its customers do nothing but buy, and every order feeds all 20
// computed traits.
func mixedEvents(n, users int) []*portrait.Event {
	rng := rand.New(rand.NewPCG(5, 8))
	cats := []string{"books", "music", "games", "food"}
	evs := make([]*portrait.Event, n)
	for i := range evs {
		at := t0.Add(time.Duration(i) * time.Minute)
		u := rng.IntN(users)
		e := &portrait.Event{MessageID: fmt.Sprintf("x%07d", i), Source: "web", UserID: fmt.Sprintf("u%d", u), Timestamp: at, ReceivedAt: at}
		switch r := rng.IntN(20); {
		case r < 6:
			e.Type, e.Name = portrait.EventPage, "Home"
			e.Properties = []byte(`{"path":"/","channel":"web"}`)
		case r < 11:
			e.Type, e.Name = portrait.EventTrack, "Product Viewed"
			e.Properties = []byte(fmt.Sprintf(`{"category":%q,"price":%d}`, cats[rng.IntN(4)], rng.IntN(97)))
		case r < 14:
			e.Type, e.Name = portrait.EventTrack, "Product Added"
			e.Properties = []byte(fmt.Sprintf(`{"category":%q,"price":%d}`, cats[rng.IntN(4)], rng.IntN(97)))
		case r < 16:
			e.Type, e.Name = portrait.EventTrack, "Order Completed"
			e.Properties = []byte(fmt.Sprintf(`{"revenue":%d.5,"category":%q}`, rng.IntN(300), cats[rng.IntN(4)]))
		case r < 18:
			e.Type, e.Name = portrait.EventTrack, "Checkout Started"
			e.Properties = []byte(`{"step":1}`)
		default:
			e.Type = portrait.EventIdentify
			e.Traits = []byte(fmt.Sprintf(`{"email":"u%d@example.com","plan":%q}`, u, []string{"free", "pro"}[u%2]))
		}
		evs[i] = e
	}
	return evs
}

// enrichers returns the traits enricher with 20 computed traits and the
// tag enricher with 50 tags.
func enrichers(tb testing.TB) []profile.Enricher {
	en, err := traits.New(traits.DefaultConfig(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	defs := traits.BenchDefinitions()
	if err := en.SetDefinitions(defs); err != nil {
		tb.Fatal(err)
	}
	types := en.Schema.Types()
	var tags []*tag.Compiled
	for i := range 50 {
		x := []string{"revenue > %d", "purchase_count >= %d", "ct00 > %d && sessions > 1", `favourite_category == "books" || ct11 > %d`, `lifecycle_stage == "loyal" && ct01 > %d`}[i%5]
		c, err := tag.Compile(tag.Definition{Name: fmt.Sprintf("tag%02d", i), Dimension: "value", Expression: fmt.Sprintf(x, i)}, types)
		if err != nil {
			tb.Fatal(err)
		}
		tags = append(tags, c)
	}
	te := tag.NewEnricher()
	te.SetTags(tags, types)
	return []profile.Enricher{en, te}
}

// runProcessor applies evs, appended to a new store, with the bare or the
// enriched processor, and returns how long catching up took.
func runProcessor(b *testing.B, evs []*portrait.Event, enriched bool) time.Duration {
	b.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cp := make([]*portrait.Event, len(evs))
	for i, e := range evs {
		c := *e
		cp[i] = &c
	}
	if _, err := db.Append(ctx, cp, nil); err != nil {
		b.Fatal(err)
	}
	p := profile.NewProcessor(db, identity.DefaultRules().Compile())
	p.Now = func() time.Time { return t0.Add(time.Duration(len(evs)) * time.Minute) }
	if enriched {
		p.Enrichers = enrichers(b)
	}
	last, _ := db.LastSeq(ctx)
	// Each run starts from a collected heap, not from the garbage of the
	// setup and of the run before (of the other processor, too).
	runtime.GC()
	start := time.Now()
	if err := p.CatchUp(ctx, last); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// compareProcessors runs evs through the bare and the enriched processor
// in the same run, one after the other in each iteration, so that the
// machine's drift touches both alike, and reports both rates and their
// ratio (target: at least 0.5).
func compareProcessors(b *testing.B, name string, evs []*portrait.Event) {
	b.StopTimer() // the timer would count the stores' setup: the runs time themselves
	var bare, rich time.Duration
	for range b.N {
		bare += runProcessor(b, evs, false)
		rich += runProcessor(b, evs, true)
	}
	n := float64(len(evs) * b.N)
	bareRate, richRate := n/bare.Seconds(), n/rich.Seconds()
	b.ReportMetric(float64(bare+rich)/float64(b.N), "ns/op")
	b.ReportMetric(bareRate, "bare-events/s")
	b.ReportMetric(richRate, "enriched-events/s")
	b.ReportMetric(richRate/bareRate, "ratio")
	b.Logf("%s: bare %.0f events/s, enriched %.0f events/s: ratio %.2f", name, bareRate, richRate, richRate/bareRate)
}

// BenchmarkProcessorEnriched measures the processor with 20 computed traits
// and 50 tags against the bare processor on the stress case (benchEvents).
func BenchmarkProcessorEnriched(b *testing.B) { compareProcessors(b, "stress", benchEvents(40000)) }

// BenchmarkProcessorEnrichedMixed is BenchmarkProcessorEnriched on a
// storefront's mix of events (mixedEvents), 4,000 customers.
func BenchmarkProcessorEnrichedMixed(b *testing.B) {
	compareProcessors(b, "mixed", mixedEvents(40000, 4000))
}

// BenchmarkProcessorEnrichedStream is the storefront mix at the scale of
// several batches (200,000 events, 20,000 customers): a batch's state is
// then written while the next is computed, as in a running server, and a
// profile gets about three events a batch, so per-profile costs weigh more.
func BenchmarkProcessorEnrichedStream(b *testing.B) {
	compareProcessors(b, "stream", mixedEvents(200000, 20000))
}

// profileOf returns the profile of e's user in profiles, made at its first
// event, with e as its latest.
func profileOf(profiles map[string]*portrait.Profile, e *portrait.Event) *portrait.Profile {
	p := profiles[e.UserID]
	if p == nil {
		p = &portrait.Profile{ID: e.UserID, FirstSeen: e.Timestamp, FirstKey: e.Key()}
		profiles[e.UserID] = p
	}
	p.LastSeen, p.LastKey = e.Timestamp, e.Key()
	return p
}

// decodedProps decodes each event's properties, as the processor hands
// them to the enrichers.
func decodedProps(evs []*portrait.Event) []map[string]any {
	props := make([]map[string]any, len(evs))
	for i, e := range evs {
		json.Unmarshal(e.Properties, &props[i])
	}
	return props
}

package segment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// Behaviour summaries are extended with the events the processor applied,
// without reading the history again; the result must equal reading it
// again, through merges and late events too.
func TestIncrementalSummariesEqualReadingHistory(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	proc := profile.NewProcessor(db, identity.DefaultRules())
	svc := segment.NewService(segment.NewIndex(), db)
	svc.Behaviour = db.SegmentBehaviour
	reads := 0
	svc.Behaviour = func(ctx context.Context, p *portrait.Profile) (segment.Summary, error) {
		reads++
		return db.SegmentBehaviour(ctx, p)
	}
	proc.OnChange = func(c []*portrait.Profile, d []string, applied map[string][]*portrait.Event) {
		if err := svc.Apply(ctx, c, d, applied); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := 0
	send := func(user, anon, name string, at time.Duration, amount float64) *portrait.Event {
		seq++
		props, _ := json.Marshal(map[string]any{"revenue": amount})
		return &portrait.Event{MessageID: fmt.Sprintf("m%04d", seq), Type: portrait.EventTrack, Name: name, UserID: user, AnonymousID: anon,
			Properties: props, Source: "web", Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
	}
	check := func(round int) {
		last, _ := db.LastSeq(ctx)
		if err := proc.CatchUp(ctx, last); err != nil {
			t.Fatal(err)
		}
		db.AllProfiles(ctx, func(p *portrait.Profile) error {
			want, err := db.SegmentBehaviour(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if got := svc.Index.Summary(p.ID); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("round %d, profile %s: incremental summary differs from the history", round, p.ID)
			}
			return nil
		})
	}
	var evs []*portrait.Event
	for i := range 300 {
		u := fmt.Sprintf("u%d", i%40)
		evs = append(evs, send(u, "", []string{"Order Completed", "Product Viewed"}[i%2], time.Duration(i)*time.Hour, float64(i)))
	}
	db.Append(ctx, evs, nil)
	check(1)
	readsAfterFirst := reads
	// More events for the same customers: extended, not read again.
	evs = evs[:0]
	for i := range 200 {
		evs = append(evs, send(fmt.Sprintf("u%d", i%40), "", "Order Completed", time.Duration(400+i)*time.Hour, 10))
	}
	db.Append(ctx, evs, nil)
	check(2)
	if reads != readsAfterFirst {
		t.Errorf("%d history reads for profiles whose new events were all known", reads-readsAfterFirst)
	}
	// Anonymous activity that later identifies (a merge), and a late event.
	db.Append(ctx, []*portrait.Event{send("", "dev-9", "Product Viewed", 800*time.Hour, 0), send("", "dev-9", "Order Completed", 801*time.Hour, 99)}, nil)
	check(3)
	db.Append(ctx, []*portrait.Event{send("u3", "dev-9", "Order Completed", 802*time.Hour, 5), send("u4", "", "Order Completed", 10*time.Minute, 1)}, nil)
	check(4)

	// The one-pass build at start gives the same summaries.
	all, err := db.AllSegmentBehaviour(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db.AllProfiles(ctx, func(p *portrait.Profile) error {
		if got, want := all[p.ID], svc.Index.Summary(p.ID); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("profile %s: the start-up build differs from the live summary", p.ID)
		}
		return nil
	})
}

// A third argument that is not a comparison is an error, not a crash.
func TestEventFunctionArgumentsChecked(t *testing.T) {
	for _, e := range []string{`event_count("E", "30d", 5) > 1`, `event_sum("E", "all", amount) > 1`, `days_since_event("E", "30d", "x") < 3`} {
		if _, err := segment.CompileExpr(e); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: %v, want an invalid error", e, err)
		}
	}
}

// Trait and event names beyond MaxColumns are not indexed, so made-up names
// cannot grow the index without bound.
func TestColumnsAreBounded(t *testing.T) {
	ix := segment.NewIndex()
	p := &portrait.Profile{ID: "p1", Traits: map[string]portrait.Trait{}}
	for i := range segment.MaxColumns + 10 {
		p.Traits[fmt.Sprintf("t%05d", i)] = portrait.Trait{Value: float64(i)}
	}
	sum := segment.Summary{}
	for i := range segment.MaxColumns + 5 {
		sum.Add(fmt.Sprintf("Viewed product %d", i), time.Now(), 1)
	}
	ix.Upsert(p, sum)
	if ix.Overflow != 15 {
		t.Errorf("overflow %d, want 15", ix.Overflow)
	}
}

// A long flat chain of one operator is not "nested too deeply".
func TestLongFlatChainCompiles(t *testing.T) {
	var terms []string
	for i := range 300 {
		terms = append(terms, fmt.Sprintf("traits.a == %d", i))
	}
	if _, err := segment.CompileExpr(strings.Join(terms, " || ")); err != nil {
		t.Errorf("300 alternatives: %v", err)
	}
	deep := strings.Repeat("!(", 80) + "traits.a == 1" + strings.Repeat(")", 80)
	if _, err := segment.CompileExpr(deep); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("80 nested negations: %v, want too deep", err)
	}
}

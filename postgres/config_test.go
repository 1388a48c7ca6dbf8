package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	profiledoc "github.com/portrait-cdp/portrait/profile/doc"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/storetest"
	"github.com/portrait-cdp/portrait/tag"
)

// TestConfigConformance holds the store to what the embedded one does with
// the configuration and history kept beside the log (storetest/config.go).
func TestConfigConformance(t *testing.T) {
	storetest.RunConfig(t, func(t *testing.T) storetest.ConfigStore { return openTest(t) })
}

// seedBehaviour writes a storetest.Behaviour straight into the tables, as
// the log's Append and a state transaction would.
func seedBehaviour(t *testing.T, db *DB, b *storetest.Behaviour) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		for i, e := range b.Events {
			e.Seq = int64(i + 1)
			body, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO events (seq, message_id, type, source, ts, received_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				e.Seq, e.MessageID, e.Type, e.Source, micros(e.Timestamp), micros(e.ReceivedAt), body); err != nil {
				return err
			}
			if b.Owner[i] != "" {
				if _, err := tx.Exec(ctx, `INSERT INTO profile_events (profile_id, ts, seq) VALUES ($1, $2, $3)`, b.Owner[i], micros(e.Timestamp), e.Seq); err != nil {
					return err
				}
			}
		}
		for _, p := range b.Profiles {
			doc, err := profiledoc.Encode(p)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO profiles (id, doc, updated_at) VALUES ($1, $2, $3)`, p.ID, doc, micros(p.UpdatedAt)); err != nil {
				return err
			}
		}
		for old, id := range b.Aliases {
			if _, err := tx.Exec(ctx, `INSERT INTO aliases (old_id, new_id) VALUES ($1, $2)`, old, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConfigBehaviour(t *testing.T) {
	db := openTest(t)
	b := storetest.BehaviourFixture()
	seedBehaviour(t, db, b)
	storetest.CheckBehaviour(t, db, b)
}

// An erased event is no longer anyone's behaviour, and a profile with more
// history than the pages read still gets each name's newest events.
func TestSegmentBehaviourErasedAndLong(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	b := &storetest.Behaviour{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// 2,500 page views, then (older) 10 orders: the orders are on the
	// third page.
	for i := 0; i < 2510; i++ {
		e := &portrait.Event{MessageID: fmt.Sprintf("m%d", i), Type: portrait.EventTrack, Source: "web", Name: "Page Viewed",
			Timestamp: t0.Add(time.Duration(10000-i) * time.Minute)}
		if i >= 2500 {
			e.Name, e.Properties = "Order Completed", []byte(`{"revenue":3}`)
		}
		b.Events, b.Owner = append(b.Events, e), append(b.Owner, "p1")
	}
	b.Profiles = []*portrait.Profile{{ID: "p1", TrackCounts: map[string]int{"Page Viewed": 2500, "Order Completed": 10}}}
	seedBehaviour(t, db, b)
	if _, err := db.pool.Exec(ctx, `UPDATE events SET type = $1 WHERE seq IN (2502, 2503)`, portrait.EventErased); err != nil {
		t.Fatal(err)
	}
	s, err := db.SegmentBehaviour(ctx, b.Profiles[0])
	if err != nil {
		t.Fatal(err)
	}
	if h := s["Page Viewed"]; h == nil || h.Len() != segment.MaxRecent || h.Total != 2500 {
		t.Errorf("page views: %+v", h)
	}
	if h := s["Order Completed"]; h == nil || h.Len() != 8 || h.Total != 10 {
		t.Errorf("orders (2 erased): %+v", h)
	}
	all, err := db.AllSegmentBehaviour(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h := all["p1"]["Order Completed"]; h == nil || h.Total != 8 {
		t.Errorf("all: orders %+v", h)
	}
}

// Several nodes saving one tag at once each get a version of their own.
func TestSaveTagConcurrent(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- db.SaveTag(ctx, &tag.Definition{Name: "vip", Dimension: "value", Expression: "revenue > 1"})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	vs, err := db.TagVersions(ctx, "vip")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 8 || vs[7].Version != 8 {
		t.Errorf("%d versions, the last %d", len(vs), vs[len(vs)-1].Version)
	}
}

// Segment events appended by several writers at once: the ids each batch
// gets are its own, increasing, and the history holds every row once.
func TestAppendSegmentEventsConcurrent(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	var wg sync.WaitGroup
	batches := make([][]*segment.Event, 6)
	errs := make(chan error, len(batches))
	for w := range batches {
		for i := 0; i < 200; i++ {
			batches[w] = append(batches[w], &segment.Event{Segment: "s", Profile: fmt.Sprintf("p-%d-%d", w, i), Kind: "enter", At: time.Unix(int64(1_700_000_000+w*1000+i), 0)})
		}
		wg.Add(1)
		go func(evs []*segment.Event) {
			defer wg.Done()
			errs <- db.AppendSegmentEvents(ctx, evs)
		}(batches[w])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]time.Time{}
	for _, evs := range batches {
		for i, e := range evs {
			if i > 0 && e.ID <= evs[i-1].ID {
				t.Fatalf("ids within a batch not increasing: %d then %d", evs[i-1].ID, e.ID)
			}
			seen[e.ID] = e.At
		}
	}
	all, err := db.SegmentEvents(ctx, "s", 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1200 || len(seen) != 1200 {
		t.Fatalf("%d rows, %d distinct ids", len(all), len(seen))
	}
	for _, e := range all {
		if !seen[e.ID].Equal(e.At) {
			t.Fatalf("row %d is %v, its batch said %v", e.ID, e.At, seen[e.ID])
		}
	}
}

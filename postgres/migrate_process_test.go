package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

func mpEvents(from, to int) []*portrait.Event {
	var out []*portrait.Event
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := from; i < to; i++ {
		c := i % 50
		e := &portrait.Event{MessageID: fmt.Sprintf("m%d", i), Type: "track", Source: "web", UserID: fmt.Sprintf("u%d", c), Name: "Order Completed",
			Properties: json.RawMessage(fmt.Sprintf(`{"revenue":%d}`, i)), Timestamp: t0.Add(time.Duration(i) * time.Minute), ReceivedAt: t0}
		if i%7 == 0 {
			e.Type, e.Name, e.Properties = "identify", "", nil
			e.Traits = json.RawMessage(fmt.Sprintf(`{"email":"e%d@x.cn","name":"客户%d"}`, c%40, c))
		}
		out = append(out, e)
	}
	return out
}

func mpProfiles(t *testing.T, all func(context.Context, func(*portrait.Profile) error) error) map[string]string {
	out := map[string]string{}
	if err := all(context.Background(), func(p *portrait.Profile) error {
		p.UpdatedAt = time.Time{}
		b, _ := json.Marshal(p)
		out[p.ID] = string(b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigratedStoreProcessesOn(t *testing.T) {
	ctx := context.Background()
	rules := identity.DefaultRules()
	a, _ := sqlite.Open(ctx, sqlitetest.Dir(t))
	defer a.Close()
	a.Append(ctx, mpEvents(0, 600), nil)
	pa := profile.NewProcessor(a, rules)
	if err := pa.CatchUp(ctx, 600); err != nil {
		t.Fatal(err)
	}
	url := pgtest.URL(t)
	pg, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	imp, err := pg.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A failed step must not leave the import's transaction holding a
	// connection: the deferred Close would wait for it for ever.
	defer imp.Rollback(context.Background())
	if err := a.ExportTables(ctx, func(tb sqlite.ExportTable, rows *sqlite.ExportRows) error {
		_, err := imp.Table(ctx, tb.Name, tb.Columns, rows)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := imp.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Append(ctx, mpEvents(600, 1200), nil); err != nil {
		t.Fatal(err)
	}
	pp := profile.NewProcessor(pg, rules)
	if err := pp.CatchUp(ctx, 1200); err != nil {
		t.Fatal(err)
	}
	b, _ := sqlite.Open(ctx, sqlitetest.Dir(t))
	defer b.Close()
	b.Append(ctx, mpEvents(0, 1200), nil)
	pb := profile.NewProcessor(b, rules)
	if err := pb.CatchUp(ctx, 1200); err != nil {
		t.Fatal(err)
	}
	got, want := mpProfiles(t, pg.AllProfiles), mpProfiles(t, b.AllProfiles)
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d profiles on PostgreSQL, %d embedded", len(got), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("profile %s differs:\n%s\n%s", id, got[id], w)
			break
		}
	}
	t.Logf("%d profiles equal", len(got))
}

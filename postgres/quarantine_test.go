package postgres

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// quarantineRow inserts a quarantined record as Append does; it returns
// its id.
func quarantineRow(t *testing.T, db *DB, source, reason string, raw []byte, at time.Time, key string) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := db.pool.QueryRow(ctx, `INSERT INTO quarantine (source, idx, reason, raw, received_at) VALUES ($1, 0, $2, $3, $4) RETURNING id`,
		source, reason, raw, micros(at)).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if key != "" {
		if _, err := db.pool.Exec(ctx, `INSERT INTO quarantine_keys (key, quarantine_id) VALUES ($1, $2)`, key, id); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func TestQuarantineReadsAndPurge(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		quarantineRow(t, db, "web", "bad timestamp", []byte(fmt.Sprintf(`{"i":%d}`, i)), t0.Add(time.Duration(i)*time.Hour), fmt.Sprint("web-", i))
	}
	quarantineRow(t, db, "crm", "not JSON", []byte("\x00\xff not even text"), t0, "")
	quarantineRow(t, db, "crm", "bad timestamp", []byte("{}"), t0.Add(10*time.Hour), "")

	list, err := db.ListQuarantine(ctx, portrait.QuarantineFilter{Source: "web", Limit: 2})
	if err != nil || len(list) != 2 || string(list[0].Raw) != `{"i":0}` || list[0].Source != "web" || list[0].Reason != "bad timestamp" || !list[0].ReceivedAt.Equal(t0) {
		t.Fatalf("first page: %+v %v", list, err)
	}
	next, err := db.ListQuarantine(ctx, portrait.QuarantineFilter{Source: "web", After: list[1].ID, Limit: 10})
	if err != nil || len(next) != 3 || string(next[2].Raw) != `{"i":4}` {
		t.Errorf("after the cursor: %+v %v", next, err)
	}
	all, _ := db.ListQuarantine(ctx, portrait.QuarantineFilter{})
	if len(all) != 7 || string(all[5].Raw) != "\x00\xff not even text" {
		t.Errorf("all sources, oldest first, bytes as received: %d", len(all))
	}

	sizes, err := db.QuarantineBytes(ctx)
	if err != nil || sizes["web"] != 5*7 || sizes["crm"] != int64(len("\x00\xff not even text")+2) {
		t.Errorf("bytes: %v %v", sizes, err)
	}
	var reasons []string
	err = db.EachQuarantineReason(ctx, func(source, reason string, n int64) error {
		reasons = append(reasons, fmt.Sprintf("%s/%s/%d", source, reason, n))
		return nil
	})
	sort.Strings(reasons)
	if err != nil || fmt.Sprint(reasons) != "[crm/bad timestamp/1 crm/not JSON/1 web/bad timestamp/5]" {
		t.Errorf("reasons: %v %v", reasons, err)
	}
	stop := fmt.Errorf("stop")
	if err := db.EachQuarantineReason(ctx, func(string, string, int64) error { return stop }); err != stop {
		t.Errorf("fn's error is not returned: %v", err)
	}

	// Retention: records received before t0+2h go, with their import keys.
	n, err := db.PurgeQuarantine(ctx, t0.Add(2*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("purge: %d %v, want 3", n, err)
	}
	var keys []string
	rows, _ := db.pool.Query(ctx, `SELECT key FROM quarantine_keys ORDER BY key`)
	for rows.Next() {
		var k string
		rows.Scan(&k)
		keys = append(keys, k)
	}
	rows.Close()
	if fmt.Sprint(keys) != "[web-2 web-3 web-4]" {
		t.Errorf("import keys after purge: %v", keys)
	}
	if sizes, _ := db.QuarantineBytes(ctx); sizes["web"] != 3*7 || sizes["crm"] != 2 {
		t.Errorf("bytes after purge: %v", sizes)
	}
}

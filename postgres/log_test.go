package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
)

func event(msg string) *portrait.Event {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &portrait.Event{MessageID: msg, Type: "track", Name: "x", UserID: "u", Source: "web", Timestamp: at, ReceivedAt: at}
}

func openURL(t testing.TB, url string) *DB {
	t.Helper()
	db, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func countQuarantine(t testing.TB, db *DB) int {
	t.Helper()
	var n int
	if err := db.pool.QueryRow(context.Background(), `SELECT count(*) FROM quarantine`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Concurrent appends through two DB values on one database (two nodes)
// log a messageId once however many requests carry it at the same time;
// sequence numbers are dense, and a reader never sees seq n+1 before n:
// every read of the log is a prefix 1..k.
func TestConcurrentAppendsAcrossNodes(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	nodes := []*DB{openURL(t, url), openURL(t, url)}
	var wg sync.WaitGroup
	var accepted, dups atomic.Int64
	stop := make(chan struct{})
	var reads, holes atomic.Int64
	var readerWG sync.WaitGroup
	for _, db := range nodes {
		readerWG.Add(1)
		go func() {
			defer readerWG.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				evs, err := db.ReadLog(ctx, 0, 100000)
				if err != nil {
					t.Error(err)
					return
				}
				for i, e := range evs {
					if e.Seq != int64(i+1) {
						holes.Add(1)
						t.Errorf("a read of %d events has seq %d at position %d", len(evs), e.Seq, i+1)
						return
					}
				}
				reads.Add(1)
			}
		}()
	}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := nodes[w%2]
			for b := range 20 {
				var evs []*portrait.Event
				for i := range 10 {
					// Workers overlap: worker w and w+1 (on the other
					// node) send the same ids.
					evs = append(evs, event(fmt.Sprintf("m-%d-%d-%d", w/2, b, i)))
				}
				res, err := db.Append(ctx, evs, []*portrait.Rejected{{Source: "web", Reason: "test", Raw: []byte("{}"), ReceivedAt: time.Now()}})
				if err != nil {
					t.Error(err)
					return
				}
				accepted.Add(int64(res.Accepted))
				dups.Add(int64(res.Duplicates))
				for _, e := range evs {
					if (e.Seq == 0) == (res.Accepted == 10) {
						t.Errorf("%s: seq %d with %d accepted", e.MessageID, e.Seq, res.Accepted)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readerWG.Wait()
	if accepted.Load() != 800 || dups.Load() != 800 {
		t.Errorf("accepted %d duplicates %d, want 800 each", accepted.Load(), dups.Load())
	}
	if n, err := nodes[0].CountEvents(ctx); err != nil || n != 800 {
		t.Errorf("log holds %d events (%v), want 800", n, err)
	}
	if last, err := nodes[1].LastSeq(ctx); err != nil || last != 800 {
		t.Errorf("last seq %d (%v), want 800: seqs are not dense", last, err)
	}
	evs, err := nodes[1].ReadLog(ctx, 0, 10000)
	if err != nil || len(evs) != 800 {
		t.Fatalf("read %d (%v)", len(evs), err)
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
	if q := countQuarantine(t, nodes[0]); q != 160 {
		t.Errorf("quarantine %d, want 160", q)
	}
	if reads.Load() == 0 {
		t.Error("the readers read nothing: the test tests nothing")
	}
	t.Logf("%d reads during the appends, none with a hole", reads.Load())
}

// A messageId repeated within one call is one event; a record re-imported
// under the same key is quarantined once, in one call or several.
func TestAppendDedupesWithinACallAndByQuarantineKey(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	a, b := event("m1"), event("m1")
	rej := func() []*portrait.Rejected {
		return []*portrait.Rejected{
			{Source: "crm", Index: 1, Reason: "bad", Raw: []byte("row 1"), Key: "crm:f:1"},
			{Source: "crm", Index: 1, Reason: "bad", Raw: []byte("row 1"), Key: "crm:f:1"},
			{Source: "crm", Index: 2, Reason: "empty"},
		}
	}
	first := rej()
	res, err := db.Append(ctx, []*portrait.Event{a, b}, first)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Duplicates != 1 || res.LastSeq != 1 || a.Seq != 1 || b.Seq != 0 {
		t.Errorf("result %+v, seqs %d %d", res, a.Seq, b.Seq)
	}
	if first[0].ID == 0 || first[1].ID != 0 || first[2].ID == 0 {
		t.Errorf("quarantine ids %d %d %d: want the keyed row once", first[0].ID, first[1].ID, first[2].ID)
	}
	again := rej()
	if _, err := db.Append(ctx, nil, again); err != nil {
		t.Fatal(err)
	}
	if again[0].ID != 0 || again[2].ID == 0 {
		t.Errorf("re-imported: ids %d %d", again[0].ID, again[2].ID)
	}
	if n := countQuarantine(t, db); n != 3 {
		t.Errorf("%d quarantined, want 3 (one keyed, two without a key)", n)
	}
	var raw []byte
	if err := db.pool.QueryRow(ctx, `SELECT raw FROM quarantine WHERE id = $1`, first[2].ID).Scan(&raw); err != nil || raw == nil || len(raw) != 0 {
		t.Errorf("an empty body is kept as empty: %q %v", raw, err)
	}
	var qid int64
	if err := db.pool.QueryRow(ctx, `SELECT quarantine_id FROM quarantine_keys WHERE key = 'crm:f:1'`).Scan(&qid); err != nil || qid != first[0].ID {
		t.Errorf("key points at %d (%v), want %d", qid, err, first[0].ID)
	}
	res, err = db.Append(ctx, []*portrait.Event{event("m1"), event("m2")}, nil)
	if err != nil || res.Accepted != 1 || res.Duplicates != 1 || res.LastSeq != 2 {
		t.Errorf("second append %+v %v", res, err)
	}
}

// Appended wakes a waiter on another DB value (another process) through
// LISTEN/NOTIFY, and one on the same DB value at once.
func TestAppendedWakesOtherNodes(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	writer, follower := openURL(t, url), openURL(t, url)
	// The first channel closes when the listener is up (it may have
	// missed a commit while starting).
	select {
	case <-follower.Appended():
	case <-time.After(20 * time.Second):
		t.Fatal("the listener never started")
	}
	woken := follower.Appended()
	select {
	case <-woken:
		t.Fatal("woken before anything was appended")
	case <-time.After(300 * time.Millisecond):
	}
	local := writer.Appended()
	if _, err := writer.Append(ctx, []*portrait.Event{event("m1")}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-local:
	default:
		t.Error("the appending node's own waiter was not woken at once")
	}
	select {
	case <-woken:
	case <-time.After(20 * time.Second):
		t.Fatal("the other node was not woken by the append")
	}
}

func TestEventsPerMinute(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 5, 10, 30, 20, 0, time.UTC)
	db.Now = func() time.Time { return now }
	var evs []*portrait.Event
	at := func(i int, src string, received time.Time) {
		e := event(fmt.Sprintf("m%04d", i))
		e.Source, e.ReceivedAt, e.Timestamp = src, received, received
		evs = append(evs, e)
	}
	n := 0
	// three days of history, one event an hour
	for h := 72; h >= 2; h-- {
		at(n, "web", now.Add(-time.Duration(h)*time.Hour))
		n++
	}
	// the last hour: minute k holds k events
	for k := 1; k <= 5; k++ {
		for j := 0; j < k; j++ {
			at(n, "app", now.Truncate(time.Minute).Add(-time.Duration(k)*time.Minute).Add(time.Duration(j)*time.Second))
			n++
		}
	}
	if _, err := db.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.EventsPerMinute(ctx, now.Add(-60*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("minutes %v", got)
	}
	for k := 1; k <= 5; k++ {
		m := now.Truncate(time.Minute).Add(-time.Duration(k) * time.Minute)
		if got[m] != int64(k) {
			t.Errorf("%s: %d events, want %d", m, got[m], k)
		}
	}
	if got, err := db.EventsPerMinute(ctx, now.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("the future: %v %v", got, err)
	}
	// at most a day back, however far since asks
	got, err = db.EventsPerMinute(ctx, now.Add(-72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for m, c := range got {
		if m.Before(now.Add(-minutesKept).Truncate(time.Minute)) {
			t.Errorf("minute %s is older than a day", m)
		}
		total += c
	}
	if total != 23+15 { // the hourly events of the last day (h = 2..24: the minute a day back is kept, as in the embedded store) and the last hour's
		t.Errorf("%d events in the last day, want 38", total)
	}
	if m, err := db.RecentMerges(ctx, 10); err != nil || len(m) != 0 {
		t.Errorf("no merges: %v %v", m, err)
	}
}

// Concurrent appends of one process share transactions (a group commit):
// fewer transactions wrote the events than there were calls, and each
// caller still gets its own result.
func TestGroupCommitShares(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	const callers = 64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			evs := []*portrait.Event{event(fmt.Sprintf("c%d-a", c)), event(fmt.Sprintf("c%d-b", c)), event(fmt.Sprintf("c%d-a", c))}
			res, err := db.Append(ctx, evs, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if res.Accepted != 2 || res.Duplicates != 1 || evs[0].Seq == 0 || evs[1].Seq != evs[0].Seq+1 || evs[2].Seq != 0 || res.LastSeq != evs[1].Seq {
				t.Errorf("caller %d: %+v, seqs %d %d %d", c, res, evs[0].Seq, evs[1].Seq, evs[2].Seq)
			}
		}()
	}
	close(start)
	wg.Wait()
	var n, txs int
	if err := db.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT xmin::text) FROM events`).Scan(&n, &txs); err != nil {
		t.Fatal(err)
	}
	if n != 2*callers {
		t.Fatalf("%d events, want %d", n, 2*callers)
	}
	if txs >= callers {
		t.Errorf("%d transactions for %d concurrent calls: nothing was grouped", txs, callers)
	}
	t.Logf("%d concurrent calls written by %d transactions", callers, txs)
	if _, ok := appendGroups.Load(db); ok {
		t.Error("an idle group is kept")
	}
}

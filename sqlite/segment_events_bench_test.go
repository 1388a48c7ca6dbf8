package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
)

// BenchmarkAppendSegmentEvents: as postgres's, a first evaluation's 10,000
// entries in one batch, then the same batch again.
func BenchmarkAppendSegmentEvents(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	at := time.Unix(1_700_000_000, 0)
	for i := 0; i < b.N; i++ {
		evs := make([]*segment.Event, 10000)
		for j := range evs {
			evs[j] = &segment.Event{Segment: fmt.Sprintf("s%d", i), Profile: fmt.Sprintf("p%05d", j), Kind: "enter", At: at}
		}
		if err := db.AppendSegmentEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
		if err := db.AppendSegmentEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
}

package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/segment"
)

// BenchmarkAppendSegmentEvents records a first evaluation's entries (10,000
// profiles new to the segment, one batch), then the same batch again (all
// recorded already): the history's write path, per batch.
func BenchmarkAppendSegmentEvents(b *testing.B) {
	ctx := context.Background()
	db := openTest(b)
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

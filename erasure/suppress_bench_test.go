package erasure_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/erasure"
)

// benchList is a suppression list in memory; benchLog discards.
type benchList struct{ list []*portrait.Suppression }

func (l *benchList) Suppressions(context.Context) ([]*portrait.Suppression, error) {
	return l.list, nil
}
func (l *benchList) Unsuppress(context.Context, string) (bool, error)        { return false, nil }
func (l *benchList) CountSuppressed(context.Context, map[string]int64) error { return nil }

type benchLog struct{ portrait.EventLog }

func (benchLog) Append(_ context.Context, evs []*portrait.Event, _ []*portrait.Rejected) (portrait.AppendResult, error) {
	return portrait.AppendResult{Accepted: len(evs)}, nil
}

// benchAppend appends batches of 100 events of 3 identifiers each, none
// suppressed, through a list of 1,000 suppressions made by hash.
func benchAppend(b *testing.B, sup *erasure.Suppressor, hash func(portrait.Identifier) (string, string)) {
	l := &benchList{}
	for i := range 1000 {
		k, h := hash(portrait.Identifier{Type: "phone", Value: fmt.Sprintf("+86138%08d", i)})
		l.list = append(l.list, &portrait.Suppression{Hash: h, Type: "phone", KeyID: k})
	}
	sup.EventLog, sup.Store = benchLog{}, l
	sup.IdentifiersOf = func(e *portrait.Event) []portrait.Identifier {
		return []portrait.Identifier{{Type: "user_id", Value: e.UserID}, {Type: "phone", Value: "+86139" + e.UserID}, {Type: "email", Value: e.UserID + "@example.com"}}
	}
	if err := sup.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	evs := make([]*portrait.Event, 100)
	for i := range evs {
		evs[i] = &portrait.Event{UserID: fmt.Sprintf("%08d", i)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if res, err := sup.Append(context.Background(), evs, nil); err != nil || res.Suppressed != 0 {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkSuppressUnkeyed: the list without a data key (what every
// version does).
func BenchmarkSuppressUnkeyed(b *testing.B) {
	benchAppend(b, &erasure.Suppressor{}, func(id portrait.Identifier) (string, string) { return "", portrait.SuppressionHash(id) })
}

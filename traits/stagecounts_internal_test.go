package traits

import (
	"testing"
	"time"
)

// utcDay reads a day only where time.Parse (what ParseHistory does) reads
// the same day, and refuses what time.Parse refuses or reads as the zero
// time; anything it leaves goes to time.Parse.
func FuzzUTCDay(f *testing.F) {
	for _, s := range []string{
		"2026-12-01T10:00:00Z", "2026-12-01T23:59:59.999999999Z", "2024-02-29T00:00:00Z", "2025-02-29T00:00:00Z",
		"2100-02-29T00:00:00Z", "2000-02-29T12:00:00.5Z", "1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "0002-03-01T00:00:00Z",
		"2026-01-02T24:00:00Z", "2026-01-02T23:60:00Z", "2026-01-02T23:59:60Z", "2026-01-02T10:00:00.Z",
		"2026-01-02T10:00:00.1234567890Z", "2026-01-02t10:00:00Z", "2026-01-02T10:00:00z", "2026-01-02T10:00:00+08:00",
		"2026-00-10T10:00:00Z", "2026-04-31T10:00:00Z", "+026-01-02T10:00:00Z", "2026-01-02T10:00:00,5Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := utcDay(s)
		if !ok {
			return // time.Parse decides
		}
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || at.IsZero() {
			t.Fatalf("utcDay(%q) = %d, but time.Parse: %v, %v", s, d, at, err)
		}
		if want := dayOf(at); d != want {
			t.Fatalf("utcDay(%q) = %d, time.Parse's day is %d", s, d, want)
		}
	})
}

// The hand reading takes the enricher's form, leap days included.
func TestUTCDayReadsTheEnrichersForm(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC),
		time.Date(2000, 2, 29, 0, 0, 0, 1000, time.UTC), time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC),
		time.Date(1600, 3, 1, 0, 0, 0, 0, time.UTC),
	} {
		d, ok := utcDay(stamp(at))
		if !ok || d != dayOf(at) {
			t.Errorf("utcDay(%q) = %d, %v; want %d", stamp(at), d, ok, dayOf(at))
		}
	}
	for _, s := range []string{"2025-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2026-04-31T10:00:00Z", "0001-01-01T00:00:00Z"} {
		if _, ok := utcDay(s); ok {
			t.Errorf("utcDay(%q) read a day; time.Parse refuses it or reads the zero time", s)
		}
	}
}

package clv_test

import (
	"testing"

	"github.com/portrait-cdp/portrait/analytics/clv"
)

// BenchmarkBGNBDMaster fits BG/NBD on all 23,570 CDNOW master customers; the
// target is well under a second.
func BenchmarkBGNBDMaster(b *testing.B) {
	cs, err := clv.Summarize(readCDNOW(b, "CDNOW_master.txt"), clv.SummaryOptions{CalibrationEnd: calEnd})
	if err != nil {
		b.Fatal(err)
	}
	if len(cs) != 23570 {
		b.Fatalf("%d customers, want 23570", len(cs))
	}
	for b.Loop() {
		if _, err := clv.FitBGNBD(cs, clv.FitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

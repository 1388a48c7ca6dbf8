package clv_test

import (
	"testing"
	"time"

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

// BenchmarkHoldoutMaster runs the whole holdout check on the 23,570 master
// customers (summary, BG/NBD and Gamma-Gamma fits, conditional expectations,
// the 78-week curve); BenchmarkSummarizeFitMaster is its baseline: the
// summary and fits alone, which every CLV run does anyway.
func BenchmarkHoldoutMaster(b *testing.B) {
	ps := readCDNOW(b, "CDNOW_master.txt")
	end := time.Date(1998, 6, 30, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		if _, err := clv.CheckHoldout(ps, clv.HoldoutOptions{CalibrationEnd: calEnd, HoldoutEnd: end}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSummarizeFitMaster(b *testing.B) {
	ps := readCDNOW(b, "CDNOW_master.txt")
	for b.Loop() {
		cs, err := clv.Summarize(ps, clv.SummaryOptions{CalibrationEnd: calEnd})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := clv.FitBGNBD(cs, clv.FitOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := clv.FitGammaGamma(cs, clv.FitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

package didyoumean_test

import (
	"testing"

	"github.com/portrait-cdp/portrait/internal/didyoumean"
)

func TestSuggest(t *testing.T) {
	known := []string{"revenue", "purchase_count", "province", "city", "age", "rfm_segment", "高价值", "days_since_last_purchase"}
	for name, want := range map[string]string{
		"revenu":                  "revenue",
		"revnue":                  "revenue", // a swap
		"Revenue_":                "revenue",
		"purchase_cnt":            "purchase_count", // 2 insertions
		"purch_count":             "",               // 3 edits: too far
		"provnce":                 "province",
		"cty":                     "city",
		"ag":                      "", // too short for a guess
		"agee":                    "age",
		"rfm_segmnet":             "rfm_segment",
		"高价":                      "",
		"高价直":                     "高价值",
		"days_since_last_purchse": "days_since_last_purchase",
		"vip":                     "", // the null case: nothing like it
		"revenue":                 "", // a known name is not suggested for itself
	} {
		if got := didyoumean.Suggest(name, known); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", name, got, want)
		}
	}
}

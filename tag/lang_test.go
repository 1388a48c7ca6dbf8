package tag_test

import (
	"context"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/tag"
)

// A rule reads traits by bare name or as traits.x / traits["x"], as a
// segment does, with the same outcome; a misspelt trait says what it was
// probably meant to be, and a name like nothing known does not guess.
func TestRulesAcceptTheSegmentForms(t *testing.T) {
	e := open(t)
	ctx := context.Background()
	forms := map[string]string{
		"bare":    `revenue >= 1000 && purchase_count in 2..10`,
		"dotted":  `traits.revenue >= 1000 && traits.purchase_count in 2..10`,
		"indexed": `traits["revenue"] >= 1000 && traits["purchase_count"] in 2..10`,
		"mixed":   `traits.revenue >= 1000 && purchase_count in 2..10`,
		"nil":     `traits.revenue != nil && traits.favourite_category == nil && revenue > 1000`,
	}
	for name, x := range forms {
		if _, err := e.svc.Define(ctx, tag.Definition{Name: name, Dimension: "value", Expression: x}); err != nil {
			t.Fatalf("%s: %v", x, err)
		}
	}
	e.send(t, order("o1", "big", 0, 800), order("o2", "big", day, 700), order("o3", "small", 0, 50))
	big, small := tagsOf(t, e, "big"), tagsOf(t, e, "small")
	for name := range forms {
		if _, ok := big[name]; !ok {
			t.Errorf("%s (%s) does not hold for the big buyer: %v", name, forms[name], big)
		}
		if _, ok := small[name]; ok {
			t.Errorf("%s (%s) holds for the small buyer", name, forms[name])
		}
	}
	for x, want := range map[string]string{
		`traits.revenu > 100`:          "did you mean revenue?",
		`revnue > 100`:                 "did you mean revenue?",
		`days_since_last_purchse < 30`: "did you mean days_since_last_purchase?",
		`loyalty_points > 100`:         "unknown name loyalty_points",
	} {
		_, err := e.svc.Define(ctx, tag.Definition{Name: "typo", Dimension: "value", Expression: x})
		msg := portrait.ErrorMessage(err)
		if portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(msg, want) {
			t.Errorf("%s: %v, want %q", x, err, want)
		}
		if strings.HasPrefix(x, "loyalty") && strings.Contains(msg, "did you mean") {
			t.Errorf("%s: guessed for a name like nothing known: %s", x, msg)
		}
	}
}

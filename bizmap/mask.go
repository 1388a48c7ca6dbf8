package bizmap

import (
	"slices"
	"strings"

	"github.com/portrait-cdp/portrait/journey"
	"github.com/portrait-cdp/portrait/needs"
)

// MaskedFigure is a figure left out of the cells for a caller who may not
// see the trait it is computed from.
type MaskedFigure struct {
	Figure string `json:"figure"`
	Trait  string `json:"trait"`
	Reason string `json:"reason"`
}

// figureTraits are the traits each figure of a cell at stage (next the
// stage after it, "" for the last) is computed from. The counts
// (customers, share, current, conversion, responses) are of the cell's
// members and are always shown.
func figureTraits(stage, next string) [][2]string {
	out := [][2]string{
		{"revenue", TraitRevenue}, {"clv", TraitCLV}, {"churn_probability", TraitChurn},
		{"expected_purchases_90d", TraitExpected}, {"nps", journey.NPSAt(stage)}, {"csat", journey.CSATAt(stage)},
		{"needs", needs.TraitNeeds}, {"pain_points", needs.TraitPainPoints}, {"channels", journey.ChannelOf(stage)},
	}
	if next != "" {
		out = append(out, [2]string{"median_days_to_next", journey.DaysTo(stage, next)})
	}
	return out
}

// ruleFigures are the rule figures each cell figure stands for: a rule
// reading top_need reads the needs.
var ruleFigures = map[string][]string{
	"needs":       {"top_need", "top_need_share"},
	"pain_points": {"top_pain", "top_pain_share", "pain_share"},
}

// Mask leaves out of m's cells every figure computed from a trait hidden
// says the caller may not see, and the actions of the rules that read one,
// and lists them in m.MaskedFigures with reason's words. A mean, a sum or
// a median over a cell is its member's value when the cell holds one
// customer (GET /v1/map/members names them), and a difference of two
// cells' sums is one too: so the figure goes for every cell, not only the
// small ones, as the breakdown's metric does. An action says a figure
// crossed its rule's threshold, a bound on the hidden value: it goes too.
// Counts stay. A figure left out is null (its Count lists empty), never 0.
func (s *Service) Mask(m *Map, hidden func(trait string) bool, reason func(trait string) string) {
	labelFigures := map[string][]string{}
	for _, r := range s.rules {
		for _, l := range []string{r.LabelZh, r.LabelEn} {
			if strings.Contains(l, "{need}") {
				labelFigures[r.Name] = append(labelFigures[r.Name], "top_need")
			}
			if strings.Contains(l, "{pain}") {
				labelFigures[r.Name] = append(labelFigures[r.Name], "top_pain")
			}
		}
	}
	seen := map[string]bool{}
	masked := map[string]bool{} // by trait
	for i := range m.Rows {
		for j := range m.Rows[i].Cells {
			c := &m.Rows[i].Cells[j]
			next := ""
			if k := s.Journey.Index(c.Stage); k >= 0 && k+1 < len(s.Journey.Stages) {
				next = s.Journey.Stages[k+1].Name
			}
			var gone []string // rule figures left out of this cell
			for _, ft := range figureTraits(c.Stage, next) {
				fig, trait := ft[0], ft[1]
				h, ok := masked[trait]
				if !ok {
					h = hidden(trait)
					masked[trait] = h
				}
				if !h {
					continue
				}
				if !seen[fig+"\x00"+trait] {
					seen[fig+"\x00"+trait] = true
					m.MaskedFigures = append(m.MaskedFigures, MaskedFigure{Figure: fig, Trait: trait, Reason: reason(trait)})
				}
				gone = append(gone, fig)
				gone = append(gone, ruleFigures[fig]...)
				switch fig {
				case "revenue":
					c.Revenue = nil
				case "clv":
					c.CLV = nil
				case "churn_probability":
					c.ChurnProbability = nil
				case "expected_purchases_90d":
					c.ExpectedPurchases90d = nil
				case "nps":
					c.NPS = nil
				case "csat":
					c.CSAT = nil
				case "median_days_to_next":
					c.MedianDaysToNext = nil
				case "needs":
					c.Needs = []Count{}
				case "pain_points":
					c.PainPoints = []Count{}
				case "channels":
					// grouped by the channel: the conversion by channel
					// goes with it, the cell's conversion stays
					c.Channels = []Count{}
				}
			}
			if len(gone) == 0 {
				continue
			}
			c.Actions = slices.DeleteFunc(c.Actions, func(a Action) bool {
				// a label naming {need} or {pain} quotes the top one
				// whether or not the rule reads it
				for _, f := range labelFigures[a.Rule] {
					if slices.Contains(gone, f) {
						return true
					}
				}
				for f := range a.Figures {
					if slices.Contains(gone, f) {
						return true
					}
				}
				return false
			})
		}
	}
}

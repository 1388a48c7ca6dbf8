package traits

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
)

// NPS categories.
const (
	Promoter  = "promoter"
	Passive   = "passive"
	Detractor = "detractor"
)

// NPSCategory classifies an answer 0-10.
func NPSCategory(score int) string {
	switch {
	case score >= 9:
		return Promoter
	case score >= 7:
		return Passive
	}
	return Detractor
}

// NPSQuery selects and groups survey answers.
type NPSQuery struct {
	// By groups answers: "" (everyone), "tag" (each tag the customer
	// carries), or "trait:<name>" (the value of a trait, e.g.
	// trait:rfm_segment).
	By string
	// Groups, when set, gives the groups a customer counts in instead of By
	// (segments: the caller knows their members, this package does not).
	Groups func(p *portrait.Profile) []string
	// Interval buckets answers by time: all, day, week, month, quarter.
	Interval string
	From, To time.Time // answers in [From, To); zero means open
}

// NPSRow is one group in one period.
type NPSRow struct {
	Group      string   `json:"group"`
	Period     string   `json:"period"`
	Responses  int      `json:"responses"`
	Promoters  int      `json:"promoters"`
	Passives   int      `json:"passives"`
	Detractors int      `json:"detractors"`
	NPS        *float64 `json:"nps"` // % promoters - % detractors, -100..100
	CSATCount  int      `json:"csat_responses"`
	CSAT       *float64 `json:"csat"`           // mean 1-5
	CSATSatis  *float64 `json:"csat_satisfied"` // share of 4 and 5, %
	csatSum    int
	csatTop    int
}

// Validate checks q.
func (q *NPSQuery) Validate() error {
	switch q.Interval {
	case "":
		q.Interval = "month"
	case "all", "day", "week", "month", "quarter":
	default:
		return portrait.Errorf(portrait.EINVALID, "interval must be all, day, week, month or quarter, not %q", q.Interval)
	}
	if q.Groups == nil && q.By != "" && q.By != "tag" && !(strings.HasPrefix(q.By, "trait:") && len(q.By) > len("trait:")) {
		return portrait.Errorf(portrait.EINVALID, "by must be empty, tag or trait:<name>, not %q", q.By)
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return portrait.Errorf(portrait.EINVALID, "from must be before to")
	}
	return nil
}

func period(t time.Time, interval string) string {
	t = t.UTC()
	switch interval {
	case "all":
		return "all"
	case "day":
		return t.Format("2006-01-02")
	case "week":
		y, w := t.ISOWeek()
		return fmt.Sprintf("%d-W%02d", y, w)
	case "quarter":
		return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1)
	}
	return t.Format("2006-01")
}

var svKey = []byte(`"sv":`)

// Surveys returns the survey answers kept in p's state.
func Surveys(p *portrait.Profile) []Survey {
	raw := p.State[StateKey]
	// The segment index asks for every profile it is told changed, and
	// most customers never answered a survey: their state (a few KB of
	// purchases, sessions, categories) has no "sv" key and is not parsed.
	if len(raw) == 0 || !bytes.Contains(raw, svKey) {
		return nil
	}
	var s struct {
		Surveys []Survey `json:"sv"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	return s.Surveys
}

// AggregateNPS computes NPS and CSAT per group and period over every
// profile's answers. A customer counts in every group they belong to.
func AggregateNPS(ctx context.Context, each func(ctx context.Context, fn func(*portrait.Profile) error) error, q NPSQuery) ([]NPSRow, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return AggregateSurveys(func(fn func(ss []Survey, groups []string) error) error {
		return each(ctx, func(p *portrait.Profile) error {
			ss := Surveys(p)
			if len(ss) == 0 {
				return ctx.Err()
			}
			groups := []string{"all"}
			switch {
			case q.Groups != nil:
				groups = q.Groups(p)
			case q.By == "tag":
				groups = groups[:0]
				for _, t := range p.Tags {
					groups = append(groups, t.Name)
				}
				groups = TagGroups(groups)
			case strings.HasPrefix(q.By, "trait:"):
				v := p.Traits[strings.TrimPrefix(q.By, "trait:")].Value
				if v == nil {
					groups = []string{"(unknown)"}
				} else {
					groups = []string{valueKey(v)}
				}
			}
			if err := fn(ss, groups); err != nil {
				return err
			}
			return ctx.Err()
		})
	}, q)
}

// TagGroups is the NPS groups of a customer with these tags: the tags, or
// "(untagged)".
func TagGroups(tags []string) []string {
	if len(tags) == 0 {
		return []string{"(untagged)"}
	}
	return tags
}

// KeepSurveys is what a profile index keeps for NPS without reading
// documents (segment.Index.SetKeep): the profile's survey answers, nil
// when it has none.
func KeepSurveys(p *portrait.Profile) any {
	if ss := Surveys(p); len(ss) > 0 {
		return ss
	}
	return nil
}

// AggregateSurveys computes NPS and CSAT per group and period from the
// answers each calls fn with, each customer's answers with the groups
// they count in. q.By and q.Groups are the caller's business here.
func AggregateSurveys(each func(fn func(ss []Survey, groups []string) error) error, q NPSQuery) ([]NPSRow, error) {
	if q.Interval == "" {
		q.Interval = "month"
	}
	rows := map[[2]string]*NPSRow{}
	err := each(func(ss []Survey, groups []string) error {
		for _, s := range ss {
			at := s.Time()
			if (!q.From.IsZero() && at.Before(q.From)) || (!q.To.IsZero() && !at.Before(q.To)) {
				continue
			}
			per := period(at, q.Interval)
			for _, g := range groups {
				r := rows[[2]string{g, per}]
				if r == nil {
					r = &NPSRow{Group: g, Period: per}
					rows[[2]string{g, per}] = r
				}
				if s.NPS != nil {
					r.Responses++
					switch NPSCategory(*s.NPS) {
					case Promoter:
						r.Promoters++
					case Passive:
						r.Passives++
					default:
						r.Detractors++
					}
				}
				if s.CSAT != nil {
					r.CSATCount++
					r.csatSum += *s.CSAT
					if *s.CSAT >= 4 {
						r.csatTop++
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]NPSRow, 0, len(rows))
	round := func(x float64) *float64 { x = math.Round(x*100) / 100; return &x }
	for _, r := range rows {
		if r.Responses > 0 {
			r.NPS = round(100 * float64(r.Promoters-r.Detractors) / float64(r.Responses))
		}
		if r.CSATCount > 0 {
			r.CSAT = round(float64(r.csatSum) / float64(r.CSATCount))
			r.CSATSatis = round(100 * float64(r.csatTop) / float64(r.CSATCount))
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Period < out[j].Period
	})
	return out, nil
}

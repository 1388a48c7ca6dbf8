// Package journey derives every profile's service path (服务路径): the
// configured stages a customer goes through (by default consult 咨询 →
// purchase 购买 → after-sales 售后), the stage they are in now, the history
// of their stage changes, the time spent in each stage and the channel each
// stage was reached through, and their satisfaction (NPS, CSAT) answered at
// each stage.
//
// Stages are derived from events by event time: the enricher keeps the
// matching events (a set keyed by message id, bounded to the latest ones)
// and computes everything from them in Finish, so a profile is the same in
// whatever order its events arrived, and a rebuild gives the same result.
package journey

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// Source is the Source of the traits this package writes. It is not
// traits.SourceComputed: the traits enricher owns the traits of that source
// and removes those it did not write.
const Source = "journey"

// Default stage names.
const (
	Consult    = "consult"
	Purchase   = "purchase"
	AfterSales = "after_sales"
)

// Pattern is a kind of event that puts a customer in a stage. Non-empty
// fields must all match.
type Pattern struct {
	// Event is a track event name (or a page/screen name).
	Event string `json:"event,omitempty" yaml:"event"`
	// Type is an event type: track, page, screen, identify...
	Type string `json:"type,omitempty" yaml:"type"`
	// Properties must hold these values (a list: any of them).
	Properties map[string]any `json:"properties,omitempty" yaml:"properties"`
	// Channels restricts to events from these touchpoints (see
	// traits.Channel).
	Channels []string `json:"channels,omitempty" yaml:"channels"`
}

// Stage is one step of the service path.
type Stage struct {
	Name     string    `json:"name" yaml:"name"`
	LabelZh  string    `json:"label_zh,omitempty" yaml:"label_zh"`
	LabelEn  string    `json:"label_en,omitempty" yaml:"label_en"`
	Patterns []Pattern `json:"patterns" yaml:"patterns"`
}

// Config is the service path.
type Config struct {
	// Stages in their path order; conversion is measured from each to the
	// next.
	Stages []Stage `json:"stages" yaml:"stages"`
	// SurveyEvents carry satisfaction answers (properties nps 0-10, csat
	// 1-5), attributed to the stage the customer was in when answering.
	SurveyEvents []string `json:"survey_events" yaml:"survey_events"`
	// MaxHits bounds the matching events kept per profile (the latest).
	MaxHits int `json:"max_hits,omitempty" yaml:"max_hits"`
}

// DefaultConfig is consult → purchase → after-sales with the event names of
// the Segment e-commerce and support specs and the demo's.
func DefaultConfig() Config {
	return Config{
		Stages: []Stage{
			{Name: Consult, LabelZh: "咨询", LabelEn: "Consult", Patterns: []Pattern{
				{Event: "Consultation Requested"}, {Event: "Consult Started"}, {Event: "Chat Started"},
				{Event: "Product Inquiry"}, {Event: "Quote Requested"}, {Event: "Form Submitted", Properties: map[string]any{"form": "consult"}},
			}},
			{Name: Purchase, LabelZh: "购买", LabelEn: "Purchase", Patterns: []Pattern{
				{Event: "Order Completed"}, {Event: "Policy Purchased"},
			}},
			{Name: AfterSales, LabelZh: "售后", LabelEn: "After-sales", Patterns: []Pattern{
				{Event: "Ticket Created"}, {Event: "Ticket Opened"}, {Event: "Support Ticket Opened"}, {Event: "Complaint Submitted"},
				{Event: "Return Requested"}, {Event: "Order Refunded"}, {Event: "Claim Filed"},
			}},
		},
		SurveyEvents: []string{"Survey Submitted", "Survey Completed", "NPS Survey Submitted"},
		MaxHits:      256,
	}
}

var stageNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// Validate checks c and fills defaults.
func (c *Config) Validate() error {
	if len(c.Stages) == 0 {
		return portrait.Errorf(portrait.EINVALID, "journey: at least one stage is needed")
	}
	if len(c.Stages) > 16 {
		return portrait.Errorf(portrait.EINVALID, "journey: at most 16 stages, not %d", len(c.Stages))
	}
	seen := map[string]bool{}
	for i, s := range c.Stages {
		if !stageNameRE.MatchString(s.Name) {
			return portrait.Errorf(portrait.EINVALID, "journey: stage %d name %q: use lower case letters, digits and _ (at most 32)", i+1, s.Name)
		}
		if seen[s.Name] {
			return portrait.Errorf(portrait.EINVALID, "journey: stage %q is declared twice", s.Name)
		}
		seen[s.Name] = true
		if len(s.Patterns) == 0 {
			return portrait.Errorf(portrait.EINVALID, "journey: stage %q has no event pattern", s.Name)
		}
		for j, p := range s.Patterns {
			if p.Event == "" && p.Type == "" && len(p.Properties) == 0 && len(p.Channels) == 0 {
				return portrait.Errorf(portrait.EINVALID, "journey: stage %q pattern %d matches every event: give an event, type, property or channel", s.Name, j+1)
			}
			for k, v := range p.Properties {
				if !scalarOrList(v) {
					return portrait.Errorf(portrait.EINVALID, "journey: stage %q pattern %d property %q: want a string, number, boolean or a list of them", s.Name, j+1, k)
				}
			}
		}
	}
	if c.MaxHits <= 0 {
		c.MaxHits = 256
	}
	return nil
}

func scalarOrList(v any) bool {
	switch x := v.(type) {
	case string, bool, float64, int, int64:
		return true
	case []any:
		for _, e := range x {
			if !scalarOrList(e) {
				return false
			}
			if _, nested := e.([]any); nested {
				return false
			}
		}
		return len(x) > 0
	}
	return false
}

// Names lists the stage names in path order.
func (c Config) Names() []string {
	out := make([]string, len(c.Stages))
	for i, s := range c.Stages {
		out[i] = s.Name
	}
	return out
}

// Index is the position of a stage (-1: none).
func (c Config) Index(name string) int {
	return slices.IndexFunc(c.Stages, func(s Stage) bool { return s.Name == name })
}

// Label is the stage's name in lang (zh or en).
func (s Stage) Label(lang string) string {
	if lang == "zh" && s.LabelZh != "" {
		return s.LabelZh
	}
	if s.LabelEn != "" {
		return s.LabelEn
	}
	return s.Name
}

// Trait names. Stage-specific ones take the stage name.
const (
	TraitStage   = "journey_stage"   // the current stage
	TraitReached = "journey_reached" // stages ever reached, in path order
	TraitHistory = "journey_history" // stage changes: [{stage, at, message_id, channel}]
	TraitSince   = "journey_stage_since"
)

// DaysIn is the trait of days spent in a stage, all visits together.
func DaysIn(stage string) string { return "journey_days_in_" + stage }

// ChannelOf is the trait of the channel a stage was first reached through.
func ChannelOf(stage string) string { return "journey_channel_" + stage }

// DaysTo is the trait of days from first reaching from to first reaching
// to after it.
func DaysTo(from, to string) string { return fmt.Sprintf("journey_days_%s_to_%s", from, to) }

// NPSAt and CSATAt are the traits of the latest answer given at a stage.
func NPSAt(stage string) string  { return "nps_at_" + stage }
func CSATAt(stage string) string { return "csat_at_" + stage }

// ReachedExpr is the segment expression of the profiles that reached stage.
func ReachedExpr(stage string) string {
	return fmt.Sprintf("%q in %s", stage, TraitReached)
}

// match reports whether an event matches p.
func (p *Pattern) match(ev *portrait.Event, props map[string]any, channel func() string) bool {
	if p.Event != "" && ev.Name != p.Event {
		return false
	}
	if p.Type != "" && ev.Type != p.Type {
		return false
	}
	for k, want := range p.Properties {
		if !valueMatches(props[k], want) {
			return false
		}
	}
	if len(p.Channels) > 0 && !slices.Contains(p.Channels, channel()) {
		return false
	}
	return true
}

func valueMatches(got, want any) bool {
	if l, ok := want.([]any); ok {
		for _, w := range l {
			if valueMatches(got, w) {
				return true
			}
		}
		return false
	}
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		return ok && strings.EqualFold(strings.TrimSpace(g), w)
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	case int:
		g, ok := got.(float64)
		return ok && g == float64(w)
	case int64:
		g, ok := got.(float64)
		return ok && g == float64(w)
	case float64:
		g, ok := got.(float64)
		return ok && g == w
	}
	return false
}

package traits

import (
	"cmp"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait/access"
)

// Trait value types.
const (
	TypeNumber  = "number"
	TypeString  = "string"
	TypeBoolean = "boolean"
	TypeTime    = "time" // an RFC 3339 string
	TypeList    = "list"
	TypeObject  = "object"
	TypeAny     = "any"
)

// Dimensions of a portrait (画像维度).
const (
	DimBasic     = "basic"     // 基本信息
	DimBehaviour = "behaviour" // 行为
	DimNeeds     = "needs"     // 需求偏好
	DimFeedback  = "feedback"  // 反馈评价
	DimValue     = "value"     // 价值
	DimRisk      = "risk"      // 风险
)

// Dimensions lists the dimensions in display order.
var Dimensions = []string{DimBasic, DimBehaviour, DimNeeds, DimFeedback, DimValue, DimRisk}

// Classification levels (密级), lowest first.
const (
	ClassPublic       = "public"
	ClassInternal     = "internal"
	ClassConfidential = "confidential"
	ClassSecret       = "secret"
)

// Classifications lists the levels, lowest first.
var Classifications = []string{ClassPublic, ClassInternal, ClassConfidential, ClassSecret}

func validDimension(d string) bool {
	for _, x := range Dimensions {
		if x == d {
			return true
		}
	}
	return false
}

func validClassification(c string) bool {
	for _, x := range Classifications {
		if x == c {
			return true
		}
	}
	return false
}

// Origins of a schema field.
const (
	OriginBuiltin  = "builtin"
	OriginComputed = "computed"
	OriginObserved = "observed" // typed on first sight in incoming data
	OriginDeclared = "declared" // named by what writes it (an analysis) before any profile has it
)

// Field describes one trait.
type Field struct {
	Name           string    `json:"name"`
	Type           string    `json:"type"`
	Dimension      string    `json:"dimension"`
	Classification string    `json:"classification"`
	Description    string    `json:"description"`
	Origin         string    `json:"origin"`
	FirstSeen      time.Time `json:"first_seen,omitzero"`
	// Annotated: a person set the dimension and classification (Annotate).
	// Those of a field typed on first sight and never annotated follow the
	// defaults of the running version (Load re-applies them).
	Annotated bool `json:"annotated,omitempty"`
}

// firstSight is the description of a field typed on first sight.
const firstSight = "typed on first sight"

// firstSightByValue is the description of a field whose first value
// raised its classification (raiseByValue).
const firstSightByValue = "typed on first sight; classified by its first value (an ID number, a mobile number or an email)"

// Conflict is an incoming value whose type differs from the trait's schema.
// It is reported, and the value kept as sent; rules that compare the trait
// treat such a value as unknown.
type Conflict struct {
	Name     string    `json:"name"`
	Want     string    `json:"want"`
	Got      string    `json:"got"`
	Count    int64     `json:"count"`
	LastSeen time.Time `json:"last_seen"`
}

func f(name, typ, dim, class, desc string) Field {
	return Field{Name: name, Type: typ, Dimension: dim, Classification: class, Description: desc, Origin: OriginBuiltin}
}

// builtinFields are the traits every portrait has.
var builtinFields = map[string]Field{}

func init() {
	for _, x := range []Field{
		f("first_seen", TypeTime, DimBehaviour, ClassInternal, "time of the customer's first event"),
		f("last_seen", TypeTime, DimBehaviour, ClassInternal, "time of the customer's latest event"),
		f("days_since_last_seen", TypeNumber, DimBehaviour, ClassInternal, "whole days from the latest event to now"),
		f("sessions", TypeNumber, DimBehaviour, ClassInternal, "visits: runs of events with less than 30 minutes between them"),
		f("purchase_count", TypeNumber, DimValue, ClassInternal, "number of purchases (Order Completed by default)"),
		f("revenue", TypeNumber, DimValue, ClassConfidential, "sum of purchase amounts"),
		f("avg_order_value", TypeNumber, DimValue, ClassConfidential, "revenue / purchase_count"),
		f("first_purchase_at", TypeTime, DimValue, ClassInternal, "time of the first purchase"),
		f("last_purchase_at", TypeTime, DimValue, ClassInternal, "time of the latest purchase"),
		f("days_since_last_purchase", TypeNumber, DimValue, ClassInternal, "whole days from the latest purchase to now"),
		f("favourite_category", TypeString, DimNeeds, ClassInternal, "most frequent category among purchases"),
		f("preferred_channel", TypeString, DimNeeds, ClassInternal, "most frequent channel: properties.channel, else the one the SDK implies (context.library.name: web, app or server), else context.channel, else the sending source"),
		f("rfm_r", TypeNumber, DimValue, ClassInternal, "recency quintile 1-5 (5 = most recent)"),
		f("rfm_f", TypeNumber, DimValue, ClassInternal, "frequency quintile 1-5 (5 = most purchases)"),
		f("rfm_m", TypeNumber, DimValue, ClassInternal, "monetary quintile 1-5 (5 = most revenue)"),
		f("rfm_score", TypeString, DimValue, ClassInternal, "R, F and M scores as three digits"),
		f("rfm_segment", TypeString, DimValue, ClassInternal, "RFM segment: champions, loyal, potential_loyalist, new_customer, promising, need_attention, about_to_sleep, cant_lose, at_risk, hibernating"),
		f("lifecycle_stage", TypeString, DimValue, ClassInternal, "prospect, new, repeat, loyal, at_risk or churned"),
		f("lifecycle_history", TypeList, DimValue, ClassInternal, "stage transitions: [{stage, at}]"),
		f("nps_score", TypeNumber, DimFeedback, ClassInternal, "latest NPS answer 0-10"),
		f("nps_category", TypeString, DimFeedback, ClassInternal, "promoter (9-10), passive (7-8) or detractor (0-6)"),
		f("csat_score", TypeNumber, DimFeedback, ClassInternal, "latest CSAT answer 1-5"),
		f("feedback_comment", TypeString, DimFeedback, ClassConfidential, "latest free-text survey comment"),
	} {
		builtinFields[x.Name] = x
	}
}

// IsBuiltin reports whether name is a built-in trait.
func IsBuiltin(name string) bool {
	_, ok := builtinFields[name]
	return ok
}

// TypeOf returns the schema type of a JSON-decoded value.
func TypeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64, float32, int, int64, int32, uint, uint64, uint32:
		return TypeNumber
	case bool:
		return TypeBoolean
	case string:
		if len(x) >= 20 && len(x) <= 40 && x[4] == '-' && x[10] == 'T' {
			if _, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return TypeTime
			}
		}
		return TypeString
	case []any:
		return TypeList
	case map[string]any:
		return TypeObject
	}
	return TypeAny
}

// compatible: a time is also a string, and a declared "any" takes anything.
func compatible(want, got string) bool {
	return want == got || want == TypeAny || (want == TypeString && got == TypeTime)
}

// Schema is the registry of trait types: built-ins, computed definitions
// and incoming traits typed on first sight. It is safe for concurrent use.
type Schema struct {
	mu        sync.RWMutex
	computed  map[string]Field
	observed  map[string]Field
	declared  map[string]Field // see Declare
	conflicts map[string]*Conflict
	unsaved   []Field
}

// NewSchema returns a schema holding the built-ins.
func NewSchema() *Schema {
	return &Schema{computed: map[string]Field{}, observed: map[string]Field{}, declared: map[string]Field{}, conflicts: map[string]*Conflict{}}
}

// Declare names traits that something other than incoming data writes
// (the analyses' outputs: analytics/jobs.Outputs), with their types, so
// that rules can name them before any profile has them: a tag on
// churn_probability is accepted on a store that no churn run has scored
// yet. A declared field only fills a gap: the built-ins, computed
// definitions and fields typed on first sight (stored, annotated by a
// person) come first, and the first value written is still typed and
// stored as before (Observe). Dimension and classification default as for
// a field seen first (defaultAnnotation); declared fields are not stored.
func (s *Schema) Declare(fields ...Field) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fl := range fields {
		if fl.Name == "" || fl.Type == "" {
			continue
		}
		if fl.Dimension == "" || fl.Classification == "" {
			dim, class := defaultAnnotation(fl.Name)
			fl.Dimension = cmp.Or(fl.Dimension, dim)
			fl.Classification = cmp.Or(fl.Classification, class)
		}
		fl.Origin = OriginDeclared
		s.declared[fl.Name] = fl
	}
}

// Lookup returns the field for name.
func (s *Schema) Lookup(name string) (Field, bool) {
	if f, ok := builtinFields[name]; ok {
		return f, true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if f, ok := s.computed[name]; ok {
		return f, true
	}
	if f, ok := s.observed[name]; ok {
		return f, true
	}
	f, ok := s.declared[name]
	return f, ok
}

// Types maps every known trait to its type, for type-checking rules.
func (s *Schema) Types() map[string]string {
	out := map[string]string{}
	for _, fl := range s.Fields() {
		out[fl.Name] = fl.Type
	}
	return out
}

// Fields lists every known trait by name.
func (s *Schema) Fields() []Field {
	s.mu.RLock()
	out := make([]Field, 0, len(builtinFields)+len(s.computed)+len(s.observed)+len(s.declared))
	for _, x := range builtinFields {
		out = append(out, x)
	}
	for _, x := range s.computed {
		out = append(out, x)
	}
	for n, x := range s.observed {
		if _, ok := s.computed[n]; !ok {
			out = append(out, x)
		}
	}
	for n, x := range s.declared {
		_, computed := s.computed[n]
		_, observed := s.observed[n]
		if _, builtin := builtinFields[n]; !computed && !observed && !builtin {
			out = append(out, x)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Conflicts lists the type conflicts seen, by trait name.
func (s *Schema) Conflicts() []Conflict {
	s.mu.RLock()
	out := make([]Conflict, 0, len(s.conflicts))
	for _, c := range s.conflicts {
		out = append(out, *c)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Schema) setComputed(defs []Definition) {
	m := make(map[string]Field, len(defs))
	for _, d := range defs {
		desc := d.Description
		if desc == "" {
			desc = fmt.Sprintf("%s of %s", d.Aggregate, describeSource(d))
		}
		m[d.Name] = Field{Name: d.Name, Type: d.valueType(), Dimension: d.Dimension, Classification: d.Classification, Description: desc, Origin: OriginComputed}
	}
	s.mu.Lock()
	s.computed = m
	s.mu.Unlock()
}

func describeSource(d Definition) string {
	what := "events"
	if d.Event != "" {
		what = fmt.Sprintf("%q events", d.Event)
	} else if d.Type != "" {
		what = d.Type + " events"
	}
	if d.Property != "" {
		what = "properties." + d.Property + " of " + what
	}
	if d.Window != "" {
		what += " in the last " + d.Window
	}
	return what
}

// Observe types an incoming trait on first sight and records a conflict
// when a later value has another type. It never fails: data is accepted as
// sent, and the conflict is reported.
// maxObserved bounds the trait names typed on first sight: a client sending
// thousands of made-up trait names must not grow the schema without bound.
const maxObserved = 5000

func (s *Schema) Observe(name string, v any, at time.Time) {
	got := TypeOf(v)
	if got == "" || name == "" {
		return
	}
	if fl, ok := builtinFields[name]; ok {
		if !compatible(fl.Type, got) {
			s.conflict(name, fl.Type, got, at)
		}
		return
	}
	s.mu.RLock()
	fl, ok := s.computed[name]
	if !ok {
		fl, ok = s.observed[name]
	}
	s.mu.RUnlock()
	if ok {
		if !compatible(fl.Type, got) {
			s.conflict(name, fl.Type, got, at)
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.observed[name]; ok {
		return
	}
	if len(s.observed) >= maxObserved {
		return // beyond the bound, a name is not remembered (see maxObserved)
	}
	dim, class := defaultAnnotation(name)
	desc := firstSight
	if c, raised := raiseByValue(class, v); raised {
		// Not the first-sight description: Load, which re-applies the
		// defaults by name to fields typed on first sight, keeps it.
		class, desc = c, firstSightByValue
	}
	fl = Field{Name: name, Type: got, Dimension: dim, Classification: class, Origin: OriginObserved, FirstSeen: at,
		Description: desc}
	s.observed[name] = fl
	s.unsaved = append(s.unsaved, fl)
}

// defaultAnnotation is the dimension and classification a trait gets on
// first sight. The analyses write their outputs as ordinary traits: value
// predictions belong to value and churn to risk, not to basic information.
// Levels follow the privacy issue (15): an ID or passport number is
// secret (机密); phone, email and address are confidential (秘密), like
// revenue; computed scores internal. access.Classifier applies the same
// defaults to identifier types.
func defaultAnnotation(name string) (dim, class string) {
	n := strings.ToLower(name)
	has := func(words ...string) bool {
		for _, w := range words {
			if n == w || strings.HasPrefix(n, w+"_") || strings.HasSuffix(n, "_"+w) {
				return true
			}
		}
		return false
	}
	switch {
	case has("churn", "churn_probability", "risk", "risk_score"):
		return DimRisk, ClassConfidential
	case has("clv", "p_alive", "expected_purchases", "expected_spend", "purchase_probability", "ltv"):
		return DimValue, ClassConfidential
	case has("next_best_products"):
		return DimNeeds, ClassInternal
	case needsTraits[n] != "":
		return DimNeeds, needsTraits[n]
	}
	// Personal names, in English or Chinese (手机号, 身份证号码): the
	// levels masking applies by default (access.DefaultLevel), so the
	// schema says what the masker does.
	if l, ok := access.DefaultLevel(name); ok && l > access.Internal {
		return DimBasic, l.String()
	}
	return DimBasic, ClassInternal
}

// raiseByValue raises a first-sight classification to what the value
// shows it holds (access.LevelOfValue: an ID number secret, a mobile
// number or an email confidential), whatever the trait is called: a
// trait "contact" first seen holding 13800138000 is confidential.
func raiseByValue(class string, v any) (string, bool) {
	l, ok := access.LevelOfValue(v)
	if !ok {
		return class, false
	}
	if cur, err := access.ParseLevel(class); err == nil && cur >= l {
		return class, false
	}
	return l.String(), true
}

// needsTraits are the traits the needs enricher (needs/) writes, with their
// classification: they are the needs-and-preferences dimension (需求偏好)
// the issue (14) makes explicit, not basic information. What a customer
// said (stated_needs) and the words of their complaints
// (pain_points_evidence terms) are their own words, confidential like
// feedback_comment; scores, keys and event ids are internal. The names
// are needs' constants, written out because this package does not import
// needs; needs' tests check that the two agree.
var needsTraits = map[string]string{
	"category_affinity":    ClassInternal,
	"top_categories":       ClassInternal,
	"needs":                ClassInternal,
	"needs_evidence":       ClassInternal,
	"stated_needs":         ClassConfidential,
	"pain_points":          ClassInternal,
	"pain_points_evidence": ClassConfidential,
}

func (s *Schema) conflict(name, want, got string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conflicts[name]
	if c == nil || c.Got != got {
		if c != nil {
			got = c.Got + "," + got // keep every type seen
		}
		c = &Conflict{Name: name, Want: want, Got: got}
		s.conflicts[name] = c
	}
	c.Count++
	if at.After(c.LastSeen) {
		c.LastSeen = at
	}
}

// Load adds stored observed fields (at start). A field typed on first
// sight that nobody annotated takes the current default dimension and
// classification (defaultAnnotation): an upgrade that changes the defaults
// (phone and email secret, clv in value) applies to the traits stored
// before it, not only to those seen after. The fields it changes are
// queued to be saved. A field stored before Annotated existed counts as
// annotated when its description is not the first-sight one (Annotate
// sets the description with the rest).
func (s *Schema) Load(fields []Field) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fl := range fields {
		if _, ok := builtinFields[fl.Name]; ok {
			continue
		}
		if fl.Origin == OriginObserved && !fl.Annotated && fl.Description == firstSight {
			if dim, class := defaultAnnotation(fl.Name); dim != fl.Dimension || class != fl.Classification {
				fl.Dimension, fl.Classification = dim, class
				s.unsaved = append(s.unsaved, fl)
			}
		}
		s.observed[fl.Name] = fl
	}
}

// Annotate sets the dimension, classification and description of an
// observed trait (an administrator describing incoming data).
func (s *Schema) Annotate(fl Field) error {
	if !validDimension(fl.Dimension) || !validClassification(fl.Classification) {
		return fmt.Errorf("dimension must be one of %v and classification one of %v", Dimensions, Classifications)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.observed[fl.Name]
	if !ok {
		return fmt.Errorf("trait %q has not been seen", fl.Name)
	}
	cur.Dimension, cur.Classification, cur.Description = fl.Dimension, fl.Classification, fl.Description
	cur.Annotated = true
	s.observed[fl.Name] = cur
	s.unsaved = append(s.unsaved, cur)
	return nil
}

// Unsaved returns and forgets the observed fields not yet persisted.
func (s *Schema) Unsaved() []Field {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.unsaved
	s.unsaved = nil
	return out
}

// Requeue puts fields back after a failed save.
func (s *Schema) Requeue(fields []Field) {
	s.mu.Lock()
	s.unsaved = append(fields, s.unsaved...)
	s.mu.Unlock()
}

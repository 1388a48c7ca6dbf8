package importer

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
)

// problem is a value that could not be used: the field is left unset and
// the problem travels with the event (context.import.invalid) and into the
// summary, so the quality report can count it.
type problem struct {
	Field  string `json:"field"`
	Column string `json:"column"`
	Reason string `json:"reason"`
	Value  string `json:"-"` // the raw value, for the summary's examples only
}

// converted is what a row becomes before the tracking parser sees it.
type converted struct {
	typ        string
	groupID    string
	userID     string
	anonID     string
	name       string
	ts         *time.Time
	traits     map[string]any
	props      map[string]any
	externalID []map[string]string
	problems   []problem
	// present lists the fields that had a value in the row (valid or not).
	present []string
	reject  string // non-empty: quarantine the row with this reason
	// byIdentifier: no user or anonymous id, but an identifier (phone,
	// email...): the row's message id stands in as its anonymous id.
	byIdentifier bool
}

// cleanValue standardizes a raw cell by kind and types it for JSON.
func (m *Mapping) cleanValue(kind, raw string) (any, error) {
	switch kind {
	case "", KindString:
		return strings.TrimSpace(raw), nil
	case KindText:
		return clean.Text(raw)
	case KindName:
		return clean.Name(raw)
	case KindEmail:
		return clean.Email(raw)
	case KindPhone:
		return clean.Phone(raw, m.Region)
	case KindIDCard:
		return clean.IDCardNumber(raw)
	case KindUSCC:
		return clean.USCC(raw)
	case KindDate:
		return clean.Date(raw, clean.DateOptions{DayFirst: m.DayFirst})
	case KindProvince:
		return clean.Province(raw)
	case KindCity:
		return clean.CityName(raw)
	case KindGender:
		return clean.Gender(raw)
	case KindNumber:
		f, err := parseNumber(raw)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, clean.Invalid(KindNumber, raw, "not a number")
		}
		return f, nil
	case KindInteger:
		f, err := parseNumber(raw)
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return nil, clean.Invalid(KindInteger, raw, "not an integer")
		}
		return int64(f), nil
	case KindBoolean:
		s, _ := clean.Text(raw)
		switch strings.ToLower(s) {
		case "true", "t", "yes", "y", "1", "是", "对":
			return true, nil
		case "false", "f", "no", "n", "0", "否", "不":
			return false, nil
		}
		return nil, clean.Invalid(KindBoolean, raw, "not a yes/no value")
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// ref resolves a user_id/anonymous_id reference: a template fills every
// {column}, and is empty if any of them is empty (a half-filled template
// would lump unrelated rows into one person); otherwise it names a column.
func ref(row *Row, spec string) string {
	if spec == "" {
		return ""
	}
	if !strings.Contains(spec, "{") {
		return strings.TrimSpace(row.Get(spec))
	}
	empty := false
	out := templateVar.ReplaceAllStringFunc(spec, func(v string) string {
		s := strings.TrimSpace(row.Get(v[1 : len(v)-1]))
		if s == "" {
			empty = true
		}
		return s
	})
	if empty {
		return ""
	}
	return out
}

func (c Cond) match(row *Row) bool {
	v := strings.TrimSpace(row.Get(c.Column))
	switch {
	case c.Prefix != "":
		return strings.HasPrefix(v, c.Prefix)
	case c.NotPrefix != "":
		return !strings.HasPrefix(v, c.NotPrefix)
	case c.Equals != nil:
		return v == *c.Equals
	case c.Empty != nil:
		return (v == "") == *c.Empty
	case c.LT != nil, c.GT != nil:
		f, err := parseNumber(v)
		if err != nil {
			return false
		}
		if c.LT != nil {
			return f < *c.LT
		}
		return f > *c.GT
	}
	return false
}

func matchAll(cs []Cond, row *Row) bool {
	for _, c := range cs {
		if !c.match(row) {
			return false
		}
	}
	return true
}

func caseName(name string, cases []Case, row *Row) string {
	for _, c := range cases {
		if matchAll(c.When, row) {
			return c.Name
		}
	}
	return name
}

// convert maps one row. It never fails: what cannot be used is a problem
// (the field is left unset) or a reason to quarantine the row.
func (m *Mapping) convert(row *Row) *converted {
	c := &converted{typ: portrait.EventIdentify, traits: map[string]any{}}
	if m.Mode == ModeEvents {
		c.typ = portrait.EventTrack
		c.props = map[string]any{}
	}
	for _, r := range m.Reject {
		if matchAll(r.When, row) {
			c.reject = r.Reason
			return c
		}
	}
	if m.Mode == ModeAccounts {
		c.typ = portrait.EventGroup
		if c.groupID = ref(row, m.Identity.GroupID); c.groupID == "" {
			c.reject = "identity.group_id is empty: the row names no account"
			return c
		}
	}
	c.userID = ref(row, m.Identity.UserID)
	if c.userID == "" {
		c.anonID = ref(row, m.Identity.AnonymousID)
	}
	for _, id := range m.Identity.Identifiers {
		raw := strings.TrimSpace(row.Get(id.Column))
		if raw == "" {
			continue
		}
		c.present = append(c.present, "identifier:"+id.Type)
		v, err := m.cleanValue(id.Kind, raw)
		if err != nil {
			c.problems = append(c.problems, problem{Field: "identifier:" + id.Type, Column: id.Column, Reason: clean.Reason("", err), Value: truncate(raw, 64)})
			continue
		}
		c.externalID = append(c.externalID, map[string]string{"type": id.Type, "id": fmt.Sprint(v), "collection": "users"})
	}
	for _, col := range m.Columns {
		field := "trait:" + col.Trait
		if col.Property != "" {
			field = "property:" + col.Property
		}
		raw := row.Get(col.Column)
		if strings.TrimSpace(raw) == "" {
			if col.Required {
				c.reject = fmt.Sprintf("column %s (%s) is required but empty", col.Column, field)
				return c
			}
			continue
		}
		c.present = append(c.present, field)
		v, err := m.cleanValue(col.Kind, raw)
		if err == nil {
			if s, ok := v.(string); ok && s == "" {
				err = clean.Invalid(cmp.Or(col.Kind, KindString), raw, "nothing left after cleaning")
			}
		}
		if err != nil {
			reason := clean.Reason("", err)
			if col.Required {
				c.reject = fmt.Sprintf("column %s (%s) is required: %s", col.Column, field, reason)
				return c
			}
			c.problems = append(c.problems, problem{Field: field, Column: col.Column, Reason: reason, Value: truncate(raw, 64)})
			continue
		}
		if col.Property != "" {
			c.props[col.Property] = v
		} else {
			c.traits[col.Trait] = v
		}
	}
	for _, cp := range m.Computed {
		prod := 1.0
		ok := true
		for _, x := range cp.Multiply {
			f, err := parseNumber(row.Get(x))
			if err != nil {
				ok = false
				c.problems = append(c.problems, problem{Field: "property:" + cp.Property, Column: x, Reason: clean.Reason("", clean.Invalid(KindNumber, row.Get(x), "not a number")), Value: truncate(row.Get(x), 64)})
				break
			}
			prod *= f
		}
		if ok {
			digits := 2
			if cp.Round != nil {
				digits = *cp.Round
			}
			c.props[cp.Property] = roundTo(prod, digits)
		}
	}
	if m.Mode == ModeEvents {
		if m.Event.Column != "" {
			c.name = strings.TrimSpace(row.Get(m.Event.Column))
		}
		if c.name == "" {
			c.name = m.Event.Name
		}
		c.name = caseName(c.name, m.Event.Cases, row)
	}
	if m.Timestamp.Column != "" {
		raw := strings.TrimSpace(row.Get(m.Timestamp.Column))
		required := m.Mode == ModeEvents
		if m.Timestamp.Required != nil {
			required = *m.Timestamp.Required
		}
		t, err := m.parseTime(raw)
		switch {
		case err == nil:
			c.ts = &t
		case required:
			c.reject = fmt.Sprintf("timestamp column %s: %s", m.Timestamp.Column, clean.Reason("", err))
			return c
		case raw != "":
			c.problems = append(c.problems, problem{Field: "timestamp", Column: m.Timestamp.Column, Reason: clean.Reason("", err), Value: truncate(raw, 64)})
		}
	}
	c.byIdentifier = c.userID == "" && c.anonID == "" && c.hasIdentifier()
	return c
}

// hasIdentifier: the row has a valid identifier (an identity.identifiers
// column or an identifier trait such as phone or email), which is enough
// to know who it is about.
func (c *converted) hasIdentifier() bool {
	if len(c.externalID) > 0 {
		return true
	}
	for _, name := range IdentifierTraits {
		if v, ok := c.traits[name]; ok && strings.TrimSpace(fmt.Sprint(v)) != "" {
			return true
		}
	}
	return false
}

func roundTo(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

var isoLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04",
	"2006/01/02 15:04:05",
	"2006/1/2 15:04:05",
	"2006/1/2 15:04",
	"2006-01-02",
	"2006/1/2",
}

// parseTime reads the event time. Layouts without a zone are in the
// mapping's timezone.
func (m *Mapping) parseTime(raw string) (time.Time, error) {
	if raw == "" {
		return time.Time{}, clean.Invalid("timestamp", raw, "empty")
	}
	switch f := m.Timestamp.Format; f {
	case "unix", "unix_ms":
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return time.Time{}, clean.Invalid("timestamp", raw, "not a unix time")
		}
		if f == "unix_ms" {
			return time.UnixMilli(int64(n)).UTC(), nil
		}
		sec, frac := math.Modf(n)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	case "excel":
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil || n < 1 || n > 2958465 {
			return time.Time{}, clean.Invalid("timestamp", raw, "not an Excel serial date")
		}
		// Excel's 1900 system counts from 1899-12-30 for every date after
		// its fictitious 1900-02-29.
		base := time.Date(1899, 12, 30, 0, 0, 0, 0, m.loc)
		return base.Add(time.Duration(n * float64(24*time.Hour))).Round(time.Second).UTC(), nil
	case "", "iso8601":
		for _, l := range isoLayouts {
			if t, err := time.ParseInLocation(l, raw, m.loc); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, clean.Invalid("timestamp", raw, "not an ISO 8601 time")
	default:
		t, err := time.ParseInLocation(f, raw, m.loc)
		if err != nil {
			return time.Time{}, clean.Invalid("timestamp", raw, "does not match the layout "+strconv.Quote(f))
		}
		return t.UTC(), nil
	}
}

// body builds the Segment-spec JSON of the event that the tracking parser
// then validates, exactly as if an SDK had sent it.
func (c *converted) body(messageID string, imp map[string]any) ([]byte, error) {
	ev := map[string]any{"type": c.typ, "messageId": messageID}
	if c.groupID != "" {
		ev["groupId"] = c.groupID
	}
	if c.userID != "" {
		ev["userId"] = c.userID
	}
	if c.anonID != "" {
		ev["anonymousId"] = c.anonID
	}
	if c.byIdentifier {
		// Unique to the row, so the anonymous id joins nothing: the row's
		// phone or email does, in the identity graph, under its rules
		// (limits, blocked values such as 13800000000).
		ev["anonymousId"] = messageID
	}
	if c.ts != nil {
		ev["timestamp"] = c.ts.Format(time.RFC3339Nano)
	}
	ctx := map[string]any{"import": imp}
	if len(c.externalID) > 0 {
		ctx["externalIds"] = c.externalID
	}
	if c.typ == portrait.EventTrack {
		ev["event"] = c.name
		ev["properties"] = c.props
		if len(c.traits) > 0 {
			ctx["traits"] = c.traits
		}
	} else {
		ev["traits"] = c.traits
	}
	ev["context"] = ctx
	return json.Marshal(ev)
}

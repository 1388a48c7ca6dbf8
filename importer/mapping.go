// Package importer loads files exported from CRMs, shops and spreadsheets
// (CSV, JSONL, XLSX) into the event log through exactly the validation,
// cleaning and quarantine of the tracking API. A YAML mapping says what a row
// is: a person (profiles mode, one identify event per row) or an event
// (events mode, one track event per row, optionally aggregated into one
// order event per group of rows).
//
// Every row becomes an event or a quarantined record; nothing is skipped.
// Message ids derive from the source, the file's content hash and the row,
// so importing the same file again changes nothing.
package importer

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
)

// Modes of a mapping.
const (
	ModeProfiles = "profiles"
	ModeEvents   = "events"
	// ModeAccounts: one row per company, sent as a group call
	// (identity.group_id) whose traits describe the account (account/).
	ModeAccounts = "accounts"
)

// Kinds of column values: how a value is cleaned and typed.
const (
	KindString   = "string"
	KindText     = "text"
	KindName     = "name"
	KindEmail    = "email"
	KindPhone    = "phone"
	KindIDCard   = "id_card"
	KindUSCC     = "uscc"
	KindDate     = "date"
	KindProvince = "province"
	KindCity     = "city"
	KindNumber   = "number"
	KindInteger  = "integer"
	KindBoolean  = "boolean"
	KindGender   = "gender" // male / female from 男/女, M/F, 先生/女士...
)

// IdentifierTraits are the trait names whose values identify a person in
// the identity graph (the default rules' trait_identifiers), strongest
// first: a row with one of them needs no user id.
var IdentifierTraits = []string{"crm_id", "id_card", "wechat_unionid", "email", "phone", "wechat_openid"}

func isIdentifierTrait(name string) bool {
	for _, t := range IdentifierTraits {
		if t == name {
			return true
		}
	}
	return false
}

// Mapping is the YAML file that tells the importer what the columns mean.
// docs/import.md describes every field with examples.
type Mapping struct {
	Mode string `yaml:"mode"`
	// Sheet of an XLSX workbook (default: the first).
	Sheet string `yaml:"sheet"`
	// Region for phone numbers written without a country code (default CN).
	Region string `yaml:"region"`
	// DayFirst reads 05/03/2024 as 5 March in date columns.
	DayFirst bool `yaml:"day_first"`
	// Key lists columns whose values identify a row across files. Without
	// it a row is identified by the file's content hash and its position.
	Key       []string         `yaml:"key"`
	Identity  Identity         `yaml:"identity"`
	Event     EventName        `yaml:"event"`
	Timestamp Timestamp        `yaml:"timestamp"`
	Columns   []Column         `yaml:"columns"`
	Computed  []Computed       `yaml:"computed"`
	Reject    []Rule           `yaml:"reject"`
	Fill      []clean.FillRule `yaml:"fill"`
	Aggregate *Aggregate       `yaml:"aggregate"`

	// compiled
	loc *time.Location
	// inferred: built by InferMapping from the header, not given.
	inferred bool
}

// Identity says which columns identify the person a row is about.
type Identity struct {
	// UserID and AnonymousID are a column name or a template such as
	// "invoice-{InvoiceNo}". The anonymous id is used only for rows whose
	// user id is empty: an imported row that names its customer should not
	// also mint an anonymous identity for them.
	UserID      string `yaml:"user_id"`
	AnonymousID string `yaml:"anonymous_id"`
	// GroupID is the account's id (accounts mode): a column or a template.
	GroupID string `yaml:"group_id"`
	// Identifiers are extra typed identifiers (crm_id, wechat_openid...),
	// sent as context.externalIds.
	Identifiers []Identifier `yaml:"identifiers"`
}

// Identifier maps a column to a typed identifier.
type Identifier struct {
	Type   string `yaml:"type"`
	Column string `yaml:"column"`
	Kind   string `yaml:"kind"`
}

// EventName names the event of a row (events mode): a constant Name, or the
// value of Column, overridden by the first matching case.
type EventName struct {
	Name   string `yaml:"name"`
	Column string `yaml:"column"`
	Cases  []Case `yaml:"cases"`
}

// Case gives another event name to rows matching all of When.
type Case struct {
	When []Cond `yaml:"when"`
	Name string `yaml:"name"`
}

// Timestamp says where the event time is and how it is written: Format is a
// Go layout ("2006-01-02 15:04:05"), "iso8601" (the default: RFC 3339 and
// the common variants), "unix", "unix_ms" or "excel" (serial days).
type Timestamp struct {
	Column   string `yaml:"column"`
	Format   string `yaml:"format"`
	Timezone string `yaml:"timezone"` // for layouts without a zone; default UTC
	// Required quarantines rows whose time is missing or unreadable instead
	// of using the import time (the default only for profiles mode).
	Required *bool `yaml:"required"`
}

// Column maps one column to a trait or a property.
type Column struct {
	Column   string `yaml:"column"`
	Trait    string `yaml:"trait"`    // profiles: trait; events: a trait in context.traits
	Property string `yaml:"property"` // events mode only
	Kind     string `yaml:"kind"`
	// Required quarantines the row when the value is missing or invalid.
	Required bool `yaml:"required"`
}

// Computed is a property computed from other columns: the product of
// Multiply (line total = quantity × unit price).
type Computed struct {
	Property string   `yaml:"property"`
	Multiply []string `yaml:"multiply"`
	// Round to this many decimals (default 2 for money-like products).
	Round *int `yaml:"round"`
}

// Rule quarantines rows matching all of When, with Reason.
type Rule struct {
	When   []Cond `yaml:"when"`
	Reason string `yaml:"reason"`
}

// Cond tests one column. Exactly one test is set.
type Cond struct {
	Column    string   `yaml:"column"`
	Prefix    string   `yaml:"prefix"`
	NotPrefix string   `yaml:"not_prefix"`
	Equals    *string  `yaml:"equals"`
	Empty     *bool    `yaml:"empty"`
	LT        *float64 `yaml:"lt"`
	GT        *float64 `yaml:"gt"`
}

// Aggregate turns runs of consecutive rows with the same GroupBy values
// into one more event each (an order from its lines). Its properties are
// those listed in Keep, copied from the group's first line, the sums of line
// properties in Sum, the number of lines in Count, and the lines themselves
// in "products" (the line properties listed in Products).
type Aggregate struct {
	GroupBy  []string          `yaml:"group_by"`
	Name     string            `yaml:"name"`
	Cases    []Case            `yaml:"cases"`
	Keep     []string          `yaml:"keep"`
	Sum      map[string]string `yaml:"sum"` // order property ← line property
	Count    string            `yaml:"count"`
	Products []string          `yaml:"products"`
}

var templateVar = regexp.MustCompile(`\{([^{}]+)\}`)

// LoadMapping reads and validates a mapping file.
func LoadMapping(path string) (*Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "cannot read the mapping file: %v", err)
	}
	return ParseMapping(b)
}

// ParseMapping parses and validates a mapping. Unknown fields are errors:
// a misspelt key would otherwise silently import nothing into that field.
func ParseMapping(b []byte) (*Mapping, error) {
	var m Mapping
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "mapping: %v", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func mappingErr(format string, args ...any) error {
	return portrait.Errorf(portrait.EINVALID, "mapping: "+format, args...)
}

// Validate checks the mapping and prepares it for use.
func (m *Mapping) Validate() error {
	if m.Mode == "" {
		m.Mode = ModeProfiles
	}
	if m.Mode != ModeProfiles && m.Mode != ModeEvents && m.Mode != ModeAccounts {
		return mappingErr("mode must be %q, %q or %q, not %q", ModeProfiles, ModeEvents, ModeAccounts, m.Mode)
	}
	if (m.Mode == ModeAccounts) != (m.Identity.GroupID != "") {
		return mappingErr("identity.group_id is what accounts mode needs, and only it: the account's id column or template")
	}
	if m.Region == "" {
		m.Region = clean.DefaultRegion
	}
	if m.Identity.UserID == "" && m.Identity.AnonymousID == "" && len(m.Identity.Identifiers) == 0 && !m.hasIdentifierColumn() {
		return mappingErr("identity needs user_id or anonymous_id (a column name or a template like \"crm-{id}\"), identity.identifiers, or a column mapped to an identifier trait (%s)", strings.Join(IdentifierTraits, ", "))
	}
	for i, id := range m.Identity.Identifiers {
		if id.Type == "" || id.Column == "" {
			return mappingErr("identity.identifiers[%d] needs type and column", i)
		}
		if err := checkKind(id.Kind); err != nil {
			return mappingErr("identity.identifiers[%d]: %v", i, err)
		}
	}
	if m.Mode == ModeEvents {
		if m.Event.Name == "" && m.Event.Column == "" {
			return mappingErr("events mode needs event.name or event.column")
		}
		if m.Timestamp.Column == "" {
			return mappingErr("events mode needs timestamp.column")
		}
	} else if m.Event.Name != "" || m.Event.Column != "" || m.Aggregate != nil {
		return mappingErr("event and aggregate apply to events mode only")
	}
	for i, c := range m.Event.Cases {
		if c.Name == "" {
			return mappingErr("event.cases[%d] needs a name", i)
		}
		if err := checkConds(c.When); err != nil {
			return mappingErr("event.cases[%d]: %v", i, err)
		}
	}
	tz := m.Timestamp.Timezone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return mappingErr("timestamp.timezone %q: %v", tz, err)
	}
	m.loc = loc
	switch m.Timestamp.Format {
	case "", "iso8601", "unix", "unix_ms", "excel":
	default:
		if !strings.Contains(m.Timestamp.Format, "2006") && !strings.Contains(m.Timestamp.Format, "06") {
			return mappingErr("timestamp.format %q is neither iso8601, unix, unix_ms, excel nor a Go layout such as \"2006-01-02 15:04:05\"", m.Timestamp.Format)
		}
	}
	names := map[string]bool{}
	for i, c := range m.Columns {
		if c.Column == "" {
			return mappingErr("columns[%d] needs column", i)
		}
		if (c.Trait == "") == (c.Property == "") {
			return mappingErr("columns[%d] (%s) needs exactly one of trait or property", i, c.Column)
		}
		if c.Property != "" && m.Mode != ModeEvents {
			return mappingErr("columns[%d] (%s): property applies to events mode; use trait", i, c.Column)
		}
		if err := checkKind(c.Kind); err != nil {
			return mappingErr("columns[%d] (%s): %v", i, c.Column, err)
		}
		n := "trait:" + c.Trait
		if c.Property != "" {
			n = "property:" + c.Property
		}
		if names[n] {
			return mappingErr("columns[%d]: %s is mapped twice", i, n)
		}
		names[n] = true
	}
	for i, c := range m.Computed {
		if c.Property == "" || len(c.Multiply) < 2 {
			return mappingErr("computed[%d] needs property and at least two multiply columns", i)
		}
		if m.Mode != ModeEvents {
			return mappingErr("computed properties apply to events mode")
		}
	}
	for i, r := range m.Reject {
		if r.Reason == "" {
			return mappingErr("reject[%d] needs a reason", i)
		}
		if err := checkConds(r.When); err != nil {
			return mappingErr("reject[%d]: %v", i, err)
		}
	}
	if _, err := clean.NewFiller(m.Fill); err != nil {
		return mappingErr("fill: %s", portrait.ErrorMessage(err))
	}
	if a := m.Aggregate; a != nil {
		if len(a.GroupBy) == 0 || a.Name == "" {
			return mappingErr("aggregate needs group_by and name")
		}
		for i, c := range a.Cases {
			if c.Name == "" {
				return mappingErr("aggregate.cases[%d] needs a name", i)
			}
			if err := checkConds(c.When); err != nil {
				return mappingErr("aggregate.cases[%d]: %v", i, err)
			}
		}
	}
	return nil
}

func checkKind(k string) error {
	switch k {
	case "", KindString, KindText, KindName, KindEmail, KindPhone, KindIDCard, KindUSCC, KindDate, KindProvince, KindCity, KindNumber, KindInteger, KindBoolean, KindGender:
		return nil
	}
	return fmt.Errorf("unknown kind %q (one of string, text, name, email, phone, id_card, uscc, date, province, city, number, integer, boolean, gender)", k)
}

// hasIdentifierColumn: some column sets an identifier trait.
func (m *Mapping) hasIdentifierColumn() bool {
	for _, c := range m.Columns {
		if isIdentifierTrait(c.Trait) {
			return true
		}
	}
	return false
}

func checkConds(cs []Cond) error {
	if len(cs) == 0 {
		return fmt.Errorf("when needs at least one condition")
	}
	for i, c := range cs {
		if c.Column == "" {
			return fmt.Errorf("when[%d] needs column", i)
		}
		n := 0
		for _, set := range []bool{c.Prefix != "", c.NotPrefix != "", c.Equals != nil, c.Empty != nil, c.LT != nil, c.GT != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("when[%d] (%s) needs exactly one of prefix, not_prefix, equals, empty, lt, gt", i, c.Column)
		}
	}
	return nil
}

// columns returns every column the mapping reads, for checking a header.
func (m *Mapping) columns() []string {
	var out []string
	add := func(c string) {
		if c != "" {
			out = append(out, c)
		}
	}
	for _, ref := range []string{m.Identity.UserID, m.Identity.AnonymousID} {
		for _, c := range refColumns(ref) {
			add(c)
		}
	}
	for _, id := range m.Identity.Identifiers {
		add(id.Column)
	}
	add(m.Event.Column)
	add(m.Timestamp.Column)
	for _, c := range m.Columns {
		add(c.Column)
	}
	for _, c := range m.Computed {
		for _, x := range c.Multiply {
			add(x)
		}
	}
	conds := func(cs []Cond) {
		for _, c := range cs {
			add(c.Column)
		}
	}
	for _, c := range m.Event.Cases {
		conds(c.When)
	}
	for _, r := range m.Reject {
		conds(r.When)
	}
	for _, k := range m.Key {
		add(k)
	}
	if a := m.Aggregate; a != nil {
		for _, g := range a.GroupBy {
			add(g)
		}
		for _, c := range a.Cases {
			conds(c.When)
		}
	}
	return out
}

// refColumns returns the columns a user_id/anonymous_id reference reads: the
// variables of a template, or the reference itself as a column name.
func refColumns(ref string) []string {
	if ref == "" {
		return nil
	}
	ms := templateVar.FindAllStringSubmatch(ref, -1)
	if ms == nil {
		return []string{ref}
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m[1]
	}
	return out
}

// parseNumber reads a number as spreadsheets and exports write it: spaces
// and thousands separators removed, full-width digits folded.
func parseNumber(s string) (float64, error) {
	s, _ = clean.Text(s)
	s = strings.ReplaceAll(strings.ReplaceAll(s, ",", ""), " ", "")
	return strconv.ParseFloat(s, 64)
}

// Package quality builds the data-quality report: per source and per
// trait, how complete, valid and distinct the data is, what was imputed,
// merged and quarantined, and why. It reads the log's and the profiles'
// raw counts through Store and does the arithmetic.
package quality

import (
	"context"
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/importer"
)

// Store is what the report reads.
type Store interface {
	EventCountsBySource(ctx context.Context) (map[string]int64, error)
	MergeCounts(ctx context.Context) (map[string]int64, error)
	EachQuarantineReason(ctx context.Context, fn func(source, reason string, n int64) error) error
	ImportSummaries(ctx context.Context) ([][]byte, error)
	AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error
	// EachTraitIssue reports the trait values the standardizers refused
	// on the way into profiles, counted by source, trait and reason.
	EachTraitIssue(ctx context.Context, fn func(source, trait, reason string, n int64) error) error
}

// Report is the data-quality report.
type Report struct {
	GeneratedAt time.Time     `json:"generated_at"`
	Profiles    int64         `json:"profiles"`
	Events      int64         `json:"events"`
	Quarantined int64         `json:"quarantined"`
	Duplicates  Duplicates    `json:"duplicates"`
	Sources     []*Source     `json:"sources"`
	Traits      []*TraitStats `json:"traits"`
	// Freshness is set when the report is served from a Cache.
	Freshness *Freshness `json:"freshness,omitempty"`
}

// Duplicates found and merged, from the merge journal.
type Duplicates struct {
	Merged  int64 `json:"merged"`  // profiles merged into another
	Refused int64 `json:"refused"` // merges a rule stopped
}

// Source is one source's quality.
type Source struct {
	Source      string                 `json:"source"`
	Events      int64                  `json:"events"`
	Quarantined int64                  `json:"quarantined"`
	TopReasons  []importer.ReasonCount `json:"top_reasons"`
	Imports     int64                  `json:"imports"`
	// Rows and what became of them, over the source's imports.
	Rows          int64                  `json:"rows"`
	Accepted      int64                  `json:"accepted"`
	Duplicates    int64                  `json:"duplicates"`
	Fields        []*FieldQuality        `json:"fields,omitempty"`
	InvalidTop    []importer.ReasonCount `json:"top_invalid,omitempty"`
	ProfileTraits int64                  `json:"profile_traits"` // trait values on profiles that came from this source
	// TraitIssues counts values this source sent that could not be
	// cleaned (left unset on the profile), with the top reasons.
	TraitIssues    int64                  `json:"trait_issues"`
	TraitIssuesTop []importer.ReasonCount `json:"top_trait_issues,omitempty"`
}

// FieldQuality is one mapped field over a source's imported rows.
type FieldQuality struct {
	Field        string  `json:"field"`
	Rows         int64   `json:"rows"`
	Present      int64   `json:"present"`
	Valid        int64   `json:"valid"`
	Invalid      int64   `json:"invalid"`
	Imputed      int64   `json:"imputed"`
	Completeness float64 `json:"completeness"` // present / rows
	Validity     float64 `json:"validity"`     // valid / present
}

// TraitStats is one trait over all profiles.
type TraitStats struct {
	Trait        string           `json:"trait"`
	Profiles     int64            `json:"profiles"` // profiles with a value
	Completeness float64          `json:"completeness"`
	Distinct     int64            `json:"distinct"`
	DistinctCap  bool             `json:"distinct_capped,omitempty"`
	Sources      map[string]int64 `json:"sources"` // where the values came from
	Invalid      int64            `json:"invalid"` // values refused by the standardizers (left unset)
	Imputed      int64            `json:"imputed"` // values filled by a rule, not observed
	Validity     float64          `json:"validity"`
}

// distinctCap bounds the memory of counting distinct values of a trait;
// beyond it the count is a lower bound and says so.
const distinctCap = 100_000

var quotedValue = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
var rowPrefix = regexp.MustCompile(`^rows? [\d-]+(?: \(aggregate [^)]*\))?: `)

// reasonKey groups reasons that differ only in a quoted value or a row.
func reasonKey(r string) string {
	return quotedValue.ReplaceAllString(rowPrefix.ReplaceAllString(r, ""), `"…"`)
}

// Build computes the report. topN bounds the reasons listed per source.
func Build(ctx context.Context, st Store, now time.Time, topN int) (*Report, error) {
	if topN <= 0 {
		topN = 10
	}
	r := &Report{GeneratedAt: now.UTC()}
	sources := map[string]*Source{}
	src := func(name string) *Source {
		s := sources[name]
		if s == nil {
			s = &Source{Source: name}
			sources[name] = s
		}
		return s
	}
	counts, err := st.EventCountsBySource(ctx)
	if err != nil {
		return nil, err
	}
	for name, n := range counts {
		src(name).Events = n
		r.Events += n
	}
	reasons := map[string]map[string]int64{}
	err = st.EachQuarantineReason(ctx, func(source, reason string, n int64) error {
		s := src(source)
		s.Quarantined += n
		r.Quarantined += n
		if reasons[source] == nil {
			reasons[source] = map[string]int64{}
		}
		reasons[source][reasonKey(reason)] += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	for name, m := range reasons {
		src(name).TopReasons = top(m, topN)
	}
	merges, err := st.MergeCounts(ctx)
	if err != nil {
		return nil, err
	}
	r.Duplicates = Duplicates{Merged: merges[portrait.MergeMerged], Refused: merges[portrait.MergeRefused]}

	// Imports: the latest run of each import id counts once (a re-import
	// of the same file updates its row rather than adding one).
	sums, err := st.ImportSummaries(ctx)
	if err != nil {
		return nil, err
	}
	fields := map[string]map[string]*FieldQuality{}
	invalid := map[string]map[string]int64{}
	for _, b := range sums {
		var s importer.Summary
		if json.Unmarshal(b, &s) != nil {
			continue
		}
		x := src(s.Source)
		x.Imports++
		x.Rows += s.Rows
		x.Accepted += s.Accepted
		x.Duplicates += s.Duplicates
		if fields[s.Source] == nil {
			fields[s.Source] = map[string]*FieldQuality{}
			invalid[s.Source] = map[string]int64{}
		}
		for f, fs := range s.Fields {
			q := fields[s.Source][f]
			if q == nil {
				q = &FieldQuality{Field: f}
				fields[s.Source][f] = q
			}
			q.Rows += s.Rows
			q.Present += fs.Present
			q.Valid += fs.Valid
			q.Invalid += fs.Invalid
			q.Imputed += fs.Imputed
		}
		for k, n := range s.Invalid {
			invalid[s.Source][k] += n
		}
	}
	for name, fm := range fields {
		x := src(name)
		for _, q := range fm {
			q.Completeness = ratio(q.Present, q.Rows)
			q.Validity = ratio(q.Valid, q.Present)
			x.Fields = append(x.Fields, q)
		}
		sort.Slice(x.Fields, func(i, j int) bool { return x.Fields[i].Field < x.Fields[j].Field })
		x.InvalidTop = top(invalid[name], topN)
	}

	traits := map[string]*TraitStats{}
	distinct := map[string]map[string]struct{}{}
	err = st.AllProfiles(ctx, func(p *portrait.Profile) error {
		r.Profiles++
		for name, t := range p.Traits {
			ts := traits[name]
			if ts == nil {
				ts = &TraitStats{Trait: name, Sources: map[string]int64{}}
				traits[name] = ts
				distinct[name] = map[string]struct{}{}
			}
			ts.Profiles++
			ts.Sources[t.Source]++
			if t.Imputed != "" {
				ts.Imputed++
			}
			src(t.Source).ProfileTraits++
			if d := distinct[name]; len(d) < distinctCap {
				d[valueKey(t.Value)] = struct{}{}
			} else {
				ts.DistinctCap = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	issues := map[string]map[string]int64{}
	err = st.EachTraitIssue(ctx, func(source, trait, reason string, n int64) error {
		x := src(source)
		x.TraitIssues += n
		if issues[source] == nil {
			issues[source] = map[string]int64{}
		}
		issues[source][trait+": "+reasonKey(reason)] += n
		ts := traits[trait]
		if ts == nil {
			ts = &TraitStats{Trait: trait, Sources: map[string]int64{}}
			traits[trait] = ts
		}
		ts.Invalid += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	for name, m := range issues {
		src(name).TraitIssuesTop = top(m, topN)
	}
	for name, ts := range traits {
		ts.Distinct = int64(len(distinct[name]))
		ts.Completeness = ratio(ts.Profiles, r.Profiles)
		ts.Validity = ratio(ts.Profiles, ts.Profiles+ts.Invalid)
		r.Traits = append(r.Traits, ts)
	}
	sort.Slice(r.Traits, func(i, j int) bool { return r.Traits[i].Trait < r.Traits[j].Trait })
	for _, s := range sources {
		r.Sources = append(r.Sources, s)
	}
	sort.Slice(r.Sources, func(i, j int) bool { return r.Sources[i].Source < r.Sources[j].Source })
	return r, nil
}

func valueKey(v any) string {
	if s, ok := v.(string); ok {
		return strings.TrimSpace(s)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func top(m map[string]int64, n int) []importer.ReasonCount {
	rs := importer.SortedReasons(m)
	if len(rs) > n {
		rs = rs[:n]
	}
	return rs
}

package http

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// GET /v1/profiles/{id}/view is the 360 page's first paint in one call.
// The page used to ask a dozen endpoints (the profile, the trait schema,
// every tag definition, the segments, events, merges, issues, one analysis
// run per model) and render as they arrived: about fifty requests and
// several seconds before the traits showed on the demo. Here everything the
// first screen shows is computed from one read of the profile document,
// the in-memory schema, tag definitions and segment index, and three
// indexed reads (first page of events, merge journal, refused values).
// Later event pages and the explanations of segment memberships stay
// lazy: the page asks for them when the user wants them. The per-part
// endpoints are unchanged.
func (s *Server) mountProfileView(mux *http.ServeMux) {
	mux.Handle("GET /v1/profiles/{id}/view", s.instrument("/v1/profiles/{id}/view", s.admin(s.handleProfileView)))
}

// viewTrait is one trait value with its provenance.
type viewTrait struct {
	Name      string    `json:"name"`
	Type      string    `json:"type,omitempty"`
	Value     any       `json:"value"`
	Source    string    `json:"source"`
	Time      time.Time `json:"time"`
	MessageID string    `json:"message_id"`
	Imputed   string    `json:"imputed,omitempty"`
}

// viewTag is one tag of the profile with its definition's labels.
type viewTag struct {
	Name        string    `json:"name"`
	Since       time.Time `json:"since"`
	Dimension   string    `json:"dimension"`
	Category    string    `json:"category,omitempty"`
	NameZh      string    `json:"name_zh,omitempty"`
	NameEn      string    `json:"name_en,omitempty"`
	Description string    `json:"description,omitempty"`
}

// viewModel is an analytic trait with the model and run that wrote it.
type viewModel struct {
	Value  any    `json:"value"`
	Source string `json:"source,omitempty"`
	RunID  string `json:"run_id,omitempty"`
}

// viewDimensions is the order of the trait groups: the seed dimensions,
// then what the schema does not place.
var viewDimensions = append(slices.Clone(traits.Dimensions), "other")

// modelTraits are shown in their own cards (models, RFM, next best
// products, lifecycle), each with the run that produced it.
var modelTraits = []string{"clv_12m", "expected_spend", "p_alive", "churn_probability", "purchase_probability_90d", "next_best_products"}

func (s *Server) handleProfileView(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	ctx := r.Context()
	start := time.Now()
	eventLimit, err := queryInt(r, "events", 50)
	if err != nil {
		Error(w, r, err)
		return
	}
	if eventLimit < 1 || eventLimit > 200 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "events must be 1..200"))
		return
	}
	p, err := s.Profiles.Profile(ctx, r.PathValue("id"))
	if err != nil {
		Error(w, r, err)
		return
	}
	out := map[string]any{"profile": profileView(p)}
	// A part that cannot be read is null with its error here; the page
	// shows the error in that part's place and the rest as usual.
	partErrs := map[string]any{}
	fail := func(part string, err error) {
		partErrs[part] = map[string]any{"code": portrait.ErrorCode(err), "message": portrait.ErrorMessage(err)}
	}

	// Traits by dimension, with provenance; the analytic ones and the
	// lifecycle history have their own parts.
	groups := map[string][]viewTrait{}
	names := make([]string, 0, len(p.Traits))
	for k := range p.Traits {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if k == "lifecycle_history" {
			continue
		}
		tv := p.Traits[k]
		vt := viewTrait{Name: k, Value: tv.Value, Source: tv.Source, Time: tv.Time, MessageID: tv.MessageID, Imputed: tv.Imputed}
		dim := "other"
		if s.Traits != nil {
			if f, ok := s.Traits.Enricher.Schema.Lookup(k); ok {
				vt.Type = f.Type
				if slices.Contains(traits.Dimensions, f.Dimension) {
					dim = f.Dimension
				}
			}
		}
		groups[dim] = append(groups[dim], vt)
	}
	dims := []map[string]any{}
	for _, d := range viewDimensions {
		if len(groups[d]) > 0 {
			dims = append(dims, map[string]any{"dimension": d, "traits": groups[d]})
		}
	}
	out["traits"] = dims

	// Tags with their definitions (labels, dimension), ordered as the
	// profile holds them.
	tags := []viewTag{}
	defs := map[string]int{}
	var tagList []struct{ name, dim, cat, zh, en, desc string }
	if s.Tags != nil {
		for _, d := range s.Tags.List() {
			defs[d.Name] = len(tagList)
			tagList = append(tagList, struct{ name, dim, cat, zh, en, desc string }{d.Name, d.Dimension, d.Category, d.NameZh, d.NameEn, d.Description})
		}
	}
	for _, t := range p.Tags {
		vt := viewTag{Name: t.Name, Since: t.Since, Dimension: "other"}
		if i, ok := defs[t.Name]; ok {
			d := tagList[i]
			if slices.Contains(traits.Dimensions, d.dim) {
				vt.Dimension = d.dim
			}
			vt.Category, vt.NameZh, vt.NameEn, vt.Description = d.cat, d.zh, d.en, d.desc
		}
		tags = append(tags, vt)
	}
	out["tags"] = tags

	// Lifecycle: the current stage and its history (the enricher keeps
	// the latest traits.HistoryKept transitions; "truncated" says when
	// older ones were dropped).
	hist := traits.ParseHistory(p.Traits["lifecycle_history"].Value)
	if hist == nil {
		hist = []traits.Transition{}
	}
	out["lifecycle"] = map[string]any{"stage": p.Traits["lifecycle_stage"].Value, "history": hist,
		"history_kept": traits.HistoryKept, "truncated": len(hist) >= traits.HistoryKept}

	out["rfm"] = map[string]any{"r": p.Traits["rfm_r"].Value, "f": p.Traits["rfm_f"].Value, "m": p.Traits["rfm_m"].Value,
		"score": p.Traits["rfm_score"].Value, "segment": p.Traits["rfm_segment"].Value}

	// Models: each value with the analysis run that wrote it (message id
	// run-<run id>-<profile id>), and those runs.
	models := map[string]viewModel{}
	runIDs := []string{}
	for _, k := range modelTraits {
		tv, ok := p.Traits[k]
		if !ok {
			continue
		}
		m := viewModel{Value: tv.Value, Source: tv.Source, RunID: runOf(tv, p.ID)}
		if m.RunID != "" && !slices.Contains(runIDs, m.RunID) {
			runIDs = append(runIDs, m.RunID)
		}
		models[k] = m
	}
	out["models"] = models
	runs := map[string]any{}
	if s.Analytics != nil {
		for _, id := range runIDs {
			run, err := s.Analytics.Runs.Run(ctx, id)
			if err != nil {
				if portrait.ErrorCode(err) != portrait.ENOTFOUND {
					fail("runs", err)
				}
				continue
			}
			runs[id] = run
		}
	}
	out["runs"] = runs

	// Segments the customer is in, from the index (explanations: lazily,
	// GET /v1/segments/{id}/explain/{profileId}).
	if s.Segments != nil {
		out["segments"] = s.profileSegments(p.ID)
	} else {
		out["segments"] = nil
	}

	evs, next, err := s.Profiles.ProfileEvents(ctx, p.ID, portrait.Page{Limit: eventLimit})
	if err != nil {
		fail("events", err)
		out["events"] = nil
	} else {
		if evs == nil {
			evs = []*portrait.Event{}
		}
		out["events"] = map[string]any{"events": evs, "next": next}
	}

	merges, err := s.Profiles.ProfileMerges(ctx, p.ID)
	if err != nil {
		fail("merges", err)
		out["merges"] = nil
	} else {
		if merges == nil {
			merges = []*portrait.MergeEntry{}
		}
		out["merges"] = merges
	}

	out["issues"] = nil
	if ir, ok := s.Profiles.(profileIssueReader); ok {
		list, err := ir.ProfileTraitIssues(ctx, p.ID, 100)
		if err != nil {
			fail("issues", err)
		} else {
			if list == nil {
				list = []*portrait.TraitIssue{}
			}
			out["issues"] = list
		}
	}
	out["errors"] = partErrs
	out["took_ms"] = float64(time.Since(start).Microseconds()) / 1000
	writeJSON(w, http.StatusOK, out)
}

// runOf is the analysis run that wrote a trait: analyses write with message
// ids run-<run id>-<profile id>; "" for a trait no analysis wrote.
func runOf(tv portrait.Trait, profileID string) string {
	if !strings.HasPrefix(tv.Source, "analytics/") || !strings.HasPrefix(tv.MessageID, "run-") {
		return ""
	}
	m := strings.TrimPrefix(tv.MessageID, "run-")
	return strings.TrimSuffix(m, "-"+profileID)
}

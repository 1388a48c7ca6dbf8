package linkage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Linking profiles. Record linkage finds profiles that are the same person
// but share no identifier (typed differently in two systems). A match is
// not merged behind the log's back: it is appended to the event log as a
// link event carrying one identifier of each profile, so the identity graph
// merges them under its usual rules (limits still apply), the merge is
// journalled, a rebuild reproduces it, and an undo is a retract event that
// replays the profiles without it. Pairs in the review band wait for a
// person to accept or reject them.

// Candidate decisions.
const (
	Pending  = "pending"
	Accepted = "accepted"
	Rejected = "rejected"
	Linked   = "linked" // matched automatically above the threshold
)

// Source is the provenance of link and retract events.
const Source = "linkage"

// Comparison is one field of a candidate pair, side by side.
type Comparison struct {
	Field string `json:"field"`
	A     string `json:"a"`
	B     string `json:"b"`
	// Level: 0 the strongest agreement, higher weaker, -1 missing.
	Level int8 `json:"level"`
}

// Candidate is a scored pair of profiles.
type Candidate struct {
	ID          string              `json:"id"`
	A           portrait.Identifier `json:"a"`
	B           portrait.Identifier `json:"b"`
	AProfile    string              `json:"a_profile"`
	BProfile    string              `json:"b_profile"`
	Probability float64             `json:"probability"`
	Weight      float64             `json:"weight"`
	Fields      []Comparison        `json:"fields"`
	Status      string              `json:"status"`
	DecidedBy   string              `json:"decided_by,omitempty"`
	DecidedAt   *time.Time          `json:"decided_at,omitempty"`
	LinkMessage string              `json:"link_message_id,omitempty"`
	FoundAt     time.Time           `json:"found_at"`
}

// ProfileSource lists profiles.
type ProfileSource interface {
	AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error
}

// CandidateStore keeps scored pairs and the decisions people made on them.
// Decisions are kept apart from candidates: a new run replaces the
// candidates but never forgets that someone rejected a pair.
type CandidateStore interface {
	SaveCandidates(ctx context.Context, cs []*Candidate) error
	Candidates(ctx context.Context, status string, limit int) ([]*Candidate, error)
	Candidate(ctx context.Context, id string) (*Candidate, error)
	Decide(ctx context.Context, id, status, by string, at time.Time, linkMessage string) error
	Decisions(ctx context.Context) (map[string]string, error)
	// SaveModel and LoadModel keep the fitted model between runs (nil
	// when none was saved).
	SaveModel(ctx context.Context, m *Model) error
	LoadModel(ctx context.Context) (*Model, error)
}

// Service links profiles.
type Service struct {
	Profiles ProfileSource
	Store    CandidateStore
	Log      portrait.EventLog
	Now      portrait.Clock
	Config   Config
	// Traits compared, by name; their kinds are inferred from the names.
	Traits []string
	// MinFields: profiles with fewer of the traits filled are not linked.
	MinFields int
	// Relearn fits a new model even when one was saved by an earlier run.
	Relearn bool
	// Journal finds probable duplicates that an identity rule keeps apart
	// (nil: not listed).
	Journal JournalReader
}

// Duplicates lists the probable duplicates among the current profiles.
func (s *Service) Duplicates(ctx context.Context) ([]*portrait.ProbableDuplicate, error) {
	if s.Journal == nil {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "probable duplicates are not available")
	}
	return ProbableDuplicates(ctx, s.Journal, nil)
}

// DefaultTraits are the person traits worth comparing.
var DefaultTraits = []string{"name", "first_name", "last_name", "birth_date", "birthday", "birth_year", "gender", "address", "street", "city", "province", "postcode", "zip", "phone", "email", "id_card"}

// RunResult summarises a run.
type RunResult struct {
	Profiles int `json:"profiles"`
	Compared int `json:"compared_pairs"`
	Matches  int `json:"matches"`
	Linked   int `json:"linked"` // link events appended
	Review   int `json:"review"`
	Skipped  int `json:"skipped_rejected"`
	// ModelCredible is false when the model fitted on this run described
	// look-alikes rather than duplicates; ModelWarning says why, and the
	// run then merged nothing and sent its best pairs to review.
	ModelCredible bool          `json:"model_credible"`
	ModelWarning  string        `json:"model_warning,omitempty"`
	Duration      time.Duration `json:"-"`
	DurationMS    int64         `json:"duration_ms"`
}

// PairID is the stable id of a pair of identifiers, whichever way round.
func PairID(a, b portrait.Identifier) string {
	x, y := a.Type+":"+a.Value, b.Type+":"+b.Value
	if y < x {
		x, y = y, x
	}
	h := sha256.Sum256([]byte(x + "\x00" + y))
	return hex.EncodeToString(h[:12])
}

// Run links all profiles: matches become link events, review pairs become
// pending candidates, and pairs a person rejected are left alone.
func (s *Service) Run(ctx context.Context) (*RunResult, error) {
	start := time.Now()
	traits := s.Traits
	if len(traits) == 0 {
		traits = DefaultTraits
	}
	minFields := max(s.MinFields, 2)
	var recs []Record
	var profiles []*portrait.Profile
	err := s.Profiles.AllProfiles(ctx, func(p *portrait.Profile) error {
		if len(p.Identifiers) == 0 {
			return nil
		}
		r := Record{}
		for _, t := range traits {
			if tr, ok := p.Traits[t]; ok && tr.Value != nil && tr.Imputed == "" {
				if v := strings.TrimSpace(fmt.Sprint(tr.Value)); v != "" {
					r[t] = v
				}
			}
		}
		if len(r) >= minFields {
			recs = append(recs, r)
			profiles = append(profiles, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := &RunResult{Profiles: len(recs), ModelCredible: true}
	if len(recs) < 2 {
		res.Duration = time.Since(start)
		return res, s.Store.SaveCandidates(ctx, nil)
	}
	cfg := s.Config
	if len(cfg.Fields) == 0 {
		for _, t := range traits {
			cfg.Fields = append(cfg.Fields, Field{Name: t, Kind: InferKind(t)})
		}
	}
	if !s.Relearn && cfg.Model == nil {
		// The first run, with the duplicates still apart, is what teaches
		// the model what a match looks like; later runs keep it.
		if cfg.Model, err = s.Store.LoadModel(ctx); err != nil {
			return nil, err
		}
	}
	lr, err := LinkContext(ctx, recs, cfg)
	if err != nil {
		return nil, err
	}
	res.ModelCredible, res.ModelWarning = lr.Credible, lr.Warning
	// Only a credible fit teaches later runs; the fallback model is
	// rebuilt each time from the data at hand.
	if lr.Model != cfg.Model && lr.Credible {
		if err := s.Store.SaveModel(ctx, lr.Model); err != nil {
			return nil, err
		}
	}
	res.Compared = lr.Candidates
	decided, err := s.Store.Decisions(ctx)
	if err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	var pending []*Candidate
	var links []*portrait.Event
	for _, pr := range lr.Pairs {
		pa, pb := profiles[pr.A], profiles[pr.B]
		c := &Candidate{A: pa.Identifiers[0], B: pb.Identifiers[0], AProfile: pa.ID, BProfile: pb.ID,
			Probability: pr.Probability, Weight: pr.Weight, Status: Pending, FoundAt: now}
		c.ID = PairID(c.A, c.B)
		for i, f := range lr.Model.Fields {
			if i < len(pr.Levels) {
				c.Fields = append(c.Fields, Comparison{Field: f.Name, A: recs[pr.A][f.Name], B: recs[pr.B][f.Name], Level: pr.Levels[i]})
			}
		}
		switch st := decided[c.ID]; {
		case st == Rejected:
			res.Skipped++
			continue
		case st == Accepted || st == Linked:
			continue // already linked
		case pr.Decision == Match:
			res.Matches++
			links = append(links, s.linkEvent(c, now, "matched automatically"))
			c.Status, c.LinkMessage = Linked, "link-"+c.ID
			pending = append(pending, c)
		default:
			res.Review++
			pending = append(pending, c)
		}
	}
	if len(links) > 0 {
		ar, err := s.Log.Append(ctx, links, nil)
		if err != nil {
			return nil, err
		}
		res.Linked = ar.Accepted
	}
	if err := s.Store.SaveCandidates(ctx, pending); err != nil {
		return nil, err
	}
	for _, c := range pending {
		if c.Status == Linked {
			if err := s.Store.Decide(ctx, c.ID, Linked, "linkage", now, c.LinkMessage); err != nil {
				return nil, err
			}
		}
	}
	res.Duration = time.Since(start)
	res.DurationMS = res.Duration.Milliseconds()
	return res, nil
}

func (s *Service) linkEvent(c *Candidate, now time.Time, why string) *portrait.Event {
	ctx, _ := json.Marshal(map[string]any{"externalIds": []map[string]string{{"id": c.A.Value, "type": c.A.Type}, {"id": c.B.Value, "type": c.B.Type}}})
	props, _ := json.Marshal(map[string]any{"candidate": c.ID, "probability": c.Probability, "weight": c.Weight, "reason": why})
	return &portrait.Event{MessageID: "link-" + c.ID, Type: portrait.EventIdentify, Source: Source, Context: ctx, Properties: props, Timestamp: now, ReceivedAt: now}
}

// Accept links a pair from the review band.
func (s *Service) Accept(ctx context.Context, id, by string) (*Candidate, error) {
	c, err := s.Store.Candidate(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status == Accepted || c.Status == Linked {
		return c, nil
	}
	now := s.Now().UTC()
	ev := s.linkEvent(c, now, "accepted by "+by)
	// A pair can be accepted again after a rejection undid it: each
	// acceptance is its own event, so the earlier retraction does not
	// swallow it.
	ev.MessageID = fmt.Sprintf("link-%s-%d", c.ID, now.UnixNano())
	if _, err := s.Log.Append(ctx, []*portrait.Event{ev}, nil); err != nil {
		return nil, err
	}
	if err := s.Store.Decide(ctx, id, Accepted, by, now, ev.MessageID); err != nil {
		return nil, err
	}
	return s.Store.Candidate(ctx, id)
}

// Reject records that a pair is not the same person; later runs skip it.
// Rejecting a pair that was linked undoes the link.
func (s *Service) Reject(ctx context.Context, id, by string) (*Candidate, error) {
	c, err := s.Store.Candidate(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status == Accepted || c.Status == Linked {
		if err := s.undo(ctx, c.LinkMessage, by); err != nil {
			return nil, err
		}
	}
	if err := s.Store.Decide(ctx, id, Rejected, by, s.Now().UTC(), ""); err != nil {
		return nil, err
	}
	return s.Store.Candidate(ctx, id)
}

// UndoLink undoes the merge made by the link event linkMessage (as named
// in the merge journal): its pair is rejected, so later runs do not link it
// again, and the link is retracted through the log, so a rebuild replays
// the profiles apart. A link already undone, or replaced by a later
// acceptance, is a conflict.
func (s *Service) UndoLink(ctx context.Context, linkMessage, by string) (*Candidate, error) {
	rest, ok := strings.CutPrefix(linkMessage, "link-")
	if !ok {
		return nil, portrait.Errorf(portrait.EINVALID, "%q is not a link made by record linkage", linkMessage)
	}
	id, _, _ := strings.Cut(rest, "-") // accepted links carry a time suffix
	c, err := s.Store.Candidate(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status == Rejected || c.LinkMessage != linkMessage {
		return nil, portrait.Errorf(portrait.ECONFLICT, "this merge was already undone (pair %s is %s)", c.ID, c.Status)
	}
	return s.Reject(ctx, id, by)
}

func (s *Service) undo(ctx context.Context, linkMessage, by string) error {
	if linkMessage == "" {
		return nil
	}
	now := s.Now().UTC()
	props, _ := json.Marshal(map[string]string{"message_id": linkMessage, "by": by})
	ev := &portrait.Event{MessageID: "retract-" + linkMessage, Type: portrait.EventRetract, Source: Source, Properties: props, Timestamp: now, ReceivedAt: now}
	_, err := s.Log.Append(ctx, []*portrait.Event{ev}, nil)
	return err
}

// SortCandidates orders candidates most likely first.
func SortCandidates(cs []*Candidate) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Probability != cs[j].Probability {
			return cs[i].Probability > cs[j].Probability
		}
		return cs[i].ID < cs[j].ID
	})
}

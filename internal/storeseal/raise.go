package storeseal

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/linkage"
	profiledoc "github.com/portrait-cdp/portrait/profile/doc"
)

// A level raised to secret (PUT /v1/classifications/{kind}/{name}) seals
// the values written from then on; those stored before are sealed by a
// background pass over the log and the state, one name at a time (a Job).
// The pass runs beside the processor, so it never overwrites a row it did
// not read: each rewrite is conditional on the row being as read (compare
// and swap), and a row changed meanwhile was written by the processor,
// which seals by the new level already (the Worker waits out the sealer's
// level cache before it starts). Its progress is kept in the store
// (reseal_jobs), so a restart resumes where it stopped.

// Reseal phases, in order. Each reads one table (or column) of the rows
// that may hold the name; a job goes through those of its kind.
const (
	PhaseEvents     = "events"             // event bodies, by seq
	PhaseProfiles   = "profiles"           // profile documents, by id
	PhaseCandidates = "linkage_candidates" // record-linkage candidates, by id
	PhaseIdentities = "identities"         // an identifier type's stored values
	PhaseRefused    = "refused"            // refused identifiers of the type
	PhaseMerges     = "merges"             // the merge journal's identifiers, by id
	PhaseSplits     = "splits"             // split decisions: via_value and both sides, by message id
	PhaseValues     = "trait_issues"       // a trait's refused values
	// The documents sealed whole (datakey.SealBlob) that were written
	// before a key was configured: the name's values may be in them, and
	// which ones cannot be told from the bytes (a quarantined body may not
	// even be JSON), so every one in clear is sealed.
	PhaseQuarantine   = "quarantine"
	PhaseImports      = "imports"
	PhaseDeadLetters  = "segment_dead_letters"
	PhaseAccountEdits = "account_edits"
	PhaseAccountState = "account_state"
	// PhaseRows is a job kept by an earlier version (identities and
	// refused identifiers, or refused values, in one phase): resumed as
	// the first of those.
	PhaseRows = "rows"
)

// Job is a name whose stored values are being sealed, and how far.
type Job struct {
	Kind  string `json:"kind"` // "trait" or "identifier"
	Name  string `json:"name"`
	Phase string `json:"phase"`
	After string `json:"after"` // the last key done in the phase
}

// A Row is one row of a phase as a store read it: its key in the phase's
// order and the phase's columns (one, the value, except for PhaseSplits:
// via_type, via_value, side_a, side_b).
type Row struct {
	Key  string
	Cols [][]byte
}

// A Rewrite is a row to write anew: its columns become New, only where
// they are still Old (as read). For the value-keyed phases (identities,
// refused, trait_issues) the key is the value: every row of the name
// holding Old gets New.
type Rewrite struct {
	Key      string
	Old, New [][]byte
}

// RaiseTables is what a store gives the background pass: its rows, read by
// phase, and their conditional rewrite. The pass (Step, InClear) decides
// everything else, the same for every store.
type RaiseTables interface {
	// RaiseRows reads up to limit rows of the phase that may hold the
	// name in clear (a cheap filter, such as the quoted name in the
	// bytes; the pass decides), in key order after the key after (""
	// from the start). A value-keyed phase returns each distinct value
	// in clear once, its key the value itself.
	RaiseRows(ctx context.Context, phase, kind, name, after string, limit int) ([]Row, error)
	// RaiseWrite rewrites the rows of the phase (j's, or the phase an
	// old job's "rows" stands for), each only where it is
	// still as read, and moves the job's kept progress from j to next,
	// or removes it when done, only where it is still j (a job
	// scheduled anew meanwhile starts over). Rows and progress are one
	// transaction where the store can.
	RaiseWrite(ctx context.Context, phase string, j Job, rws []Rewrite, next Job, done bool) error
}

// ValueKeyed reports whether a phase's rows are keyed by their value
// (Rewrite.Key is the value; the store rewrites every row of the name
// holding it).
func ValueKeyed(phase string) bool {
	for _, p := range phases {
		if p.name == phase {
			return !p.keyed
		}
	}
	return false
}

// phase is how the pass reads one phase and seals what it finds.
type phase struct {
	name string
	kind string // "trait" or "identifier" when only for that kind
	// count is its key in InClear.
	count string
	// keyed: paged by a key kept as the job's progress. Otherwise paged
	// by value, which is never kept (it would put the value in clear in
	// the jobs table): a sealed row no longer matches, so each step
	// reads from the start.
	keyed bool
	// clear reports whether the row holds the name in clear.
	clear func(kind, name string, r Row) (bool, error)
	// raise is the row's columns once sealed, and whether they changed.
	raise func(rs Resealer, kind, name string, r Row) ([][]byte, bool, error)
}

var phases = []phase{
	{name: PhaseEvents, count: "events", keyed: true,
		clear: func(kind, name string, r Row) (bool, error) { return ClearInEvent(kind, name, r.Cols[0]) },
		raise: func(rs Resealer, kind, name string, r Row) ([][]byte, bool, error) {
			return one(rs.RaiseEvent(kind, name, r.Cols[0]))
		}},
	{name: PhaseProfiles, count: "profiles", keyed: true,
		clear: func(kind, name string, r Row) (bool, error) { return ClearInProfile(kind, name, r.Cols[0]) },
		raise: func(rs Resealer, kind, name string, r Row) ([][]byte, bool, error) {
			return one(rs.RaiseProfile(kind, name, r.Key, r.Cols[0]))
		}},
	{name: PhaseCandidates, count: "linkage_candidates", keyed: true,
		clear: func(kind, name string, r Row) (bool, error) { return ClearInCandidate(kind, name, r.Key, r.Cols[0]) },
		raise: func(rs Resealer, kind, name string, r Row) ([][]byte, bool, error) {
			if clear, err := ClearInCandidate(kind, name, r.Key, r.Cols[0]); err != nil || !clear {
				return nil, false, err
			}
			return one(rs.Candidate(r.Key, r.Cols[0]))
		}},
	{name: PhaseIdentities, kind: "identifier", count: "identities", clear: clearValue, raise: raiseIdentifier},
	{name: PhaseRefused, kind: "identifier", count: "refused_identifiers", clear: clearValue, raise: raiseIdentifier},
	{name: PhaseMerges, kind: "identifier", count: "merges", keyed: true, clear: clearValue, raise: raiseIdentifier},
	{name: PhaseSplits, kind: "identifier", count: "splits", keyed: true,
		clear: func(_, name string, r Row) (bool, error) { return ClearInSplit(name, r) },
		raise: func(rs Resealer, _, name string, r Row) ([][]byte, bool, error) {
			if clear, err := ClearInSplit(name, r); err != nil || !clear {
				return nil, false, err
			}
			via, ch, err := rs.Identifier(string(r.Cols[0]), string(r.Cols[1]))
			if err != nil {
				return nil, false, err
			}
			out := [][]byte{r.Cols[0], []byte(via), nil, nil}
			for i := 2; i < 4; i++ {
				side, c, err := rs.SplitSide(r.Key, string(r.Cols[i]))
				if err != nil {
					return nil, false, err
				}
				out[i], ch = []byte(side), ch || c
			}
			return out, ch, nil
		}},
	{name: PhaseValues, kind: "trait", count: "refused_values", clear: clearValue,
		raise: func(rs Resealer, _, name string, r Row) ([][]byte, bool, error) {
			if !isClearValue(r.Cols[0]) {
				return nil, false, nil
			}
			v, ch, err := rs.Value(name, string(r.Cols[0]))
			return [][]byte{[]byte(v)}, ch, err
		}},
	blobPhase(PhaseQuarantine, "quarantined", datakey.BlobQuarantine),
	blobPhase(PhaseImports, "import_summaries", datakey.BlobImport),
	blobPhase(PhaseDeadLetters, "dead_letters", datakey.BlobDeadLetter),
	blobPhase(PhaseAccountEdits, "account_edits", datakey.BlobAccountEdit),
	blobPhase(PhaseAccountState, "account_state", datakey.BlobAccountState),
}

func one(v []byte, ch bool, err error) ([][]byte, bool, error) { return [][]byte{v}, ch, err }

func isClearValue(v []byte) bool {
	return len(v) > 0 && !datakey.IsSealed(string(v))
}

func clearValue(_, _ string, r Row) (bool, error) { return isClearValue(r.Cols[0]), nil }

func raiseIdentifier(rs Resealer, _, name string, r Row) ([][]byte, bool, error) {
	if !isClearValue(r.Cols[0]) {
		return nil, false, nil
	}
	v, ch, err := rs.Identifier(name, string(r.Cols[0]))
	return [][]byte{[]byte(v)}, ch, err
}

// blobPhase seals the documents of a table kept whole that are in clear.
func blobPhase(name, count, label string) phase {
	return phase{name: name, count: count, keyed: true,
		clear: func(_, _ string, r Row) (bool, error) { return !datakey.IsSealedBlob(r.Cols[0]), nil },
		raise: func(rs Resealer, _, _ string, r Row) ([][]byte, bool, error) {
			if datakey.IsSealedBlob(r.Cols[0]) {
				return nil, false, nil
			}
			plain, err := rs.S.OpenBlob(r.Cols[0], label)
			if err != nil {
				return nil, false, err
			}
			return [][]byte{rs.S.SealBlob(plain, label)}, true, nil
		}}
}

// phaseOf finds a phase by name (PhaseRows: the first of the value rows of
// the kind).
func phaseOf(kind, name string) (int, bool) {
	if name == PhaseRows {
		name = PhaseIdentities
		if kind != "identifier" {
			name = PhaseValues
		}
	}
	for i, p := range phases {
		if p.name == name && (p.kind == "" || p.kind == kind) {
			return i, true
		}
	}
	return 0, false
}

// Next is the phase after p for a job of kind ("" after the last).
func Next(kind, p string) string {
	i, ok := phaseOf(kind, p)
	if !ok {
		return ""
	}
	for _, q := range phases[i+1:] {
		if q.kind == "" || q.kind == kind {
			return q.name
		}
	}
	return ""
}

// Step does one batch of the job over a store's tables: it reads a page of
// the phase, seals the rows that hold the name in clear, and has the store
// rewrite each only where it is as read, with the job's progress. The job
// returned is where it is now, done when it has finished.
func Step(ctx context.Context, t RaiseTables, s *datakey.Sealer, j Job) (Job, bool, error) {
	if !s.Active() {
		return j, false, portrait.Errorf(portrait.EUNAVAILABLE, "no data key is configured: nothing to seal with")
	}
	i, ok := phaseOf(j.Kind, j.Phase)
	if !ok {
		return j, false, portrait.Errorf(portrait.EINTERNAL, "reseal job %s/%s has an unknown phase %q", j.Kind, j.Name, j.Phase)
	}
	ph := phases[i]
	after := ""
	if ph.keyed {
		after = j.After
	}
	rows, err := t.RaiseRows(ctx, ph.name, j.Kind, j.Name, after, Batch)
	if err != nil {
		return j, false, err
	}
	rs := Resealer{S: s}
	var rws []Rewrite
	for _, r := range rows {
		out, ch, err := ph.raise(rs, j.Kind, j.Name, r)
		if err != nil {
			return j, false, err
		}
		if ch {
			rws = append(rws, Rewrite{Key: r.Key, Old: r.Cols, New: out})
		}
	}
	next, done := j, false
	switch {
	case len(rows) == Batch && ph.keyed:
		next.Phase, next.After = ph.name, rows[len(rows)-1].Key
	case len(rows) == Batch && len(rws) > 0:
		// By value: the next step reads from the start, past the rows
		// sealed now.
		next.Phase, next.After = ph.name, ""
	default:
		if next.Phase, next.After = Next(j.Kind, ph.name), ""; next.Phase == "" {
			done = true
		}
	}
	// The progress kept is matched against the job as the store holds it
	// (its phase may be an old job's "rows").
	if err := t.RaiseWrite(ctx, ph.name, j, rws, next, done); err != nil {
		return j, false, err
	}
	return next, done, nil
}

// InClear counts, by phase, the stored rows that hold a trait's (kind
// "trait") or an identifier type's ("identifier") values in clear, over a
// store's tables: what a job for the name would seal (the documents kept
// whole that are in clear are counted for every name: what they hold
// cannot be told). It reads every row that mentions the name: a status
// request, not a hot path.
func InClear(ctx context.Context, t RaiseTables, kind, name string) (map[string]int, error) {
	out := map[string]int{}
	for _, ph := range phases {
		if ph.kind != "" && ph.kind != kind {
			continue
		}
		n := 0
		for after := ""; ; {
			rows, err := t.RaiseRows(ctx, ph.name, kind, name, after, Batch)
			if err != nil {
				return nil, err
			}
			for _, r := range rows {
				clear, err := ph.clear(kind, name, r)
				if err != nil {
					return nil, err
				}
				if clear {
					n++
				}
			}
			if len(rows) < Batch {
				break
			}
			after = rows[len(rows)-1].Key
		}
		out[ph.count] = n
	}
	return out, nil
}

// ClearInEvent reports whether an event body holds a value of the name
// (a member of traits, properties or context, or an external id of the
// identifier type) in clear, or is a carried-forward event whose profile
// is in clear (RetainedInClear: it may hold any name). The stores' events
// phase selects the bodies that mention the name and every carried-forward
// event.
func ClearInEvent(kind, name string, body []byte) (bool, error) {
	if held, err := RetainedInClear(body); err != nil || held {
		return held, err
	}
	traits, ids, err := datakey.ClearNames(body)
	if err != nil {
		return false, err
	}
	if kind == "identifier" {
		return ids[name], nil
	}
	return traits[name], nil
}

// ClearInProfile reports whether a stored profile document holds the
// trait's value, or an identifier of the type, in clear.
func ClearInProfile(kind, name string, doc []byte) (bool, error) {
	p, err := profiledoc.Decode(doc)
	if err != nil {
		return false, portrait.Wrap(err, "corrupt profile")
	}
	if kind == "identifier" {
		for _, id := range p.Identifiers {
			if id.Type == name && id.Value != "" && !datakey.IsSealed(id.Value) {
				return true, nil
			}
		}
		return false, nil
	}
	t, ok := p.Traits[name]
	if !ok || t.Value == nil {
		return false, nil
	}
	s, isStr := t.Value.(string)
	return !isStr || !datakey.IsSealed(s), nil
}

// ClearInCandidate reports whether a stored linkage candidate holds the
// name in clear: a compared value of the trait, or a side's identifier of
// the type.
func ClearInCandidate(kind, name, id string, doc []byte) (bool, error) {
	c := &linkage.Candidate{}
	if err := json.Unmarshal(doc, c); err != nil {
		return false, portrait.Wrap(err, "cannot read linkage candidate "+id)
	}
	clear := func(v string) bool { return v != "" && !datakey.IsSealed(v) }
	if kind == "identifier" {
		return c.A.Type == name && clear(c.A.Value) || c.B.Type == name && clear(c.B.Value), nil
	}
	for _, f := range c.Fields {
		if f.Field == name && (clear(f.A) || clear(f.B)) {
			return true, nil
		}
	}
	return false, nil
}

// ClearInSplit reports whether a split decision (via_type, via_value,
// side_a, side_b) holds an identifier of the type in clear.
func ClearInSplit(typ string, r Row) (bool, error) {
	if string(r.Cols[0]) == typ && isClearValue(r.Cols[1]) {
		return true, nil
	}
	for _, side := range r.Cols[2:] {
		var ids []portrait.Identifier
		if err := json.Unmarshal(side, &ids); err != nil {
			return false, portrait.Wrap(err, "cannot read split "+r.Key)
		}
		for _, id := range ids {
			if id.Type == typ && id.Value != "" && !datakey.IsSealed(id.Value) {
				return true, nil
			}
		}
	}
	return false, nil
}

// RaiseEvent is the body as it is stored once the name is secret, and
// whether it must be rewritten (it held the name in clear).
func (r Resealer) RaiseEvent(kind, name string, body []byte) ([]byte, bool, error) {
	clear, err := ClearInEvent(kind, name, body)
	if err != nil || !clear {
		return nil, false, err
	}
	return r.Event(body)
}

// RaiseProfile is RaiseEvent for a profile document.
func (r Resealer) RaiseProfile(kind, name, id string, doc []byte) ([]byte, bool, error) {
	clear, err := ClearInProfile(kind, name, doc)
	if err != nil || !clear {
		return nil, false, err
	}
	return r.Profile(id, doc)
}

// RaiseStore is a store that seals a raised name's stored values in the
// background.
type RaiseStore interface {
	// ScheduleReseal records a job for the name (starting over if one
	// was under way).
	ScheduleReseal(ctx context.Context, kind, name string) error
	// ResealJobs lists the jobs not finished.
	ResealJobs(ctx context.Context) ([]Job, error)
	// ResealStep does one batch of the job and keeps its progress; the
	// job returned is where it is now, done when it has finished (its
	// record is then gone).
	ResealStep(ctx context.Context, j Job) (next Job, done bool, err error)
}

// Worker runs the reseal jobs (Run, in a goroutine its owner stops by
// cancelling the context and waits for).
type Worker struct {
	Store RaiseStore
	// Wait is how long after a job is scheduled the pass starts: longer
	// than the sealer's level cache (datakey.Sealer.CacheFor), so that
	// the processor seals the name in every row it writes from then on.
	Wait time.Duration
	// Poll is how often the store is asked for jobs scheduled by another
	// node (0: only when woken).
	Poll time.Duration
	// Retry is the pause after a failed step.
	Retry time.Duration
	Log   *slog.Logger
	// Fence, when set, is asked right before each step (its write is the
	// point of no return): over a shared store, whether this node still
	// holds the jobs lease. Refused, the pass stops until the next wake
	// or poll. Two nodes stepping one job would be safe (each rewrite is
	// conditional), but wasteful, and a paused node must not write.
	Fence func(ctx context.Context) error

	wake chan struct{}
}

// NewWorker is a worker over s, woken once at its start so that the jobs
// the store holds (a restart) resume.
func NewWorker(s RaiseStore) *Worker {
	w := &Worker{Store: s, Wait: 3 * time.Second, Poll: 30 * time.Second, Retry: 10 * time.Second, wake: make(chan struct{}, 1)}
	w.wake <- struct{}{}
	return w
}

// Schedule records a job for the name and wakes the worker.
func (w *Worker) Schedule(ctx context.Context, kind, name string) error {
	if err := w.Store.ScheduleReseal(ctx, kind, name); err != nil {
		return err
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run runs the jobs until ctx ends; a job cut short resumes at the next
// Run (its progress is in the store).
func (w *Worker) Run(ctx context.Context) {
	var poll <-chan time.Time
	if w.Poll > 0 {
		t := time.NewTicker(w.Poll)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
			if !sleep(ctx, w.Wait) {
				return
			}
		case <-poll:
		}
		if !w.pass(ctx) {
			return
		}
	}
}

// pass runs every job to its end; false when ctx ended.
func (w *Worker) pass(ctx context.Context) bool {
	for failed := 0; ; {
		jobs, err := w.Store.ResealJobs(ctx)
		if ctx.Err() != nil {
			return false
		}
		if err != nil {
			w.logf("cannot list the reseal jobs", err)
			if !sleep(ctx, w.Retry) {
				return false
			}
			continue
		}
		if len(jobs) == 0 || failed > 0 && failed >= len(jobs) {
			return true // the failed ones again at the next wake or poll
		}
		failed = 0
		for _, j := range jobs {
			for {
				if w.Fence != nil {
					if err := w.Fence(ctx); err != nil {
						w.logf("reseal paused: this node may not run it now", err)
						return ctx.Err() == nil
					}
				}
				next, done, err := w.Store.ResealStep(ctx, j)
				if ctx.Err() != nil {
					return false
				}
				if err != nil {
					failed++
					w.logf("sealing the stored values of "+j.Kind+" "+j.Name+" failed", err)
					if !sleep(ctx, w.Retry) {
						return false
					}
					break
				}
				if done {
					if w.Log != nil {
						w.Log.Info("stored values sealed after a level was raised to secret", "kind", j.Kind, "name", j.Name)
					}
					break
				}
				j = next
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (w *Worker) logf(msg string, err error) {
	if w.Log != nil {
		w.Log.Warn(msg, "error", err)
	}
}

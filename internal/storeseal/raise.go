package storeseal

import (
	"context"
	"log/slog"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
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

// Reseal phases, in order.
const (
	PhaseEvents   = "events"   // event bodies, by seq
	PhaseProfiles = "profiles" // profile documents, by id
	PhaseRows     = "rows"     // identities and refused identifiers, or refused trait values
)

// Job is a name whose stored values are being sealed, and how far.
type Job struct {
	Kind  string `json:"kind"` // "trait" or "identifier"
	Name  string `json:"name"`
	Phase string `json:"phase"`
	After string `json:"after"` // the last key done in the phase
}

// Next is the phase after p ("" after the last).
func Next(p string) string {
	switch p {
	case PhaseEvents:
		return PhaseProfiles
	case PhaseProfiles:
		return PhaseRows
	}
	return ""
}

// ClearInEvent reports whether an event body holds a value of the name
// (a member of traits, properties or context, or an external id of the
// identifier type) in clear.
func ClearInEvent(kind, name string, body []byte) (bool, error) {
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

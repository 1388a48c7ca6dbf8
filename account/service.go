package account

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Log is the event log as the account follower reads it.
type Log interface {
	ReadLog(ctx context.Context, after int64, limit int) ([]*portrait.Event, error)
}

// Store keeps the API's edits (the journal of who changed which account)
// and records refused values where the quality report finds them.
type Store interface {
	AppendAccountEdit(ctx context.Context, ed *Edit) (int64, error)
	AccountEdits(ctx context.Context) ([]*Edit, error)
	AddTraitIssues(ctx context.Context, issues []*portrait.TraitIssue) error
	// The follower's checkpoint (Model.Snapshot) in the state database;
	// no checkpoint: seq 0, nil body.
	SaveAccountState(ctx context.Context, seq int64, body []byte) error
	AccountState(ctx context.Context) (seq int64, body []byte, err error)
}

// Service follows the event log into the model and makes the edits
// durable. Run owns its goroutine.
type Service struct {
	Model  *Model
	Log    Log
	Store  Store
	Now    portrait.Clock
	Logger *slog.Logger
	// Notify returns a channel closed when events are appended.
	Notify func() <-chan struct{}
	// TrainEvery retrains the learned score (0: only on request).
	TrainEvery time.Duration
	// SaveEvery writes the checkpoint while following (0: only after the
	// load and when Run stops).
	SaveEvery time.Duration
	// Read counts the log events read (a restart from a checkpoint reads
	// only the events after it).
	Read atomic.Int64
	// Erased, when set, tells which people were erased, wherever the
	// erasure ran (the suppression list): the follower forgets them at
	// load and whenever its generation moves (an erasure through another
	// node). Nil: only Forget makes the model forget.
	Erased Erased
	// Forgotten counts the people forgotten directly, Rebuilt the
	// forgets that fell back to a rebuild from the whole log.
	Forgotten, Rebuilt atomic.Int64

	applied atomic.Int64
	loaded  atomic.Bool
	// forgetMu orders forgets; pending are the people a failed forget
	// left in the model or its checkpoint, which the next Step forgets
	// again; scanned is the Erased generation last looked through (-1:
	// none yet, so the load looks).
	forgetMu sync.Mutex
	pending  []string
	scanned  atomic.Int64
	// kept are erased people a forget left in the model: an edit
	// journalled by hand names them (a role set through the API), which a
	// rebuild applies again. Later looks pass over them instead of
	// rebuilding for them at every erasure made elsewhere.
	kept map[string]bool
}

// Erased names the erased people among the model's.
type Erased interface {
	// ErasedGeneration moves when people may have been erased elsewhere.
	ErasedGeneration() int64
	// Erased returns the person keys ("user_id:…") of pks whose
	// identifiers are erased.
	Erased(pks []string) ([]string, error)
}

// PersonKeys are the person keys the model may hold for a profile's
// identifiers: its user ids and anonymous ids.
func PersonKeys(ids []portrait.Identifier) []string {
	var out []string
	for _, id := range ids {
		switch id.Type {
		case portrait.IDUserID, portrait.IDAnonymousID:
			out = append(out, id.Type+":"+id.Value)
		}
	}
	return out
}

// PersonEvent is an event carrying only the identifier of a person key,
// for a check of its identifiers (Erased).
func PersonEvent(pk string) *portrait.Event {
	switch {
	case strings.HasPrefix(pk, portrait.IDUserID+":"):
		return &portrait.Event{UserID: strings.TrimPrefix(pk, portrait.IDUserID+":")}
	case strings.HasPrefix(pk, portrait.IDAnonymousID+":"):
		return &portrait.Event{AnonymousID: strings.TrimPrefix(pk, portrait.IDAnonymousID+":")}
	}
	return nil
}

// NewService returns a service over a new model.
func NewService(log Log, store Store, now portrait.Clock) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{Model: NewModel(now), Log: log, Store: store, Now: now, Logger: slog.Default(), TrainEvery: time.Hour, SaveEvery: time.Minute}
	s.scanned.Store(-1)
	// An undo replays from the log: the model keeps no events in memory.
	s.Model.SetReplay(s.replay)
	if c, ok := log.(Carried); ok {
		s.Model.SetCarried(func() ([]byte, error) { return c.CarriedAccounts(context.Background()) })
	}
	return s
}

// replay reads the events after `after` up to `upto` back from the log.
func (s *Service) replay(after, upto int64, fn func(*portrait.Event)) error {
	ctx := context.Background()
	for after < upto {
		evs, err := s.Log.ReadLog(ctx, after, 5000)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			// A reader of the log skips tombstones: after an erasure
			// the log may end with them, and then nothing is missing.
			if ls, ok := s.Log.(interface {
				LastSeq(ctx context.Context) (int64, error)
			}); ok {
				if last, err := ls.LastSeq(ctx); err == nil && last >= upto {
					return nil
				}
			}
			return portrait.Errorf(portrait.EINTERNAL, "the log ends at %d, before event %d the accounts were built from", after, upto)
		}
		s.Read.Add(int64(len(evs)))
		for _, e := range evs {
			if e.Seq > upto {
				return nil
			}
			fn(e)
		}
		after = evs[len(evs)-1].Seq
	}
	return nil
}

// Save writes the checkpoint.
func (s *Service) Save(ctx context.Context) error {
	seq, body, err := s.Model.Snapshot()
	if err != nil {
		return err
	}
	return s.Store.SaveAccountState(ctx, seq, body)
}

// Forget makes the accounts forget an erased person (the profile's
// identifiers), whose events the erasure made tombstones, in memory and in
// the checkpoint: directly when the person only identified themselves
// (Model.Forget), else by a rebuild from the whole log, which the model
// skips the tombstones of. A failure is retried by the next Step, so the
// model converges without an operator.
func (s *Service) Forget(ctx context.Context, ids []portrait.Identifier) error {
	pks := PersonKeys(ids)
	if err := s.forget(ctx, pks); err != nil {
		s.forgetMu.Lock()
		s.pending = append(s.pending, pks...)
		s.forgetMu.Unlock()
		return err
	}
	return nil
}

// forget removes pks from the model and saves the checkpoint; nothing is
// done for people the model does not hold (their erasure costs nothing
// here).
func (s *Service) forget(ctx context.Context, pks []string) error {
	s.forgetMu.Lock()
	defer s.forgetMu.Unlock()
	return s.forgetLocked(ctx, pks, false)
}

func (s *Service) forgetLocked(ctx context.Context, pks []string, save bool) error {
	if !s.Model.holdsAny(pks) && !save {
		return nil
	}
	done, err := s.Model.Forget(pks)
	if err != nil {
		return err
	}
	if !done {
		// Aside: the whole log is read, and the accounts stay readable
		// (and the follower follows) meanwhile.
		if err := s.Model.RebuildAside(); err != nil {
			return err
		}
	}
	if err := s.Save(ctx); err != nil {
		return err
	}
	if done {
		s.Forgotten.Add(1)
	} else {
		s.Rebuilt.Add(1)
	}
	return nil
}

// forgetDue forgets what a failed Forget left, and the people erased
// elsewhere since the last look (Erased); on a failure the next Step
// tries again.
func (s *Service) forgetDue(ctx context.Context) error {
	// A forget in progress (an erasure's rebuild reads the whole log)
	// must not stop the follower: this step leaves it, the next looks.
	if !s.forgetMu.TryLock() {
		return nil
	}
	defer s.forgetMu.Unlock()
	if len(s.pending) > 0 {
		// Saved even when the model no longer holds them: the failure
		// may have come after the model forgot, before the checkpoint.
		if err := s.forgetLocked(ctx, s.pending, true); err != nil {
			return err
		}
		s.pending = nil
	}
	if s.Erased == nil {
		return nil
	}
	gen := s.Erased.ErasedGeneration()
	if gen == s.scanned.Load() {
		return nil
	}
	var pks []string
	for _, pk := range s.Model.Persons() {
		if !s.kept[pk] {
			pks = append(pks, pk)
		}
	}
	gone, err := s.Erased.Erased(pks)
	if err != nil {
		return err
	}
	if len(gone) > 0 {
		s.Logger.Info("accounts forget people erased elsewhere", "people", len(gone))
		if err := s.forgetLocked(ctx, gone, false); err != nil {
			return err
		}
		for _, pk := range gone {
			if s.Model.holdsAny([]string{pk}) {
				if s.kept == nil {
					s.kept = map[string]bool{}
				}
				s.kept[pk] = true
			}
		}
	}
	s.scanned.Store(gen)
	return nil
}

// Loaded reports whether the log and the edits have been read once.
func (s *Service) Loaded() bool { return s.loaded.Load() }

// Applied is the last log sequence number applied.
func (s *Service) Applied() int64 { return s.applied.Load() }

// Load restores the checkpoint, reads the log after it, then the edits not
// in it, saves a new checkpoint and trains the learned score when there is
// enough history.
func (s *Service) Load(ctx context.Context) error {
	start := time.Now()
	seq, body, err := s.Store.AccountState(ctx)
	if err != nil {
		return err
	}
	if body != nil {
		if err := s.Model.Restore(body); err != nil {
			// Derived state: a damaged checkpoint costs a full read, no
			// more (Restore changes nothing when it cannot decode).
			s.Logger.Warn("accounts checkpoint unusable; reading the whole log", "err", err)
		} else {
			s.applied.Store(seq)
		}
	}
	if s.applied.Load() == 0 {
		// The whole log is read: from what retention carried forward.
		if err := s.Model.startCarried(); err != nil {
			return err
		}
	}
	if _, err := s.Step(ctx); err != nil {
		return err
	}
	eds, err := s.Store.AccountEdits(ctx)
	if err != nil {
		return err
	}
	done := s.Model.EditID()
	for _, ed := range eds {
		if ed.ID <= done {
			continue // in the checkpoint
		}
		if err := s.Model.ApplyEdit(ed); err != nil {
			// An edit valid when made can name an account a later undo
			// removed: it is skipped, not fatal.
			s.Logger.Warn("account edit skipped on load", "id", ed.ID, "kind", ed.Kind, "err", err)
		}
	}
	// A checkpoint that already holds everything is not written again.
	if body == nil || s.applied.Load() != seq || s.Model.EditID() != done {
		if err := s.Save(ctx); err != nil {
			s.Logger.Warn("accounts checkpoint not saved", "err", err)
		}
	}
	restored := time.Since(start)
	s.train()
	s.loaded.Store(true)
	s.Logger.Info("accounts loaded", "accounts", s.Model.Len(), "from_checkpoint", seq, "events_read", s.Read.Load(), "restored_in", restored.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Service) train() {
	if rep, err := s.Model.Train(1); err == nil {
		s.Logger.Info("account ICP learned score trained", "auc_held_out", rep.AUC, "n_train", rep.NTrain, "n_test", rep.NTest)
	}
}

// Step applies what the log holds after the last applied event; it
// returns how many events it read.
func (s *Service) Step(ctx context.Context) (int, error) {
	n := 0
	for {
		evs, err := s.Log.ReadLog(ctx, s.applied.Load(), 5000)
		if err != nil {
			return n, err
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			s.Model.Apply(e)
		}
		n += len(evs)
		s.Read.Add(int64(len(evs)))
		s.applied.Store(evs[len(evs)-1].Seq)
	}
	if err := s.forgetDue(ctx); err != nil {
		return n, portrait.Wrap(err, "the accounts cannot forget an erased person yet")
	}
	if is := s.Model.TakeIssues(); len(is) > 0 {
		out := make([]*portrait.TraitIssue, len(is))
		for i, x := range is {
			out[i] = &portrait.TraitIssue{MessageID: x.MessageID, Trait: x.Trait, Source: x.Source, ProfileID: x.Account, Value: x.Value, Reason: x.Reason, Time: x.At}
		}
		if err := s.Store.AddTraitIssues(ctx, out); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Run loads, then follows the log until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Load(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		s.Logger.Error("accounts cannot load", "err", err)
		return err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastTrain, lastSave, saved := time.Now(), time.Now(), s.applied.Load()
	save := func(ctx context.Context) {
		if err := s.Save(ctx); err != nil {
			s.Logger.Warn("accounts checkpoint not saved", "err", err)
			return
		}
		lastSave, saved = time.Now(), s.applied.Load()
	}
	for {
		var notify <-chan struct{}
		if s.Notify != nil {
			notify = s.Notify()
		}
		select {
		case <-ctx.Done():
			// The last checkpoint on the way out: the next start reads
			// only what comes after it.
			if s.applied.Load() != saved {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				save(sctx)
				cancel()
			}
			return nil
		case <-notify:
		case <-tick.C:
		}
		if _, err := s.Step(ctx); err != nil && ctx.Err() == nil {
			s.Logger.Warn("accounts cannot follow the log", "err", err)
		}
		if s.SaveEvery > 0 && time.Since(lastSave) > s.SaveEvery && s.applied.Load() != saved {
			save(ctx)
		}
		if s.TrainEvery > 0 && time.Since(lastTrain) > s.TrainEvery {
			s.train()
			lastTrain = time.Now()
		}
	}
}

// Edit validates an edit, journals it and applies it. It answers
// EUNAVAILABLE while the accounts are still loading: an edit applied then
// would be applied again by the load.
func (s *Service) Edit(ctx context.Context, ed *Edit) error {
	if !s.loaded.Load() {
		return portrait.Errorf(portrait.EUNAVAILABLE, "accounts are still loading; try again shortly")
	}
	ed.By = strings.TrimSpace(ed.By)
	ed.At = s.Now().UTC()
	if err := s.Model.Check(ed); err != nil {
		return err
	}
	id, err := s.Store.AppendAccountEdit(ctx, ed)
	if err != nil {
		return err
	}
	ed.ID = id
	return s.Model.ApplyEdit(ed)
}

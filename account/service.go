package account

import (
	"context"
	"log/slog"
	"strings"
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

	applied atomic.Int64
	loaded  atomic.Bool
}

// NewService returns a service over a new model.
func NewService(log Log, store Store, now portrait.Clock) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{Model: NewModel(now), Log: log, Store: store, Now: now, Logger: slog.Default(), TrainEvery: time.Hour, SaveEvery: time.Minute}
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

// Forget re-derives the accounts from the log and saves the checkpoint: an
// erasure made the person's events tombstones, which the model skips, but
// the accounts it built from them (the person as a member with a role, an
// email domain, per-person engagement, an account only their group call
// made) stay in memory and in the checkpoint until the model is rebuilt.
// It reads the whole log once (as an unmerge does).
func (s *Service) Forget(ctx context.Context) error {
	if err := s.Model.Rebuild(); err != nil {
		return err
	}
	return s.Save(ctx)
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

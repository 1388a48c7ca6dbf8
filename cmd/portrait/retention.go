package main

import (
	"context"
	"os"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
)

// expireEvents expires the events with an event time before before (see
// profile.Processor.Compact). The state the expired events alone make is
// derived in a scratch SQLite store, under the data directory on the
// embedded store (so the expired events it briefly holds stay where the
// store's own files are) and in the system's temporary directory beside a
// shared store; it is removed when the pass ends.
func (a *App) expireEvents(ctx context.Context, before time.Time) (*portrait.RetentionRun, error) {
	if a.Proc == nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "events are not applied on this node")
	}
	base := os.TempDir()
	if !a.shared && a.Config.DataDir != "" {
		base = a.Config.DataDir
	}
	newScratch := func(ctx context.Context) (profile.ScratchStore, error) {
		dir, err := profile.ScratchDir(base)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot make the retention's scratch directory")
		}
		db, err := sqlite.Open(ctx, dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		// Its processor reads each page of expired events right after it
		// is appended (profile.Compact): a tail of a few pages serves it.
		db.LimitTail(4 * profile.ExpiredPage)
		// The expired events and the state they make are written to the
		// scratch store's files: sealed as the live store seals them, or
		// their secret values would sit in clear on disk for the pass
		// (and in freed blocks after it: removal does not wipe).
		if live, ok := a.DB.(sealedStore); ok {
			if s := live.Sealer(); s != nil && s.Ring != nil {
				db.SetSealer(&datakey.Sealer{Ring: s.Ring, Levels: s.Levels})
			}
		}
		return &scratchStore{DB: db, dir: dir, closing: a.scratchClosing}, nil
	}
	return a.Proc.Compact(ctx, a.DB, before, newScratch)
}

// scratchStore is a scratch SQLite store that deletes its directory on
// Close.
type scratchStore struct {
	*sqlite.DB
	dir     string
	closing func(dir string) // for tests: sees the files before removal
}

func (s *scratchStore) Close() error {
	err := s.DB.Close()
	if s.closing != nil {
		s.closing(s.dir)
	}
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	return err
}

// runEventRetention runs the event retention schedule until ctx ends. It
// is started with the processor's run loop (runApplier), because a pass
// holds the processor: on a shared store only the applier runs it.
func (a *App) runEventRetention(ctx context.Context) {
	if a.eventRetention == nil {
		return
	}
	a.eventRetention.Run(ctx)
}

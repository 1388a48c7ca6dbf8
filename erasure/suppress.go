// Package erasure carries out a person's right to erasure: it removes a
// profile with everything derived from it (through profile.Processor.Erase
// and the store), keeps a receipt, suppresses the erased identifiers at
// ingest, exports a person's data in portable JSON, and deletes what is older
// than the configured retention.
package erasure

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/portrait-cdp/portrait"
)

// SuppressionStore keeps the suppressed identifiers (by hash).
type SuppressionStore interface {
	Suppressions(ctx context.Context) ([]*portrait.Suppression, error)
	Unsuppress(ctx context.Context, hash string) (bool, error)
	CountSuppressed(ctx context.Context, dropped map[string]int64) error
}

// Suppressor wraps the event log: an event that carries a suppressed
// identifier is dropped before it is logged, and counted, so an erased
// person is not re-created by an SDK still sending, nor by a re-imported
// file. Only the hashes of suppressed identifiers are held.
type Suppressor struct {
	portrait.EventLog
	Store SuppressionStore
	// IdentifiersOf extracts an event's identifiers as the processor does.
	IdentifiersOf func(*portrait.Event) []portrait.Identifier

	mu      sync.RWMutex
	hashes  map[string]bool
	dropped atomic.Int64
}

// Load reads the suppression list.
func (s *Suppressor) Load(ctx context.Context) error {
	list, err := s.Store.Suppressions(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]bool, len(list))
	for _, x := range list {
		m[x.Hash] = true
	}
	s.mu.Lock()
	s.hashes = m
	s.mu.Unlock()
	return nil
}

// Add suppresses hashes (after an erasure).
func (s *Suppressor) Add(hashes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hashes == nil {
		s.hashes = map[string]bool{}
	}
	for _, h := range hashes {
		s.hashes[h] = true
	}
}

// Remove lifts a suppression; false when hash was not suppressed.
func (s *Suppressor) Remove(ctx context.Context, hash string) (bool, error) {
	ok, err := s.Store.Unsuppress(ctx, hash)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	delete(s.hashes, hash)
	s.mu.Unlock()
	return ok, nil
}

// Dropped is how many events were dropped since start.
func (s *Suppressor) Dropped() int64 { return s.dropped.Load() }

// Append drops suppressed events, then appends the rest. Rejected records
// are kept as they are: the quarantine is swept at erasure and by retention.
func (s *Suppressor) Append(ctx context.Context, events []*portrait.Event, rejected []*portrait.Rejected) (portrait.AppendResult, error) {
	s.mu.RLock()
	active := len(s.hashes) > 0
	s.mu.RUnlock()
	if !active || len(events) == 0 {
		return s.EventLog.Append(ctx, events, rejected)
	}
	kept := events[:0:0]
	dropped := map[string]int64{}
	s.mu.RLock()
	for _, e := range events {
		hit := ""
		for _, id := range s.IdentifiersOf(e) {
			if h := portrait.SuppressionHash(id); s.hashes[h] {
				hit = h
				break
			}
		}
		if hit != "" {
			dropped[hit]++
			continue
		}
		kept = append(kept, e)
	}
	s.mu.RUnlock()
	n := len(events) - len(kept)
	if n > 0 {
		s.dropped.Add(int64(n))
		if err := s.Store.CountSuppressed(ctx, dropped); err != nil {
			return portrait.AppendResult{}, err
		}
	}
	if len(kept) == 0 && len(rejected) == 0 {
		return portrait.AppendResult{Suppressed: n}, nil
	}
	res, err := s.EventLog.Append(ctx, kept, rejected)
	res.Suppressed = n
	return res, err
}

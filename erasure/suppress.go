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
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// SuppressionStore keeps the suppressed identifiers (by hash).
type SuppressionStore interface {
	Suppressions(ctx context.Context) ([]*portrait.Suppression, error)
	Unsuppress(ctx context.Context, hash string) (bool, error)
	CountSuppressed(ctx context.Context, dropped map[string]int64) error
}

// Keys makes the hashes the suppression list keeps: *datakey.Ring (a nil
// ring: the unkeyed hash only). The hash of an identifier under a key id is
// HMAC-SHA-256 of its SuppressionInner under a key derived from that data
// key ("" the inner hash itself, without a data key).
type Keys interface {
	SuppressionKeyID() string
	SuppressionHash(keyID string, inner []byte) (string, error)
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
	// Keys keys the hashes; nil: the store's data keys when it seals
	// (its Sealer), so the list is read with the keys the store wrote it
	// with, else unkeyed, as without a data key.
	Keys Keys

	mu      sync.RWMutex
	hashes  map[string]bool
	keyIDs  []string // the key ids the list's hashes are kept under
	dropped atomic.Int64
	// gen counts the loads that brought hashes this node did not hold
	// (an erasure made through another node): see Generation.
	gen atomic.Int64
}

// sealingStore is a store that seals at rest (both stores): its ring keys
// the suppression list it writes.
type sealingStore interface {
	Sealer() *datakey.Sealer
}

func (s *Suppressor) keys() Keys {
	if s.Keys != nil {
		return s.Keys
	}
	if st, ok := s.Store.(sealingStore); ok {
		if sl := st.Sealer(); sl != nil && sl.Ring != nil {
			return sl.Ring
		}
	}
	return nil
}

// HashUnder is id's hash in the list under the key keyID.
func (s *Suppressor) HashUnder(keyID string, id portrait.Identifier) (string, error) {
	k := s.keys()
	if k == nil {
		if keyID != "" {
			return "", portrait.Errorf(portrait.EUNAVAILABLE, "suppressed identifiers are kept under data key %q, but no data key is configured", keyID)
		}
		return portrait.SuppressionHash(id), nil
	}
	return k.SuppressionHash(keyID, inner(id))
}

// Hash is id's hash under the key new suppressions are kept under.
func (s *Suppressor) Hash(id portrait.Identifier) (keyID, hash string, err error) {
	keyID = s.KeyID()
	hash, err = s.HashUnder(keyID, id)
	return keyID, hash, err
}

// hashes of id under every key id in use: while a rotation or an upgrade
// has not reached every row (or another node still writes under the older
// key), the list holds hashes under more than one key, and a suppression
// must hold under each.
func (s *Suppressor) hashesOf(keys Keys, id portrait.Identifier, keyIDs []string, out []string) ([]string, error) {
	if keys == nil {
		return append(out, portrait.SuppressionHash(id)), nil
	}
	in := inner(id)
	for _, k := range keyIDs {
		h, err := keys.SuppressionHash(k, in)
		if err != nil {
			return out, err
		}
		out = append(out, h)
	}
	return out, nil
}

// inner is the unkeyed hash of id, decoded: what the keyed hash is of.
func inner(id portrait.Identifier) []byte { return datakey.SuppressionInner(id) }

// KeyID is the key id new suppressions are kept under.
func (s *Suppressor) KeyID() string {
	k := s.keys()
	if k == nil {
		return ""
	}
	return k.SuppressionKeyID()
}

func addKeyID(ids []string, id string) []string {
	for _, x := range ids {
		if x == id {
			return ids
		}
	}
	return append(ids, id)
}

// Load reads the suppression list.
func (s *Suppressor) Load(ctx context.Context) error {
	list, err := s.Store.Suppressions(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]bool, len(list))
	var ids []string
	for _, x := range list {
		m[x.Hash] = true
		ids = addKeyID(ids, x.KeyID)
	}
	// A hash under a key the ring lacks could not be checked: the
	// suppression would silently stop holding. Refuse instead, naming it.
	keys := s.keys()
	for _, k := range ids {
		if keys != nil {
			if _, err := keys.SuppressionHash(k, make([]byte, 32)); err != nil {
				return err
			}
		} else if k != "" {
			return portrait.Errorf(portrait.EUNAVAILABLE, "suppressed identifiers are kept under data key %q, but no data key is configured", k)
		}
	}
	s.mu.Lock()
	grew := false
	for h := range m {
		if !s.hashes[h] {
			grew = true
			break
		}
	}
	s.hashes = m
	s.keyIDs = ids
	s.mu.Unlock()
	if grew {
		s.gen.Add(1)
	}
	return nil
}

// ErasedGeneration changes when a load of the list brought identifiers this node
// did not hold: another node erased someone. A model that follows the log
// on its own (the accounts) then looks for people to forget (Holds). The
// node's own erasures do not move it: its erasure service tells its models
// directly (Service.Derived).
func (s *Suppressor) ErasedGeneration() int64 { return s.gen.Load() }

// Erased returns the person keys of the accounts ("user_id:…",
// account.PersonKeys) whose identifier is suppressed: the Suppressor is
// the accounts' account.Erased.
func (s *Suppressor) Erased(pks []string) ([]string, error) {
	var out []string
	for _, pk := range pks {
		ev := account.PersonEvent(pk)
		if ev == nil {
			continue
		}
		held, err := s.Holds(ev)
		if err != nil {
			return nil, err
		}
		if held {
			out = append(out, pk)
		}
	}
	return out, nil
}

var _ account.Erased = (*Suppressor)(nil)

// Holds reports whether e carries a suppressed identifier (the
// identifiers the processor finds in it, hashed under every key in use),
// as Append checks before logging it.
func (s *Suppressor) Holds(e *portrait.Event) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.hashes) == 0 {
		return false, nil
	}
	var hs []string
	for _, id := range s.IdentifiersOf(e) {
		var err error
		if hs, err = s.hashesOf(s.keys(), id, s.keyIDs, hs[:0]); err != nil {
			return false, err
		}
		for _, h := range hs {
			if s.hashes[h] {
				return true, nil
			}
		}
	}
	return false, nil
}

// Add suppresses hashes kept under keyID (after an erasure).
func (s *Suppressor) Add(keyID string, hashes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hashes == nil {
		s.hashes = map[string]bool{}
	}
	for _, h := range hashes {
		s.hashes[h] = true
	}
	if len(hashes) > 0 {
		s.keyIDs = addKeyID(s.keyIDs, keyID)
	}
}

// Remove lifts the suppression of id, under whichever key it is kept;
// false when it was not suppressed.
func (s *Suppressor) Remove(ctx context.Context, id portrait.Identifier) (string, bool, error) {
	s.mu.RLock()
	keyIDs := append([]string(nil), s.keyIDs...)
	s.mu.RUnlock()
	if len(keyIDs) == 0 {
		keyIDs = []string{s.KeyID()}
	}
	hashes, err := s.hashesOf(s.keys(), id, keyIDs, nil)
	if err != nil {
		return "", false, err
	}
	found, any := hashes[0], false
	for _, h := range hashes {
		ok, err := s.Store.Unsuppress(ctx, h)
		if err != nil {
			return "", false, err
		}
		if ok && !any {
			found, any = h, true
		}
		s.mu.Lock()
		delete(s.hashes, h)
		s.mu.Unlock()
	}
	return found, any, nil
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
	keyIDs, keys := s.keyIDs, s.keys()
	var hs []string
	for _, e := range events {
		hit := ""
		for _, id := range s.IdentifiersOf(e) {
			var err error
			if hs, err = s.hashesOf(keys, id, keyIDs, hs[:0]); err != nil {
				s.mu.RUnlock()
				return portrait.AppendResult{}, err
			}
			for _, h := range hs {
				if s.hashes[h] {
					hit = h
					break
				}
			}
			if hit != "" {
				break
			}
		}
		if hit != "" {
			dropped[hit]++
			e.Seq = portrait.SeqSuppressed
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

package erasure

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// Store is what the service needs beyond the processor.
type Store interface {
	profile.EraseStore
	portrait.ProfileReader
	Erasures(ctx context.Context, limit int) ([]*portrait.ErasureReceipt, error)
	Suppressions(ctx context.Context) ([]*portrait.Suppression, error)
}

// audit records an erasure, a lifted suppression or a consent change in
// the audit log (nil: not recorded; the receipt is kept either way).
func (s *Service) audit(ctx context.Context, action, by, target string, detail map[string]any) error {
	if s.Audit == nil {
		return nil
	}
	return s.Audit.Record(ctx, portrait.AuditRecord{Actor: by, Action: action, Target: target, Detail: detail})
}

// Service erases people, lists receipts and suppressions, and exports a
// person's data.
type Service struct {
	Proc       *profile.Processor
	Store      Store
	Suppressor *Suppressor
	// Log receives consent events set through the API.
	Log   portrait.EventLog
	Audit portrait.Auditor
	Now   portrait.Clock
	// Drops, when set, removes the person's rows from the files scheduled
	// deliveries left in the drop directory (delivery.Service.EraseRows).
	Drops DropEraser
	// Derived are models kept beside the store that hold what the erased
	// events made (the accounts: account.Service.Forget): each re-derives
	// itself from the log once the events are tombstones.
	Derived []Forgetter
}

// Forgetter makes a model derived from the log forget an erased person
// (the profile's identifiers) once the events are tombstones.
type Forgetter interface {
	Forget(ctx context.Context, ids []portrait.Identifier) error
}

// carriedForgetter is a Derived model that retention carries forward in
// the log (the accounts: account.Service.ForgetCarried): the store
// rewrites its records without the person as it erases the events
// (profile.Erasure.Carried).
type carriedForgetter interface {
	ForgetCarried(record []byte, ids []portrait.Identifier) ([]byte, bool, error)
}

// freePageWiper is a store that can overwrite its free space (SQLite:
// what the Derived models' rewritten checkpoints freed).
type freePageWiper interface {
	WipeFreePages(ctx context.Context) error
}

// DropEraser removes an erased person's rows from delivered files.
type DropEraser interface {
	EraseRows(ctx context.Context, ids []portrait.Identifier) (files, rows int, err error)
}

// Erase removes the profile id (or the one it was merged into).
func (s *Service) Erase(ctx context.Context, id, by, reason string) (*portrait.ErasureReceipt, error) {
	return s.EraseAs(ctx, NewReceiptID(), id, by, reason)
}

// EraseAs is Erase with the receipt's id chosen by the caller: a request
// performed on another node (cmd/portrait's forwarded rewrites) names its
// receipt before it is queued, so that a performer finding that receipt
// stored knows the erasure was done (the receipt commits with it).
func (s *Service) EraseAs(ctx context.Context, receiptID, id, by, reason string) (*portrait.ErasureReceipt, error) {
	pr, err := s.Store.Profile(ctx, id)
	if err != nil {
		return nil, err
	}
	// Its known identifiers are suppressed before the erasure starts: an
	// event arriving meanwhile must not re-create the person behind it.
	if s.Suppressor != nil {
		pre := make([]string, len(pr.Identifiers))
		for i, x := range pr.Identifiers {
			if _, pre[i], err = s.Suppressor.Hash(x); err != nil {
				return nil, err
			}
		}
		s.Suppressor.Add(s.Suppressor.KeyID(), pre)
	}
	req := profile.Erasure{ID: receiptID, ProfileID: pr.ID, By: by, Reason: reason, At: s.now()}
	if s.Drops != nil {
		// Before the store: the receipt counts the rows. A delivery
		// writing meanwhile is caught by the pass after it.
		_, rows, err := s.Drops.EraseRows(ctx, pr.Identifiers)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot erase the person from the delivery drop")
		}
		req.Removed = map[string]int{"delivered_rows": rows}
	}
	if s.Audit != nil {
		// The store writes the record with the receipt, in one
		// transaction (profile.Erasure.Audit), to its own audit log: the
		// one every wiring passes as Audit.
		req.Audit = ErasureAudit
	}
	for _, d := range s.Derived {
		if c, ok := d.(carriedForgetter); ok {
			req.Carried = c.ForgetCarried
		}
	}
	rc, err := s.Proc.Erase(ctx, s.Store, req)
	if err != nil {
		return nil, err
	}
	if s.Suppressor != nil {
		s.Suppressor.Add(s.Suppressor.KeyID(), rc.Suppressed)
	}
	for _, d := range s.Derived {
		if err := d.Forget(ctx, pr.Identifiers); err != nil {
			return nil, portrait.Wrap(err, "the profile is erased, but a model derived from its events could not forget it")
		}
	}
	if w, ok := s.Store.(freePageWiper); ok && len(s.Derived) > 0 {
		if err := w.WipeFreePages(ctx); err != nil {
			return nil, err
		}
	}
	if s.Drops != nil {
		// A scheduled delivery may have written the person between the
		// first pass and the erasure of the segment index; this pass's
		// rows are not in the receipt, which is already sealed by its hash.
		if _, _, err := s.Drops.EraseRows(ctx, pr.Identifiers); err != nil {
			return nil, portrait.Wrap(err, "cannot erase the person from the delivery drop")
		}
	}
	return rc, nil
}

// ErasureAudit is the audit record of an erasure, made from its receipt.
func ErasureAudit(rc *portrait.ErasureReceipt) portrait.AuditRecord {
	return portrait.AuditRecord{Actor: rc.By, Action: "profile.erase", Target: rc.ProfileID,
		Detail: map[string]any{"erasure_id": rc.ID, "removed": rc.Removed, "hash": rc.Hash}}
}

// EraseByIdentifier erases the profile that owns id.
func (s *Service) EraseByIdentifier(ctx context.Context, id portrait.Identifier, by, reason string) (*portrait.ErasureReceipt, error) {
	return s.EraseByIdentifierAs(ctx, NewReceiptID(), id, by, reason)
}

// EraseByIdentifierAs is EraseByIdentifier with the receipt's id chosen by
// the caller (EraseAs).
func (s *Service) EraseByIdentifierAs(ctx context.Context, receiptID string, id portrait.Identifier, by, reason string) (*portrait.ErasureReceipt, error) {
	pr, err := s.Store.ProfileByIdentifier(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.EraseAs(ctx, receiptID, pr.ID, by, reason)
}

// Unsuppress lets an erased identifier be collected again.
func (s *Service) Unsuppress(ctx context.Context, id portrait.Identifier, by string) error {
	h, ok, err := s.Suppressor.Remove(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return portrait.Errorf(portrait.ENOTFOUND, "that %s is not suppressed", id.Type)
	}
	return s.audit(ctx, "suppression.lift", by, h, map[string]any{"type": id.Type})
}

// Receipts lists erasure receipts, newest first.
func (s *Service) Receipts(ctx context.Context, limit int) ([]*portrait.ErasureReceipt, error) {
	return s.Store.Erasures(ctx, limit)
}

// Suppressions lists suppressed identifiers by hash.
func (s *Service) Suppressions(ctx context.Context) ([]*portrait.Suppression, error) {
	return s.Store.Suppressions(ctx)
}

// Export is a person's data in portable form (GDPR art. 20, PIPL art. 45):
// the profile with every trait and its provenance, and every event as
// received.
type Export struct {
	Format     string                 `json:"format"`
	Truncated  bool                   `json:"truncated,omitempty"`
	ExportedAt time.Time              `json:"exported_at"`
	Profile    *portrait.Profile      `json:"profile"`
	Events     []*portrait.Event      `json:"events"`
	Merges     []*portrait.MergeEntry `json:"merges"`
}

// maxExportEvents bounds one export; a person with more is exported in
// part and says so (Truncated).
const maxExportEvents = 100_000

// Export gathers a person's data.
func (s *Service) Export(ctx context.Context, id string) (*Export, error) {
	pr, err := s.Store.Profile(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &Export{Format: "portrait.person-export.v1", ExportedAt: s.now(), Profile: pr, Events: []*portrait.Event{}}
	cursor := ""
	for len(out.Events) < maxExportEvents {
		evs, next, err := s.Store.ProfileEvents(ctx, pr.ID, portrait.Page{Cursor: cursor, Limit: 1000})
		if err != nil {
			return nil, err
		}
		out.Events = append(out.Events, evs...)
		if next == "" {
			break
		}
		cursor = next
		out.Truncated = len(out.Events) >= maxExportEvents
	}
	if out.Merges, err = s.Store.ProfileMerges(ctx, pr.ID); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// NewReceiptID returns a new erasure receipt id.
func NewReceiptID() string { return newID() }

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return "er_" + hex.EncodeToString(b[:])
}

// Package delivery sends a segment's activation file (its members'
// identifiers, hashed as advertising platforms expect) on a schedule to a
// file drop, a webhook or a NATS subject, and records every delivery.
package delivery

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/segment"
)

// Target kinds.
const (
	File    = "file"
	Webhook = "webhook"
	NATS    = "nats"
)

// Target is where a delivery goes: a file name in the server's drop
// directory, a webhook URL (the file is POSTed as text/csv), or a NATS
// subject (the file is published as one message).
type Target struct {
	Kind    string `json:"kind"`
	Name    string `json:"name,omitempty"`    // file: file name prefix in the drop directory
	URL     string `json:"url,omitempty"`     // webhook
	Subject string `json:"subject,omitempty"` // nats
}

// Delivery is a scheduled export of one segment.
type Delivery struct {
	ID          string   `json:"id"`
	Segment     string   `json:"segment_id"`
	Identifiers []string `json:"identifiers"` // phone, email
	Hash        bool     `json:"hash"`        // SHA-256 as ad platforms expect
	// Purpose, when set (marketing, third_party...), leaves out the
	// members that have not consented to it (and, for marketing, those who
	// opted out of automated decisions, PIPL art. 24), whatever the
	// segment's own purpose.
	Purpose   string    `json:"purpose,omitempty"`
	Target    Target    `json:"target"`
	EveryText string    `json:"every"` // e.g. "24h"; the schedule
	CreatedAt time.Time `json:"created_at"`
	// CreatedBy, Role and Clearance are the key that created the delivery,
	// recorded when it is created (the API sets them from the caller,
	// whatever the body said). A scheduled run has no caller: every run is
	// masked to this role and clearance, so a delivery never carries a
	// value its creator could not read. A delivery stored without them
	// (made before they were recorded) runs at public clearance.
	CreatedBy string `json:"created_by,omitempty"`
	Role      string `json:"role,omitempty"`
	Clearance string `json:"clearance,omitempty"`
}

// Run is one delivery, recorded whether it succeeded or not.
type Run struct {
	ID       int64     `json:"id"`
	Delivery string    `json:"delivery_id"`
	At       time.Time `json:"at"`
	Rows     int       `json:"rows"`
	Skipped  int       `json:"skipped"`
	Bytes    int       `json:"bytes"`
	Status   string    `json:"status"` // ok | failed
	// Masked lists the identifier types above the delivery's clearance:
	// masked in the file (hashed ones left empty), see Delivery.Clearance.
	Masked []string `json:"masked,omitempty"`
	Error  string   `json:"error,omitempty"`
	Where  string   `json:"where,omitempty"` // the file written, the URL, the subject
	// Slot numbers a scheduled run among its delivery's (1, 2, …; 0: a
	// run asked for now). With the delivery's id it is the run's
	// idempotency key (IdempotencyKey).
	Slot int64 `json:"slot,omitempty"`
	// Key is the idempotency key the target was given.
	Key string `json:"key,omitempty"`
}

// Store keeps deliveries and their runs.
type Store interface {
	SaveDelivery(ctx context.Context, d *Delivery) error
	DeleteDelivery(ctx context.Context, id string) error
	Deliveries(ctx context.Context) ([]*Delivery, error)
	AppendDeliveryRun(ctx context.Context, r *Run) error
	DeliveryRuns(ctx context.Context, deliveryID string, limit int) ([]*Run, error)
}

// Claim is a scheduled run's hold on its slot, kept in a store shared by
// several nodes (Claims): at most one node sends a (delivery, slot).
type Claim struct {
	Delivery string
	Slot     int64
	Holder   string // the node
	// Fence and Term are the jobs lease's term the claim was made in
	// (the store keeps each fence's latest term begun: profile.Fenced).
	Fence  string
	Term   uint64
	Status string    // ClaimClaimed, ClaimSending, ClaimDone, ClaimFailed
	At     time.Time // when it was claimed, on the claiming node's clock
}

// Claim statuses.
const (
	ClaimClaimed = "claimed" // held; nothing sent
	ClaimSending = "sending" // past the point of no return: maybe sent
	ClaimDone    = "done"
	ClaimFailed  = "failed"
)

// Claims is a store that records scheduled runs' claims, for several
// nodes sharing it (the PostgreSQL store). Its rules make a slot sent at
// most once:
//   - ClaimDeliverySlot writes a claim only while the claim's term is its
//     fence's latest term begun, checked in the same statement; it takes
//     a slot already claimed over only when that claim is proven
//     abandoned: still ClaimClaimed, by an earlier term of the same fence
//     (or by the same holder in the same term: its own, left before its
//     send, which the holder's one schedule goroutine retries);
//   - StartDeliverySend moves a claim to ClaimSending only while its term
//     is still the latest, in one statement: so once a later term has
//     begun, an older ClaimClaimed claim can never reach ClaimSending, and
//     taking it over cannot lead to a second send. A claim in
//     ClaimSending is never taken over: its node may have sent.
type Claims interface {
	// LastDeliveryClaim is the delivery's claim with the highest slot
	// (nil: none).
	LastDeliveryClaim(ctx context.Context, deliveryID string) (*Claim, error)
	// ClaimDeliverySlot records c as ClaimClaimed (see Claims); false
	// when the slot is another's or c's term is not the latest.
	ClaimDeliverySlot(ctx context.Context, c *Claim) (bool, error)
	// StartDeliverySend moves c from ClaimClaimed to ClaimSending while
	// its term is the latest; false otherwise.
	StartDeliverySend(ctx context.Context, c *Claim) (bool, error)
	// FinishDeliverySlot records how c's send ended (ClaimDone,
	// ClaimFailed).
	FinishDeliverySlot(ctx context.Context, c *Claim, status string) error
}

// IdempotencyKey is the Idempotency-Key header of a delivery's webhook
// POST and NATS message: "<delivery>:<slot>" for a scheduled run, the same
// whichever node sends it, so a receiver can drop a second copy;
// "<delivery>:now-<time>" for a run asked for now (a deliberate resend).
func IdempotencyKey(deliveryID string, slot int64, at time.Time) string {
	if slot > 0 {
		return deliveryID + ":" + strconv.FormatInt(slot, 10)
	}
	return deliveryID + ":now-" + strconv.FormatInt(at.UnixNano(), 10)
}

// Rows produces a segment's activation rows (header, rows, members
// skipped); the HTTP layer's export provides it, so a delivery holds
// exactly what GET /v1/segments/{id}/export?identifiers=… gives, filtered
// in the same one place.
// The rows are masked to the delivery's Role and Clearance.
type Rows func(ctx context.Context, d *Delivery) (*Content, error)

// Content is a delivery's file: the header, the rows, the members skipped
// (no identifier of the types, or not consented) and the identifier types
// masked.
type Content struct {
	Header  []string
	Rows    [][]string
	Skipped int
	Masked  []string
}

// Sealer seals and opens whole documents (datakey.Sealer).
type Sealer interface {
	HasRing() bool
	SealBlob(b []byte, label string) []byte
	OpenBlob(b []byte, label string) ([]byte, error)
}

// SealedSuffix ends the name of a file sealed with the data key.
const SealedSuffix = ".sealed"

// Publisher publishes a message to a subject, returning once the server
// has it.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte, headers map[string]string) error
}

// Service schedules and runs deliveries.
type Service struct {
	Store Store
	Rows  Rows
	Now   portrait.Clock
	Log   *slog.Logger
	// Dir is the file drop directory ("" : file targets are refused).
	Dir string
	// NATS publishes to subjects (nil: NATS targets are refused); the
	// nats package's Publisher is the one used.
	NATS Publisher
	// Client posts to webhooks.
	Client *http.Client
	// Sealer, when it has a data key, seals files written to the drop
	// (datakey.Sealer): they hold the members' phones and emails, and a
	// copy of the drop directory must not. File then opens them.
	Sealer Sealer
	// Fence, when set, is asked right before each scheduled run (Due); an
	// error skips it. Over a shared store it says whether this node still
	// holds the jobs lease in the store: a node paused past its lease,
	// whose timers have not told it yet, delivers nothing.
	Fence func(ctx context.Context) error
	// Claims, with Term, makes each scheduled slot go out at most once
	// among several nodes sharing a store (nil: one node, no claims).
	Claims Claims
	// Term names the jobs term this node runs scheduled deliveries in
	// (node, fence, term), for Claims.
	Term func() (holder, fence string, term uint64)
	// Pause, when set, is called on the send path of a scheduled run
	// after its slot is claimed ("claimed") and after the claim is moved
	// to sending, right before the send ("sending"): tests stop a sender
	// there as a paused process would be.
	Pause func(point string, d *Delivery, slot int64)

	mu   sync.Mutex
	last map[string]time.Time // delivery → last run
	wake chan struct{}        // Wake: check for due deliveries now
}

// NewService returns a service over a store.
func NewService(store Store, rows Rows) *Service {
	return &Service{Store: store, Rows: rows, Now: time.Now, Log: slog.Default(), Client: &http.Client{Timeout: 30 * time.Second}, last: map[string]time.Time{}, wake: make(chan struct{}, 1)}
}

// Wake makes Run check for due deliveries now rather than at its next
// tick: a delivery was created or removed, on this node or (over a shared
// store) on another one. A node that does not run deliveries ignores it.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

var subjectRe = regexp.MustCompile(`^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$`)
var nameRe = regexp.MustCompile(`^[A-Za-z0-9_\-.]{1,100}$`)

// ValidateTarget is the one place a delivery target is checked before it
// is saved or used. (Webhook address rules such as refusing private
// networks belong here.)
func (s *Service) ValidateTarget(t Target) error {
	switch t.Kind {
	case File:
		if s.Dir == "" {
			return portrait.Errorf(portrait.EINVALID, "file deliveries need the server's drop directory (serve --delivery-dir)")
		}
		if !nameRe.MatchString(t.Name) || strings.HasPrefix(t.Name, ".") {
			return portrait.Errorf(portrait.EINVALID, "a file target needs a name of letters, digits, '-', '_' and '.', not %q", t.Name)
		}
	case Webhook:
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return portrait.Errorf(portrait.EINVALID, "a webhook target needs an http(s) URL, not %q", t.URL)
		}
	case NATS:
		if s.NATS == nil {
			return portrait.Errorf(portrait.EINVALID, "NATS deliveries need the server connected to NATS (serve --nats)")
		}
		if !subjectRe.MatchString(t.Subject) {
			return portrait.Errorf(portrait.EINVALID, "a NATS target needs a subject without wildcards, not %q", t.Subject)
		}
	default:
		return portrait.Errorf(portrait.EINVALID, "target kind must be file, webhook or nats, not %q", t.Kind)
	}
	return nil
}

// Create checks and saves a delivery.
func (s *Service) Create(ctx context.Context, d *Delivery) (*Delivery, error) {
	if d.Segment == "" {
		return nil, portrait.Errorf(portrait.EINVALID, "a delivery needs segment_id")
	}
	if len(d.Identifiers) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "a delivery needs identifiers (phone, email)")
	}
	for _, t := range d.Identifiers {
		if t != portrait.IDPhone && t != portrait.IDEmail {
			return nil, portrait.Errorf(portrait.EINVALID, "identifiers are phone and email, not %q", t)
		}
	}
	if len(d.Purpose) > 64 {
		return nil, portrait.Errorf(portrait.EINVALID, "purpose is longer than 64 characters")
	}
	if every, err := time.ParseDuration(d.EveryText); err != nil || every < time.Minute {
		return nil, portrait.Errorf(portrait.EINVALID, "every must be a duration of at least 1m (e.g. 24h), not %q", d.EveryText)
	}
	if err := s.ValidateTarget(d.Target); err != nil {
		return nil, err
	}
	b := make([]byte, 8)
	rand.Read(b)
	d.ID, d.CreatedAt = "dlv_"+hex.EncodeToString(b), s.Now().UTC()
	if err := s.Store.SaveDelivery(ctx, d); err != nil {
		return nil, err
	}
	s.Wake() // its first run is due now
	return d, nil
}

// Deliver runs one delivery now and records it (a run asked for, not a
// slot of the schedule).
func (s *Service) Deliver(ctx context.Context, d *Delivery) *Run {
	return s.deliverSlot(ctx, d, nil, 0)
}

// deliverSlot runs d and records the run: slot 0 a run asked for now,
// else a slot of the schedule, claimed in the store when c is set.
func (s *Service) deliverSlot(ctx context.Context, d *Delivery, c *Claim, slot int64) *Run {
	now := s.Now().UTC()
	run := &Run{Delivery: d.ID, At: now, Status: "ok", Slot: slot, Key: IdempotencyKey(d.ID, slot, now)}
	sent, err := s.deliver(ctx, d, run, now, c)
	if !sent && c != nil {
		// Stopped before the point of no return (the term over, or the
		// store failed): nothing was sent, and the claim, abandoned, is
		// the next owner's to take, or this node's at its next check.
		s.Log.Warn("scheduled delivery not sent: its slot could not be moved to sending", "delivery", d.ID, "slot", slot, "err", err)
		return nil
	}
	if err != nil {
		run.Status, run.Error = "failed", err.Error()
	}
	if c != nil {
		st := ClaimDone
		if err != nil {
			st = ClaimFailed
		}
		if err := s.Claims.FinishDeliverySlot(context.WithoutCancel(ctx), c, st); err != nil {
			s.Log.Error("cannot record how a delivery's slot ended", "delivery", d.ID, "slot", slot, "err", err)
		}
	}
	if err := s.Store.AppendDeliveryRun(context.WithoutCancel(ctx), run); err != nil {
		s.Log.Error("cannot record a delivery", "delivery", d.ID, "err", err)
	}
	s.mu.Lock()
	s.last[d.ID] = now
	s.mu.Unlock()
	return run
}

// deliver builds the file and sends it; sent says whether it got past
// the point of no return (a claimed slot moved to sending), whatever the
// send's outcome.
func (s *Service) deliver(ctx context.Context, d *Delivery, run *Run, now time.Time, c *Claim) (sent bool, err error) {
	if err := s.ValidateTarget(d.Target); err != nil {
		return true, err
	}
	f, err := s.Rows(ctx, d)
	if err != nil {
		return true, err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(f.Header)
	w.WriteAll(f.Rows)
	run.Rows, run.Skipped, run.Bytes, run.Masked = len(f.Rows), f.Skipped, buf.Len(), f.Masked
	if c != nil {
		// The point of no return: past it the file may be out, so the
		// slot is never sent again; before it, a later term may take
		// the slot over (Claims).
		ok, err := s.Claims.StartDeliverySend(ctx, c)
		if err != nil || !ok {
			return false, err
		}
		// No other node will send this slot now: a lease lost from here
		// on must not cancel the send, which would only lose the slot.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
		defer cancel()
	}
	if s.Pause != nil && run.Slot > 0 {
		s.Pause("sending", d, run.Slot)
	}
	return true, s.send(ctx, d, run, now, buf)
}

// send writes the file to the target.
func (s *Service) send(ctx context.Context, d *Delivery, run *Run, now time.Time, buf bytes.Buffer) error {
	switch d.Target.Kind {
	case File:
		name := fmt.Sprintf("%s-%s.csv", d.Target.Name, now.Format("20060102T150405Z"))
		data := buf.Bytes()
		if s.Sealer != nil && s.Sealer.HasRing() {
			name += SealedSuffix
			data = s.Sealer.SealBlob(data, datakey.BlobDelivery)
		}
		path := filepath.Join(s.Dir, name)
		if err := writeDropFile(s.Dir, path, data); err != nil {
			return err
		}
		run.Where = path
	case Webhook:
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Target.URL, bytes.NewReader(buf.Bytes()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "text/csv; charset=utf-8")
		req.Header.Set("X-Portrait-Segment", d.Segment)
		req.Header.Set("X-Portrait-Delivery", d.ID)
		req.Header.Set("Idempotency-Key", run.Key)
		resp, err := s.Client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("the webhook answered %s", resp.Status)
		}
		run.Where = d.Target.URL
	case NATS:
		// Nats-Msg-Id too: a JetStream stream on the subject drops a
		// second copy within its duplicate window by itself.
		headers := map[string]string{"Portrait-Segment": d.Segment, "Portrait-Delivery": d.ID, "Idempotency-Key": run.Key, "Nats-Msg-Id": run.Key}
		if err := s.NATS.Publish(ctx, d.Target.Subject, buf.Bytes(), headers); err != nil {
			return err
		}
		run.Where = d.Target.Subject
	}
	return nil
}

// File returns the file a run of a file delivery wrote (its name without
// the sealed suffix, and its contents, opened when sealed): the download
// path, so that a sealed drop is still usable by whoever may read it.
func (s *Service) File(ctx context.Context, deliveryID string, runID int64) (string, []byte, error) {
	runs, err := s.Store.DeliveryRuns(ctx, deliveryID, 100000)
	if err != nil {
		return "", nil, err
	}
	var run *Run
	for _, r := range runs {
		if r.ID == runID {
			run = r
		}
	}
	if run == nil {
		return "", nil, portrait.Errorf(portrait.ENOTFOUND, "delivery %q has no run %d", deliveryID, runID)
	}
	// Only a file this service wrote to its drop: Where is a stored path,
	// and the route must not read whatever a record names.
	rel, err := filepath.Rel(s.Dir, run.Where)
	if run.Status != "ok" || s.Dir == "" || err != nil || rel != filepath.Base(run.Where) || !strings.HasSuffix(strings.TrimSuffix(rel, SealedSuffix), ".csv") {
		return "", nil, portrait.Errorf(portrait.ENOTFOUND, "run %d of delivery %q wrote no file to the drop directory", runID, deliveryID)
	}
	data, err := os.ReadFile(run.Where)
	if err != nil {
		return "", nil, portrait.Errorf(portrait.ENOTFOUND, "the file of run %d is no longer in the drop directory", runID)
	}
	name := filepath.Base(run.Where)
	if strings.HasSuffix(name, SealedSuffix) {
		if s.Sealer == nil {
			return "", nil, portrait.Errorf(portrait.EUNAVAILABLE, "the file of run %d is sealed and no data key is configured", runID)
		}
		if data, err = s.Sealer.OpenBlob(data, datakey.BlobDelivery); err != nil {
			return "", nil, err
		}
		name = strings.TrimSuffix(name, SealedSuffix)
	}
	return name, data, nil
}

// ResealDir seals again, with the sealer's current key, every sealed file
// of a drop directory (rotate-data-key: afterwards nothing needs the older
// keys). Each file is replaced whole (written beside it, then renamed). A
// file already under the current key is left alone.
func ResealDir(dir string, s Sealer, current string) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"+SealedSuffix))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return n, err
		}
		if strings.HasPrefix(string(b[:min(len(b), len(datakey.Prefix)+len(current)+1)]), datakey.Prefix+current+":") {
			continue
		}
		plain, err := s.OpenBlob(b, datakey.BlobDelivery)
		if err != nil {
			return n, portrait.Errorf(portrait.ErrorCode(err), "%s: %s", filepath.Base(f), portrait.ErrorMessage(err))
		}
		if err := writeDropFile(dir, f, s.SealBlob(plain, datakey.BlobDelivery)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// writeDropFile writes a file of the drop under another name, then renames
// it: a reader of the drop never sees half a file. The files hold members'
// phones and emails: owner-only (0600, the directory 0700 when this creates
// it), like every data file.
func writeDropFile(dir, path string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := path + ".part"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	// WriteFile keeps the mode of a file left by an earlier attempt.
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// EraseRows removes from every file of the drop the rows that name one of
// an erased person's identifiers, in any form a delivery writes it (as
// stored, in the activation form, or hashed: segment.ActivationForm,
// segment.HashIdentifier), and rewrites those files whole (sealed again
// when they were). It returns the files rewritten and the rows removed.
// The drop is where another system picks files up; what it copied before
// the erasure is beyond Portrait's reach.
func (s *Service) EraseRows(ctx context.Context, ids []portrait.Identifier) (files, rows int, err error) {
	if s.Dir == "" || len(ids) == 0 {
		return 0, 0, nil
	}
	needles := map[string]bool{}
	for _, id := range ids {
		if id.Value == "" {
			continue
		}
		needles[id.Value] = true
		needles[segment.ActivationForm(id.Type, id.Value)] = true
		needles[segment.HashIdentifier(id.Type, id.Value)] = true
	}
	names, err := filepath.Glob(filepath.Join(s.Dir, "*.csv*"))
	if err != nil {
		return 0, 0, err
	}
	sort.Strings(names)
	for _, f := range names {
		if err := ctx.Err(); err != nil {
			return files, rows, err
		}
		sealed := strings.HasSuffix(f, ".csv"+SealedSuffix)
		if !sealed && !strings.HasSuffix(f, ".csv") {
			continue // a .part being written, or not ours
		}
		data, err := os.ReadFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return files, rows, err
		}
		if sealed {
			if s.Sealer == nil {
				return files, rows, portrait.Errorf(portrait.EUNAVAILABLE, "%s is sealed and no data key is configured: the erasure cannot read it", filepath.Base(f))
			}
			if data, err = s.Sealer.OpenBlob(data, datakey.BlobDelivery); err != nil {
				return files, rows, err
			}
		}
		r := csv.NewReader(bytes.NewReader(data))
		r.FieldsPerRecord = -1
		recs, err := r.ReadAll()
		if err != nil {
			return files, rows, portrait.Errorf(portrait.EINTERNAL, "%s cannot be read as CSV: %v", filepath.Base(f), err)
		}
		kept := recs[:0]
		removed := 0
		for i, rec := range recs {
			hit := false
			for _, c := range rec {
				if i > 0 && needles[c] {
					hit = true
					break
				}
			}
			if hit {
				removed++
				continue
			}
			kept = append(kept, rec)
		}
		if removed == 0 {
			continue
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.WriteAll(kept)
		out := buf.Bytes()
		if sealed {
			out = s.Sealer.SealBlob(out, datakey.BlobDelivery)
		}
		if err := writeDropFile(s.Dir, f, out); err != nil {
			return files, rows, err
		}
		files++
		rows += removed
	}
	return files, rows, nil
}

// sendTimeout bounds a claimed slot's send, which no lease loss cancels.
const sendTimeout = time.Minute

// Due runs the deliveries whose schedule has come (never run counts as
// due). The last run is the latest of this service's own, the store's
// and, in a store keeping claims, the last claim: over a shared store a
// delivery may have run on another node (run now, or scheduled there
// before this node took the jobs over), or be being sent there.
//
// Each scheduled run is a slot, numbered from 1, and claimed before it is
// sent when the store keeps claims (Claims): two nodes that both believe
// they run the jobs (one paused past its lease) claim the same slot, and
// one of them gets it. A claim left before its point of no return by a
// node whose term is over is taken over at once (it was due).
func (s *Service) Due(ctx context.Context) error {
	ds, err := s.Store.Deliveries(ctx)
	if err != nil {
		return err
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	claims := s.Claims
	var holder, fence string
	var term uint64
	if claims != nil && s.Term != nil {
		holder, fence, term = s.Term()
	} else {
		claims = nil
	}
	now := s.Now()
	for _, d := range ds {
		s.mu.Lock()
		last, ok := s.last[d.ID]
		s.mu.Unlock()
		runs, err := s.Store.DeliveryRuns(ctx, d.ID, 1)
		if err != nil {
			return err
		}
		if len(runs) > 0 && (!ok || runs[0].At.After(last)) {
			last, ok = runs[0].At, true
		}
		every, err := time.ParseDuration(d.EveryText)
		if err != nil {
			s.Log.Warn("a stored delivery has no valid schedule; skipped", "delivery", d.ID, "every", d.EveryText)
			continue
		}
		var slot int64
		abandoned := false
		if claims != nil {
			lc, err := claims.LastDeliveryClaim(ctx, d.ID)
			if err != nil {
				return err
			}
			if lc != nil {
				slot = lc.Slot
				if !ok || lc.At.After(last) {
					last, ok = lc.At, true
				}
				// Proven abandoned: never moved to sending, by an
				// earlier term, which can no longer move it (Claims);
				// or this node's own, left before its send (a store
				// error), nothing of it in flight: Due runs one slot
				// at a time.
				abandoned = lc.Status == ClaimClaimed && lc.Fence == fence &&
					(lc.Term < term || lc.Term == term && lc.Holder == holder)
			}
		} else if slot, err = s.lastSlot(ctx, d.ID); err != nil {
			return err
		}
		if !abandoned && ok && now.Sub(last) < every {
			continue
		}
		if !abandoned {
			slot++
		}
		if s.Fence != nil {
			if err := s.Fence(ctx); err != nil {
				return err
			}
		}
		var c *Claim
		if claims != nil {
			c = &Claim{Delivery: d.ID, Slot: slot, Holder: holder, Fence: fence, Term: term, Status: ClaimClaimed, At: now.UTC()}
			got, err := claims.ClaimDeliverySlot(ctx, c)
			if err != nil {
				return err
			}
			if !got {
				continue // another node's, or this node's term is over
			}
		}
		if s.Pause != nil {
			s.Pause("claimed", d, slot)
		}
		s.deliverSlot(ctx, d, c, slot)
	}
	return nil
}

// lastSlot is the last slot a delivery's recorded runs name, where the
// store keeps no claims (one node): the newest run with a slot among the
// latest hundred, else the number of runs (each slot recorded a run, so
// no slot was above it).
func (s *Service) lastSlot(ctx context.Context, id string) (int64, error) {
	runs, err := s.Store.DeliveryRuns(ctx, id, 100)
	if err != nil {
		return 0, err
	}
	for _, r := range runs {
		if r.Slot > 0 {
			return r.Slot, nil
		}
	}
	if len(runs) < 100 {
		return int64(len(runs)), nil
	}
	all, err := s.Store.DeliveryRuns(ctx, id, -1)
	return int64(len(all)), err
}

// Run checks for due deliveries every interval, and when woken (Wake),
// until ctx ends.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		if err := s.Due(ctx); err != nil && ctx.Err() == nil {
			s.Log.Error("scheduled deliveries failed", "err", err)
		}
	}
}

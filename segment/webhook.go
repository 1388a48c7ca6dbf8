package segment

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/egress"
)

// Webhook is a subscriber URL for enter/exit events.
type Webhook struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Secret signs deliveries (HMAC-SHA256); shown once, at creation.
	Secret string `json:"secret,omitempty"`
	// Segments limits the events sent (empty: every segment).
	Segments []string `json:"segments,omitempty"`
	// Purpose, when set, limits enter events to profiles that consented
	// to it (Dispatcher.Consent); exits are always sent, so a receiver
	// can forget someone.
	Purpose   string    `json:"purpose,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// DeadLetter is a delivery that failed every attempt.
type DeadLetter struct {
	ID       int64           `json:"id"`
	Webhook  string          `json:"webhook_id"`
	Body     json.RawMessage `json:"body"`
	Error    string          `json:"error"`
	Attempts int             `json:"attempts"`
	At       time.Time       `json:"at"`
}

// WebhookStore keeps webhooks and dead letters.
type WebhookStore interface {
	SaveWebhook(ctx context.Context, w *Webhook) error
	DeleteWebhook(ctx context.Context, id string) error
	Webhooks(ctx context.Context) ([]*Webhook, error)
	SaveDeadLetter(ctx context.Context, d *DeadLetter) error
	DeadLetters(ctx context.Context, webhookID string, limit int) ([]*DeadLetter, error)
}

// Signature is the value of the X-Portrait-Signature header: HMAC-SHA256 of
// "<timestamp>.<body>" with the webhook's secret. The timestamp is signed
// too, so a captured delivery cannot be replayed later as a fresh one.
func Signature(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// IdempotencyKey is the Idempotency-Key header of a webhook POST: the
// webhook and a digest of the body, the same on every attempt of one batch,
// so a receiver that answered too late for us (we retry) can drop the
// second copy. With an Outbox the events are the recorded history's rows
// (their ids and times as recorded), so a batch read again from the same
// cursor with the same rows after it (a new jobs owner resending what the
// last one may have sent) has the same key.
func IdempotencyKey(webhookID string, body []byte) string {
	sum := sha256.Sum256(body)
	return webhookID + ":" + hex.EncodeToString(sum[:16])
}

// Outbox is the recorded history read as the webhooks' queue: the events
// of every segment in the order they were recorded (ids committed in
// order), and a stored cursor, the id up to which they were sent. The
// jobs owner's dispatcher reads after the cursor and moves it after each
// batch, so any node's recorded change reaches the webhooks, and a new
// owner resumes where the last one stopped.
type Outbox interface {
	// SegmentEventsAfter pages every segment's history after an id,
	// oldest first.
	SegmentEventsAfter(ctx context.Context, after int64, limit int) ([]*Event, error)
	// WebhookCursor returns the id up to which the history was sent; the
	// first call stores the history's current end (what was recorded
	// before webhooks read the history is not sent).
	WebhookCursor(ctx context.Context) (int64, error)
	// MoveWebhookCursor moves the cursor from one id to a later one; it
	// reports false, moving nothing, when the cursor is no longer at from
	// (another node moved it).
	MoveWebhookCursor(ctx context.Context, from, to int64) (bool, error)
}

// Dispatcher delivers events to webhooks: one POST per webhook and batch,
// retried with exponential backoff, dead-lettered after MaxAttempts.
type Dispatcher struct {
	Store WebhookStore
	// Guard refuses webhook URLs that lead to loopback, private, link-local
	// or metadata addresses, at creation and at every connection (Client
	// is built on it: widen Guard.Allow, do not replace Guard).
	Guard       *egress.Guard
	Client      *http.Client
	Now         portrait.Clock
	Log         *slog.Logger
	MaxAttempts int
	// Backoff is the wait before attempt n+1 (n from 1).
	Backoff func(attempt int) time.Duration
	// Consent reports whether a profile consented to a purpose (nil:
	// webhooks' purposes are not checked).
	Consent func(purpose, profileID string) bool
	// Fence, when set, is asked right before each POST (the point of no
	// return): over a shared store it says whether this node still holds
	// the jobs lease. A batch it refuses is dead-lettered, not sent, so a
	// node that lost the lease (paused past it, or stopping after it was
	// taken) sends nothing the new owner may send too.
	Fence func(ctx context.Context) error
	// OnlyWhileRunning drops the events handed to Enqueue while Run is
	// not running, instead of queueing them: only the jobs owner runs the
	// dispatcher, and a node queueing them meanwhile would send its
	// backlog when it took the lease over. (With an Outbox the service
	// enqueues nothing: the owner reads what any node recorded.)
	OnlyWhileRunning bool
	// Outbox, when set, is where Run reads the events to send: the
	// recorded history from its cursor (see Outbox), polled every Poll
	// and when woken (Wake). A batch the Fence refuses is then neither
	// sent nor dead-lettered, and the cursor stays: the node that holds
	// the jobs now sends it. Enqueue still queues (events not recorded).
	Outbox Outbox
	Poll   time.Duration
	// Batch is how many recorded events one outbox batch holds at most.
	Batch int

	running atomic.Bool
	wake    chan struct{}
	mu      sync.RWMutex
	hooks   []*Webhook
	queue   chan []*Event
}

// NewDispatcher returns a dispatcher with 5 attempts and backoff doubling
// from one second.
func NewDispatcher(store WebhookStore) *Dispatcher {
	g := &egress.Guard{}
	return &Dispatcher{Store: store, Guard: g, Client: g.Client(10 * time.Second), Now: time.Now, Log: slog.Default(),
		MaxAttempts: 5, Backoff: func(n int) time.Duration { return time.Second << min(n-1, 8) }, queue: make(chan []*Event, 1024),
		Poll: 500 * time.Millisecond, Batch: 500, wake: make(chan struct{}, 1)}
}

// Wake tells Run that the history has new events (Outbox); it never
// blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Load reads the stored webhooks.
func (d *Dispatcher) Load(ctx context.Context) error {
	hs, err := d.Store.Webhooks(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.hooks = hs
	d.mu.Unlock()
	return nil
}

// Create validates and saves a webhook; it returns it with its secret.
func (d *Dispatcher) Create(ctx context.Context, w *Webhook) (*Webhook, error) {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, portrait.Errorf(portrait.EINVALID, "webhook url must be an absolute http or https URL")
	}
	if d.Guard != nil {
		if err := d.Guard.CheckURL(ctx, w.URL); err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "webhook url refused: %s", portrait.ErrorMessage(err))
		}
	}
	if len(w.Purpose) > 64 {
		return nil, portrait.Errorf(portrait.EINVALID, "webhook purpose is longer than 64 characters")
	}
	if w.Secret == "" {
		b := make([]byte, 24)
		rand.Read(b)
		w.Secret = "whsec_" + hex.EncodeToString(b)
	}
	if len(w.Secret) < 16 {
		return nil, portrait.Errorf(portrait.EINVALID, "webhook secret must have at least 16 characters")
	}
	b := make([]byte, 8)
	rand.Read(b)
	w.ID, w.CreatedAt = "wh_"+hex.EncodeToString(b), d.Now().UTC()
	if err := d.Store.SaveWebhook(ctx, w); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.hooks = append(d.hooks, w)
	d.mu.Unlock()
	return w, nil
}

// Delete removes a webhook.
func (d *Dispatcher) Delete(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, h := range d.hooks {
		if h.ID == id {
			if err := d.Store.DeleteWebhook(ctx, id); err != nil {
				return err
			}
			d.hooks = append(d.hooks[:i:i], d.hooks[i+1:]...)
			return nil
		}
	}
	return portrait.Errorf(portrait.ENOTFOUND, "no webhook %q", id)
}

// List returns the webhooks without their secrets.
func (d *Dispatcher) List() []*Webhook {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]*Webhook, len(d.hooks))
	for i, h := range d.hooks {
		c := *h
		c.Secret = ""
		out[i] = &c
	}
	return out
}

// Enqueue hands events to Run. When the queue is full (an endpoint too slow
// or down), the batch goes straight to the dead letters, where it can be
// listed and replayed: delivering it here would stall segments, and with
// them profile processing, behind one slow endpoint.
func (d *Dispatcher) Enqueue(evs []*Event) {
	if d.OnlyWhileRunning && !d.running.Load() {
		return // another node sends them (see OnlyWhileRunning)
	}
	select {
	case d.queue <- evs:
	default:
		d.deadAll(evs, "the delivery queue was full (the endpoint is too slow or down)", 0)
	}
}

// Run delivers queued events until ctx ends, then drains the queue for a
// few seconds; what is left is dead-lettered, not lost.
func (d *Dispatcher) Run(ctx context.Context) {
	d.running.Store(true)
	defer d.running.Store(false)
	if d.Outbox != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.runOutbox(ctx)
		}()
		defer func() { <-done }()
	}
	for {
		select {
		case evs := <-d.queue:
			d.Deliver(ctx, evs)
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for {
				select {
				case evs := <-d.queue:
					d.Deliver(drain, evs) // a cancelled delivery is dead-lettered
				default:
					return
				}
			}
		}
	}
}

// runOutbox sends the recorded history from the stored cursor until ctx
// ends: a batch, then the cursor moved past it. A batch under way when
// ctx ends is finished within a few seconds (what cannot be is
// dead-lettered, as Run's drain does) and the cursor moved; a batch the
// Fence refused (this node no longer holds the jobs) leaves the cursor
// where it is, for the new owner.
func (d *Dispatcher) runOutbox(ctx context.Context) {
	poll := d.Poll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	limit := d.Batch
	if limit <= 0 {
		limit = 500
	}
	wait := func() bool {
		t := time.NewTimer(poll)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-d.wake:
		case <-t.C:
		}
		return true
	}
	pos, known := int64(0), false
	for ctx.Err() == nil {
		if !known {
			p, err := d.Outbox.WebhookCursor(ctx)
			if err != nil {
				if ctx.Err() == nil {
					d.Log.Warn("webhook cursor not read; retrying", "err", err)
				}
				if !wait() {
					return
				}
				continue
			}
			pos, known = p, true
		}
		evs, err := d.Outbox.SegmentEventsAfter(ctx, pos, limit)
		if err != nil {
			if ctx.Err() == nil {
				d.Log.Warn("segment history not read for the webhooks; retrying", "err", err)
			}
			if !wait() {
				return
			}
			continue
		}
		if len(evs) == 0 {
			if !wait() {
				return
			}
			continue
		}
		// The batch is finished even if ctx ends meanwhile (a hand-over
		// or a shutdown), within 5 s: retries cut short are dead-lettered.
		sending, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stop := context.AfterFunc(ctx, func() { time.AfterFunc(5*time.Second, cancel) })
		refused := d.deliverAll(sending, evs)
		stop()
		cancel()
		if refused {
			// Not the jobs owner any more (or its store did not answer
			// the fence): the owner sends this batch. Read the cursor
			// again before trying anything else.
			known = false
			if !wait() {
				return
			}
			continue
		}
		last := evs[len(evs)-1].ID
		moved, err := d.Outbox.MoveWebhookCursor(context.WithoutCancel(ctx), pos, last)
		switch {
		case err != nil:
			d.Log.Error("webhook cursor not moved; the batch may be sent again", "err", err)
			known = false
		case !moved:
			known = false // another node moved it: start from there
		default:
			pos = last
		}
	}
}

// deadAll dead-letters events for every webhook that wants them.
func (d *Dispatcher) deadAll(evs []*Event, reason string, attempts int) {
	d.mu.RLock()
	hooks := append([]*Webhook(nil), d.hooks...)
	d.mu.RUnlock()
	for _, h := range hooks {
		var mine []*Event
		for _, e := range evs {
			if wants(h, e.Segment) && d.consented(h, e) {
				mine = append(mine, e)
			}
		}
		if len(mine) == 0 {
			continue
		}
		body, _ := json.Marshal(map[string]any{"webhook_id": h.ID, "events": mine})
		d.Log.Warn("webhook delivery dead-lettered", "webhook", h.ID, "events", len(mine), "err", reason)
		dl := &DeadLetter{Webhook: h.ID, Body: body, Error: reason, Attempts: attempts, At: d.Now().UTC()}
		if err := d.Store.SaveDeadLetter(context.Background(), dl); err != nil {
			d.Log.Error("cannot save a dead letter", "webhook", h.ID, "err", err)
		}
	}
}

// Deliver sends events to every webhook that wants them.
func (d *Dispatcher) Deliver(ctx context.Context, evs []*Event) {
	d.deliver1(ctx, evs, false)
}

// deliverAll is Deliver for an outbox batch: a POST the Fence refuses is
// not dead-lettered, and it reports whether any was refused.
func (d *Dispatcher) deliverAll(ctx context.Context, evs []*Event) (refused bool) {
	return d.deliver1(ctx, evs, true)
}

func (d *Dispatcher) deliver1(ctx context.Context, evs []*Event, outbox bool) bool {
	var refused atomic.Bool
	d.mu.RLock()
	hooks := append([]*Webhook(nil), d.hooks...)
	d.mu.RUnlock()
	var wg sync.WaitGroup
	for _, h := range hooks {
		var mine []*Event
		for _, e := range evs {
			if wants(h, e.Segment) && d.consented(h, e) {
				mine = append(mine, e)
			}
		}
		if len(mine) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d.deliver(ctx, h, mine, outbox) {
				refused.Store(true)
			}
		}()
	}
	wg.Wait()
	return refused.Load()
}

// consented: a webhook with a purpose is told of a profile entering only
// when the profile consented to that purpose.
func (d *Dispatcher) consented(h *Webhook, e *Event) bool {
	if h.Purpose == "" || d.Consent == nil || e.Kind != Enter {
		return true
	}
	return d.Consent(h.Purpose, e.Profile)
}

func wants(h *Webhook, seg string) bool {
	if len(h.Segments) == 0 {
		return true
	}
	for _, s := range h.Segments {
		if s == seg {
			return true
		}
	}
	return false
}

// deliver sends one webhook its events; it reports whether the Fence
// refused the send, which, with keep (an outbox batch, which the node now
// holding the jobs sends), is not dead-lettered.
func (d *Dispatcher) deliver(ctx context.Context, h *Webhook, evs []*Event, keep bool) (refused bool) {
	body, _ := json.Marshal(map[string]any{"webhook_id": h.ID, "events": evs})
	var lastErr error
	attempt := 1
	for ; attempt <= d.MaxAttempts; attempt++ {
		if d.Fence != nil {
			if err := d.Fence(ctx); err != nil {
				if keep {
					d.Log.Info("webhook batch left to the jobs owner", "webhook", h.ID, "events", len(evs), "err", err)
					return true
				}
				lastErr = fmt.Errorf("not sent: %s", portrait.ErrorMessage(err))
				attempt-- // this attempt was not made
				goto dead
			}
		}
		if lastErr = d.post(ctx, h, body); lastErr == nil {
			return false
		}
		if attempt == d.MaxAttempts {
			break
		}
		select {
		case <-time.After(d.Backoff(attempt)):
		case <-ctx.Done():
			lastErr = fmt.Errorf("%v (stopped retrying at shutdown)", lastErr)
			attempt = min(attempt, d.MaxAttempts)
			goto dead
		}
	}
dead:
	d.Log.Warn("webhook delivery dead-lettered", "webhook", h.ID, "events", len(evs), "err", lastErr)
	dl := &DeadLetter{Webhook: h.ID, Body: body, Error: lastErr.Error(), Attempts: min(attempt, d.MaxAttempts), At: d.Now().UTC()}
	if err := d.Store.SaveDeadLetter(context.Background(), dl); err != nil {
		d.Log.Error("cannot save a dead letter", "webhook", h.ID, "err", err)
	}
	return false
}

func (d *Dispatcher) post(ctx context.Context, h *Webhook, body []byte) error {
	ts := strconv.FormatInt(d.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "portrait-webhooks/"+portrait.Version)
	req.Header.Set("X-Portrait-Timestamp", ts)
	req.Header.Set("X-Portrait-Signature", Signature(h.Secret, ts, body))
	req.Header.Set("Idempotency-Key", IdempotencyKey(h.ID, body))
	resp, err := d.Client.Do(req)
	if err != nil {
		// The cause is logged here only: what is kept in the dead
		// letters and shown to clients says what kind of failure it was,
		// never which address or server answered.
		d.Log.Debug("webhook delivery failed", "webhook", h.ID, "err", err)
		return errors.New(egress.Describe(err, 0))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errors.New(egress.Describe(nil, resp.StatusCode))
	}
	return nil
}

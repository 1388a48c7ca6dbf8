package portrait

import (
	"context"
	"time"
)

// EventRetained is the type of the event that carries forward, in the
// log, what expired events made of one profile: event retention deletes
// events older than its limit, and a rebuild must still derive the
// profiles the live state holds (docs/erasure.md, "Retention"). Its
// source is SourceRetention; it is never accepted from clients.
const EventRetained = "$retained"

// SourceRetention is the source of EventRetained events.
const SourceRetention = "$retention"

// RetentionRun is one pass of a retention job: what it deleted, and the
// range of event times (or received times, for the quarantine) it covered.
type RetentionRun struct {
	ID   int64     `json:"id"`
	At   time.Time `json:"at"`
	Kind string    `json:"kind"` // "events" or "quarantine"
	// Before is the limit: everything older was due.
	Before time.Time `json:"before"`
	// Deleted counts the records removed; Oldest and Newest are the
	// times of the oldest and newest of them.
	Deleted int64     `json:"deleted"`
	Oldest  time.Time `json:"oldest,omitzero"`
	Newest  time.Time `json:"newest,omitzero"`
	// Profiles is how many live profiles have carried-forward events
	// (EventRetained) now, and Carried how many carried-forward profiles
	// the pass wrote (one per profile of the expired period: a live
	// profile made of two that merged later has two). Decisions and
	// Accounts say whether it also wrote the event carrying the identity
	// decisions in force and the one carrying the accounts (one each at
	// most).
	Profiles  int  `json:"profiles,omitempty"`
	Carried   int  `json:"carried,omitempty"`
	Decisions bool `json:"decisions,omitempty"`
	Accounts  bool `json:"accounts,omitempty"`
}

// RetentionLog keeps the retention runs, for the status API and so that a
// run moves the content version (answer caches must not serve what it
// deleted).
type RetentionLog interface {
	RetentionRuns(ctx context.Context, limit int) ([]RetentionRun, error)
}

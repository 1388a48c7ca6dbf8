package profile

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/internal/parallel"
)

// Applying one event: where it goes (undo, split, late, or in order),
// and what it does to the profile it lands on: counts, seen-times and
// traits by the commutative rule Wins, then, at the end of the batch, the
// enrichers.

// event applies one event from the log.
func (b *batch) event(e *portrait.Event, pre prepared) error {
	if e.Type == portrait.EventRetract {
		return b.retract(e)
	}
	if b.p.retracted[e.MessageID] {
		return nil // undone before it arrived
	}
	if e.Type == portrait.EventSplit {
		return b.split(e)
	}
	if e.Type == portrait.EventRetained {
		return b.retained(e, pre.ids)
	}
	late, err := b.mustReplay(e, pre.ids)
	if err != nil {
		return err
	}
	if late {
		// Re-ordering is deferred to the end of the batch, where all
		// the batch's late events replay their profiles once: a
		// backfill of N old events would otherwise replay the same
		// history N times.
		b.late = append(b.late, e)
		return nil
	}
	return b.inOrder(e, pre.ps, pre.ids)
}

// inOrder applies an event whose place in canonical order is after every
// event of the profiles it touches: to the profile resolve finds, with
// its events of the batch queued for the enrichers.
func (b *batch) inOrder(e *portrait.Event, ps parsed, ids []portrait.Identifier) error {
	if e.Type == portrait.EventRetained {
		return b.carry(e)
	}
	target, err := b.resolve(e, ids)
	if err != nil {
		return err
	}
	b.applyEvent(target, e, ps)
	c := b.touch(target)
	if !e.System() && len(b.p.Enrichers) > 0 {
		// The enrichers see the event at the end of the batch, where
		// profiles are enriched in parallel (see finish).
		c.q = append(c.q, enrichEvent{e, ps.props, ps.propsAt})
	}
	if b.p.OnChange != nil {
		if b.applied == nil {
			b.applied = map[string][]*portrait.Event{}
		}
		b.applied[target.ID] = append(b.applied[target.ID], e)
	}
	return b.tx.AddProfileEvent(target.ID, e)
}

// applyEvent adds e to pr: its counts, seen-times and keys, and its
// traits where they win (Wins); values that cannot be set become issues.
func (b *batch) applyEvent(pr *portrait.Profile, e *portrait.Event, ps parsed) {
	if pr.EventCounts == nil {
		pr.EventCounts = map[string]int{}
	}
	// What Portrait writes back itself is not the customer's activity.
	if !e.System() {
		pr.EventCount++
		pr.EventCounts[e.Type]++
		if e.Type == portrait.EventTrack {
			if pr.TrackCounts == nil {
				pr.TrackCounts = map[string]int{}
			}
			pr.TrackCounts[e.Name]++
		}
		if pr.FirstSeen.IsZero() || e.Timestamp.Before(pr.FirstSeen) {
			pr.FirstSeen = e.Timestamp
		}
		if e.Timestamp.After(pr.LastSeen) {
			pr.LastSeen = e.Timestamp
		}
	}
	k := e.Key()
	if k.Less(pr.FirstKey) {
		pr.FirstKey = k
	}
	if pr.LastKey.Less(k) {
		pr.LastKey = k
	}
	if pr.Traits == nil {
		pr.Traits = map[string]portrait.Trait{}
	}
	prio := b.p.SourcePriority(e.Source)
	set := func(name string, v any, once bool) {
		if name == "" {
			return
		}
		if b.p.Standardize != nil {
			sv, err := b.p.Standardize(name, v)
			if err != nil {
				b.issues = append(b.issues, &portrait.TraitIssue{MessageID: e.MessageID, Trait: name, Source: e.Source, ProfileID: pr.ID,
					Value: truncate(fmt.Sprint(v), 200), Reason: issueReason(name, err), Time: e.Timestamp})
				return
			}
			v = sv
		} else {
			v = b.standardize(name, v)
		}
		c := portrait.Trait{Value: v, Source: e.Source, Time: e.Timestamp, MessageID: e.MessageID, Priority: prio, Once: once || b.p.OnceTraits[name], Imputed: ps.imputed[name]}
		if cur, ok := pr.Traits[name]; !ok || Wins(c, cur) {
			pr.Traits[name] = c
		}
	}
	for name, raw := range ps.bad {
		b.issues = append(b.issues, &portrait.TraitIssue{MessageID: e.MessageID, Trait: name, Source: e.Source, ProfileID: pr.ID,
			Value: truncate(raw, 200), Reason: "the value cannot be read (a number out of range?)", Time: e.Timestamp})
	}
	for name, v := range ps.once {
		set(name, v, true)
	}
	for name, v := range ps.traits {
		set(name, v, false)
	}
}

// Wins reports whether candidate c replaces the current value cur of a
// trait. Observed values always beat imputed ones. Ordinary values: the latest event wins (ties: higher source
// priority, then greater messageId). "First value wins" values lose to any
// ordinary value and otherwise the earliest wins. The rule is commutative,
// which is what makes profiles independent of arrival order.
func Wins(c, cur portrait.Trait) bool {
	if (c.Imputed == "") != (cur.Imputed == "") {
		return c.Imputed == "" // what was observed beats what was assumed
	}
	if c.Once != cur.Once {
		return !c.Once
	}
	if !c.Time.Equal(cur.Time) {
		if c.Once {
			return c.Time.Before(cur.Time)
		}
		return c.Time.After(cur.Time)
	}
	if c.Priority != cur.Priority {
		return c.Priority > cur.Priority
	}
	if c.Once {
		return c.MessageID < cur.MessageID
	}
	return c.MessageID > cur.MessageID
}

// standardize stores identifier traits (email, phone, ...) in the same
// standard form as the identity graph holds them.
func (b *batch) standardize(name string, v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	for _, t := range b.p.Rules.TraitIdentifiers {
		if t == name {
			var n string
			var valid bool
			if b.p.Rules.Normalize != nil {
				n, valid = b.p.Rules.Normalize(name, s)
			} else {
				n, valid = identity.DefaultNormalize(name, s)
			}
			if valid {
				return n
			}
			return s
		}
	}
	return v
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// enrichEvent is an event waiting for the enrichers.
type enrichEvent struct {
	e     *portrait.Event
	props map[string]any
	at    *map[string]any // where the properties are decoded instead, when set
}

// finish hands each changed profile's new events to the enrichers,
// finishes it and writes it. Profiles are independent of one another
// here, so this runs on all cores: it is most of what computed traits and
// tags cost. Each profile is encoded right after its enrichers are done
// with it, while it is still in the core's cache.
func (b *batch) finish(dirty []*touched) error {
	ens := b.p.Enrichers
	if b.propsDone != nil {
		<-b.propsDone
	}
	errs := make([]error, len(dirty))
	parallel.For(len(dirty), func(i int) {
		pr, q := dirty[i].pr, dirty[i].q
		if len(ens) > 0 {
			for _, en := range ens {
				for _, x := range q {
					props := x.props
					if x.at != nil {
						props = *x.at
					}
					en.Event(pr, x.e, props)
				}
			}
			for _, en := range ens {
				en.Finish(pr, b.now)
			}
		}
		errs[i] = b.tx.PutProfile(pr)
	})
	return errors.Join(errs...)
}

// issueReason is a standardizer's reason for refusing a trait's value
// without the value (clean.Reason: the trait, the kind and the rule, as
// `id_number (id_card): the check character (the 18th) does not match the
// first 17`): the issue keeps the value beside it, sealed when the trait is
// secret and masked by shape, while the reason is free text that neither
// sealing nor masking sees into.
func issueReason(name string, err error) string { return clean.Reason(name, err) }

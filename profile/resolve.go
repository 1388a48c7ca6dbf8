package profile

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"sort"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
)

// Identity resolution: which profile an event lands on. Its identifiers'
// owners join (merge) unless a limit or a split keeps them apart; the
// identifiers nobody owns are attached; every decision goes through the
// identity graph (graph.go) and is journalled.

// resolve returns the profile an event in order (see inOrder) lands on:
// an existing one, several merged, or a new one. It makes and journals the
// identity decisions on the way.
//
// Identifiers are taken strongest first. The profiles owning them join one
// by one unless a limit forbids it; identifiers nobody owns yet go with the
// group, within the limits. A strong identifier nobody owns yet counts from
// the start, so a second user_id on a shared device makes the device's
// profile refuse to join rather than hijacking the event.
func (b *batch) resolve(e *portrait.Event, ids []portrait.Identifier) (*portrait.Profile, error) {
	rules := b.p.Rules
	var target *portrait.Profile
	var pending []portrait.Identifier // unowned ids stronger than any owned one so far
	var strays []portrait.Identifier  // unowned ids a limit kept off
	type refusal struct {
		from   string
		via    portrait.Identifier
		reason string
	}
	var refusals []refusal
	fits := func(pr *portrait.Profile, add []portrait.Identifier) string {
		for i, id := range add {
			l := rules.Limit(id.Type)
			if l <= 0 {
				continue
			}
			n := 0
			if pr != nil {
				n = countType(pr, id.Type)
			}
			for _, a := range add[:i+1] {
				if a.Type == id.Type {
					n++
				}
			}
			if n > l {
				return fmt.Sprintf("would give one profile %d %s values (limit %d)", n, id.Type, l)
			}
		}
		return b.splitConflict(pr, add)
	}
	for _, id := range ids {
		pid, err := b.identity(id)
		if err != nil {
			return nil, err
		}
		if target != nil && pid == target.ID {
			continue
		}
		if pid == "" {
			switch {
			case target == nil:
				pending = append(pending, id)
			case fits(target, []portrait.Identifier{id}) == "":
				if err := b.attach(target, id, e); err != nil {
					return nil, err
				}
			default:
				strays = append(strays, id)
			}
			continue
		}
		q, err := b.profile(pid)
		if err != nil {
			return nil, err
		}
		if target == nil {
			if reason := fits(q, pending); reason != "" {
				refusals = append(refusals, refusal{q.ID, id, "merging " + reason})
				continue
			}
			target = q
			for _, pd := range pending {
				if err := b.attach(target, pd, e); err != nil {
					return nil, err
				}
			}
			pending = nil
			continue
		}
		if reason := mergeRefusal(rules, target, q); reason != "" {
			refusals = append(refusals, refusal{q.ID, id, reason})
			continue
		}
		if reason, err := b.keptApart(e, id, target, q); err != nil || reason != "" {
			if err != nil {
				return nil, err
			}
			refusals = append(refusals, refusal{q.ID, id, reason})
			continue
		}
		if target, err = b.merge(target, q, id, e); err != nil {
			return nil, err
		}
	}
	if target == nil {
		target = b.newProfile(e)
		for _, id := range pending {
			if fits(target, []portrait.Identifier{id}) != "" {
				strays = append(strays, id)
				continue
			}
			if err := b.attach(target, id, e); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range refusals {
		if err := b.journal(&portrait.MergeEntry{Kind: portrait.MergeRefused, Into: target.ID, From: r.from, Identifier: r.via, MessageID: e.MessageID, EventSeq: e.Seq, Reason: r.reason}); err != nil {
			return nil, err
		}
	}
	for _, id := range strays {
		reason := b.splitConflict(target, []portrait.Identifier{id})
		if reason == "" {
			reason = fmt.Sprintf("profile already holds %d %s (limit %d)", countType(target, id.Type), id.Type, rules.Limit(id.Type))
		}
		if err := b.journal(&portrait.MergeEntry{Kind: portrait.MergeRefused, Into: target.ID, Identifier: id, MessageID: e.MessageID, EventSeq: e.Seq, Reason: reason}); err != nil {
			return nil, err
		}
	}
	// Identifiers this event carries that stay elsewhere (or nowhere) tie
	// this profile's history to them for any later re-ordering.
	for _, id := range ids {
		pid, err := b.identity(id)
		if err != nil {
			return nil, err
		}
		if pid != target.ID {
			if err := b.p.graph.refuse(b.tx, id, target.ID); err != nil {
				return nil, err
			}
		}
	}
	return target, nil
}

func (b *batch) identity(id portrait.Identifier) (string, error) {
	return b.p.graph.ownerOf(b.tx, id)
}

// ProfileID derives a profile's id from the message id of its first event,
// so that the same history always yields the same id.
func ProfileID(messageID string) string {
	h := sha256.Sum256([]byte(messageID))
	return "p_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:10]))
}

func (b *batch) newProfile(e *portrait.Event) *portrait.Profile {
	pr := &portrait.Profile{
		ID: ProfileID(e.MessageID), Traits: map[string]portrait.Trait{},
		EventCounts: map[string]int{}, FirstKey: e.Key(), LastKey: e.Key(), IdentityKey: e.Key(),
	}
	b.touch(pr)
	b.p.graph.unalias(b.tx, pr.ID) // buffered; an error surfaces at the next write
	return pr
}

func (b *batch) attach(pr *portrait.Profile, id portrait.Identifier, e *portrait.Event) error {
	if k := e.Key(); pr.IdentityKey.Less(k) {
		pr.IdentityKey = k
	}
	pr.Identifiers = append(pr.Identifiers, id)
	sort.Slice(pr.Identifiers, func(i, j int) bool { return b.p.Rules.Less(pr.Identifiers[i], pr.Identifiers[j]) })
	b.touch(pr)
	return b.p.graph.attach(b.tx, id, pr.ID, e.Key())
}

func countType(pr *portrait.Profile, typ string) int {
	n := 0
	for _, id := range pr.Identifiers {
		if id.Type == typ {
			n++
		}
	}
	return n
}

// mergeRefusal says why a and c may not become one profile ("" if they may).
func mergeRefusal(rules *identity.Rules, a, c *portrait.Profile) string {
	counts := map[string]int{}
	for _, pr := range []*portrait.Profile{a, c} {
		for _, id := range pr.Identifiers {
			counts[id.Type]++
		}
	}
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if l := rules.Limit(t); l > 0 && counts[t] > l {
			return fmt.Sprintf("merging would give one profile %d %s values (limit %d)", counts[t], t, l)
		}
	}
	return ""
}

// merge joins two profiles; the one that began earlier survives, so ids are
// stable whichever way round the merge happens.
func (b *batch) merge(a, c *portrait.Profile, via portrait.Identifier, e *portrait.Event) (*portrait.Profile, error) {
	keep, gone := a, c
	if c.FirstKey.Less(a.FirstKey) {
		keep, gone = c, a
	}
	for name, t := range gone.Traits {
		if cur, ok := keep.Traits[name]; !ok || Wins(t, cur) {
			keep.Traits[name] = t
		}
	}
	keep.Identifiers = append(keep.Identifiers, gone.Identifiers...)
	sort.Slice(keep.Identifiers, func(i, j int) bool { return b.p.Rules.Less(keep.Identifiers[i], keep.Identifiers[j]) })
	keep.MergedFrom = append(append(keep.MergedFrom, gone.ID), gone.MergedFrom...)
	sort.Strings(keep.MergedFrom)
	keep.EventCount += gone.EventCount
	for k, v := range gone.EventCounts {
		keep.EventCounts[k] += v
	}
	for k, v := range gone.TrackCounts {
		if keep.TrackCounts == nil {
			keep.TrackCounts = map[string]int{}
		}
		keep.TrackCounts[k] += v
	}
	if !gone.FirstSeen.IsZero() && (keep.FirstSeen.IsZero() || gone.FirstSeen.Before(keep.FirstSeen)) {
		keep.FirstSeen = gone.FirstSeen
	}
	if gone.LastSeen.After(keep.LastSeen) {
		keep.LastSeen = gone.LastSeen
	}
	if keep.LastKey.Less(gone.LastKey) {
		keep.LastKey = gone.LastKey
	}
	if k := e.Key(); keep.IdentityKey.Less(k) {
		keep.IdentityKey = k
	}
	if keep.MergeKey.Less(gone.MergeKey) {
		keep.MergeKey = gone.MergeKey
	}
	if k := e.Key(); keep.MergeKey.Less(k) {
		keep.MergeKey = k
	}
	for _, en := range b.p.Enrichers {
		en.Merge(keep, gone)
	}
	// gone's events of this batch that the enrichers have not seen yet go
	// with it: their accumulators combine in any order.
	if g := b.dirty[gone.ID]; g != nil && len(g.q) > 0 {
		k := b.touch(keep)
		k.q = append(k.q, g.q...)
		g.q = nil
	}
	b.markStale(keep.ID, gone.ID)
	if err := b.p.graph.reassign(b.tx, gone.ID, keep.ID, gone.Identifiers); err != nil {
		return nil, err
	}
	if err := b.tx.MoveProfileEvents(gone.ID, keep.ID); err != nil {
		return nil, err
	}
	if err := b.deleteProfile(gone.ID); err != nil {
		return nil, err
	}
	if err := b.p.graph.alias(b.tx, gone.ID, keep.ID); err != nil {
		return nil, err
	}
	b.touch(keep)
	m := &portrait.MergeEntry{Kind: portrait.MergeMerged, Into: keep.ID, From: gone.ID, Identifier: via, MessageID: e.MessageID, EventSeq: e.Seq}
	if b.replay != "" {
		m.Reason = "made in the " + b.replay
	}
	return keep, b.journal(m)
}

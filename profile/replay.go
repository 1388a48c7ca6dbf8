package profile

import (
	"fmt"
	"sort"
	"time"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/parallel"
)

// Replays: an event whose place is inside a profile's history (a late
// event) or an event undone (a retraction) changes what came after it, so
// the histories it touches are derived again in canonical order.

// mustReplay reports whether e must wait for a replay of the histories it
// touches (see replayLate): its place in canonical order is inside one of
// them, and applying it now could give another profile than applying it
// in its place would.
func (b *batch) mustReplay(e *portrait.Event, ids []portrait.Identifier) (bool, error) {
	key := e.Key()

	// Which existing profiles does this event touch? (An event carries a
	// handful of identifiers: a small list beats maps here, on the path
	// every event takes.)
	var buf [4]string
	involved := buf[:0]
	addInvolved := func(pid string) {
		for _, x := range involved {
			if x == pid {
				return
			}
		}
		involved = append(involved, pid)
	}
	owners := 0
	allOwnedByOne := true
	var only string
	for _, id := range ids {
		pid, err := b.identity(id)
		if err != nil {
			return false, err
		}
		if pid == "" {
			allOwnedByOne = false
		} else {
			addInvolved(pid)
			if only != "" && only != pid {
				allOwnedByOne = false
				owners++
			}
			if only == "" {
				owners = 1
			}
			only = pid
		}
		rs, err := b.p.graph.refusedOf(b.tx, id)
		if err != nil {
			return false, err
		}
		for rp := range rs {
			addInvolved(rp)
			if rp != pid {
				allOwnedByOne = false
			}
		}
	}
	inOrder := true
	for _, pid := range involved {
		pr, err := b.profile(pid)
		if err != nil {
			return false, err
		}
		if !pr.LastKey.Less(key) {
			inOrder = false
		}
	}
	if inOrder {
		return false, nil
	}
	// A late event. If all its ids sit on one profile whose identity
	// was settled before the event's time, it changes no identity
	// decision, and applying it now gives what applying it in order
	// would: traits, counts and seen-times combine in any order.
	simple := allOwnedByOne && owners == 1 && len(involved) == 1
	if simple {
		pr, _ := b.profile(only)
		simple = pr.IdentityKey.Less(key)
		if !simple {
			// Every identifier attached before this event: in
			// canonical order the event lands on their owner of the
			// time, which is part of pr now — the one owner, when
			// there is one identifier or no merge made pr after the
			// event — and an event that brings no new identifier and
			// joins nothing changes no identity decision (nor first
			// keys: the owner began before the attaching events).
			// Most late events are of this kind — page views,
			// purchases, identifies sent by a client that buffered
			// them — and replaying a long history for each would be
			// the slow way to the same profile.
			simple = len(ids) == 1 || (len(pr.MergedFrom) == 0 && pr.MergeKey == portrait.EventKey{}) ||
				(pr.MergeKey != portrait.EventKey{} && pr.MergeKey.Less(key))
			for _, id := range ids {
				at, ok := b.p.graph.attachedAt(id)
				simple = simple && ok && at.Less(key)
			}
		}
	}
	return !simple, nil
}

// replayLate puts the batch's late events in their places: the profiles
// they touch (as the batch left them) are replayed once, with them.
func (b *batch) replayLate() error {
	if len(b.late) == 0 {
		return nil
	}
	late := b.late
	b.late = nil
	involved := map[string]bool{}
	pres := make(map[*portrait.Event]prepared, len(late))
	for _, e := range late {
		pre := b.p.prepare(e)
		pres[e] = pre
		if err := b.involve(pre.ids, involved); err != nil {
			return err
		}
	}
	b.replay = fmt.Sprintf("replay for %d late event(s) from %s on", len(late), late[0].Timestamp.UTC().Format(time.RFC3339))
	return b.rebuild(late, pres, involved)
}

// rebuild replays, in canonical order, the histories of every profile in
// involved and of those tied to them (through identifiers, transitively),
// with the extra events in their places and retracted events left out.
func (b *batch) rebuild(extra []*portrait.Event, extraPre map[*portrait.Event]prepared, involved map[string]bool) error {
	// The closure: profiles whose events share identifiers with these.
	queue := make([]string, 0, len(involved))
	for pid := range involved {
		queue = append(queue, pid)
	}
	sort.Strings(queue)
	closure := map[string]*portrait.Profile{}
	// The closure's events are read and decoded once: the same decoding
	// finds the identifiers that extend the closure and then replays.
	var events []*portrait.Event
	pres := make(map[*portrait.Event]prepared, len(extraPre))
	for e, pre := range extraPre {
		pres[e] = pre
	}
	many, _ := b.tx.(SeqsOfMany)
	for len(queue) > 0 {
		var evs []*portrait.Event
		if many != nil {
			// The whole frontier at once: two round trips per round of
			// the closure, not two per profile, while the batch holds
			// its locks.
			var round []string
			for _, pid := range queue {
				if _, ok := closure[pid]; ok {
					continue
				}
				pr, err := b.profile(pid)
				if err != nil {
					return err
				}
				closure[pid] = pr
				round = append(round, pid)
			}
			queue = queue[:0:0]
			if len(round) == 0 {
				break
			}
			bySeqs, err := many.ProfileEventSeqsOf(round)
			if err != nil {
				return err
			}
			var s []int64
			for _, pid := range round {
				s = append(s, bySeqs[pid]...)
			}
			if evs, err = b.p.Store.EventsBySeq(b.ctx, s); err != nil {
				return err
			}
		} else {
			pid := queue[0]
			queue = queue[1:]
			if _, ok := closure[pid]; ok {
				continue
			}
			pr, err := b.profile(pid)
			if err != nil {
				return err
			}
			closure[pid] = pr
			s, err := b.tx.ProfileEventSeqs(pid)
			if err != nil {
				return err
			}
			if evs, err = b.p.Store.EventsBySeq(b.ctx, s); err != nil {
				return err
			}
		}
		pre := make([]prepared, len(evs))
		parallel.For(len(evs), func(i int) { pre[i] = b.p.prepare(evs[i]) })
		if mi, ok := b.tx.(ManyIdentities); ok && many != nil {
			var ids []portrait.Identifier
			for i := range pre {
				ids = append(ids, pre[i].ids...)
			}
			if err := b.p.graph.prefetch(mi, ids); err != nil {
				return err
			}
		}
		events = append(events, evs...)
		for i, ev := range evs {
			pres[ev] = pre[i]
			for _, id := range pre[i].ids {
				owner, err := b.identity(id)
				if err != nil {
					return err
				}
				if owner != "" {
					if _, ok := closure[owner]; !ok {
						queue = append(queue, owner)
					}
				}
				rs, err := b.p.graph.refusedOf(b.tx, id)
				if err != nil {
					return err
				}
				for rp := range rs {
					if _, ok := closure[rp]; !ok {
						queue = append(queue, rp)
					}
				}
			}
		}
	}
	events = append(events, extra...)
	kept := events[:0]
	for _, ev := range events {
		if !b.p.retracted[ev.MessageID] {
			kept = append(kept, ev)
		}
	}
	events = kept
	sort.Slice(events, func(i, j int) bool { return events[i].Key().Less(events[j].Key()) })

	// Forget the closure's derived state...
	firstMsg := map[string]string{}
	for pid, pr := range closure {
		firstMsg[pid] = pr.FirstKey.MessageID
		if err := b.p.graph.forget(b.tx, pid, pr.Identifiers); err != nil {
			return err
		}
		if err := b.tx.DeleteProfileEvents(pid); err != nil {
			return err
		}
		if err := b.deleteProfile(pid); err != nil {
			return err
		}
	}
	// ...and derive it again, in order.
	if b.replay == "" {
		b.replay = fmt.Sprintf("replay of %d profile(s)", len(closure))
	}
	defer func() { b.replay = "" }()
	landed := map[string]string{}
	for _, ev := range events {
		pre, ok := pres[ev]
		if !ok {
			pre = b.p.prepare(ev)
		}
		if err := b.inOrder(ev, pre.ps, pre.ids); err != nil {
			return err
		}
		pid, err := b.landing(ev, pre.ids)
		if err != nil {
			return err
		}
		landed[ev.MessageID] = pid
	}
	for pid := range closure {
		b.markStale(pid)
	}
	for _, pid := range landed {
		b.markStale(pid)
	}
	// Old ids keep answering: each points at where its first event is now.
	for old, msg := range firstMsg {
		now, err := b.current(landed[msg])
		if err != nil {
			return err
		}
		if now != "" && now != old {
			if err := b.p.graph.alias(b.tx, old, now); err != nil {
				return err
			}
		}
	}
	if len(extra) == 0 {
		return nil
	}
	e := extra[0]
	into, err := b.current(landed[e.MessageID])
	if err != nil {
		return err
	}
	return b.journal(&portrait.MergeEntry{Kind: portrait.MergeRebuilt, Into: into, MessageID: e.MessageID, EventSeq: e.Seq,
		Reason: fmt.Sprintf("%d late event(s) from %s on re-ordered the history of %d profile(s), %d events", len(extra), e.Timestamp.Format(time.RFC3339), len(closure), len(events))})
}

// retract undoes an earlier event: it is marked retracted (so it is skipped
// wherever it turns up, even if it has not arrived yet), and the profiles its
// identifiers touch are replayed without it.
func (b *batch) retract(e *portrait.Event) error {
	var props struct {
		MessageID string `json:"message_id"`
		By        string `json:"by"` // who decided the undo, when a person did
	}
	json.Unmarshal(e.Properties, &props)
	target := props.MessageID
	if target == "" || b.p.retracted[target] {
		return nil
	}
	b.p.retracted[target] = true
	if err := b.tx.PutRetracted(target); err != nil {
		return err
	}
	x, err := b.p.Store.EventByMessageID(b.ctx, target)
	if err != nil || x == nil {
		return err
	}
	if x.Type == portrait.EventSplit {
		return b.unsplit(e, x, props.By)
	}
	pre := b.p.prepare(x)
	involved := map[string]bool{}
	if err := b.involve(pre.ids, involved); err != nil {
		return err
	}
	if len(involved) == 0 {
		return nil
	}
	b.replay = "replay without event " + target
	if err := b.rebuild(nil, nil, involved); err != nil {
		return err
	}
	into := ""
	for _, id := range pre.ids {
		if into, err = b.identity(id); err != nil || into != "" {
			break
		}
	}
	return b.journal(&portrait.MergeEntry{Kind: portrait.MergeRetracted, Into: into, MessageID: target, EventSeq: x.Seq,
		Reason: fmt.Sprintf("event %s undone by %s (%s%s); %d profile(s) replayed without it", target, e.MessageID, e.Source, decidedBy(props.By), len(involved))})
}

func decidedBy(by string) string {
	if by == "" {
		return ""
	}
	return ", decided by " + by
}

// involve adds to into the profiles that own ids or are tied to them
// (refused), the ones whose histories an event with ids belongs to.
func (b *batch) involve(ids []portrait.Identifier, into map[string]bool) error {
	for _, id := range ids {
		pid, err := b.identity(id)
		if err != nil {
			return err
		}
		if pid != "" {
			into[pid] = true
		}
		rs, err := b.p.graph.refusedOf(b.tx, id)
		if err != nil {
			return err
		}
		for rp := range rs {
			into[rp] = true
		}
	}
	return nil
}

// landing finds the profile an event was just applied to.
func (b *batch) landing(e *portrait.Event, ids []portrait.Identifier) (string, error) {
	pid := ProfileID(e.MessageID)
	if _, ok := b.dirty[pid]; ok {
		return pid, nil
	}
	for _, id := range ids {
		owner, err := b.identity(id)
		if err != nil || owner != "" {
			return owner, err
		}
	}
	return "", nil
}

// current follows the merges of this batch: a profile merged away since
// maps to its survivor.
func (b *batch) current(pid string) (string, error) {
	for range 64 {
		if pid == "" {
			return "", nil
		}
		if _, ok := b.dirty[pid]; ok {
			return pid, nil
		}
		found := ""
		for id, c := range b.dirty {
			for _, m := range c.pr.MergedFrom {
				if m == pid {
					found = id
				}
			}
		}
		if found == "" {
			return pid, nil
		}
		pid = found
	}
	return pid, nil
}

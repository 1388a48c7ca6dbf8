package profile

import (
	"context"
	"fmt"
	"slices"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
)

// Undoing an identity merge. Two profiles joined because an event carried
// identifiers of both (an identify with a known device and a known user,
// a phone and an e-mail each already on a profile). A person who finds the
// merge wrong appends a split event (portrait.EventSplit) naming the
// merge: its event (the bridge) and the identifier through which the
// second profile joined (via). The split is a decision, kept like any
// other event in the log, so a replay or `portrait rebuild` reaches it
// again:
//
//   - the profiles the merge joined are replayed with the bridge refusing
//     that merge. At that moment the identifiers each side holds are
//     captured (A: the side the event landed on, B: the side via joined
//     from); from then on no event may put an identifier of A and one of B
//     on one profile: such a merge is refused and journalled (kind
//     refused, "kept apart by split …"), as a limit refuses one;
//   - an event carrying identifiers of both sides — the bridge itself, or
//     a later one — lands on the side of its strongest identifier, as an
//     event refused by a limit does (the identity rules rank identifiers;
//     user_id before e-mail before device ids). An event carrying only
//     the disputed identifier lands on the side that holds it. Nothing is
//     quarantined: every event keeps counting for a customer, and the
//     refusals say where a person may look again;
//   - undoing the split (a retract of the split event, "merge again")
//     drops the decision and replays the sides, which merge where their
//     events say.
//
// This is what Amperity's and Segment Unify's unmerge rules do with a
// blocked pairing: the decision outlives the data that caused the merge.

// Split is a kept-apart decision as stored with the derived state.
type Split struct {
	MessageID string              // the split event
	Bridge    string              // the event whose merge was undone
	Via       portrait.Identifier // the identifier the second side joined through
	By        string              // who decided it
	// A and B are the identifiers of the two sides when the bridge's merge
	// was refused (empty until then).
	A, B []portrait.Identifier
}

// splitProps is the payload of a split event.
type splitProps struct {
	Bridge   string `json:"bridge_message_id"`
	ViaType  string `json:"via_type"`
	ViaValue string `json:"via_value"`
	Merge    int64  `json:"merge,omitempty"` // the journal entry undone, for the record
	By       string `json:"by"`
}

// SplitEvent builds the event that undoes the identity merge journalled in
// m, decided by by at the time at. id names it (unique per decision).
func SplitEvent(id string, m *portrait.MergeEntry, by string, at portrait.EventKey) *portrait.Event {
	props, _ := json.Marshal(splitProps{Bridge: m.MessageID, ViaType: m.Identifier.Type, ViaValue: m.Identifier.Value, Merge: m.ID, By: by})
	return &portrait.Event{MessageID: id, Type: portrait.EventSplit, Source: portrait.SourceLinkage, Properties: props, Timestamp: at.Time, ReceivedAt: at.Time}
}

// addSplitCache remembers s and indexes it by each identifier it names.
func (p *Processor) addSplitCache(s *Split) {
	if old := p.splits[s.MessageID]; old != nil {
		p.dropSplitCache(old)
	}
	p.splits[s.MessageID] = s
	for _, id := range append(append([]portrait.Identifier{s.Via}, s.A...), s.B...) {
		if !slices.Contains(p.splitIdx[id], s) {
			p.splitIdx[id] = append(p.splitIdx[id], s)
		}
	}
}

func (p *Processor) dropSplitCache(s *Split) {
	delete(p.splits, s.MessageID)
	for id, l := range p.splitIdx {
		if i := slices.Index(l, s); i >= 0 {
			l = slices.Delete(l, i, i+1)
			if len(l) == 0 {
				delete(p.splitIdx, id)
			} else {
				p.splitIdx[id] = l
			}
		}
	}
}

// keptApart says why the event e may not merge q into target through id
// ("" if no split forbids it). The split of the bridge event captures the
// sides when it first refuses.
func (b *batch) keptApart(e *portrait.Event, id portrait.Identifier, target, q *portrait.Profile) (string, error) {
	if len(b.p.splits) == 0 {
		return "", nil
	}
	var cands []*Split
	for _, pr := range []*portrait.Profile{target, q} {
		for _, x := range pr.Identifiers {
			for _, s := range b.p.splitIdx[x] {
				if !slices.Contains(cands, s) {
					cands = append(cands, s)
				}
			}
		}
	}
	for _, s := range cands {
		if s.Bridge == e.MessageID && s.Via == id {
			if len(s.A) == 0 && len(s.B) == 0 {
				s.A, s.B = slices.Clone(target.Identifiers), slices.Clone(q.Identifiers)
				b.p.addSplitCache(s)
				if err := b.tx.PutSplit(s); err != nil {
					return "", err
				}
			}
			return splitReason(s), nil
		}
		if len(s.A) == 0 {
			continue
		}
		if (holdsAny(target, s.A) && holdsAny(q, s.B)) || (holdsAny(target, s.B) && holdsAny(q, s.A)) {
			return splitReason(s), nil
		}
	}
	return "", nil
}

// splitConflict says why the unowned identifiers add may not join pr (nil:
// a new profile) because a split keeps them apart from what pr holds or
// from one another ("" if none does).
func (b *batch) splitConflict(pr *portrait.Profile, add []portrait.Identifier) string {
	if len(b.p.splits) == 0 {
		return ""
	}
	var held []portrait.Identifier
	if pr != nil {
		held = pr.Identifiers
	}
	for i, x := range add {
		for _, s := range b.p.splitIdx[x] {
			other := s.B
			if !slices.Contains(s.A, x) {
				if !slices.Contains(s.B, x) {
					continue
				}
				other = s.A
			}
			for _, y := range append(slices.Clone(held), add[:i]...) {
				if slices.Contains(other, y) {
					return splitReason(s)
				}
			}
		}
	}
	return ""
}

// The journal's reasons name identifiers by type only: a reason is free
// text, which neither sealing at rest nor masking can see into, and the
// entry's Identifier (sealed, masked) names the value.
func splitReason(s *Split) string {
	return fmt.Sprintf(portrait.KeptApartReason+"%s (merge at event %s through %s undone%s)", s.MessageID, s.Bridge, s.Via.Type, decidedBy(s.By))
}

func holdsAny(pr *portrait.Profile, ids []portrait.Identifier) bool {
	for _, x := range pr.Identifiers {
		if slices.Contains(ids, x) {
			return true
		}
	}
	return false
}

// split applies a split event: the decision is kept, and the profiles the
// bridge event touches are replayed under it.
func (b *batch) split(e *portrait.Event) error {
	var props splitProps
	json.Unmarshal(e.Properties, &props)
	via := portrait.Identifier{Type: props.ViaType, Value: props.ViaValue}
	if props.Bridge == "" || via.Type == "" || via.Value == "" {
		return b.journal(&portrait.MergeEntry{Kind: portrait.MergeSplit, MessageID: e.MessageID, EventSeq: e.Seq,
			Reason: "split event without a merge to undo (bridge_message_id, via_type, via_value): ignored"})
	}
	s := &Split{MessageID: e.MessageID, Bridge: props.Bridge, Via: via, By: props.By}
	if old := b.p.splits[e.MessageID]; old != nil && (len(old.A) > 0 || len(old.B) > 0) {
		// Installed with its sides already: carried forward by event
		// retention, whose bridge may have expired (the sides are then
		// all that keeps the decision).
		s = old
	}
	b.p.addSplitCache(s)
	if err := b.tx.PutSplit(s); err != nil {
		return err
	}
	x, err := b.p.Store.EventByMessageID(b.ctx, props.Bridge)
	if err != nil {
		return err
	}
	involved := map[string]bool{}
	if x != nil {
		if err := b.involve(b.p.prepare(x).ids, involved); err != nil {
			return err
		}
	}
	if len(involved) > 0 {
		b.replay = "replay under split " + e.MessageID
		if err := b.rebuild(nil, nil, involved); err != nil {
			return err
		}
	}
	m := &portrait.MergeEntry{Kind: portrait.MergeSplit, Identifier: via, MessageID: e.MessageID, EventSeq: e.Seq}
	if len(s.A) == 0 {
		// The decision stays: should the bridge arrive or merge later, it
		// is refused then.
		m.Into, _ = b.identity(via)
		m.Reason = fmt.Sprintf("merge at event %s through %s undone%s: the event does not merge them now; the decision is kept", props.Bridge, via.Type, decidedBy(props.By))
		return b.journal(m)
	}
	if m.Into, err = b.owner(s.A); err != nil {
		return err
	}
	if m.From, err = b.owner(s.B); err != nil {
		return err
	}
	m.Reason = fmt.Sprintf("merge at event %s through %s undone%s: %s stays apart from %s; events carrying identifiers of both land on the side of their strongest identifier",
		props.Bridge, via.Type, decidedBy(props.By), idList(s.A), idList(s.B))
	return b.journal(m)
}

// unsplit undoes a split (a retract of the split event x): the decision is
// dropped and the two sides are replayed, merging again where their events
// say.
func (b *batch) unsplit(retract, x *portrait.Event, by string) error {
	s := b.p.splits[x.MessageID]
	if s == nil {
		return nil
	}
	b.p.dropSplitCache(s)
	if err := b.tx.DeleteSplit(s.MessageID); err != nil {
		return err
	}
	involved := map[string]bool{}
	if err := b.involve(append(append([]portrait.Identifier{s.Via}, s.A...), s.B...), involved); err != nil {
		return err
	}
	if len(involved) > 0 {
		b.replay = "replay after split " + s.MessageID + " was undone"
		if err := b.rebuild(nil, nil, involved); err != nil {
			return err
		}
	}
	into, err := b.identity(s.Via)
	if err != nil {
		return err
	}
	return b.journal(&portrait.MergeEntry{Kind: portrait.MergeRetracted, Into: into, Identifier: s.Via, MessageID: x.MessageID, EventSeq: x.Seq,
		Reason: fmt.Sprintf("split %s undone by %s (%s%s): the merge at event %s may happen again; %d profile(s) replayed", x.MessageID, retract.MessageID, retract.Source, decidedBy(by), s.Bridge, len(involved))})
}

// owner is the current profile of the first identifier of ids that has one.
func (b *batch) owner(ids []portrait.Identifier) (string, error) {
	for _, id := range ids {
		pid, err := b.identity(id)
		if err != nil || pid != "" {
			return pid, err
		}
	}
	return "", nil
}

// idList names a side's identifiers by type, with how many of each.
func idList(ids []portrait.Identifier) string {
	var types []string
	n := map[string]int{}
	for _, id := range ids {
		if n[id.Type]++; n[id.Type] == 1 {
			types = append(types, id.Type)
		}
	}
	for i, t := range types {
		if n[t] > 1 {
			types[i] = fmt.Sprintf("%d %s", n[t], t)
		}
	}
	return "[" + strings.Join(types, ", ") + "]"
}

// loadSplits reads the decisions kept with the derived state.
func (p *Processor) loadSplits(ctx context.Context) error {
	ss, err := p.Store.LoadSplits(ctx)
	if err != nil {
		return err
	}
	p.splits = make(map[string]*Split, len(ss))
	p.splitIdx = make(map[portrait.Identifier][]*Split)
	for _, s := range ss {
		p.addSplitCache(s)
	}
	return nil
}

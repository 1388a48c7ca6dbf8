package http

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// profileIssueReader lists the values the cleaners refused on one profile.
type profileIssueReader interface {
	ProfileTraitIssues(ctx context.Context, profileID string, limit int) ([]*portrait.TraitIssue, error)
}

// mountProfile360 adds the parts of the profile page beyond the profile
// itself; served when the profile store can answer them.
func (s *Server) mountProfile360(mux *http.ServeMux) {
	if s.Events != nil {
		mux.Handle("POST /v1/profiles/{id}/merges/{merge}/undo", s.instrument("/v1/profiles/{id}/merges/{merge}/undo", s.admin(s.handleUndoMerge)))
	}
	issues, ok := s.Profiles.(profileIssueReader)
	if !ok {
		return
	}
	mux.Handle("GET /v1/profiles/{id}/issues", s.instrument("/v1/profiles/{id}/issues", s.admin(func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		limit, err := queryInt(r, "limit", 100)
		if err != nil {
			Error(w, r, err)
			return
		}
		if limit < 1 || limit > 1000 {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "limit must be 1..1000"))
			return
		}
		list, err := issues.ProfileTraitIssues(r.Context(), r.PathValue("id"), limit)
		if err != nil {
			Error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"issues": list})
	})))
}

// handleUndoMerge undoes one entry of a profile's merge journal, named by
// its id. Every undo is a decision appended to the event log, so a replay
// or rebuild reaches it again:
//   - a merge made by record linkage (message link-…): the pair is
//     rejected and the link retracted;
//   - a merge made by a shared identifier: a split event keeps the two
//     sides apart from then on (see profile/split.go);
//   - a split: retracted, the two sides merge again where their events say.
//
// The processor applies it asynchronously, like any event: the response
// says what was decided, the journal shows when it took effect.
func (s *Server) handleUndoMerge(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	id := r.PathValue("id")
	mid, err := strconv.ParseInt(r.PathValue("merge"), 10, 64)
	if err != nil {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "the merge is named by its journal entry id, a number"))
		return
	}
	journal, err := s.Profiles.ProfileMerges(r.Context(), id)
	if err != nil {
		Error(w, r, err)
		return
	}
	var m *portrait.MergeEntry
	for _, e := range journal {
		if e.ID == mid {
			m = e
		}
	}
	switch {
	case m == nil:
		Error(w, r, portrait.Errorf(portrait.ENOTFOUND, "no merge %d in the journal of profile %s", mid, id))
	case m.Kind == portrait.MergeSplit:
		s.mergeAgain(w, r, k, m, journal)
	case m.Kind != portrait.MergeMerged:
		Error(w, r, portrait.Errorf(portrait.EINVALID, "journal entry %d is a %s entry, not a merge", mid, m.Kind))
	case strings.HasPrefix(m.MessageID, "link-"):
		if s.Linkage == nil {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "merge %d was made by record linkage, which this server does not run", mid))
			return
		}
		c, err := s.Linkage.UndoLink(r.Context(), m.MessageID, k.Name)
		if err != nil {
			Error(w, r, err)
			return
		}
		// The link is retracted through the log (linkage.Service.undo).
		s.writeUndone(w, r, "retract-"+m.MessageID, map[string]any{"merge": m, "candidate": c, "by": k.Name, "at": s.Now().UTC()})
	default:
		s.splitMerge(w, r, k, m)
	}
}

// splitMerge undoes an identity merge by appending a split event.
func (s *Server) splitMerge(w http.ResponseWriter, r *http.Request, k *portrait.Key, m *portrait.MergeEntry) {
	if m.From == "" || m.Identifier.Type == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "merge %d names no second profile or identifier; it cannot be undone", m.ID))
		return
	}
	into, err := s.Profiles.Profile(r.Context(), m.Into)
	if err != nil {
		Error(w, r, err)
		return
	}
	from, err := s.Profiles.Profile(r.Context(), m.From)
	if err != nil {
		Error(w, r, err)
		return
	}
	if into.ID != from.ID {
		Error(w, r, portrait.Errorf(portrait.ECONFLICT, "merge %d is not in effect: %s and %s are apart (already undone?)", m.ID, into.ID, from.ID))
		return
	}
	now := s.Now().UTC()
	ev := profile.SplitEvent(fmt.Sprintf("split-%d-%d", m.ID, now.UnixNano()), m, k.Name, portrait.EventKey{Time: now})
	if _, err := s.Events.Append(r.Context(), []*portrait.Event{ev}, nil); err != nil {
		Error(w, r, err)
		return
	}
	s.writeUndone(w, r, ev.MessageID, map[string]any{"merge": m, "split": ev.MessageID, "by": k.Name, "at": now})
}

// mergeAgain undoes a split: its event is retracted.
func (s *Server) mergeAgain(w http.ResponseWriter, r *http.Request, k *portrait.Key, m *portrait.MergeEntry, journal []*portrait.MergeEntry) {
	for _, e := range journal {
		if e.Kind == portrait.MergeRetracted && e.MessageID == m.MessageID {
			Error(w, r, portrait.Errorf(portrait.ECONFLICT, "split %d was already undone (entry %d)", m.ID, e.ID))
			return
		}
	}
	if m.From == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "split %d kept nothing apart; there is nothing to merge again", m.ID))
		return
	}
	now := s.Now().UTC()
	props, _ := json.Marshal(map[string]string{"message_id": m.MessageID, "by": k.Name})
	ev := &portrait.Event{MessageID: "retract-" + m.MessageID, Type: portrait.EventRetract, Source: portrait.SourceLinkage, Properties: props, Timestamp: now, ReceivedAt: now}
	if _, err := s.Events.Append(r.Context(), []*portrait.Event{ev}, nil); err != nil {
		Error(w, r, err)
		return
	}
	s.writeUndone(w, r, ev.MessageID, map[string]any{"merge": m, "retract": ev.MessageID, "by": k.Name, "at": now})
}

// undoWait bounds how long an undo waits for its event to be applied.
const undoWait = 15 * time.Second

// writeUndone answers an undo once its event (messageID) is applied, so
// that a page reloading the profile right after sees the result, not the
// state before (the console's 360 page did, and showed the merge still
// there). The answer says whether it was (applied) and which profile
// holds the page's customer now (profile: a re-merge may have folded the
// page's profile into another; a split keeps the id on one side). When
// processing is behind by more than undoWait the undo is still logged and
// will be applied: applied is false and the page says so.
func (s *Server) writeUndone(w http.ResponseWriter, r *http.Request, messageID string, body map[string]any) {
	applied := s.waitApplied(r.Context(), messageID)
	body["applied"] = applied
	if applied {
		if p, err := s.Profiles.Profile(r.Context(), r.PathValue("id")); err == nil {
			body["profile"] = p.ID
		}
	}
	writeJSON(w, http.StatusOK, body)
}

// waitApplied waits until the event with this message id is applied to
// the profiles reads see, at most undoWait; false when it was not by then
// (or the server cannot tell: no Applied).
func (s *Server) waitApplied(ctx context.Context, messageID string) bool {
	if s.Applied == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, undoWait)
	defer cancel()
	pause := 10 * time.Millisecond
	for {
		ok, err := s.Applied(ctx, messageID)
		if err == nil && ok {
			return true
		}
		if err != nil && ctx.Err() == nil {
			s.Log.Warn("cannot tell whether an event was applied", "message_id", messageID, "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

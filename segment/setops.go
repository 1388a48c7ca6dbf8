package segment

import (
	"context"
	"strconv"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
)

// Set operations and fixed lists.
//
// A segment defined as the union, intersection or difference of saved
// segments compiles to the combination of their plans, each wrapped in a
// refNode that names it. Its members are then kept current like any other
// segment's: a profile change re-evaluates it whenever it touches what an
// operand reads. When an operand's definition changes, every segment built
// on it is compiled again (Service.Update); an operand in use cannot be
// deleted.
//
// A segment from an uploaded list of identifiers holds the profile ids the
// list matched (Definition.Profiles) and compiles to a listLeaf: membership
// is the listed profiles that are still live (a profile merged away leaves).

// refNode is an operand of a set operation: the plan of the saved segment
// it names, and the consent purposes that segment requires (its own and
// those it inherits).
type refNode struct {
	id       string
	kid      Node
	purposes []string
}

func (n *refNode) String() string        { return "segment(" + strconv.Quote(n.id) + ")" }
func (n *refNode) deps(add func(string)) { n.kid.deps(add) }
func (n *refNode) timed() bool           { return n.kid.timed() }

// listLeaf is a fixed set of profile ids.
type listLeaf struct {
	ids map[string]bool
}

func (n *listLeaf) String() string { return "profile_list(" + strconv.Itoa(len(n.ids)) + " profiles)" }

// A listed profile indexed for the first time (it was uploaded before the
// index knew it, or came back from a rebuild) must be checked: "profile".
func (n *listLeaf) deps(add func(string)) { add("profile") }
func (n *listLeaf) timed() bool           { return false }

// errSetOp: Definition.Compile leaves set operations to the service.
var errSetOp = portrait.Errorf(portrait.EINVALID, "a set operation is compiled by the segment service")

// Set operation names, as the JSON fields of a Definition.
const (
	OpUnion      = "union"
	OpIntersect  = "intersect"
	OpDifference = "difference"
)

// setOp returns the definition's set operation and its operands ("" when it
// has none), or an error when it names several.
func (d *Definition) setOp() (string, []string, error) {
	var op string
	var ids []string
	for _, c := range []struct {
		name string
		ids  []string
	}{{OpUnion, d.Union}, {OpIntersect, d.Intersect}, {OpDifference, d.Difference}} {
		if c.ids == nil {
			continue
		}
		if op != "" {
			return "", nil, invalid("give one of union, intersect and difference, not both %s and %s", op, c.name)
		}
		op, ids = c.name, c.ids
	}
	if op == "" {
		return "", nil, nil
	}
	if len(ids) < 2 || len(ids) > 50 {
		return "", nil, invalid("%s needs 2 to 50 segment ids", op)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || seen[id] {
			return "", nil, invalid("%s lists %q twice or empty", op, id)
		}
		seen[id] = true
	}
	return op, ids, nil
}

// operands are the segment ids a definition is built on.
func (d *Definition) operands() []string {
	_, ids, _ := d.setOp()
	return ids
}

// compileSetOp builds the plan of a set operation from the live plans of
// its operands; s.mu is held by the caller (read or write). self is the
// segment being defined ("" for a new one): naming itself, directly or
// through another set operation, would be a cycle.
func (s *Service) compileSetOp(op string, ids []string, self string) (Node, error) {
	kids := make([]Node, len(ids))
	for i, id := range ids {
		l, ok := s.segs[id]
		if !ok {
			return nil, portrait.Errorf(portrait.ENOTFOUND, "%s names no segment %q", op, id)
		}
		if self != "" && s.dependsOn(id, self) {
			return nil, invalid("%s would make segment %q depend on itself through %q", op, self, id)
		}
		kids[i] = &refNode{id: id, kid: l.plan, purposes: l.purposes}
	}
	switch op {
	case OpUnion:
		return &orNode{kids: kids}, nil
	case OpIntersect:
		return &andNode{kids: kids}, nil
	}
	return &andNode{kids: []Node{kids[0], &notNode{kid: &orNode{kids: kids[1:]}}}}, nil
}

// planPurposes adds the consent purposes of the operands a plan is built
// on. A segment derived from others requires every one of them: its
// members leave the platform (exports, webhooks, deliveries) under its
// name, and the strictest reading is that a profile that did not consent
// to an operand's purpose cannot reach any audience built from it, in a
// union as in an intersection or a difference.
func planPurposes(n Node, add func(string)) {
	switch x := n.(type) {
	case *refNode:
		for _, p := range x.purposes {
			add(p)
		}
	case *andNode:
		for _, k := range x.kids {
			planPurposes(k, add)
		}
	case *orNode:
		for _, k := range x.kids {
			planPurposes(k, add)
		}
	case *notNode:
		// The subtracted operands of a difference too: whether a
		// profile is in them is read to decide what is exported, and
		// "strictest" admits no exception that needs explaining.
		planPurposes(x.kid, add)
	}
}

// dependsOn reports whether segment id is, or is built on, segment on.
func (s *Service) dependsOn(id, on string) bool {
	if id == on {
		return true
	}
	l, ok := s.segs[id]
	if !ok {
		return false
	}
	for _, o := range l.def.operands() {
		if s.dependsOn(o, on) {
			return true
		}
	}
	return false
}

// dependents are the segments built on id, directly or not, each after
// the operands it is built on, so that recompiling in order sees fresh
// plans.
func (s *Service) dependents(id string) []*live {
	var out []*live
	placed := map[string]bool{id: true}
	for progress := true; progress; {
		progress = false
		for _, l := range s.segs {
			if placed[l.def.ID] || !s.dependsOn(l.def.ID, id) {
				continue
			}
			ready := true
			for _, o := range l.def.operands() {
				if s.dependsOn(o, id) && !placed[o] {
					ready = false
				}
			}
			if ready {
				placed[l.def.ID], progress = true, true
				out = append(out, l)
			}
		}
	}
	return out
}

// recompileDependents compiles again, and re-evaluates, the segments built
// on id after its plan changed; s.mu is held for writing.
func (s *Service) recompileDependents(id string) []*Event {
	var evs []*Event
	for _, l := range s.dependents(id) {
		op, ids, _ := l.def.setOp()
		plan, err := s.compileSetOp(op, ids, l.def.ID)
		if err != nil {
			s.Log.Warn("a segment built on a changed segment no longer compiles; kept as it was", "segment", l.def.ID, "operand", id, "err", err)
			continue
		}
		nl := s.newLive(l.def, plan)
		nl.members = l.members
		old := s.evaluate(nl)
		s.segs[l.def.ID] = nl
		evs = append(evs, diff(l.def.ID, old, nl.members, s.Index, nl.evaluatedAt)...)
	}
	return evs
}

// usedBy lists the segments built directly on id.
func (s *Service) usedBy(id string) []string {
	var out []string
	for _, l := range s.segs {
		for _, o := range l.def.operands() {
			if o == id {
				out = append(out, l.def.ID)
			}
		}
	}
	return out
}

// ListSegment saves a segment of the given profiles (a fixed list, as an
// uploaded list of identifiers resolves to).
func (s *Service) ListSegment(ctx context.Context, name, description string, profileIDs []string) (*Status, error) {
	if len(profileIDs) == 0 {
		return nil, invalid("the list matched no profile: nothing to save")
	}
	return s.Create(ctx, &Definition{Name: name, Description: description, Profiles: profileIDs})
}

// listPlan checks a fixed list.
func listPlan(ids []string) (Node, error) {
	if len(ids) > MaxListProfiles {
		return nil, invalid("a list segment holds at most %d profiles, not %d", MaxListProfiles, len(ids))
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" {
			set[id] = true
		}
	}
	return &listLeaf{ids: set}, nil
}

// MaxListProfiles bounds a fixed list: the list is kept in the definition.
const MaxListProfiles = 1_000_000

func (e *evaluator) list(x *listLeaf, cand *roaring.Bitmap) *roaring.Bitmap {
	out := roaring.New()
	for id := range x.ids {
		if n, ok := e.ix.nums[id]; ok && e.ix.live.Contains(n) && (cand == nil || cand.Contains(n)) {
			out.Add(n)
		}
	}
	return out
}

package segment

import (
	"fmt"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Explanation says why a profile is or is not in a segment: every clause,
// whether it held, and the value it saw.
type Explanation struct {
	Clause  string `json:"clause"`
	Matched bool   `json:"matched"`
	// Trait names the trait a leaf read, so that the API's masker, which
	// masks {trait, value} pairs, masks Value by the caller's clearance.
	Trait    string         `json:"trait,omitempty"`
	Value    any            `json:"value,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Children []*Explanation `json:"children,omitempty"`
}

// Explain evaluates the plan on one profile, clause by clause.
func (ix *Index) Explain(n Node, id string, now time.Time) (*Explanation, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	num, ok := ix.nums[id]
	if !ok || !ix.live.Contains(num) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "profile %q is not in the segment index", id)
	}
	e := &evaluator{ix: ix, now: now}
	return e.explain(n, num), nil
}

func (e *evaluator) explain(n Node, num uint32) *Explanation {
	x := &Explanation{Clause: n.String(), Matched: e.point(n, num)}
	switch v := n.(type) {
	case *andNode:
		for _, k := range v.kids {
			x.Children = append(x.Children, e.explain(k, num))
		}
		if !x.Matched {
			x.Reason = "not every condition holds"
		}
	case *orNode:
		for _, k := range v.kids {
			x.Children = append(x.Children, e.explain(k, num))
		}
		if !x.Matched {
			x.Reason = "no condition holds"
		}
	case *notNode:
		x.Children = []*Explanation{e.explain(v.kid, num)}
	case *refNode:
		x.Children = []*Explanation{e.explain(v.kid, num)}
		if !x.Matched {
			x.Reason = "the profile is not in segment " + v.id
		}
	case *listLeaf:
		x.Value = x.Matched
		if !x.Matched {
			x.Reason = "the profile is not on the uploaded list"
		}
	case *tagLeaf:
		x.Value = x.Matched
		if !x.Matched {
			x.Reason = "the profile does not carry the tag " + v.name
		}
	case *idLeaf:
		x.Value = x.Matched
		if !x.Matched {
			x.Reason = "the profile has no " + v.typ + " identifier"
		}
	case *traitLeaf:
		val := e.ix.traits[v.name].valueAt(num)
		x.Trait, x.Value = v.name, val
		if !x.Matched {
			want := expectedKind(v.p)
			switch {
			case val == nil:
				x.Reason = "the profile has no trait " + v.name
			case want != "" && kindOf(val) != want:
				x.Reason = fmt.Sprintf("the trait holds a %s, the condition needs a %s", kindOf(val), want)
			default:
				// Neither the value nor the literal: a reason is plain
				// text no masker parses, and either may be secret (the
				// literal is in the clause, where the API masks it).
				x.Reason = "the value of " + v.name + " does not satisfy the clause"
			}
		}
	case *behLeaf:
		val := metric(e.history(v.event, num), v, e.now)
		x.Value = val
		if !x.Matched {
			if val == nil {
				x.Reason = "the profile never did " + v.event
			} else {
				x.Reason = fmt.Sprintf("%s is %v, not %s", v.metric, literal(val), v.p.String())
			}
		}
	case *seqLeaf:
		a, aok := e.history(v.did, num).last()
		b, bok := e.history(v.not, num).last()
		val := map[string]any{}
		if aok {
			val["last_"+v.did] = time.Unix(int64(a), 0).UTC()
		}
		if bok {
			val["last_"+v.not] = time.Unix(int64(b), 0).UTC()
		}
		x.Value = val
		if !x.Matched {
			switch {
			case !aok:
				x.Reason = "the profile never did " + v.did
			case int64(a) < e.now.Add(-v.window).Unix():
				x.Reason = "the latest " + v.did + " is older than " + fmtWindow(v.window)
			default:
				x.Reason = v.not + " followed " + v.did
			}
		}
	}
	return x
}

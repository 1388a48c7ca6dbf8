package profile

import "github.com/portrait-cdp/portrait"

// graph is the processor's cached view of the identity graph: which
// profile owns each identifier, the key of the event that attached it,
// and which profiles each identifier is kept apart from (refused). The
// processor is the state's only writer, so the cache stays true across
// transactions as long as every change goes through here: each method
// writes the cache and the transaction together, which is what keeps them
// from drifting apart (they used to be mirrored by hand at each call).
//
// The cache answers without the transaction where it can; a miss asks the
// transaction (which reads what is committed, see StateTx) unless the whole
// graph is held, when a miss means unowned.
type graph struct {
	owner map[portrait.Identifier]string
	// attached: the key of the event that attached each identifier, in
	// canonical order, where known.
	attached map[portrait.Identifier]portrait.EventKey
	refused  map[portrait.Identifier]map[string]bool
	// complete: owner holds every identifier, so a miss means unowned.
	complete bool
}

func newGraph() *graph {
	return &graph{
		owner:    make(map[portrait.Identifier]string),
		attached: make(map[portrait.Identifier]portrait.EventKey),
		refused:  make(map[portrait.Identifier]map[string]bool),
	}
}

// load fills the graph from storage: the refusals, and the owners when
// the whole graph was read (complete).
func (g *graph) load(refs []Ref, owner map[portrait.Identifier]string, attached map[portrait.Identifier]portrait.EventKey, complete bool) {
	for _, r := range refs {
		g.cacheRefused(r)
	}
	if complete {
		g.owner, g.attached, g.complete = owner, attached, true
	}
}

func (g *graph) cacheRefused(r Ref) {
	m := g.refused[r.ID]
	if m == nil {
		m = map[string]bool{}
		g.refused[r.ID] = m
	}
	m[r.ProfileID] = true
}

// ownerOf returns the profile that owns id ("" when unowned).
func (g *graph) ownerOf(tx GraphTx, id portrait.Identifier) (string, error) {
	if pid, ok := g.owner[id]; ok || g.complete {
		return pid, nil
	}
	pid, err := tx.Identity(id)
	if err != nil {
		return "", err
	}
	g.owner[id] = pid
	return pid, nil
}

// attachedAt returns the key of the event that attached id, where known.
func (g *graph) attachedAt(id portrait.Identifier) (portrait.EventKey, bool) {
	k, ok := g.attached[id]
	return k, ok
}

// refusedBy returns the profiles id is kept apart from. The map belongs
// to the graph: read it, don't keep or change it.
func (g *graph) refusedBy(id portrait.Identifier) map[string]bool { return g.refused[id] }

// attach gives id to profile pid; key is the attaching event's (zero:
// unknown).
func (g *graph) attach(tx GraphTx, id portrait.Identifier, pid string, key portrait.EventKey) error {
	g.owner[id] = pid
	if key.Time.IsZero() && key.MessageID == "" {
		delete(g.attached, id)
	} else {
		g.attached[id] = key
	}
	return tx.PutIdentity(id, pid, key)
}

// refuse records that id is kept apart from profile pid.
func (g *graph) refuse(tx GraphTx, id portrait.Identifier, pid string) error {
	if g.refused[id][pid] {
		return nil
	}
	r := Ref{ID: id, ProfileID: pid}
	g.cacheRefused(r)
	return tx.PutRefused(r)
}

// reassign moves what profile gone holds in the graph to keep, as a merge
// does: its identifiers (ids, keeping their attaching keys) and the
// refusals naming it, except those of identifiers keep now owns (a
// profile is not kept apart from itself).
func (g *graph) reassign(tx GraphTx, gone, keep string, ids []portrait.Identifier) error {
	for _, id := range ids {
		if err := g.attach(tx, id, keep, g.attached[id]); err != nil {
			return err
		}
	}
	for id, m := range g.refused {
		if m[gone] {
			delete(m, gone)
			if o, ok := g.owner[id]; !ok || o != keep {
				m[keep] = true
			} else if len(m) == 0 {
				delete(g.refused, id)
			}
		}
	}
	return tx.MoveRefused(gone, keep)
}

// forget drops what profile pid holds in the graph, its identifiers ids
// and the refusals naming it, before a replay derives them again. The
// identifiers stay cached as unowned: storage no longer has them either.
func (g *graph) forget(tx GraphTx, pid string, ids []portrait.Identifier) error {
	for _, id := range ids {
		g.owner[id] = ""
		delete(g.attached, id)
		if err := tx.DeleteIdentity(id); err != nil {
			return err
		}
	}
	for id, m := range g.refused {
		delete(m, pid)
		if len(m) == 0 {
			delete(g.refused, id)
		}
	}
	return tx.DeleteRefused(pid)
}

// alias makes oldID answer as newID (the same id: answer as itself).
// Aliases are not cached: the processor never reads them.
func (g *graph) alias(tx GraphTx, oldID, newID string) error { return tx.PutAlias(oldID, newID) }

// unalias forgets where id pointed: a profile of that id exists (again).
func (g *graph) unalias(tx GraphTx, id string) error { return tx.DropAlias(id) }

// trim keeps the owner cache within max identifiers: past it, a quarter
// goes, at random (map order), and a miss now means "ask storage".
func (g *graph) trim(max int) {
	if len(g.owner) <= max {
		return
	}
	g.complete = false
	for id := range g.owner {
		if len(g.owner) <= max*3/4 {
			break
		}
		delete(g.owner, id)
		delete(g.attached, id)
	}
}

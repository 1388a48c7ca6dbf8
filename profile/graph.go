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
	// lazy: the graph is one batch's view, under partitioned application
	// (other nodes write the store between batches): refusals are read
	// per identifier, as locked (lock) or on first use (refusedOf), and
	// what this batch moved (reassign) or dropped (forget) is applied to
	// what is read later, since the transaction's reads do not see its own
	// writes.
	lazy        bool
	refusedRead map[portrait.Identifier]bool
	moved       map[string]string // gone → keep, merges of this batch
	forgotten   map[string]bool
}

func newGraph() *graph {
	return &graph{
		owner:    make(map[portrait.Identifier]string),
		attached: make(map[portrait.Identifier]portrait.EventKey),
		refused:  make(map[portrait.Identifier]map[string]bool),
	}
}

// newLazyGraph returns an empty graph for one batch of partitioned
// application.
func newLazyGraph() *graph {
	g := newGraph()
	g.lazy = true
	g.refusedRead = make(map[portrait.Identifier]bool)
	g.moved = make(map[string]string)
	g.forgotten = make(map[string]bool)
	return g
}

// lock fills a lazy graph with the identity rows a batch locked.
func (g *graph) lock(rows map[portrait.Identifier]LockedIdentity) {
	for id, r := range rows {
		g.owner[id] = r.ProfileID
		if !r.Attached.Time.IsZero() || r.Attached.MessageID != "" {
			g.attached[id] = r.Attached
		}
		g.readRefused(id, r.Refused)
	}
}

// readRefused adds refusals read from storage for id to what this batch
// holds, through the batch's merges and without the profiles it forgot.
func (g *graph) readRefused(id portrait.Identifier, pids []string) {
	if g.refusedRead[id] {
		return
	}
	g.refusedRead[id] = true
	for _, pid := range pids {
		for range 64 {
			next, ok := g.moved[pid]
			if !ok {
				break
			}
			pid = next
		}
		if g.forgotten[pid] || g.owner[id] == pid {
			continue
		}
		g.cacheRefused(Ref{ID: id, ProfileID: pid})
	}
}

// refusedOf returns the profiles id is kept apart from, reading them
// from the transaction in a lazy graph. The map belongs to the graph:
// read it, don't keep or change it.
func (g *graph) refusedOf(tx GraphTx, id portrait.Identifier) (map[string]bool, error) {
	if g.lazy && !g.refusedRead[id] {
		lk, ok := tx.(Locker)
		if !ok {
			return nil, portrait.Errorf(portrait.EINTERNAL, "partitioned application needs a locking state transaction")
		}
		pids, err := lk.Refused(id)
		if err != nil {
			return nil, err
		}
		g.readRefused(id, pids)
	}
	return g.refused[id], nil
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

// prefetch reads, in one round trip, the owners and refusals of the ids a
// lazy graph does not hold yet, as ownerOf and refusedOf would read them
// one by one (a replay's closure, partitioned application).
func (g *graph) prefetch(m ManyIdentities, ids []portrait.Identifier) error {
	if !g.lazy {
		return nil
	}
	var want []portrait.Identifier
	asked := map[portrait.Identifier]bool{}
	for _, id := range ids {
		if _, ok := g.owner[id]; (ok || g.complete) && g.refusedRead[id] || asked[id] {
			continue
		}
		asked[id] = true
		want = append(want, id)
	}
	if len(want) == 0 {
		return nil
	}
	owners, refused, err := m.IdentitiesOf(want)
	if err != nil {
		return err
	}
	for _, id := range want {
		if _, ok := g.owner[id]; !ok && !g.complete {
			g.owner[id] = owners[id]
		}
		g.readRefused(id, refused[id])
	}
	return nil
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
	if g.lazy {
		g.moved[gone] = keep
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
	if g.lazy {
		g.forgotten[pid] = true
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

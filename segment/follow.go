package segment

// Follower keeps something derived from one trait's values across all
// profiles (stage counts from the stage histories) exact at every change of
// the index, instead of recounting every profile on each question.
// Change is called under the index's write lock with the value a profile
// held and the value it holds now (nil: none), each time the index changes
// it: on upsert, on removal (merged away, erased) and, from Follow, for the
// values already held. It must be quick and must not call the index.
type Follower interface {
	Change(old, new any)
}

type followed struct {
	trait string
	f     Follower
}

// Follow makes f follow the trait's values, starting with those held now.
func (ix *Index) Follow(trait string, f Follower) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.followers = append(ix.followers, followed{trait, f})
	c := ix.traits[trait]
	if c == nil {
		return
	}
	live := c.exists.Clone()
	live.And(ix.live)
	live.Iterate(func(n uint32) bool {
		f.Change(nil, c.valueAt(n))
		return true
	})
}

// followedBefore is the followed traits' values a profile holds before a
// change (nil when nothing is followed).
func (ix *Index) followedBefore(n uint32) []any {
	if len(ix.followers) == 0 {
		return nil
	}
	old := make([]any, len(ix.followers))
	for i, fw := range ix.followers {
		if ix.live.Contains(n) {
			old[i] = ix.traits[fw.trait].valueAt(n)
		}
	}
	return old
}

// followedAfter tells the followers what changed since followedBefore.
func (ix *Index) followedAfter(n uint32, old []any) {
	for i, fw := range ix.followers {
		var now any
		if ix.live.Contains(n) {
			now = ix.traits[fw.trait].valueAt(n)
		}
		// Unchanged (nil both times included): most upserts leave the
		// followed trait as it was, and a follower's Change may cost (the
		// stage counts parse both histories).
		if sameValue(old[i], now) {
			continue
		}
		fw.f.Change(old[i], now)
	}
}

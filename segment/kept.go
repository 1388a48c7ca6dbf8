package segment

import (
	"sort"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
)

// kept is a value the index keeps per profile for aggregates that bitmaps
// cannot answer (survey answers with their times, for NPS by segment or
// tag): maintained on every upsert, so that such aggregates read memory
// instead of every profile document.
type kept struct {
	fn     func(*portrait.Profile) any
	has    *roaring.Bitmap
	values map[uint32]any
}

// SetKeep makes the index keep fn(p) for each profile from now on (nil:
// nothing kept for it). Set it before the first Upsert: profiles indexed
// earlier keep nothing until they change.
func (ix *Index) SetKeep(fn func(*portrait.Profile) any) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.kept = &kept{fn: fn, has: roaring.New(), values: map[uint32]any{}}
}

// Keeps reports whether the index keeps a value per profile (SetKeep).
func (ix *Index) Keeps() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.kept != nil
}

// Keep is what the index would keep for p (nil: nothing, or no SetKeep).
// The processor's hook computes it while the profile is whole, so the copy
// it queues need not carry the enrichers' state (issue 12 §5): fn's result
// must not share memory with p, which the processor reuses.
func (ix *Index) Keep(p *portrait.Profile) any {
	ix.mu.RLock()
	k := ix.kept
	ix.mu.RUnlock()
	if k == nil {
		return nil
	}
	return k.fn(p)
}

func (k *kept) set(n uint32, v any) {
	if v != nil {
		k.values[n] = v
		k.has.Add(n)
		return
	}
	k.remove(n)
}

func (k *kept) remove(n uint32) {
	delete(k.values, n)
	k.has.Remove(n)
}

// EachKept calls fn for every live profile in within (nil: all) that has
// a kept value, in profile number order, with its tags' names (sorted)
// when withTags. fn runs under the index's read lock: it must not call
// the index.
func (ix *Index) EachKept(within *roaring.Bitmap, withTags bool, fn func(id string, v any, tags []string) error) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.kept == nil {
		return nil
	}
	scope := roaring.And(ix.kept.has, ix.live)
	if within != nil {
		scope.And(within)
	}
	var tagsOf map[uint32][]string
	if withTags {
		names := make([]string, 0, len(ix.tags))
		for name := range ix.tags {
			names = append(names, name)
		}
		sort.Strings(names)
		tagsOf = map[uint32][]string{}
		for _, name := range names {
			roaring.And(ix.tags[name], scope).Iterate(func(n uint32) bool {
				tagsOf[n] = append(tagsOf[n], name)
				return true
			})
		}
	}
	var err error
	scope.Iterate(func(n uint32) bool {
		err = fn(ix.ids[n], ix.kept.values[n], tagsOf[n])
		return err == nil
	})
	return err
}

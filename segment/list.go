package segment

import (
	"cmp"
	"container/heap"
	"math"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
)

// EachValue calls fn with the value of a trait for every live profile of
// within (nil: every live profile) that holds one. The index is read-locked
// meanwhile: fn must not call the index.
func (ix *Index) EachValue(name string, within *roaring.Bitmap, fn func(id string, v any)) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	c := ix.traits[name]
	if c == nil {
		return
	}
	scope := roaring.And(c.exists, ix.live)
	if within != nil {
		scope.And(within)
	}
	scope.Iterate(func(n uint32) bool {
		fn(ix.ids[n], c.valueAt(n))
		return true
	})
}

// Scope is the live profiles of within (nil: all) carrying tag ("" any).
func (ix *Index) Scope(within *roaring.Bitmap, tag string) *roaring.Bitmap {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s := ix.live.Clone()
	if within != nil {
		s.And(within)
	}
	if tag != "" {
		if bm := ix.tags[tag]; bm != nil {
			s.And(bm)
		} else {
			s.Clear()
		}
	}
	return s
}

// ListKey is a profile's place in a sorted list, and the cursor of the
// page that follows it: numbers first, then strings, then profiles without
// the sort trait; ties by profile id.
type ListKey struct {
	Kind int     `json:"k"` // 0 number, 1 string, 2 none
	Num  float64 `json:"n,omitempty"`
	Str  string  `json:"s,omitempty"`
	ID   string  `json:"id"`
}

func compareKeys(a, b *ListKey, desc bool) int {
	if a.Kind != b.Kind {
		return cmp.Compare(a.Kind, b.Kind) // missing last either way
	}
	c := 0
	switch a.Kind {
	case 0:
		c = cmp.Compare(a.Num, b.Num)
	case 1:
		c = strings.Compare(a.Str, b.Str)
	}
	if desc {
		c = -c
	}
	if c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// keyHeap keeps the limit smallest keys seen, largest on top.
type keyHeap struct {
	keys []ListKey
	desc bool
}

func (h *keyHeap) Len() int           { return len(h.keys) }
func (h *keyHeap) Less(i, j int) bool { return compareKeys(&h.keys[i], &h.keys[j], h.desc) > 0 }
func (h *keyHeap) Swap(i, j int)      { h.keys[i], h.keys[j] = h.keys[j], h.keys[i] }
func (h *keyHeap) Push(x any)         { h.keys = append(h.keys, x.(ListKey)) }
func (h *keyHeap) Pop() any {
	x := h.keys[len(h.keys)-1]
	h.keys = h.keys[:len(h.keys)-1]
	return x
}

// List pages the profiles of scope ordered by the value of the trait sort
// ("" : by id), ascending or descending, starting after the key after (nil:
// from the start). It returns the page's keys, in order; a full page means
// more may follow from its last key. One pass keeps the page in a heap, so
// a page costs the scope's size, not a sort of it.
func (ix *Index) List(scope *roaring.Bitmap, sort string, desc bool, after *ListKey, limit int) []ListKey {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if limit <= 0 {
		return nil
	}
	c := ix.traits[sort]
	h := &keyHeap{desc: desc}
	scope.Iterate(func(n uint32) bool {
		k := ListKey{Kind: 2, ID: ix.ids[n]}
		if c != nil && c.exists.Contains(n) {
			switch v := c.valueAt(n).(type) {
			case float64:
				if !math.IsNaN(v) {
					k.Kind, k.Num = 0, v
				}
			case string:
				k.Kind, k.Str = 1, v
			}
		}
		if after != nil && compareKeys(&k, after, desc) <= 0 {
			return true
		}
		if h.Len() < limit {
			heap.Push(h, k)
		} else if compareKeys(&k, &h.keys[0], desc) < 0 {
			h.keys[0] = k
			heap.Fix(h, 0)
		}
		return true
	})
	out := make([]ListKey, h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(h).(ListKey)
	}
	return out
}

// Holding is the live profiles holding a value for any of the traits.
func (ix *Index) Holding(traits ...string) *roaring.Bitmap {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := roaring.New()
	for _, name := range traits {
		if c := ix.traits[name]; c != nil {
			out.Or(c.exists)
		}
	}
	out.And(ix.live)
	return out
}

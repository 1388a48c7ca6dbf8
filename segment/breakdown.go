package segment

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
)

// Dim is what a breakdown groups profiles by.
type Dim struct {
	Kind  string // trait, tag, bucket, identified
	Trait string // trait and bucket
	Width float64
	// Tags limits a tag breakdown to these tags (nil: every tag). The
	// caller resolves a tag dimension to its tag names: the index does not
	// know the taxonomy.
	Tags []string
	// TagDimension is the dimension Tags came from, kept for the answer.
	TagDimension string
}

// Dimension kinds.
const (
	DimTrait      = "trait"
	DimTag        = "tag"
	DimBucket     = "bucket"
	DimIdentified = "identified"
)

// maxBuckets bounds a fixed-width bucket breakdown: a width far below the
// spread of the values would answer with millions of groups.
const maxBuckets = 1000

// ParseDim reads the by parameter: trait:<name>, tag, tag:<dimension>,
// bucket:<trait>, bucket:<trait>:<width>, region, region:city, identified,
// lifecycle. Regions are the province and city traits the cleaner
// standardises; lifecycle is the current lifecycle_stage.
func ParseDim(by string) (Dim, error) {
	kind, rest, _ := strings.Cut(by, ":")
	switch kind {
	case "trait":
		if rest == "" {
			return Dim{}, portrait.Errorf(portrait.EINVALID, "by=trait needs a trait name: trait:<name>")
		}
		return Dim{Kind: DimTrait, Trait: rest}, nil
	case "tag":
		return Dim{Kind: DimTag, TagDimension: rest}, nil
	case "bucket":
		name, w, hasW := strings.Cut(rest, ":")
		if name == "" {
			return Dim{}, portrait.Errorf(portrait.EINVALID, "by=bucket needs a numeric trait: bucket:<trait> or bucket:<trait>:<width>")
		}
		d := Dim{Kind: DimBucket, Trait: name}
		if hasW {
			f, err := strconv.ParseFloat(w, 64)
			if err != nil || !(f > 0) || math.IsInf(f, 0) {
				return Dim{}, portrait.Errorf(portrait.EINVALID, "bucket width must be a positive number, not %q", w)
			}
			d.Width = f
		}
		return d, nil
	case "region":
		switch rest {
		case "", "province":
			return Dim{Kind: DimTrait, Trait: "province"}, nil
		case "city":
			return Dim{Kind: DimTrait, Trait: "city"}, nil
		}
		return Dim{}, portrait.Errorf(portrait.EINVALID, "by=region takes region or region:city, not %q", by)
	case "identified":
		if rest == "" {
			return Dim{Kind: DimIdentified}, nil
		}
	case "lifecycle":
		if rest == "" {
			return Dim{Kind: DimTrait, Trait: "lifecycle_stage"}, nil
		}
	}
	return Dim{}, portrait.Errorf(portrait.EINVALID, "by must be trait:<name>, tag, tag:<dimension>, bucket:<trait>[:<width>], region, region:city, identified or lifecycle, not %q", by)
}

// Group is one row of a breakdown. Sum and Mean are set when a metric was
// asked for (Mean over the members that hold a number for it); From and To
// bound a numeric bucket [From, To).
type Group struct {
	Key   string   `json:"key"`
	Label string   `json:"label"`
	Count int      `json:"count"`
	Share float64  `json:"share"`
	Sum   *float64 `json:"sum"`
	Mean  *float64 `json:"mean"`
	From  *float64 `json:"from"`
	To    *float64 `json:"to"`
}

// Rest is the "other" row (groups beyond the top N) of a breakdown.
type Rest struct {
	Count int      `json:"count"`
	Share float64  `json:"share"`
	Sum   *float64 `json:"sum,omitempty"`
	Mean  *float64 `json:"mean,omitempty"`
}

// Breakdown counts profiles by a dimension. Total is the profiles in scope;
// a profile can count in several groups (tags, list traits), so shares need
// not add up to one. Missing counts the profiles in scope with no value.
type Breakdown struct {
	Total   int     `json:"total"`
	Groups  []Group `json:"groups"`
	Other   *Rest   `json:"other"`
	Missing Rest    `json:"missing"`
}

// acc accumulates one group: a bitmap when the index has one, or counts
// gathered by scanning the scope.
type acc struct {
	key, label string
	bm         *roaring.Bitmap
	count      int
	sum        float64
	nsum       int
	from, to   *float64
}

// Breakdown groups the live profiles of within (nil: every live profile)
// by dim. With a metric (a numeric trait) each group also gets the sum and
// mean of it. Groups are ordered by count, the top are kept and the rest
// summed into Other; numeric buckets are ordered by range and all kept
// (top is then the number of automatic buckets aimed at).
func (ix *Index) Breakdown(dim Dim, within *roaring.Bitmap, metric string, top int) (*Breakdown, error) {
	if top <= 0 {
		top = 10
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	scope := ix.live
	if within != nil {
		scope = roaring.And(within, ix.live)
	}
	total := int(scope.GetCardinality())
	var mcol *traitCol
	if metric != "" {
		mcol = ix.traits[metric]
		if mcol == nil {
			mcol = newTraitCol() // no profile holds it yet: sums are zero
		}
	}
	var groups []*acc
	var covered *roaring.Bitmap // profiles with a value (nil: computed below)
	missing := -1
	switch dim.Kind {
	case DimTag:
		names := dim.Tags
		if names == nil {
			for name := range ix.tags {
				names = append(names, name)
			}
		}
		var bms []*roaring.Bitmap
		for _, name := range names {
			bm := ix.tags[name]
			if bm == nil {
				continue
			}
			g := roaring.And(bm, scope)
			if g.IsEmpty() {
				continue
			}
			bms = append(bms, g)
			groups = append(groups, &acc{key: name, label: name, bm: g})
		}
		covered = roaring.FastOr(bms...)
	case DimIdentified:
		var bms []*roaring.Bitmap
		for typ, bm := range ix.idents {
			if typ != portrait.IDAnonymousID {
				bms = append(bms, bm)
			}
		}
		known := roaring.And(roaring.FastOr(bms...), scope)
		groups = append(groups, &acc{key: "identified", label: "identified", bm: known},
			&acc{key: "anonymous", label: "anonymous", bm: roaring.AndNot(scope, known)})
		missing = 0
	case DimTrait:
		col := ix.traits[dim.Trait]
		if col == nil {
			break
		}
		groups = col.groups(scope, mcol)
		covered = roaring.And(col.exists, scope)
	case DimBucket:
		col := ix.traits[dim.Trait]
		if col == nil {
			break
		}
		nums := roaring.And(col.isNum, scope)
		var err error
		if groups, err = col.bucketGroups(nums, dim.Width, top, mcol); err != nil {
			return nil, err
		}
		covered = nums
	default:
		return nil, portrait.Errorf(portrait.EINVALID, "unknown breakdown kind %q", dim.Kind)
	}
	if missing < 0 {
		missing = total
		if covered != nil {
			missing = total - int(covered.GetCardinality())
		}
	}
	for _, g := range groups {
		if g.bm != nil { // tag and identified groups
			g.count = int(g.bm.GetCardinality())
			if mcol != nil {
				eachBatch(roaring.And(g.bm, mcol.isNum), func(ns []uint32) { g.addMetric(ns, mcol) })
			}
		}
	}
	if dim.Kind != DimBucket {
		slices.SortFunc(groups, func(a, b *acc) int {
			if a.count != b.count {
				return cmp.Compare(b.count, a.count)
			}
			return strings.Compare(a.key, b.key)
		})
	}
	share := func(n int) float64 {
		if total == 0 {
			return 0
		}
		return float64(n) / float64(total)
	}
	out := &Breakdown{Total: total, Groups: []Group{}, Missing: Rest{Count: missing, Share: share(missing)}}
	keep := groups
	if dim.Kind != DimBucket && len(groups) > top {
		keep = groups[:top]
		o := &Rest{}
		var sum float64
		var nsum int
		for _, g := range groups[top:] {
			o.Count += g.count
			sum += g.sum
			nsum += g.nsum
		}
		o.Share = share(o.Count)
		if mcol != nil {
			o.Sum, o.Mean = sumMean(sum, nsum)
		}
		out.Other = o
	}
	for _, g := range keep {
		r := Group{Key: g.key, Label: g.label, Count: g.count, Share: share(g.count), From: g.from, To: g.to}
		if mcol != nil {
			r.Sum, r.Mean = sumMean(g.sum, g.nsum)
		}
		out.Groups = append(out.Groups, r)
	}
	return out, nil
}

func sumMean(sum float64, n int) (*float64, *float64) {
	s := sum
	if n == 0 {
		return &s, nil
	}
	m := sum / float64(n)
	return &s, &m
}

// groups of a trait within scope: one per string or boolean value (from
// the value bitmaps, or by scanning the codes of a high-cardinality trait),
// one per number held, one per element of list values. Counts and metric
// sums are taken as each group is found.
//
// A string and a number that print alike ("40" and 40, after a trait
// changed type) are one group: two rows with one label would only confuse.
func (c *traitCol) groups(scope *roaring.Bitmap, mcol *traitCol) []*acc {
	var out []*acc
	byKey := map[string]*acc{}
	get := func(k string) *acc {
		g := byKey[k]
		if g == nil {
			g = &acc{key: k, label: k}
			byKey[k] = g
			out = append(out, g)
		}
		return g
	}
	metric := func(g *acc, n uint32) {
		g.count++
		if mcol != nil && int(n) < len(mcol.nums) && !math.IsNaN(mcol.nums[n]) {
			g.sum += mcol.nums[n]
			g.nsum++
		}
	}
	fromBitmap := func(k string, bm *roaring.Bitmap) {
		if mcol == nil {
			get(k).count += int(bm.AndCardinality(scope))
			return
		}
		g := get(k)
		eachBatch(roaring.And(bm, scope), func(ns []uint32) {
			g.count += len(ns)
			g.addMetric(ns, mcol)
		})
	}
	if !c.highCard {
		for i, v := range c.dict {
			fromBitmap(valueLabel(v), c.cat[i])
		}
	} else {
		byCode := map[uint32]*acc{}
		roaring.And(c.exists, scope).Iterate(func(n uint32) bool {
			if int(n) < len(c.codes) && c.codes[n] != 0 {
				g := byCode[c.codes[n]]
				if g == nil {
					g = get(valueLabel(c.dict[c.codes[n]-1]))
					byCode[c.codes[n]] = g
				}
				metric(g, n)
			}
			return true
		})
	}
	if nums := roaring.And(c.isNum, scope); !nums.IsEmpty() {
		byNum := map[float64]*acc{}
		nums.Iterate(func(n uint32) bool {
			g := byNum[c.nums[n]]
			if g == nil {
				g = get(fmtNum(c.nums[n]))
				byNum[c.nums[n]] = g
			}
			metric(g, n)
			return true
		})
	}
	for e, bm := range c.elems {
		fromBitmap(valueLabel(e), bm)
	}
	// drop what scope left empty
	kept := out[:0]
	for _, g := range out {
		if g.count > 0 {
			kept = append(kept, g)
		}
	}
	return kept
}

func valueLabel(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return fmtNum(x)
	}
	return ""
}

// bucketGroups puts the numbers of nums into buckets [from, to) of the
// given width, or of a "nice" width (1, 2 or 5 times a power of ten) that
// gives about target buckets over the values' range. Counts and metric sums
// are taken in the same pass: a bitmap per bucket would cost more to build
// than the answer is worth.
func (c *traitCol) bucketGroups(nums *roaring.Bitmap, width float64, target int, mcol *traitCol) ([]*acc, error) {
	if nums.IsEmpty() {
		return nil, nil
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	vals := c.nums
	eachBatch(nums, func(ns []uint32) {
		for _, n := range ns {
			lo, hi = min(lo, vals[n]), max(hi, vals[n])
		}
	})
	auto := width == 0
	if auto {
		width = niceWidth((hi - lo) / float64(target))
	}
	first := math.Floor(lo / width)
	count := int(math.Floor(hi/width)-first) + 1
	for auto && count > min(target+1, maxBuckets) {
		// the edges fell badly (10..11 by 0.001 is 1,001 buckets): the
		// next nice width up
		width = niceWidth(width * (1 + 1e-9))
		first = math.Floor(lo / width)
		count = int(math.Floor(hi/width)-first) + 1
	}
	if count > maxBuckets || count < 1 {
		return nil, portrait.Errorf(portrait.EINVALID, "a bucket width of %s gives %d buckets over %s..%s; at most %d", fmtNum(width), count, fmtNum(lo), fmtNum(hi), maxBuckets)
	}
	accs := make([]acc, count)
	var mnums []float64
	if mcol != nil {
		mnums = mcol.nums
	}
	eachBatch(nums, func(ns []uint32) {
		for _, n := range ns {
			a := &accs[min(max(int(math.Floor(vals[n]/width)-first), 0), count-1)]
			a.count++
			if int(n) < len(mnums) && !math.IsNaN(mnums[n]) {
				a.sum += mnums[n]
				a.nsum++
			}
		}
	})
	out := make([]*acc, 0, count)
	for i := range accs {
		a := &accs[i]
		if a.count == 0 {
			continue // empty buckets are left out; from/to show the gaps
		}
		from, to := roundTo((first+float64(i))*width, width), roundTo((first+float64(i)+1)*width, width)
		a.from, a.to = &from, &to
		a.key, a.label = fmtNum(from)+".."+fmtNum(to), "["+fmtNum(from)+", "+fmtNum(to)+")"
		out = append(out, a)
	}
	return out, nil
}

// eachBatch calls fn with the numbers of bm a few thousand at a time: one
// call per batch rather than per profile, which over a million profiles is
// most of the cost of a pass.
func eachBatch(bm *roaring.Bitmap, fn func(ns []uint32)) {
	it := bm.ManyIterator()
	buf := make([]uint32, 4096)
	for {
		k := it.NextMany(buf)
		if k == 0 {
			return
		}
		fn(buf[:k])
	}
}

// addMetric adds the metric's numbers of ns (those that hold one) to g.
func (g *acc) addMetric(ns []uint32, mcol *traitCol) {
	if mcol == nil {
		return
	}
	vals := mcol.nums
	sum, k := g.sum, g.nsum
	for _, n := range ns {
		if int(n) < len(vals) && !math.IsNaN(vals[n]) {
			sum += vals[n]
			k++
		}
	}
	g.sum, g.nsum = sum, k
}

// niceWidth rounds w up to 1, 2 or 5 times a power of ten.
func niceWidth(w float64) float64 {
	if !(w > 0) || math.IsInf(w, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(w)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= w*(1-1e-12) {
			return m * p
		}
	}
	return 10 * p
}

// roundTo removes the float noise of i*width (0.30000000000000004).
func roundTo(x, width float64) float64 {
	digits := max(0, -int(math.Floor(math.Log10(width)))+1)
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// MemberSet returns a copy of a segment's members as index numbers, for
// breaking down or listing within it.
func (s *Service) MemberSet(id string) (*roaring.Bitmap, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.segs[id]
	if !ok {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no segment %q", id)
	}
	return l.members.Clone(), nil
}

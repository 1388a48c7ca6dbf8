// Package fpgrowth mines frequent itemsets with FP-Growth (Han, Pei & Yin
// 2000) and derives association rules with support, confidence and lift, the
// way R's arules does: support = count/n compared with ≥, rules with a single
// item as consequent, rule length = items in antecedent and consequent.
//
// The FP-tree is stored in flat slices (structure of arrays) and conditional
// trees are rebuilt into per-depth buffers that are reused, so mining
// allocates little; the independent top-level items are mined in parallel.
package fpgrowth

import (
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/portrait-cdp/portrait"
)

// Options for Mine.
type Options struct {
	MinSupport    float64 // fraction of baskets, in (0, 1]
	MinConfidence float64 // in [0, 1]
	// MinLen and MaxLen bound the rule length (items in antecedent plus
	// consequent); MaxLen also bounds mined itemsets. Zero means arules'
	// defaults: 1 and 10. MinLen 1 admits rules with an empty antecedent.
	MinLen, MaxLen int
	// Workers mining in parallel; zero uses GOMAXPROCS.
	Workers int
}

// Itemset is a frequent itemset with its absolute count and support.
type Itemset struct {
	Items   []string `json:"items"`
	Count   int      `json:"count"`
	Support float64  `json:"support"`
}

// Rule is an association rule Antecedent ⇒ Consequent.
type Rule struct {
	Antecedent []string `json:"antecedent"`
	Consequent []string `json:"consequent"`
	Support    float64  `json:"support"`
	Confidence float64  `json:"confidence"`
	Lift       float64  `json:"lift"`
	Count      int      `json:"count"`
}

// Len is the rule length in arules' sense: all items of the rule.
func (r Rule) Len() int { return len(r.Antecedent) + len(r.Consequent) }

func (r Rule) String() string {
	return "{" + strings.Join(r.Antecedent, ",") + "} => {" + strings.Join(r.Consequent, ",") + "}"
}

// Result of a mining run.
type Result struct {
	Transactions int       `json:"transactions"`
	Itemsets     []Itemset `json:"itemsets"`
	Rules        []Rule    `json:"rules"`
}

// MinCount converts a support fraction into the smallest qualifying count:
// support = count/n ≥ minSupport. The tiny slack absorbs the rounding of
// minSupport·n (0.006·9835 is 59.01 in floating point, but 0.001·1000 must give
// 1, not 2).
func MinCount(minSupport float64, n int) int {
	c := int(math.Ceil(minSupport*float64(n) - 1e-9))
	return max(c, 1)
}

func (o *Options) check() error {
	if !(o.MinSupport > 0 && o.MinSupport <= 1) {
		return portrait.Errorf(portrait.EINVALID, "minimum support must be in (0, 1], got %v", o.MinSupport)
	}
	if !(o.MinConfidence >= 0 && o.MinConfidence <= 1) {
		return portrait.Errorf(portrait.EINVALID, "minimum confidence must be in [0, 1], got %v", o.MinConfidence)
	}
	if o.MinLen == 0 {
		o.MinLen = 1
	}
	if o.MaxLen == 0 {
		o.MaxLen = 10
	}
	if o.MinLen < 1 || o.MaxLen < o.MinLen {
		return portrait.Errorf(portrait.EINVALID, "rule lengths must satisfy 1 ≤ min (%d) ≤ max (%d)", o.MinLen, o.MaxLen)
	}
	return nil
}

// Mine finds the frequent itemsets of the baskets and the rules among them.
// Empty baskets count as transactions (they lower every support) but hold no
// items; duplicate items within a basket count once.
func Mine(baskets [][]string, opt Options) (*Result, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	enc, err := Encode(baskets, opt.MinSupport)
	if err != nil {
		return nil, err
	}
	sets := enc.Frequent(opt.MaxLen, opt.Workers)
	res := &Result{Transactions: enc.N, Itemsets: enc.Decode(sets)}
	res.Rules = enc.Rules(sets, opt.MinConfidence, opt.MinLen, opt.MaxLen)
	return res, nil
}

// Encoded is a basket collection recoded as item ranks: rank 0 is the most
// frequent item that reaches the minimum count, and every basket lists its
// frequent items by ascending rank. Infrequent items are dropped, since no
// frequent itemset can contain them.
type Encoded struct {
	N        int       // transactions, empty ones included
	MinCount int       // minimum absolute support
	Names    []string  // rank → item
	Counts   []int     // rank → count
	Baskets  [][]int32 // frequent items of each basket, ascending rank
}

// Encode counts items and recodes baskets; it is shared with the Apriori
// baseline so that both see identical input.
func Encode(baskets [][]string, minSupport float64) (*Encoded, error) {
	if len(baskets) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "no baskets to mine")
	}
	if !(minSupport > 0 && minSupport <= 1) {
		return nil, portrait.Errorf(portrait.EINVALID, "minimum support must be in (0, 1], got %v", minSupport)
	}
	ids := map[string]int32{}
	var names []string
	var counts []int
	seen := []int{} // id → last basket index seen, to count each item once per basket
	coded := make([][]int32, len(baskets))
	for b, basket := range baskets {
		row := make([]int32, 0, len(basket))
		for _, it := range basket {
			id, ok := ids[it]
			if !ok {
				id = int32(len(names))
				ids[it] = id
				names = append(names, it)
				counts = append(counts, 0)
				seen = append(seen, -1)
			}
			if seen[id] == b {
				continue
			}
			seen[id] = b
			counts[id]++
			row = append(row, id)
		}
		coded[b] = row
	}
	e := &Encoded{N: len(baskets), MinCount: MinCount(minSupport, len(baskets))}
	order := make([]int32, 0, len(names))
	for id, c := range counts {
		if c >= e.MinCount {
			order = append(order, int32(id))
		}
	}
	// Descending count makes shared prefixes, hence a compact tree; names
	// break ties so that ranks, and all output, are deterministic.
	sort.Slice(order, func(i, j int) bool {
		ci, cj := counts[order[i]], counts[order[j]]
		if ci != cj {
			return ci > cj
		}
		return names[order[i]] < names[order[j]]
	})
	rank := make([]int32, len(names))
	for i := range rank {
		rank[i] = -1
	}
	for r, id := range order {
		rank[id] = int32(r)
		e.Names = append(e.Names, names[id])
		e.Counts = append(e.Counts, counts[id])
	}
	for b, row := range coded {
		w := row[:0]
		for _, id := range row {
			if r := rank[id]; r >= 0 {
				w = append(w, r)
			}
		}
		sort.Slice(w, func(i, j int) bool { return w[i] < w[j] })
		coded[b] = w
	}
	e.Baskets = coded
	return e, nil
}

// Set is a frequent itemset in rank coding, items ascending.
type Set struct {
	Items []int32
	Count int
}

// Frequent mines all itemsets of at most maxLen items with count ≥ MinCount,
// sorted by length, then items.
func (e *Encoded) Frequent(maxLen, workers int) []Set {
	if maxLen <= 0 {
		maxLen = 10
	}
	nItems := len(e.Names)
	if nItems == 0 {
		return nil
	}
	root := newTree(nItems)
	for _, b := range e.Baskets {
		if len(b) > 0 {
			root.insert(b, 1)
		}
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, nItems)
	var next atomic.Int64
	outs := make([][]Set, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			m := &miner{minCount: e.MinCount, maxLen: maxLen, nItems: nItems}
			for {
				// Least frequent items first: their conditional trees are
				// small, while the dense ones at the end balance the load.
				k := int(next.Add(1)) - 1
				if k >= nItems {
					break
				}
				m.mineItem(root, int32(nItems-1-k), 0)
			}
			outs[w] = m.out
		}(w)
	}
	wg.Wait()
	var all []Set
	for _, o := range outs {
		all = append(all, o...)
	}
	sort.Slice(all, func(i, j int) bool { return lessSet(all[i].Items, all[j].Items) })
	return all
}

func lessSet(a, b []int32) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	for k := range a {
		if a[k] != b[k] {
			return a[k] < b[k]
		}
	}
	return false
}

// tree is an FP-tree in flat slices. Node 0 is the root. Children of a node
// form a singly linked sibling list; nodes holding the same item are chained
// through link, starting at head[item].
type tree struct {
	item    []int32
	count   []int
	parent  []int32
	child   []int32
	sibling []int32
	link    []int32
	head    []int32 // per item: first node, -1 when absent
	total   []int   // per item: summed count
	items   []int32 // items present, for resetting head/total cheaply
}

func newTree(nItems int) *tree {
	t := &tree{head: make([]int32, nItems), total: make([]int, nItems)}
	for i := range t.head {
		t.head[i] = -1
	}
	t.reset()
	return t
}

func (t *tree) reset() {
	for _, it := range t.items {
		t.head[it] = -1
		t.total[it] = 0
	}
	t.items = t.items[:0]
	t.item = append(t.item[:0], -1)
	t.count = append(t.count[:0], 0)
	t.parent = append(t.parent[:0], -1)
	t.child = append(t.child[:0], -1)
	t.sibling = append(t.sibling[:0], -1)
	t.link = append(t.link[:0], -1)
}

// insert adds a path of items (ascending rank) with a count.
func (t *tree) insert(path []int32, c int) {
	n := int32(0)
	for _, it := range path {
		ch := t.child[n]
		for ch >= 0 && t.item[ch] != it {
			ch = t.sibling[ch]
		}
		if ch < 0 {
			ch = int32(len(t.item))
			t.item = append(t.item, it)
			t.count = append(t.count, 0)
			t.parent = append(t.parent, n)
			t.child = append(t.child, -1)
			t.sibling = append(t.sibling, t.child[n])
			t.child[n] = ch
			if t.head[it] < 0 {
				t.items = append(t.items, it)
			}
			t.link = append(t.link, t.head[it])
			t.head[it] = ch
		}
		t.count[ch] += c
		t.total[it] += c
		n = ch
	}
}

type miner struct {
	minCount int
	maxLen   int
	nItems   int
	suffix   []int32 // items of the current conditional pattern
	trees    []*tree // reusable conditional tree per depth
	cnt      [][]int // per-depth conditional item counts
	path     []int32
	out      []Set
}

// mineItem emits suffix ∪ {it} and recurses into its conditional tree.
func (m *miner) mineItem(t *tree, it int32, depth int) {
	c := t.total[it]
	if c < m.minCount {
		return
	}
	m.suffix = append(m.suffix, it)
	defer func() { m.suffix = m.suffix[:len(m.suffix)-1] }()
	m.emit(m.suffix, c)
	if len(m.suffix) >= m.maxLen {
		return
	}
	for len(m.trees) <= depth {
		m.trees = append(m.trees, newTree(m.nItems))
		m.cnt = append(m.cnt, make([]int, m.nItems))
	}
	cnt := m.cnt[depth]
	// Pass 1: count items on the prefix paths of it (its conditional base).
	found := false
	for n := t.head[it]; n >= 0; n = t.link[n] {
		for p := t.parent[n]; p > 0; p = t.parent[p] {
			cnt[t.item[p]] += t.count[n]
			found = true
		}
	}
	if !found {
		return
	}
	// Pass 2: build the conditional tree from the frequent part of each path.
	ct := m.trees[depth]
	ct.reset()
	for n := t.head[it]; n >= 0; n = t.link[n] {
		m.path = m.path[:0]
		for p := t.parent[n]; p > 0; p = t.parent[p] {
			if cnt[t.item[p]] >= m.minCount {
				m.path = append(m.path, t.item[p])
			}
		}
		if len(m.path) == 0 {
			continue
		}
		// Parents come leaf first; the tree wants ascending rank.
		for i, j := 0, len(m.path)-1; i < j; i, j = i+1, j-1 {
			m.path[i], m.path[j] = m.path[j], m.path[i]
		}
		ct.insert(m.path, t.count[n])
	}
	for n := t.head[it]; n >= 0; n = t.link[n] {
		for p := t.parent[n]; p > 0; p = t.parent[p] {
			cnt[t.item[p]] = 0
		}
	}
	if len(ct.items) == 0 {
		return
	}
	items := append([]int32(nil), ct.items...)
	sort.Slice(items, func(i, j int) bool { return items[i] > items[j] })
	for _, x := range items {
		m.mineItem(ct, x, depth+1)
	}
}

func (m *miner) emit(items []int32, c int) {
	s := append([]int32(nil), items...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	m.out = append(m.out, Set{Items: s, Count: c})
}

// Decode turns rank-coded sets into named itemsets. Items within a set are
// listed in rank order (most frequent first).
func (e *Encoded) Decode(sets []Set) []Itemset {
	out := make([]Itemset, len(sets))
	for i, s := range sets {
		out[i] = Itemset{Items: e.names(s.Items), Count: s.Count, Support: float64(s.Count) / float64(e.N)}
	}
	return out
}

func (e *Encoded) names(ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = e.Names[id]
	}
	return out
}

func key(ids []int32) string {
	b := make([]byte, 0, 4*len(ids))
	for _, id := range ids {
		b = append(b, byte(id), byte(id>>8), byte(id>>16), byte(id>>24))
	}
	return string(b)
}

// Rules derives the rules with one consequent item from frequent sets whose
// length lies in [minLen, maxLen], keeping those with confidence ≥ minConf.
// The subsets needed for confidence are frequent too (downward closure), so
// their counts are at hand. Rules are sorted by confidence, lift, support,
// then text, descending.
func (e *Encoded) Rules(sets []Set, minConf float64, minLen, maxLen int) []Rule {
	if maxLen <= 0 {
		maxLen = 10
	}
	minLen = max(minLen, 1)
	count := make(map[string]int, len(sets))
	for _, s := range sets {
		count[key(s.Items)] = s.Count
	}
	n := float64(e.N)
	var rules []Rule
	ante := make([]int32, 0, 16)
	for _, s := range sets {
		k := len(s.Items)
		if k < minLen || k > maxLen {
			continue
		}
		for ci, c := range s.Items {
			ante = ante[:0]
			ante = append(ante, s.Items[:ci]...)
			ante = append(ante, s.Items[ci+1:]...)
			ac := e.N // the empty antecedent holds in every basket
			if len(ante) > 0 {
				ac = count[key(ante)]
			}
			conf := float64(s.Count) / float64(ac)
			// Relative slack so that a confidence equal to the threshold in
			// exact arithmetic (e.g. 68/170 = 0.4) is not lost to rounding.
			if conf < minConf*(1-1e-12) {
				continue
			}
			rules = append(rules, Rule{
				Antecedent: e.names(ante),
				Consequent: []string{e.Names[c]},
				Support:    float64(s.Count) / n,
				Confidence: conf,
				Lift:       conf / (float64(e.Counts[c]) / n),
				Count:      s.Count,
			})
		}
	}
	SortRules(rules)
	return rules
}

// SortRules orders rules by confidence, lift, support (descending) and text.
func SortRules(rules []Rule) {
	sort.SliceStable(rules, func(i, j int) bool {
		a, b := rules[i], rules[j]
		switch {
		case a.Confidence != b.Confidence:
			return a.Confidence > b.Confidence
		case a.Lift != b.Lift:
			return a.Lift > b.Lift
		case a.Support != b.Support:
			return a.Support > b.Support
		}
		return a.String() < b.String()
	})
}

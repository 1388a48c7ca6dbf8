package linkage_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/linkage"
)

// A small CRM-like set: the same people typed differently in different
// systems, with no shared identifier column.
func crmRecords() []linkage.Record {
	return []linkage.Record{
		{"name": "张伟", "phone": "13800138000", "birth_date": "1985-03-05", "city": "北京市", "address": "朝阳区 建国路 88号"},
		{"name": "张伟", "phone": "13800138001", "birth_date": "1985/3/5", "city": "北京", "address": "建国路88号 朝阳区"},
		{"name": "李娜", "phone": "13912345678", "birth_date": "1990-07-21", "city": "上海市", "address": "浦东新区 世纪大道 100号"},
		{"name": "王芳", "phone": "13700001111", "birth_date": "1978-11-02", "city": "广州市", "address": "天河区 体育西路 5号"},
		{"name": "Zhang Wei", "phone": "15011112222", "birth_date": "1962-01-30", "city": "Shenzhen", "address": "Futian Shennan Road 1"},
		{"name": "陈静", "phone": "13655556666", "birth_date": "1995-12-12", "city": "成都市", "address": "锦江区 春熙路 9号"},
		{"name": "陈静", "phone": "13655556666", "birth_date": "1995-12-12", "city": "成都", "address": "春熙路9号"},
		{"name": "刘洋", "phone": "18900001234", "birth_date": "1988-08-08", "city": "武汉市", "address": "江汉区 解放大道 20号"},
	}
}

func TestLinkFindsDuplicatesWithoutSharedIdentifier(t *testing.T) {
	recs := crmRecords()
	// Pad with distinct people so EM has non-matches to learn from.
	rng := rand.New(rand.NewPCG(1, 2))
	surnames := []string{"赵", "钱", "孙", "周", "吴", "郑", "冯", "褚", "卫", "蒋", "沈", "韩", "杨"}
	given := []string{"明", "华", "强", "丽", "军", "敏", "杰", "磊", "婷", "超", "霞", "鹏"}
	cities := []string{"南京市", "杭州市", "西安市", "重庆市", "天津市", "苏州市"}
	for i := range 300 {
		recs = append(recs, linkage.Record{
			"name":       surnames[rng.IntN(len(surnames))] + given[rng.IntN(len(given))] + given[rng.IntN(len(given))],
			"phone":      "1" + strings.Repeat("3", 2) + string(rune('0'+i%10)) + randomDigits(rng, 7),
			"birth_date": "19" + randomDigits(rng, 2) + "-0" + string(rune('1'+rng.IntN(9))) + "-1" + string(rune('0'+rng.IntN(9))),
			"city":       cities[rng.IntN(len(cities))],
			"address":    "路" + randomDigits(rng, 3) + "号",
		})
	}
	res, err := linkage.Link(recs, linkage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[[2]int]linkage.Decision{}
	for _, p := range res.Pairs {
		got[[2]int{p.A, p.B}] = p.Decision
	}
	if got[[2]int{5, 6}] != linkage.Match {
		t.Errorf("陈静 records 5 and 6 (same phone, date, city) not matched: %v", got[[2]int{5, 6}])
	}
	if d := got[[2]int{0, 1}]; d == "" {
		t.Errorf("张伟 records 0 and 1 (phone one digit off, same date and address words) neither match nor review")
	}
	if d, ok := got[[2]int{0, 4}]; ok {
		t.Errorf("张伟 and Zhang Wei share only a romanised name, got %v", d)
	}
	for _, p := range res.Pairs {
		if p.A >= 8 && p.Decision == linkage.Match {
			t.Errorf("random filler records %d and %d matched: %+v, %v / %v", p.A, p.B, p, recs[p.A], recs[p.B])
		}
	}
}

func randomDigits(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + rng.IntN(10))
	}
	return string(b)
}

func TestLinkRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]linkage.Config{
		"review above match": {MatchThreshold: 0.6, ReviewThreshold: 0.8},
		"match above 1":      {MatchThreshold: 1.5},
		"only ignored":       {Fields: []linkage.Field{{Name: "x", Kind: linkage.KindIgnore}}},
		"unknown kind":       {Fields: []linkage.Field{{Name: "x", Kind: linkage.Kind(99)}}},
	} {
		_, err := linkage.Link(crmRecords(), cfg)
		if portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: err = %v, want code invalid", name, err)
		}
	}
}

func TestLinkEmptyAndTiny(t *testing.T) {
	for _, recs := range [][]linkage.Record{nil, {{"name": "a"}}, {{"name": ""}, {"name": ""}}} {
		res, err := linkage.Link(recs, linkage.Config{Fields: []linkage.Field{{Name: "name", Kind: linkage.KindName}}})
		if err != nil {
			t.Fatalf("%v: %v", recs, err)
		}
		if len(res.Pairs) != 0 || len(res.Entities) != 0 {
			t.Errorf("%v: got pairs %v", recs, res.Pairs)
		}
	}
}

// The result must not depend on the order of the input: nothing keys on
// position, file or id.
func TestDatasetLinkIsOrderIndependent(t *testing.T) {
	recs, _ := loadFEBRL(t, "dataset1.csv")
	res1, err := linkage.Link(recs, linkage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	perm := rand.New(rand.NewPCG(7, 7)).Perm(len(recs))
	shuffled := make([]linkage.Record, len(recs))
	for i, p := range perm {
		shuffled[p] = recs[i] // record i moves to position p
	}
	res2, err := linkage.Link(shuffled, linkage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	canon := func(r linkage.Result, toOrig func(int) int) []string {
		var out []string
		for _, e := range r.Entities {
			ids := make([]int, len(e))
			for i, x := range e {
				ids[i] = toOrig(x)
			}
			slices.Sort(ids)
			out = append(out, fmt.Sprint(ids))
		}
		slices.Sort(out)
		return out
	}
	inv := make([]int, len(perm))
	for i, p := range perm {
		inv[p] = i
	}
	a := canon(res1, func(i int) int { return i })
	b := canon(res2, func(i int) int { return inv[i] })
	if !slices.Equal(a, b) {
		t.Errorf("entities differ after shuffling: %d vs %d groups", len(a), len(b))
	}
}

// Without the identifier and the birth date, names and addresses alone must
// still carry the linkage: the model is not leaning on one column.
func TestDatasetFEBRLWithoutIdentifierAndBirthDate(t *testing.T) {
	recs, labels := loadFEBRL(t, "dataset2.csv")
	for _, r := range recs {
		delete(r, "soc_sec_id")
		delete(r, "date_of_birth")
	}
	res, err := linkage.Link(recs, linkage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := linkage.Evaluate(res.EntityPairs(), labels)
	t.Logf("without soc_sec_id and date_of_birth: P=%.4f R=%.4f F1=%.4f", s.Precision, s.Recall, s.F1)
	if s.F1 < 0.95 {
		t.Errorf("F1 = %.4f, want ≥ 0.95", s.F1)
	}
}

func TestEvaluate(t *testing.T) {
	labels := []string{"1", "1", "1", "2", "2", ""}
	// True pairs: (0,1) (0,2) (1,2) (3,4) = 4.
	s := linkage.Evaluate([][2]int{{1, 0}, {0, 1}, {3, 4}, {2, 5}, {5, 5}}, labels)
	if s.TruePairs != 4 || s.PredictedPairs != 3 || s.CorrectPairs != 2 {
		t.Fatalf("got %+v", s)
	}
	if s.Precision != 2.0/3 || s.Recall != 0.5 {
		t.Errorf("precision %v recall %v", s.Precision, s.Recall)
	}
	if want := 2 * (2.0 / 3) * 0.5 / (2.0/3 + 0.5); math.Abs(s.F1-want) > 1e-12 {
		t.Errorf("F1 %v, want %v", s.F1, want)
	}
}

func BenchmarkLinkFEBRLDataset2(b *testing.B) {
	recs, _ := loadFEBRL(b, "dataset2.csv")
	b.ReportAllocs()
	var cand int
	for b.Loop() {
		res, err := linkage.Link(recs, linkage.Config{})
		if err != nil {
			b.Fatal(err)
		}
		cand = res.Candidates
	}
	n := float64(len(recs))
	b.ReportMetric(n*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cand)*float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
	// Blocking's share of all n(n-1)/2 pairs: the work saved against the
	// exhaustive baseline, measured in the same run.
	b.ReportMetric(float64(cand)/(n*(n-1)/2), "pair-ratio")
}

// Link must accept any values: pairs are in range, ordered, with
// probabilities in [0, 1] and decisions consistent with the thresholds.
func FuzzLink(f *testing.F) {
	f.Add("kayla harrington", "19150612", "maltby circuit", "kayla harringtom", "19151206", "circuit maltby")
	f.Add("张伟", "1985-03-05", "建国路88号", "张伟", "1985/3/5", "")
	f.Add("", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, n1, d1, a1, n2, d2, a2 string) {
		recs := []linkage.Record{
			{"name": n1, "dob": d1, "address": a1},
			{"name": n2, "dob": d2, "address": a2},
			{"name": n1 + n2, "dob": d2, "address": a1},
			{"name": n2, "dob": d1, "address": a2 + a1},
		}
		cfg := linkage.Config{MatchThreshold: 0.9, ReviewThreshold: 0.5}
		res, err := linkage.Link(recs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range res.Pairs {
			if p.A < 0 || p.A >= p.B || p.B >= len(recs) || p.Probability < cfg.ReviewThreshold || p.Probability > 1 ||
				(p.Decision == linkage.Match) != (p.Probability >= cfg.MatchThreshold) {
				t.Fatalf("bad pair %+v", p)
			}
		}
	})
}

func TestEvaluateClusters(t *testing.T) {
	labels := []string{"a", "a", "a", "b", "b", "c", "d", ""}
	for _, tc := range []struct {
		name     string
		entities [][]int
		exact    int
		p, r     float64
	}{
		{"all right", [][]int{{0, 1, 2}, {3, 4}}, 2, 1, 1},
		{"one record missing", [][]int{{0, 1}, {3, 4}}, 1, 0.5, 0.5},
		{"a stranger swallowed", [][]int{{0, 1, 2, 5}, {3, 4}}, 1, 0.5, 0.5},
		{"two people fused", [][]int{{0, 1, 2, 3, 4}}, 0, 0, 0},
		{"unlabelled records match nothing", [][]int{{6, 7}}, 0, 0, 0},
		{"nothing predicted", nil, 0, 1, 0},
	} {
		cs := linkage.EvaluateClusters(tc.entities, labels)
		if cs.TrueClusters != 2 || cs.ExactClusters != tc.exact || cs.Precision != tc.p || cs.Recall != tc.r {
			t.Errorf("%s: %+v, want %d exact, P %.2f R %.2f", tc.name, cs, tc.exact, tc.p, tc.r)
		}
	}
}

package search_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/search"
)

// BenchmarkSearch looks up 200,000 customers with common Chinese names by
// pinyin prefix, name prefix and phone. The baseline, in the same run, is
// the scan a search without an index makes: every profile's name and
// pinyin (precomputed) compared with the query.
func BenchmarkSearch(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	surnames := []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡"}
	given := []string{"芳", "伟", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "桂英", "建华"}
	const n = 200_000
	ix := search.NewIndex(normalize)
	type row struct{ name, py string }
	rows := make([]row, n)
	for i := 0; i < n; i++ {
		name := surnames[r.IntN(len(surnames))] + given[r.IntN(len(given))]
		p := &portrait.Profile{ID: fmt.Sprintf("p%06d", i), Traits: map[string]portrait.Trait{"name": {Value: name}},
			Identifiers: []portrait.Identifier{{Type: portrait.IDPhone, Value: fmt.Sprintf("+86139%08d", i)}, {Type: portrait.IDEmail, Value: fmt.Sprintf("c%06d@example.cn", i)}}}
		ix.Upsert(p)
		rows[i] = row{name, strings.ReplaceAll(clean.Pinyin(name), " ", "")}
	}
	for _, q := range []string{"zhangwei", "王芳", "wangjianhua", "139 0001 2345"} {
		b.Run("index/"+q, func(b *testing.B) {
			for b.Loop() {
				ix.Search(q, 20)
			}
		})
	}
	b.Run("baseline-scan/zhangwei", func(b *testing.B) {
		for b.Loop() {
			var hits []int
			for i := range rows {
				if strings.HasPrefix(rows[i].py, "zhangwei") || strings.HasPrefix(rows[i].name, "zhangwei") {
					hits = append(hits, i)
				}
			}
			_ = hits
		}
	})
}

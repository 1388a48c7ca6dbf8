package search_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/search"
)

func normalize(typ, v string) (string, bool) {
	switch typ {
	case portrait.IDPhone:
		out, err := clean.Phone(v, "CN")
		return out, err == nil
	case portrait.IDEmail:
		out, err := clean.Email(v)
		return out, err == nil
	}
	return v, true
}

func person(id, name, phone, email string, extra ...portrait.Identifier) *portrait.Profile {
	p := &portrait.Profile{ID: id, Traits: map[string]portrait.Trait{}}
	if name != "" {
		p.Traits["name"] = portrait.Trait{Value: name}
	}
	if phone != "" {
		p.Identifiers = append(p.Identifiers, portrait.Identifier{Type: portrait.IDPhone, Value: phone})
	}
	if email != "" {
		p.Identifiers = append(p.Identifiers, portrait.Identifier{Type: portrait.IDEmail, Value: email})
	}
	p.Identifiers = append(p.Identifiers, extra...)
	return p
}

func ids(hits []search.Hit) string {
	var out []string
	for _, h := range hits {
		out = append(out, h.ProfileID)
	}
	return strings.Join(out, ",")
}

func TestSearch(t *testing.T) {
	ix := search.NewIndex(normalize)
	ix.Upsert(person("zs", "张三", "+8613800138000", "zhang.san@example.cn", portrait.Identifier{Type: "crm_id", Value: "CRM-0042"}))
	ix.Upsert(person("zsf", "张三丰", "+8613900139000", ""))
	ix.Upsert(person("zw", "张伟", "", "zw@example.cn"))
	ix.Upsert(person("ls", "李四", "+8615000150000", "lisi@example.cn"))
	ix.Upsert(person("anna", "Anna Smith", "", "anna@example.com"))
	ix.Upsert(person("lv", "吕布", "", ""))
	ix.Upsert(person("anon", "", "", "", portrait.Identifier{Type: portrait.IDAnonymousID, Value: "anon-7f3a"}))
	// a common name: 30 王芳, told apart by their phones
	for i := 0; i < 30; i++ {
		ix.Upsert(person(fmt.Sprintf("wf%02d", i), "王芳", fmt.Sprintf("+861870000%04d", i), ""))
	}
	for _, c := range []struct {
		q, want, field string
		limit          int
	}{
		{"张三", "zs,zsf", "name", 10},   // exact name first, then the prefix
		{"张", "zs,zw,zsf", "name", 10}, // shorter names first
		{"zhangsan", "zs,zsf", "name_pinyin", 10},
		{"zhang san", "zs,zsf", "name_pinyin", 10},
		{"ZhangSan", "zs,zsf", "name_pinyin", 10},
		{"zs", "zs,zsf", "name_initials", 10}, // initials: 张三 exactly, 张三丰 by prefix
		{"zhang", "zs,zw,zsf", "name_pinyin", 10},
		{"lü", "", "", 10}, // 吕's pinyin is lv in the dictionary, ü is not typed
		{"lv", "lv", "name_pinyin", 10},
		{"138 0013 8000", "zs", "phone", 10},
		{"+86 138-0013-8000", "zs", "phone", 10},
		{"008613800138000", "zs", "phone", 10},
		{"13800138000", "zs", "phone", 10},
		{"1380013", "zs", "phone", 10}, // typed so far
		{"Zhang.San@EXAMPLE.cn", "zs", "email", 10},
		{"crm-0042", "zs", "crm_id", 10},
		{"anon-7f3a", "anon", "anonymous_id", 10},
		{"smith", "anna", "name", 10},
		{"anna", "anna", "name", 10},
		{"王芳", "wf00,wf01,wf02,wf03,wf04", "name", 5}, // a common name: all equal, by id, limited
		{"wangfang", "wf00,wf01,wf02", "name_pinyin", 3},
		{"+8618700000017", "wf17", "phone", 10}, // one 王芳 among thirty, by phone
		// the null case: nothing is the right answer
		{"欧阳娜娜", "", "", 10},
		{"xyzzy", "", "", 10},
		{"19999999999", "", "", 10},
		{"nobody@example.cn", "", "", 10},
		{"   ", "", "", 10},
	} {
		hits := ix.Search(c.q, c.limit)
		if got := ids(hits); got != c.want {
			t.Errorf("%q: %s, want %s", c.q, got, c.want)
			continue
		}
		if len(hits) > 0 && hits[0].Field != c.field {
			t.Errorf("%q: matched on %s (%s), want %s", c.q, hits[0].Field, hits[0].Value, c.field)
		}
	}
	if h := ix.Search("zhangsan", 1); h[0].Value != "zhang san" || !h[0].Exact {
		t.Errorf("pinyin hit %+v", h[0])
	}

	// a rename moves the keys; a merge removes the profile
	ix.Upsert(person("zs", "张珊", "+8613800138000", "zhang.san@example.cn"))
	if got := ids(ix.Search("张三", 10)); got != "zsf" {
		t.Errorf("after the rename 张三 finds %s", got)
	}
	if got := ids(ix.Search("crm-0042", 10)); got != "" {
		t.Errorf("a dropped identifier still finds %s", got)
	}
	ix.Remove("zsf")
	if got := ids(ix.Search("张三", 10)); got != "" {
		t.Errorf("a removed profile is still found: %s", got)
	}
	if ix.Len() != 36 {
		t.Errorf("Len %d", ix.Len())
	}
}

// Past the compaction threshold keys move into the sorted base: queries
// see the same profiles before and after, and removed keys are gone.
func TestSearchAcrossCompaction(t *testing.T) {
	ix := search.NewIndex(normalize)
	surnames := []string{"王", "李", "张", "刘", "陈"}
	given := []string{"芳", "伟", "娜", "敏", "静", "丽", "强", "磊"}
	n := 0
	for i := 0; i < 5000; i++ {
		name := surnames[i%5] + given[(i/5)%8]
		ix.Upsert(person(fmt.Sprintf("p%05d", i), name, fmt.Sprintf("+86139%08d", i), ""))
		if name == "李娜" {
			n++
		}
	}
	if got := len(ix.Search("lina", 10000)); got != n {
		t.Errorf("lina: %d, want %d", got, n)
	}
	for i := 0; i < 5000; i += 2 {
		ix.Remove(fmt.Sprintf("p%05d", i))
	}
	for i := 5000; i < 7000; i++ { // more fresh keys: another compaction
		ix.Upsert(person(fmt.Sprintf("p%05d", i), "欧阳修", fmt.Sprintf("+86139%08d", i), ""))
	}
	if got := ids(ix.Search("+8613900000002", 10)); got != "" {
		t.Errorf("a removed profile's phone finds %s", got)
	}
	if got := ids(ix.Search("13900000003", 10)); got != "p00003" {
		t.Errorf("a kept profile's phone finds %q", got)
	}
	if got := len(ix.Search("ouyang", 5000)); got != 2000 {
		t.Errorf("ouyang: %d, want 2000", got)
	}
}

// Queries run while the processor's hook updates and removes profiles
// (run with -race): every answer is one a consistent index could give.
func TestSearchWhileUpdating(t *testing.T) {
	ix := search.NewIndex(normalize)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 5000; i++ {
			id := fmt.Sprintf("p%05d", i%1000)
			if i%7 == 0 {
				ix.OnChange(nil, []string{id}, nil)
				continue
			}
			ix.OnChange([]*portrait.Profile{person(id, []string{"王芳", "李娜", "张伟"}[i%3], fmt.Sprintf("+86139%08d", i%1000), "")}, nil, nil)
		}
	}()
	for {
		select {
		case <-done:
			if n := len(ix.Search("王芳", 5000)) + len(ix.Search("李娜", 5000)) + len(ix.Search("张伟", 5000)); n != ix.Len() {
				t.Errorf("the three names find %d profiles, %d indexed", n, ix.Len())
			}
			return
		default:
			for _, h := range ix.Search("wangfang", 50) {
				if h.Field != search.FieldPinyin || h.Value != "wang fang" {
					t.Fatalf("wangfang found %+v", h)
				}
			}
		}
	}
}

// A profile changed by events or computed traits keeps its name and
// identifiers: re-indexing it makes no keys (no pinyin, no normalised
// forms), only the signature it is compared by. It runs on the processor's
// goroutine for every changed profile of every batch (issue 12 §5).
func TestUpsertUnchangedMakesNoKeys(t *testing.T) {
	ix := search.NewIndex(normalize)
	p := person("zs", "张三", "+8613800138000", "zhang.san@example.cn", portrait.Identifier{Type: "crm_id", Value: "CRM-0042"})
	ix.Upsert(p)
	p.Traits["purchase_count"] = portrait.Trait{Value: 3} // what a batch changes
	if n := testing.AllocsPerRun(100, func() { ix.Upsert(p) }); n > 1 {
		t.Errorf("re-indexing an unchanged profile made %.0f allocations, want at most 1 (its signature)", n)
	}
	// A changed name is still indexed.
	p.Traits["name"] = portrait.Trait{Value: "张三丰"}
	ix.Upsert(p)
	if got := ids(ix.Search("zhangsanfeng", 10)); got != "zs" {
		t.Errorf("after the rename, pinyin search finds %q, want zs", got)
	}
}

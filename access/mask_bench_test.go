package access_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/access"
)

// BenchmarkMaskMembers masks a page of 1,000 members (the default
// columns) for an analyst (internal): what every member list, preview and
// profile list pays.
func BenchmarkMaskMembers(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"members":[`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":"p_%06dabcdefgh","traits":{"name":"王芳%d","phone":"+86139%08d","email":"customer.%d@example.cn","gender":"female","province":"广东省","city":"深圳市","purchase_count":%d,"revenue":%d.5,"last_purchase_at":"2026-11-%02dT10:00:00Z","rfm_segment":"loyal","lifecycle_stage":"repeat"}}`, i, i, i, i, i%7, i*13, 1+i%28)
	}
	sb.WriteString(`],"next":"2","size":1000}`)
	doc := []byte(sb.String())
	c := &access.Classifier{}
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		m := &access.Masker{C: c, P: access.Principal{Role: access.RoleAnalyst, Clearance: access.Internal}}
		m.MaskJSON(doc)
	}
}

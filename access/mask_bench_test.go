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

// BenchmarkMaskNotes masks a page of 1,000 events whose properties carry
// free text, for an analyst (internal): notes quoting phones whole and
// with separators, dates, amounts and order numbers, which the free-text
// masker reads character by character.
func BenchmarkMaskNotes(b *testing.B) {
	notes := []string{
		"请联系13533334444，周末勿扰",
		"客户要求改约到 2026-12-06 下午，电话 139-1234-5678",
		"订单 SO-2026-1206-0001 金额 1,234,567.00 元已付",
		"call +86 139 1234 5678 or the office (010) 6552-1234",
		"退货原因：尺码偏小；快递单号 SF1234567890123",
	}
	var sb strings.Builder
	sb.WriteString(`{"events":[`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":"e_%06d","type":"track","name":"Order Completed","timestamp":"2026-11-%02dT10:00:00Z","properties":{"order_id":"SO-2026-%06d","revenue":%d.5,"note":%q}}`, i, 1+i%28, i, i*13, notes[i%len(notes)])
	}
	sb.WriteString(`],"next":"2"}`)
	doc := []byte(sb.String())
	c := &access.Classifier{}
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		m := &access.Masker{C: c, P: access.Principal{Role: access.RoleAnalyst, Clearance: access.Internal}}
		m.MaskJSON(doc)
	}
}

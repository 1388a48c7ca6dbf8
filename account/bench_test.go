package account_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/account"
)

// BenchmarkRank scores and sorts 10,000 accounts (the 100,000 figure is
// `portrait bench accounts`).
func BenchmarkRank(b *testing.B) {
	var s seq
	m := account.NewModel(func() time.Time { return t0 })
	for i := range 10_000 {
		g := fmt.Sprintf("b-%d", i)
		m.Apply(s.ev("group", "p"+g, g, "", t0, map[string]any{"name": g, "industry": []string{"I651", "C397", "F523"}[i%3], "employees": 10 + i%5000, "province": "上海市"}, nil))
		m.Apply(s.ev("identify", "p"+g, "", "", t0, map[string]any{"buying_role": account.Roles[i%4], "level": account.Levels[i%4]}, nil))
	}
	b.ResetTimer()
	for range b.N {
		if len(m.RankOnly()) != 10_000 {
			b.Fatal("lost accounts")
		}
	}
}

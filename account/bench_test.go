package account_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
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

// BenchmarkForgetCarried rewrites a carried-forward record of 10,000
// accounts and 20,000 people without one person (held: decoded, edited,
// encoded) and looks for one it does not hold (absent: a byte search),
// as an erasure does for each record in the log (docs/erasure.md).
func BenchmarkForgetCarried(b *testing.B) {
	var s seq
	m := account.NewModel(func() time.Time { return t0 })
	var evs []*portrait.Event
	for i := range 10_000 {
		g := fmt.Sprintf("b-%d", i)
		for _, p := range []string{"p" + g, "q" + g} {
			evs = append(evs, s.ev("group", p, g, "", t0, map[string]any{"name": g, "employees": 10 + i%5000}, nil))
			evs = append(evs, s.ev("identify", p, "", "", t0, map[string]any{"buying_role": account.Roles[i%4], "email": p + "@" + g + ".example.cn"}, nil))
		}
	}
	rec, err := m.CarryForward(evs, nil)
	if err != nil || len(rec) == 0 {
		b.Fatal(err)
	}
	b.Logf("record: %d bytes", len(rec))
	for _, c := range []struct{ name, user string }{{"held", "pb-4242"}, {"absent", "nobody-1"}} {
		b.Run(c.name, func(b *testing.B) {
			ids := []portrait.Identifier{{Type: portrait.IDUserID, Value: c.user}}
			for range b.N {
				if _, changed, err := account.ForgetCarried(rec, ids); err != nil || changed != (c.name == "held") {
					b.Fatal(changed, err)
				}
			}
		})
	}
}

package account_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/sqlite"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestForgetCost measures the CPU one erasure's forget takes in the
// accounts against the size of the log (SQLite), for the three kinds of
// people: one the accounts never held, a contact who only identified
// themselves (removed directly) and a member whose group calls and
// activities shaped an account (the rebuild), each against the start's
// forget (a rebuild from the whole log, whoever the person), alternated.
// PORTRAIT_FORGET_COST=10000,100000,1000000 runs it (docs/accounts.md).
func TestForgetCost(t *testing.T) {
	sizes := os.Getenv("PORTRAIT_FORGET_COST")
	if sizes == "" {
		t.Skip("PORTRAIT_FORGET_COST=10000,100000 measures the forget's cost")
	}
	ctx := context.Background()
	for _, f := range splitInts(sizes) {
		db, err := sqlite.Open(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		// 1 in 5 events says something about accounts: of 1,000 accounts
		// with 10 people each, identifies with a role or an email, group
		// calls and activities; the rest are page views.
		batch := make([]*portrait.Event, 0, 5000)
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < f; i++ {
			acct, kind, who := i%1000, (i/1000)%20, (i/20000)%10
			u := fmt.Sprintf("u-%d-%d", acct, who)
			e := &portrait.Event{MessageID: fmt.Sprintf("m%d", i), Source: "web", UserID: u, Timestamp: at.Add(time.Duration(i) * time.Second), Type: portrait.EventPage, Name: "Home"}
			switch kind {
			case 0:
				e.Type, e.GroupID = portrait.EventGroup, fmt.Sprintf("g%d", acct)
				e.Traits, _ = json.Marshal(map[string]any{"name": "Co " + e.GroupID, "domain": fmt.Sprintf("co%d.example.cn", acct)})
			case 1, 2:
				e.Type = portrait.EventIdentify
				e.Traits, _ = json.Marshal(map[string]any{"email": fmt.Sprintf("%s@co%d.example.cn", u, acct), "buying_role": account.Roles[i%4]})
			case 3:
				e.Type, e.Name = portrait.EventTrack, "Meeting Held"
			}
			if e.Type == portrait.EventGroup || e.Type == portrait.EventTrack {
				e.UserID = fmt.Sprintf("m-%d", acct) // the members: group calls, meetings
			}
			batch = append(batch, e)
			if len(batch) == cap(batch) || i == f-1 {
				if _, err := db.Append(ctx, batch, nil); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		svc := account.NewService(db, db, nil)
		if err := svc.Load(ctx); err != nil {
			t.Fatal(err)
		}
		id := func(u string) []portrait.Identifier {
			return []portrait.Identifier{{Type: portrait.IDUserID, Value: u}}
		}
		const rounds = 3
		var base, unknown, contact, member time.Duration
		for r := 0; r < rounds; r++ {
			c := cpuNow()
			// The start's forget: a rebuild from the whole log, then the checkpoint.
			if err := svc.Model.Rebuild(); err != nil {
				t.Fatal(err)
			}
			if err := svc.Save(ctx); err != nil {
				t.Fatal(err)
			}
			base += cpuNow() - c
			c = cpuNow()
			if err := svc.Forget(ctx, id(fmt.Sprintf("nobody-%d", r))); err != nil {
				t.Fatal(err)
			}
			unknown += cpuNow() - c
			c = cpuNow()
			if err := svc.Forget(ctx, id(fmt.Sprintf("u-%d-0", r))); err != nil {
				t.Fatal(err)
			}
			contact += cpuNow() - c
			c = cpuNow()
			if err := svc.Forget(ctx, id(fmt.Sprintf("m-%d", r))); err != nil {
				t.Fatal(err)
			}
			member += cpuNow() - c
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(rounds)/1e6) }
		t.Logf("%d events, %d accounts: start (rebuild) %s; now: unknown person %s, contact %s, member (rebuild) %s; direct %d, rebuilt %d",
			f, svc.Model.Len(), ms(base), ms(unknown), ms(contact), ms(member), svc.Forgotten.Load(), svc.Rebuilt.Load())
		db.Close()
	}
}

func splitInts(s string) []int {
	var out []int
	for _, x := range splitComma(s) {
		n, err := strconv.Atoi(x)
		if err == nil {
			out = append(out, n)
		}
	}
	return out
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

package account_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
)

// population generates n companies. Those of a hidden kind (software in
// Shanghai or Beijing, 300 people or more, with a decision-level contact)
// are "the best customers" with probability 0.8, the others with 0.01: the
// group is known, and mostly predictable from what the accounts hold.
func population(t testing.TB, n int) (*account.Model, []string) {
	var s seq
	rng := rand.New(rand.NewPCG(7, 11))
	m := newModel()
	var group []string
	industries := []string{"I651", "I642", "C397", "F523", "J662", "E471"}
	provinces := []string{"上海市", "北京市", "广东省", "四川省", "河南省"}
	for i := range n {
		g := fmt.Sprintf("acc-%05d", i)
		ind, prov := industries[rng.IntN(len(industries))], provinces[rng.IntN(len(provinces))]
		emp := 10 + rng.IntN(3000)
		m.Apply(s.ev("group", "p-"+g, g, "", t0, map[string]any{"name": g, "industry": ind, "employees": emp, "province": prov,
			"ownership": []string{"民营", "国有", "外资"}[rng.IntN(3)]}, nil))
		level := account.Levels[rng.IntN(4)]
		m.Apply(s.ev("identify", "p-"+g, "", "", t0, map[string]any{"buying_role": account.Roles[rng.IntN(4)], "level": level}, nil))
		kind := ind[0] == 'I' && (prov == "上海市" || prov == "北京市") && emp >= 300 && level == account.LevelDecision
		p := 0.01
		if kind {
			p = 0.8
		}
		if rng.Float64() < p {
			id, _ := m.Lookup(account.KeyGroup, g)
			group = append(group, id)
		}
	}
	return m, group
}

// Lookalike accounts, evaluated honestly: part of a known group is held
// out, the model is fitted on the rest, and the held-out members must rank
// high among every other account (AUC, precision at k = the held-out
// size, against the base rate). The null case, seeds drawn at random,
// must find nothing better than chance. The numbers are in docs/accounts.md.
func TestLookalikeAccountsHeldOut(t *testing.T) {
	m, group := population(t, 2000)
	l, err := m.Lookalike(account.LookalikeOptions{Seeds: group, Limit: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	lift := l.PrecisionAtK / l.BaseRate
	t.Logf("known group: seed %d (held out %d) of %d accounts, %d features: AUC %.3f, precision@%d %.2f (base %.3f, lift %.1f)",
		l.SeedSize, l.HeldOut, m.Len(), l.Features, l.AUC, l.HeldOut, l.PrecisionAtK, l.BaseRate, lift)
	if l.AUC < 0.7 || lift < 4 {
		t.Errorf("the known group is not found: AUC %.3f, lift %.1f", l.AUC, lift)
	}
	seeds := map[string]bool{}
	for _, id := range group {
		seeds[id] = true
	}
	if len(l.Accounts) != 50 {
		t.Fatalf("%d accounts, want 50", len(l.Accounts))
	}
	for i, a := range l.Accounts {
		if seeds[a.ID] {
			t.Errorf("seed %s returned", a.ID)
		}
		if i > 0 && a.Score > l.Accounts[i-1].Score {
			t.Errorf("not ranked: %v after %v", a.Score, l.Accounts[i-1].Score)
		}
		if len(a.Reasons) == 0 || a.Reasons[0].Text == "" || a.Reasons[0].LogOdds <= 0 {
			t.Errorf("%s without reasons: %+v", a.ID, a.Reasons)
		}
	}
	top := l.TopFeatures[0].Feature
	if !slices.Contains([]string{"industry_section=I", "decision_contact", "log_employees", "province=上海市", "province=北京市"}, top) {
		t.Errorf("top feature %s is none of what defines the group: %+v", top, l.TopFeatures)
	}

	// The null case: random seeds, five draws (one draw's 40 held-out
	// accounts are few: the mean says more).
	all := m.RankOnly()
	var aucs, lifts float64
	for draw := range 5 {
		rng := rand.New(rand.NewPCG(3, uint64(draw)))
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		null, err := m.Lookalike(account.LookalikeOptions{Seeds: all[:200], Seed: uint64(draw)})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("random seeds %d: seed %d (held out %d): AUC %.3f, precision@%d %.3f (base %.3f, lift %.2f)",
			draw, null.SeedSize, null.HeldOut, null.AUC, null.HeldOut, null.PrecisionAtK, null.BaseRate, null.PrecisionAtK/null.BaseRate)
		aucs += null.AUC / 5
		lifts += null.PrecisionAtK / null.BaseRate / 5
	}
	t.Logf("random seeds, mean of 5: AUC %.3f, lift %.2f", aucs, lifts)
	if aucs < 0.42 || aucs > 0.58 || lifts > 2 {
		t.Errorf("random seeds find something: mean AUC %.3f, lift %.2f", aucs, lifts)
	}

	// Bad seeds are refused with the reason.
	if _, err := m.Lookalike(account.LookalikeOptions{Seeds: group[:5]}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("5 seeds: %v", err)
	}
	if _, err := m.Lookalike(account.LookalikeOptions{Seeds: append(slices.Clone(group), "nope")}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("unknown seed: %v", err)
	}
}

// On the demo: the won accounts (the best current customers), whose
// outcome follows a hidden fit of industry and size.
func TestLookalikeDemoWonAccounts(t *testing.T) {
	m := demoModel(t, 300)
	won := m.WonAccounts()
	l, err := m.Lookalike(account.LookalikeOptions{Seeds: won, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("demo won accounts: seed %d (held out %d) of %d: AUC %.3f, precision@%d %.2f (base %.3f, lift %.1f); top %v",
		l.SeedSize, l.HeldOut, m.Len(), l.AUC, l.HeldOut, l.PrecisionAtK, l.BaseRate, l.PrecisionAtK/l.BaseRate, l.TopFeatures[:3])
	if l.AUC < 0.7 {
		t.Errorf("demo won accounts: AUC %.3f", l.AUC)
	}
}

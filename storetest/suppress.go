package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// KeyedSuppressStore is a SealStore whose suppression list is keyed with
// the data key.
type KeyedSuppressStore interface {
	SealStore
	RekeySuppressions(ctx context.Context) (int, error)
}

// KeyedSuppression (issue 15, docs/erasure.md): a person erased on a store
// without a data key is suppressed by the unkeyed SHA-256; once a key is
// configured the row is upgraded in place (once: a second run rewrites
// nothing) and no longer holds SHA-256 of the identifier, and the person
// stays suppressed; a person erased with the key is kept keyed; a
// rotation re-keys both under the new key, and with the old key removed
// both stay suppressed; throughout, an identifier never erased is not
// dropped.
func KeyedSuppression(t *testing.T, h SealHarness) {
	ctx := context.Background()
	lines := KeyLines(t, "k1", "k2")
	k1, k2 := lines[0], lines[1]
	phoneA, phoneB, phoneC := "13800138001", "13800138002", "13800138003"
	identify := func(msg, user, phone string, minute int) *portrait.Event {
		return SealEvent(msg, portrait.EventIdentify, user, "", minute, `{"phone":"`+phone+`"}`, "")
	}
	erase := func(e *sealEnv, user string) []string {
		t.Helper()
		p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: user})
		if err != nil {
			t.Fatal(err)
		}
		var unkeyed []string
		for _, id := range p.Identifiers {
			unkeyed = append(unkeyed, portrait.SuppressionHash(id))
		}
		svc := &erasure.Service{Proc: e.proc, Store: e.db, Suppressor: e.sup, Now: func() time.Time { return time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC) }}
		if err := e.sup.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Erase(ctx, p.ID, "test", "request"); err != nil {
			t.Fatal(err)
		}
		return unkeyed
	}
	// suppressed checks that events carrying the erased phones are
	// dropped and one carrying a phone never erased is not.
	suppressed := func(e *sealEnv, when string, msg string, phones ...string) {
		t.Helper()
		for i, ph := range phones {
			if res := e.send(t, identify(msg+"-erased-"+ph, "", ph, 20+i)); res.Suppressed != 1 {
				t.Errorf("%s: an event with the erased phone %s was not dropped: %+v", when, ph, res)
			}
		}
		if res := e.send(t, identify(msg+"-kept", "", phoneC, 30)); res.Suppressed != 0 {
			t.Errorf("%s: an event with a phone never erased was dropped: %+v", when, res)
		}
	}
	list := func(e *sealEnv) []*portrait.Suppression {
		t.Helper()
		l, err := e.db.Suppressions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	noneOf := func(when string, l []*portrait.Suppression, keyID string, unkeyed ...string) {
		t.Helper()
		for _, s := range l {
			if s.KeyID != keyID {
				t.Errorf("%s: a suppression under key %q, want %q", when, s.KeyID, keyID)
			}
			for _, u := range unkeyed {
				if s.Hash == u {
					t.Errorf("%s: the suppression list holds SHA-256 of an erased identifier (%s): a guessed phone number is confirmed by it", when, s.Type)
				}
			}
		}
	}

	// No key: erased, suppressed by the unkeyed hash (as before keys).
	e := openSealEnv(t, h, &datakey.Sealer{})
	e.send(t, identify("a1", "u-a", phoneA, 1), identify("c1", "u-c", phoneC, 2))
	e.catchUp(t)
	unkeyedA := erase(e, "u-a")
	l := list(e)
	if len(l) == 0 || l[0].KeyID != "" {
		t.Fatalf("without a key: %+v", l)
	}
	suppressed(e, "no key", "n", phoneA)
	e.close(t)

	// A key configured: upgraded in place, once.
	e = openSealEnv(t, h, &datakey.Sealer{Ring: Ring(t, k1), Levels: AllSecret{}})
	db := e.db.(KeyedSuppressStore)
	n, err := db.RekeySuppressions(ctx)
	if err != nil || n != len(l) {
		t.Fatalf("upgrade rewrote %d %v, want %d", n, err, len(l))
	}
	if n, err := db.RekeySuppressions(ctx); err != nil || n != 0 {
		t.Errorf("a second upgrade rewrote %d %v", n, err)
	}
	noneOf("upgraded", list(e), "k1", unkeyedA...)
	suppressed(e, "upgraded", "u", phoneA)

	// Erased with the key: keyed from the start.
	e.send(t, identify("b1", "u-b", phoneB, 3))
	e.catchUp(t)
	unkeyedB := erase(e, "u-b")
	noneOf("erased with a key", list(e), "k1", append(unkeyedA, unkeyedB...)...)
	suppressed(e, "erased with a key", "k", phoneA, phoneB)
	e.close(t)

	// Rotation to k2, then k1 removed: both stay suppressed.
	e = openSealEnv(t, h, &datakey.Sealer{Ring: Ring(t, k1, k2), Levels: AllSecret{}})
	r, err := e.db.Reseal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(list(e)); r.Suppressions != want || want < 2 {
		t.Errorf("the rotation re-keyed %d suppressions, want %d", r.Suppressions, want)
	}
	e.close(t)
	e = openSealEnv(t, h, &datakey.Sealer{Ring: Ring(t, k2), Levels: AllSecret{}})
	noneOf("rotated", list(e), "k2", append(unkeyedA, unkeyedB...)...)
	suppressed(e, "rotated", "r", phoneA, phoneB)
	e.close(t)

	// Without its key the list is refused, naming the key, rather than
	// silently letting erased people back.
	e = openSealEnv(t, h, &datakey.Sealer{})
	if err := e.sup.Load(ctx); err == nil || portrait.ErrorCode(err) != portrait.EUNAVAILABLE {
		t.Errorf("the keyed list loaded without a key: %v", err)
	}
	e.close(t)
}

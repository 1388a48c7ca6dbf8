package keyhash

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestPrefixIsAThirdAtMostTwelve(t *testing.T) {
	for secret, want := range map[string]string{"abcdefghi": "abc", "pat_abcdefghijklmnopqrstuvwxyz0123456789": "pat_abcdefgh"} {
		if got := Prefix(secret); got != want {
			t.Errorf("Prefix(%q) = %q, want %q", secret, got, want)
		}
	}
}

func TestCostFallsBackToTheDefault(t *testing.T) {
	if Cost(0) != bcrypt.DefaultCost || Cost(bcrypt.MinCost) != bcrypt.MinCost {
		t.Fatal(Cost(0), Cost(bcrypt.MinCost))
	}
	if d := Digest("secret"); len(d) != 64 {
		t.Fatal(d)
	}
}

func TestMatch(t *testing.T) {
	h, err := Hash("secret-one", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	rows := []Stored{{Hash: h}, {Hash: Digest("secret-two"), Legacy: true}, {Hash: Digest("secret-one")}}
	if i, up := Match("secret-one", rows, bcrypt.MinCost); i != 0 || up != "" {
		t.Errorf("bcrypt row: %d %q", i, up)
	}
	i, up := Match("secret-two", rows, bcrypt.MinCost)
	if i != 1 || bcrypt.CompareHashAndPassword([]byte(up), []byte(Digest("secret-two"))) != nil {
		t.Errorf("legacy row: %d, upgrade %q is not its bcrypt hash", i, up)
	}
	// A plain digest without the legacy mark is not a bcrypt hash: it opens nothing.
	if i, _ := Match("secret-three", append(rows, Stored{Hash: Digest("secret-three")}), bcrypt.MinCost); i != -1 {
		t.Errorf("unknown secret matched row %d", i)
	}
}

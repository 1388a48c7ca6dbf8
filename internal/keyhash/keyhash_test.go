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

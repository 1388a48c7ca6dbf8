package sqlite_test

import (
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/storetest"
)

func TestAuditChainDetectsTampering(t *testing.T) {
	storetest.AuditTampering(t, func(t *testing.T) (portrait.AuditLog, storetest.Raw) {
		db := openStore(t)
		return db, sqlite.RawForTest(db)
	})
}

// Writers recording at once through one store (the group commit gathers
// them into shared transactions) still make one chain.
func TestAuditChainConcurrentWriters(t *testing.T) {
	storetest.AuditConcurrentWriters(t, openStore(t))
}

func BenchmarkAuditedReads(b *testing.B) {
	storetest.BenchmarkAuditedReads(b, openStore(b))
}

// Records cut off the end, or a re-hashed chain, are found against an
// anchor (the head an earlier verify reported).
func TestAuditChainAnchored(t *testing.T) {
	storetest.AuditAnchor(t, func(t *testing.T) (portrait.AuditLog, storetest.Raw) {
		db := openStore(t)
		return db, sqlite.RawForTest(db)
	})
}

package postgres

import (
	"testing"

	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/storetest"
)

// TestStoreConformance holds the PostgreSQL store to the rules every
// profile.Store keeps (see storetest).
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) profile.Store { return openTest(t) })
}

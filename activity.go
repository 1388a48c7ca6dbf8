package portrait

import "time"

// SourceActivity is what one source (a write key, an import) has sent:
// events logged, the latest receipt, records quarantined.
type SourceActivity struct {
	Source    string
	Events    int64
	LastEvent time.Time // zero: none
	Rejected  int64
}

package portrait

import "time"

// ProbableDuplicate is a pair of profiles that hold identifiers of one
// person (the same phone and e-mail once cleaned, or the same national id)
// but that an identity rule, such as the limit of one user_id per profile,
// keeps apart: typically a customer entered again under another CRM id.
// Nothing merges them automatically; a person decides.
type ProbableDuplicate struct {
	AProfile string `json:"a_profile"`
	BProfile string `json:"b_profile"`
	// Shared are the identifiers through which the merge was refused.
	Shared []Identifier `json:"shared"`
	// Reason is the rule that refused it, as journalled.
	Reason    string    `json:"reason"`
	MessageID string    `json:"message_id"`
	EventSeq  int64     `json:"event_seq"`
	At        time.Time `json:"at"`
}

// DuplicateReport counts and lists probable duplicates (the list may be
// cut short; Count is the total).
type DuplicateReport struct {
	Count int                  `json:"count"`
	Pairs []*ProbableDuplicate `json:"pairs"`
}

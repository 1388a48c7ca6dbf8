package portrait

import "time"

// Recovery is something found wrong with the stored data when it was
// opened, and what was done about it. Recoveries are reported (logs,
// /readyz, `portrait rebuild`), never silent.
type Recovery struct {
	At      time.Time `json:"at"`
	Problem string    `json:"problem"`
	Action  string    `json:"action"`
	// MovedTo is where a damaged or inconsistent file was moved; it is
	// kept, never deleted, for whoever investigates.
	MovedTo string `json:"moved_to,omitempty"`
}

// Incapacity is something the running server cannot do now, and why
// (the disk is full, the store is damaged).
type Incapacity struct {
	Cannot string `json:"cannot"`
	Reason string `json:"reason"`
}

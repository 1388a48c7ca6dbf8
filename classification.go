package portrait

// Classification is a level (密级: public, internal, confidential, secret)
// set explicitly for a trait or an identifier type through the API. Both
// stores return it, so that callers do not depend on one of them.
type Classification struct {
	Kind  string `json:"kind"` // trait | identifier
	Name  string `json:"name"`
	Level string `json:"level"`
}

// Package clean standardizes and validates the values customers type into
// forms and CRMs: phone numbers, emails, free text and names, Chinese
// resident identity numbers, unified social credit codes, dates, provinces
// and cities; and fills missing values by declared rules.
//
// Every standardizer is a pure function returning (value, error). The error
// is a *portrait.Error with code EINVALID and a reason fit to show in a data
// quality report, so that a caller can leave the field unset and record why
// instead of dropping the record or storing garbage.
package clean

import (
	"github.com/portrait-cdp/portrait"
)

// invalid builds the error every standardizer returns for a value it
// rejects. The reason quotes the value (truncated) because a quality report
// without the offending value is hard to act on.
func invalid(field, raw, format string, args ...any) error {
	const max = 64
	if r := []rune(raw); len(r) > max {
		raw = string(r[:max]) + "…"
	}
	e := portrait.Errorf(portrait.EINVALID, "%s %q: "+format, append([]any{field, raw}, args...)...)
	e.Details = []portrait.ErrorDetail{{Field: field, Reason: e.Message}}
	return e
}

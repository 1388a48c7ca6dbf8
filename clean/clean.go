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
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// invalid builds the error every standardizer returns for a value it
// rejects: the message quotes the value (truncated), for whoever is shown
// the value anyway (a caller validating its own input); the detail's
// Reason is the rule alone, worded so that it names no part of the value
// (not the expected check character, not the region code or the birth
// date of an ID number, not an email's domain). What is kept beside data
// (trait issues, quarantine reasons, an import's counts, the context of an
// imported event) is made from the rule by Reason: a value may be secret,
// and free text is seen into by neither sealing nor masking.
func invalid(kind, raw, format string, args ...any) error {
	const max = 64
	if r := []rune(raw); len(r) > max {
		raw = string(r[:max]) + "…"
	}
	rule := fmt.Sprintf(format, args...)
	e := portrait.Errorf(portrait.EINVALID, "%s %q: %s", kind, raw, rule)
	e.Details = []portrait.ErrorDetail{{Field: kind, Reason: rule}}
	return e
}

// Invalid is the error of a value of kind refused by rule (a fixed text
// that names no part of the value), for checks made outside this package
// (the importer's numbers and times) so that Reason words them alike.
func Invalid(kind, raw, rule string) error { return invalid(kind, raw, "%s", rule) }

// Reason says why a value of the field name was refused without the value:
// "name (kind): rule" ("kind: rule" when name is the kind or empty). An
// error that did not come from a standardizer of this package says only
// that the value was refused: its message may quote the value.
func Reason(name string, err error) string {
	kind, rule, ok := ruleOf(err)
	if !ok {
		if name == "" {
			return "not a valid value"
		}
		return name + ": not a valid value"
	}
	if name == "" || name == kind {
		return kind + ": " + rule
	}
	return name + " (" + kind + "): " + rule
}

// ruleOf finds the kind and rule of an error made by invalid: its one
// detail names them, and its message is exactly kind, the quoted value
// and the rule (another error's detail may say anything).
func ruleOf(err error) (kind, rule string, ok bool) {
	var e *portrait.Error
	if !errors.As(err, &e) || len(e.Details) != 1 {
		return "", "", false
	}
	d := e.Details[0]
	rest, found := strings.CutPrefix(e.Message, d.Field+" ")
	if !found || d.Field == "" || d.Reason == "" {
		return "", "", false
	}
	q, qerr := strconv.QuotedPrefix(rest)
	if qerr != nil || rest[len(q):] != ": "+d.Reason {
		return "", "", false
	}
	return d.Field, d.Reason, true
}

package portrait

import (
	"errors"
	"fmt"
)

// Error codes. They are few on purpose: each maps to one HTTP status at the
// edge, and callers branch on the code, never on the message text.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	ETOOLARGE     = "too_large"
	EUNAVAILABLE  = "unavailable"
	EINTERNAL     = "internal"
)

// Error is the one error type of Portrait. Message is safe to show to a
// client; Err (the cause) is for logs only and never leaves the server.
type Error struct {
	Code    string
	Message string
	Details []ErrorDetail
	Err     error
}

// ErrorDetail points at one failing part of a request (a field, a batch index,
// a row and column of a file).
type ErrorDetail struct {
	Index  *int   `json:"index,omitempty"`
	Field  string `json:"field,omitempty"`
	Row    int    `json:"row,omitempty"`
	Column string `json:"column,omitempty"`
	// Code is a stable word for the reason (masked_value), for clients
	// that say it in their own language; Reason is the English.
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason"`
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an internal error that keeps err for the logs and shows the
// client only msg.
func Wrap(err error, msg string) *Error {
	return &Error{Code: EINTERNAL, Message: msg, Err: err}
}

// ErrorCode returns the code of err, EINTERNAL for foreign errors and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

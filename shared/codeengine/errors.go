package codeengine

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/errkind"
)

// Error is what Start and Status return.
type Error struct {
	// Op says what was being done, e.g. "create job run".
	Op string
	// Name is the job run name.
	Name string
	// StatusCode is the HTTP status of the last answer (from IAM when Auth is true); 0 when there
	// was none.
	StatusCode int
	// Auth is true when getting an IAM token failed.
	Auth bool
	// Transient is true when trying again later may succeed.
	Transient bool
	// Attempts is how many requests were made (0 when unknown: the budget ran out mid-request).
	Attempts int
	Err      error

	retryAfter time.Duration
}

func (e *Error) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "transient"
	}
	where := ""
	if e.Auth {
		where = " getting an IAM token"
	}
	if e.StatusCode != 0 {
		where += fmt.Sprintf(", status %d", e.StatusCode)
	}
	if e.Attempts > 0 {
		where += fmt.Sprintf(" after %d attempt(s)", e.Attempts)
	}
	return fmt.Sprintf("%s %s: %s error%s: %v", e.Op, e.Name, kind, where, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsTransient reports whether err (or an error it wraps) is a transient *Error. It is false for
// nil and for errors from elsewhere.
func IsTransient(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Transient
}

// TransientStatus reports whether an HTTP status is worth retrying later: 408, 429, 5xx but 501.
func TransientStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		(code >= 500 && code <= 599 && code != http.StatusNotImplemented)
}

// Kind is the error's kind in keyguard's vocabulary: transient; configuration when the
// credentials were refused (by IAM, or 401 / 403 from the API: an operator must act); invalid
// for a run refused before sending (it wraps events.ErrInvalid); permanent otherwise.
func (e *Error) Kind() errkind.Kind {
	switch {
	case e.Transient:
		return errkind.Transient
	case e.Auth, e.StatusCode == http.StatusUnauthorized, e.StatusCode == http.StatusForbidden:
		return errkind.Configuration
	case errors.Is(e.Err, events.ErrInvalid):
		return errkind.Invalid
	}
	return errkind.Permanent
}

// RetryAfter is how long the API asked to wait before trying again (its Retry-After), or 0.
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

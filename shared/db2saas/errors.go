package db2saas

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/errkind"
)

// Sentinels, matched with errors.Is.
var (
	// ErrBackupInProgress: the service refused a create because a backup of the instance is
	// running. Any HTTP 409 is read so (the status and body for this case are not documented).
	// It is transient: the running backup ends.
	ErrBackupInProgress = errors.New("a backup of the instance is already in progress")
	// ErrUnsupported: a request Db2 on Cloud cannot serve (incremental, delta or offline backup).
	ErrUnsupported = errors.New("not supported by Db2 on Cloud")
	// ErrUnknownDatabase: the executor has no instance CRN for the run's database.
	ErrUnknownDatabase = errors.New("no Db2 on Cloud instance configured for the database")
	// ErrMalformedResponse: a success answer whose body is not the documented shape.
	ErrMalformedResponse = errors.New("malformed response")
)

// Error is every error this package returns.
type Error struct {
	// Op says what was being done, e.g. "list backups".
	Op string
	// StatusCode is the HTTP status of the answer (from IAM when getting a token failed); 0
	// when there was none.
	StatusCode int
	// Class is events.Transient (try again later), events.Configuration (an operator must fix
	// the setup: a missing instance, refused credentials) or events.Permanent (trying again will
	// not help).
	Class events.FailureClass
	Err   error

	retryAfter time.Duration
}

func (e *Error) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("db2saas: %s: %s error, status %d: %v", e.Op, e.Class, e.StatusCode, e.Err)
	}
	return fmt.Sprintf("db2saas: %s: %s error: %v", e.Op, e.Class, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the failure class of err: the Class of the first *Error in its chain; transient
// for any other non-nil error (a context deadline, a network failure); "" for nil.
func ClassOf(err error) events.FailureClass {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Class.Valid() {
		return e.Class
	}
	return events.Transient
}

// IsTransient reports whether trying again later may succeed.
func IsTransient(err error) bool { return err != nil && ClassOf(err) == events.Transient }

// TransientStatus reports whether an HTTP status is worth retrying: 408, 429 and 5xx except 501.
func TransientStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		(code >= 500 && code <= 599 && code != http.StatusNotImplemented)
}

// statusClass classifies an HTTP error status. 409 is transient (a backup is in progress); 401
// and 403 are configuration (the credentials or their access are refused); every other 4xx is
// permanent.
func statusClass(code int) events.FailureClass {
	switch {
	case TransientStatus(code) || code == http.StatusConflict:
		return events.Transient
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return events.Configuration
	}
	return events.Permanent
}

func newError(op string, class events.FailureClass, err error) *Error {
	return &Error{Op: op, Class: class, Err: err}
}

// Kind is the error's kind in keyguard's vocabulary, from its class; a permanent error about an
// invalid run (wrapping events.ErrInvalid) is of kind invalid.
func (e *Error) Kind() errkind.Kind {
	switch {
	case e.Class == events.Transient, e.Class == events.Rotation:
		return errkind.Transient
	case e.Class == events.Configuration:
		return errkind.Configuration
	case errors.Is(e.Err, events.ErrInvalid):
		return errkind.Invalid
	}
	return errkind.Permanent
}

// RetryAfter is how long the service (or IAM) asked to wait before trying again (its
// Retry-After), or 0.
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

package keyprotect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	kp "github.com/IBM/keyprotect-go-client"

	"github.com/keyguard-dev/keyguard/shared/errkind"
)

// Class classifies an Error. Error.Kind says the same in keyguard's error vocabulary
// (shared/errkind).
type Class int

// Error classes.
const (
	// Permanent errors will fail again the same way; do not retry.
	Permanent Class = iota
	// Transient errors may succeed later: throttling, server errors, network, timeouts.
	Transient
	// NotFound means the key does not exist (404) or was deleted (410). It is permanent.
	NotFound
	// Configuration means the credentials or the setup were refused: IAM refused the API key or
	// trusted profile, Key Protect answered 401 or 403, or a key CRN names another instance. An
	// operator must act; retrying does not help.
	Configuration
	// Invalid means the request was refused before anything was sent: a malformed key
	// reference, a data key of the wrong size, no wrapped key.
	Invalid
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case NotFound:
		return "not found"
	case Configuration:
		return "configuration"
	case Invalid:
		return "invalid input"
	}
	return "permanent"
}

// Key Protect reason codes the package interprets.
const (
	ReasonRotationNotPermitted = "KEY_ROTATION_NOT_PERMITTED"
	ReasonKeyDeleted           = "KEY_DELETED_ERR"
	ReasonInvalidState         = "KEY_ACTION_INVALID_STATE_ERR"
)

// Error is what every Client method returns on failure.
type Error struct {
	// Op says what was being done, e.g. "get key metadata".
	Op string
	// KeyID is the key concerned (empty when the failure came before one was known).
	KeyID string
	// StatusCode is the HTTP status from Key Protect, or from IAM when getting a token failed;
	// 0 when there was no HTTP answer.
	StatusCode int
	// Reason is Key Protect's first reason code, e.g. KEY_ROTATION_NOT_PERMITTED.
	Reason string
	// Class classifies the error (Kind says it in errkind's terms).
	Class Class
	// Attempts is how many attempts were made.
	Attempts int
	Err      error

	retryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "keyprotect: %s", e.Op)
	if e.KeyID != "" {
		fmt.Fprintf(&b, " %s", e.KeyID)
	}
	fmt.Fprintf(&b, ": %s error", e.Class)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ", status %d", e.StatusCode)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, " %s", e.Reason)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Kind is the error's kind in keyguard's vocabulary (shared/errkind): transient, configuration,
// invalid, or permanent (NotFound included).
func (e *Error) Kind() errkind.Kind {
	switch e.Class {
	case Transient:
		return errkind.Transient
	case Configuration:
		return errkind.Configuration
	case Invalid:
		return errkind.Invalid
	}
	return errkind.Permanent
}

// RetryAfter is how long Key Protect asked to wait before trying again (its Retry-After), or 0.
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// IsTransient reports whether err is (or wraps) an *Error that may succeed if tried again later.
func IsTransient(err error) bool { return classOf(err) == Transient }

// IsNotFound reports whether err is (or wraps) an *Error saying the key does not exist or was
// deleted.
func IsNotFound(err error) bool { return classOf(err) == NotFound }

// IsRotationTooSoon reports whether err is Key Protect refusing a rotation because the key was
// rotated less than an hour ago. It is a permanent error: rotating again within the hour fails
// the same way. After a transient failure of Rotate, a retry can meet this error although the
// first attempt did rotate the key; Key's LastRotateDate tells.
func IsRotationTooSoon(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == ReasonRotationNotPermitted
}

func classOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return -1
}

// TransientStatus reports whether an HTTP status is worth retrying later.
func TransientStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		(code >= 500 && code <= 599 && code != http.StatusNotImplemented)
}

func classOfStatus(code int) Class {
	switch {
	case TransientStatus(code):
		return Transient
	case code == http.StatusNotFound || code == http.StatusGone:
		return NotFound
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return Configuration
	}
	return Permanent
}

// errSDKPanic marks a panic inside the SDK (it indexes the first resource of answers without
// checking there is one).
var errSDKPanic = errors.New("keyprotect-go-client panicked on the answer")

// errTokenWait marks giving up on a token fetch that outlived the budget.
var errTokenWait = errors.New("waiting for an IAM token")

// classify turns a failure of one attempt into an *Error.
func classify(op, keyID string, err error) *Error {
	e := &Error{Op: op, KeyID: keyID, Class: Permanent, Err: err}
	var kpErr *kp.Error
	var urlErr *kp.URLError
	var authErr *core.AuthenticationError
	var netErr net.Error
	switch {
	case errors.As(err, &kpErr):
		e.StatusCode = kpErr.StatusCode
		for _, r := range kpErr.Reasons {
			if c := strings.TrimSpace(r.Code); c != "" {
				e.Reason = c
				break
			}
		}
		e.Class = classOfStatus(e.StatusCode)
	case errors.As(err, &urlErr):
		// No HTTP answer: connection refused or reset, attempt timeout, budget spent.
		e.Class = Transient
	case errors.As(err, &authErr):
		// IAM answered (a refused API key is a 400) or could not be reached.
		e.Class = Transient
		if authErr.Response != nil && authErr.Response.StatusCode != 0 {
			e.StatusCode = authErr.Response.StatusCode
			if !TransientStatus(e.StatusCode) {
				e.Class = Configuration
			}
		}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, errTokenWait), errors.As(err, &netErr):
		e.Class = Transient
	}
	return e
}

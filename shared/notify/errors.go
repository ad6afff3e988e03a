package notify

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/IBM/go-sdk-core/v5/core"
)

// Error is what Send and SendEvent return.
type Error struct {
	// Op says what was being done, e.g. "send dev.keyguard.alert".
	Op string
	// ID is the notification id.
	ID string
	// StatusCode is the HTTP status from EN (or from IAM when getting a token failed); 0 when
	// there was no HTTP answer.
	StatusCode int
	// Transient is true when trying again later may succeed.
	Transient bool
	Err       error
}

func (e *Error) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "transient"
	}
	if e.StatusCode != 0 {
		return fmt.Sprintf("%s %s: %s error, status %d: %v", e.Op, e.ID, kind, e.StatusCode, e.Err)
	}
	return fmt.Sprintf("%s %s: %s error: %v", e.Op, e.ID, kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsTransient reports whether err (or an error it wraps) is a transient notify *Error: HTTP 408,
// 429 or 5xx except 501, a network failure or a timeout. It is false for nil and for errors
// from elsewhere.
func IsTransient(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Transient
}

// TransientStatus reports whether an HTTP status is worth retrying later.
func TransientStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		(code >= 500 && code <= 599 && code != http.StatusNotImplemented)
}

func permanent(op, id string, err error) *Error { return &Error{Op: op, ID: id, Err: err} }

// classify turns an SDK failure into an *Error. A failure with an HTTP answer is classified by
// its status; one without (connection refused, reset, timeout) is transient.
func classify(op, id string, resp *core.DetailedResponse, err error) *Error {
	code := 0
	if resp != nil {
		code = resp.StatusCode
	}
	if code == 0 {
		var authErr *core.AuthenticationError
		if errors.As(err, &authErr) && authErr.Response != nil {
			code = authErr.Response.StatusCode
		}
	}
	if code == 0 {
		return &Error{Op: op, ID: id, Transient: true, Err: err}
	}
	return &Error{Op: op, ID: id, StatusCode: code, Transient: TransientStatus(code), Err: err}
}

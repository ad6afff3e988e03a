package db2

import (
	"errors"
	"fmt"

	"github.com/keyguard-dev/keyguard/events"
)

// Error is a classified failure: a Db2 message found in command output, a refusal by the planner,
// or output this package does not recognise. Use errors.As to get at it, or ClassOf.
type Error struct {
	// Class says what the failure needs next (retry, hold for rotation, operator, give up).
	Class events.FailureClass
	// Code is the Db2 message identifier when Db2 printed one, e.g. SQL2413N; empty when the
	// failure is keyguard's own decision.
	Code string
	// Reason is keyguard's machine-readable cause (one of the Reason constants), empty when Code
	// says it all.
	Reason string
	// Msg is the human-readable text: Db2's message, or why the planner refused.
	Msg string
}

// Reasons keyguard gives for failures it decides itself.
const (
	ReasonInvalidRequest      = "invalid-request"
	ReasonUnrecognisedOutput  = "unrecognised-output"
	ReasonArchiveLoggingOff   = "archive-logging-off"
	ReasonTrackModOff         = "trackmod-off"
	ReasonApplications        = "applications-connected"
	ReasonInsufficientSpace   = "insufficient-space"
	ReasonRollforwardPending  = "rollforward-pending"
	ReasonRestorePending      = "restore-pending"
	ReasonVerificationFailed  = "verification-failed"
	ReasonTablespaceNotLogged = "tablespace-backup-needs-archive-logging"
)

// Error implements error: "db2 <class> <code or reason>: <msg>".
func (e *Error) Error() string {
	id := e.Code
	if id == "" {
		id = e.Reason
	}
	if id == "" {
		return fmt.Sprintf("db2 %s failure: %s", e.Class, e.Msg)
	}
	return fmt.Sprintf("db2 %s failure %s: %s", e.Class, id, e.Msg)
}

// Is reports whether target is an *Error naming the same Code or Reason (the fields target sets),
// so errors.Is(err, &db2.Error{Reason: db2.ReasonTrackModOff}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || (t.Code == "" && t.Reason == "") {
		return false
	}
	return (t.Code == "" || t.Code == e.Code) && (t.Reason == "" || t.Reason == e.Reason)
}

// ClassOf returns the failure class of err: the Class of the first *Error in its chain; transient
// for a cancelled or timed-out context and for any other error (a command that could not start
// is worth another try); "" for nil.
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

func unrecognised(what, format string, args ...any) *Error {
	return &Error{Class: events.Permanent, Reason: ReasonUnrecognisedOutput,
		Msg: what + ": " + fmt.Sprintf(format, args...)}
}

// outputError returns the classified *Error for the first Db2 error message in out, or nil when
// out carries none.
func outputError(out string) *Error {
	code, msg, ok := ParseSQLCode(out)
	if !ok || severity(code) == 'W' {
		return nil
	}
	return &Error{Class: classifyMessage(code, msg), Code: code, Msg: msg}
}

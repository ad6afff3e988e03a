package policy

import (
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// ApplyFailure records in st that run failed with class and message at now: the run is closed,
// the failure counted, the retry planned with backoff, and an alert queued when the count
// reaches the threshold, the failure is not retryable, or retries are used up. It is the one
// place failures are counted, whether they come from a backup.failed event, an expired lease or
// an executor that would not start.
func ApplyFailure(st *state.State, db config.Database, run state.Run, class events.FailureClass, msg string, now time.Time) {
	if st.Run != nil && st.Run.ID == run.ID {
		st.Run = nil
	}
	st.ConsecutiveFailures++
	st.LastFailure = &state.Outcome{RunID: run.ID, Type: run.Type, At: now, Class: class, Message: msg, KeyVersion: run.KeyVersion}
	retry, alert := RetryAfterFailure(db, run, class, st.ConsecutiveFailures, now)
	st.NextRetry = retry
	if !alert {
		return
	}
	next := "no automatic retry; the next scheduled slot tries again"
	if retry != nil {
		next = "next retry at " + retry.At.Format(time.RFC3339)
	}
	sev := events.Critical
	st.AddAlert(run.ID+"/alert", events.Alert{Severity: sev, Database: db.Name, KeyCRN: db.KeyCRN, Reason: "backup-failures",
		RunID: run.ID, Failures: st.ConsecutiveFailures,
		Message: fmt.Sprintf("%d consecutive backup failures of %s (%s, %s): %s; %s", st.ConsecutiveFailures, db.Name, run.Type, class, msg, next)})
}

// ApplySuccess records in st that run produced a good image: the run is closed, failures reset,
// a pending retry of the same or a lower type dropped, and a full backup clears NeedFull.
func ApplySuccess(st *state.State, run state.Run, image, keyVersion string, now time.Time) {
	if st.Run != nil && st.Run.ID == run.ID {
		st.Run = nil
	}
	st.ConsecutiveFailures = 0
	st.LastSuccess = &state.Outcome{RunID: run.ID, Type: run.Type, At: now, KeyVersion: keyVersion, Image: image}
	if st.NextRetry != nil && run.Type.Rank() <= st.NextRetry.Type.Rank() {
		st.NextRetry = nil
	}
	if run.Type == events.Full && (st.Window == nil) && (st.Key.Version == "" || keyVersion == "" || keyVersion == st.Key.Version) {
		st.NeedFull, st.NeedFullReason = false, ""
	}
}

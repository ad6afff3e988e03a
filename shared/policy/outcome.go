package policy

import (
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// MaxStartAttempts is how many failed starts of one run are tried (one per tick) before the run
// counts as failed.
const MaxStartAttempts = 3

// Completed applies a backup.completed (from the event, a run record or a probe). A success is
// accepted only for the run in flight or for the run whose lease expired last; any other run id
// changes nothing. changed is false when nothing was written.
func Completed(st *state.State, db config.Database, p events.BackupCompleted, now time.Time) (note string, changed bool) {
	switch {
	case st.Run != nil && st.Run.ID == p.RunID:
		run := *st.Run
		if run.Suspect && !p.Verified {
			ApplyFailure(st, db, run, events.Rotation, "a key rotation began during the run and the image was not verified", now)
			return "suspect run " + p.RunID + " not verified: counted as failed", true
		}
		ApplySuccess(st, run, p.ImageTimestamp, keyVersion(p, run), p.EndedAt)
		return "closed " + p.RunID + " (success)", true
	case st.LastExpired != nil && st.LastExpired.ID == p.RunID:
		run := *st.LastExpired
		st.LastExpired = nil
		if st.LastSuccess != nil && p.EndedAt.Before(st.LastSuccess.At) {
			return "late success of " + p.RunID + ": a newer success is recorded", true
		}
		ApplySuccess(st, run, p.ImageTimestamp, keyVersion(p, run), p.EndedAt)
		return "late success of " + p.RunID + " (its lease had expired): recorded, failures reset", true
	case st.LastSuccess != nil && st.LastSuccess.RunID == p.RunID:
		return "duplicate: " + p.RunID + " is already recorded", false
	}
	return "ignored: " + p.RunID + " is neither the run in flight nor the run whose lease expired last", false
}

func keyVersion(p events.BackupCompleted, run state.Run) string {
	if run.KeyVersion != "" {
		return run.KeyVersion // pinned at start
	}
	return p.KeyVersion
}

// Failed applies a backup.failed: only the run in flight can fail (an outcome of a run already
// closed, expired or superseded changes nothing). A failure that discarded an image Db2 had
// written makes the next backup a full.
func Failed(st *state.State, db config.Database, p events.BackupFailed, now time.Time) (note string, changed bool) {
	if st.Run == nil || st.Run.ID != p.RunID {
		return "failure of " + p.RunID + " ignored: run not in flight (already counted or superseded)", false
	}
	msg := p.Message
	if p.Code != "" {
		msg = p.Code + " " + msg
	}
	ApplyFailure(st, db, *st.Run, p.Class, msg, now)
	if p.DiscardedImage != "" {
		// Db2's history counts the image: its next incremental or delta would build on it.
		st.NeedFull, st.NeedFullReason = true, "image "+p.DiscardedImage+" was discarded after Db2 wrote it"
	}
	if st.NextRetry != nil {
		return fmt.Sprintf("closed %s (failed, %d in a row, retry at %s)", p.RunID, st.ConsecutiveFailures, st.NextRetry.At.UTC().Format("2006-01-02T15:04Z")), true
	}
	return fmt.Sprintf("closed %s (failed, %d in a row, no retry)", p.RunID, st.ConsecutiveFailures), true
}

// Started records that the executor accepted runID's start.
func Started(st *state.State, runID string) bool {
	if st.Run == nil || st.Run.ID != runID || st.Run.Started {
		return false
	}
	st.Run.Started, st.Run.StartError = true, ""
	return true
}

// StartFailed records that the executor refused or failed to start runID. A permanent error, or
// the MaxStartAttempts-th failure, closes the run as failed (the retry plan applies at once) and
// returns it to cancel, in case an ambiguous start did create it; otherwise the run stays in
// flight and the next tick asks again (starts are idempotent by run id, so an ambiguous error
// never makes a second backup of the slot).
func StartFailed(st *state.State, db config.Database, runID string, cause error, permanent bool, now time.Time) (cancel *state.Run, changed bool) {
	if st.Run == nil || st.Run.ID != runID || st.Run.Started {
		return nil, false
	}
	st.Run.StartAttempts++
	st.Run.StartError = state.Truncate(cause.Error(), state.MaxText)
	if !permanent && st.Run.StartAttempts < MaxStartAttempts {
		return nil, true
	}
	run := *st.Run
	ApplyFailure(st, db, run, events.Transient, fmt.Sprintf("executor did not start the run (%d attempt(s)): %v", run.StartAttempts, cause), now)
	return &run, true
}

// ApplyFailure records in st that run failed with class and message at now: the run is closed,
// the failure counted, the retry planned with backoff, and an alert queued when the count
// reaches the threshold, the failure is not retryable, or retries are used up. A rotation
// failure (Db2 could not reach its keys) reopens the rotation window when none is open. It is
// the one place failures are counted, whether they come from a backup.failed event, a run
// record, an expired lease or an executor that would not start.
func ApplyFailure(st *state.State, db config.Database, run state.Run, class events.FailureClass, msg string, now time.Time) {
	if st.Run != nil && st.Run.ID == run.ID {
		st.Run = nil
	}
	msg = state.Truncate(msg, state.MaxText)
	if class == events.Rotation && st.Window == nil {
		// Db2 could not reach its keys: they are being re-wrapped still (the window closed at its
		// maximum before Db2 finished) or again. The hold is reopened, as for a rotation to the
		// version the key has now; it closes once every registration reports that version, or at
		// its maximum, and the retry waits for it.
		minClose, maxClose := WindowBounds(db, now)
		st.Window = &state.RotationWindow{FromVersion: st.Key.Version, ToVersion: st.Key.Version, RotatedAt: st.Key.RotatedAt, OpenedAt: now,
			MinCloseAt: minClose, MaxCloseAt: maxClose, DetectedBy: "backup-failure"}
	}
	st.ConsecutiveFailures++
	st.LastFailure = &state.Outcome{RunID: run.ID, Type: run.Type, At: now, Class: class, Message: msg, KeyVersion: run.KeyVersion,
		RequestedBy: run.RequestedBy, Reason: run.Reason}
	retry, alert := RetryAfterFailure(db, run, class, st.ConsecutiveFailures, now)
	st.NextRetry = retry
	if !alert {
		return
	}
	next := "no automatic retry; the next scheduled slot tries again"
	if retry != nil {
		next = "next retry at " + retry.At.UTC().Format(time.RFC3339)
	}
	st.AddAlert(run.ID+"/alert", events.Alert{Severity: events.Critical, Database: db.Name, KeyCRN: db.KeyCRN, Reason: "backup-failures",
		RunID: run.ID, Failures: st.ConsecutiveFailures,
		Message: fmt.Sprintf("%d consecutive backup failures of %s (%s, %s): %s; %s", st.ConsecutiveFailures, db.Name, run.Type, class, msg, next)})
}

// ApplySuccess records in st that run produced a good image: the run is closed, failures reset,
// a pending retry of the same or a lower type dropped, and a full backup under the current key
// version clears NeedFull.
func ApplySuccess(st *state.State, run state.Run, image, keyVersion string, at time.Time) {
	if st.Run != nil && st.Run.ID == run.ID {
		st.Run = nil
	}
	st.ConsecutiveFailures = 0
	st.LastSuccess = &state.Outcome{RunID: run.ID, Type: run.Type, At: at, KeyVersion: keyVersion, Image: image,
		RequestedBy: run.RequestedBy, Reason: run.Reason}
	if st.NextRetry != nil && run.Type.Rank() <= st.NextRetry.Type.Rank() {
		st.NextRetry = nil
	}
	if run.Type == events.Full && st.Window == nil && (st.Key.Version == "" || keyVersion == "" || keyVersion == st.Key.Version) {
		st.NeedFull, st.NeedFullReason = false, ""
	}
}

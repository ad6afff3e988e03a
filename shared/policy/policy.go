package policy

import (
	"fmt"
	"math"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Action is what the scheduler should do for a database on this tick.
type Action string

// Actions.
const (
	Start Action = "start" // start a backup now
	Defer Action = "defer" // a backup is due but must wait; Reason says why
	Idle  Action = "idle"  // nothing is due
)

// Reasons for deferring. They are stable strings: operators and tests match on them.
const (
	ReasonRotationWindow  = "rotation window"
	ReasonRunInFlight     = "run in flight"
	ReasonBackoff         = "backoff"
	ReasonKeyNotActive    = "key not active"
	ReasonRestoreInFlight = "restore in flight"
	// ReasonKeyVersionUnknown: no Key Protect poll has answered yet, so the key version a backup
	// would record is not known.
	ReasonKeyVersionUnknown = "key version not known"
)

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	Type   events.BackupType
	Mode   events.Mode
	// Slot is the schedule slot the run takes (for a retry, the slot of the failed run).
	Slot time.Time
	// Covers lists, per type, the latest due slot this start consumes (a full covers the
	// incremental and delta slots due with it).
	Covers  map[events.BackupType]time.Time
	Attempt int
	Retry   bool
	Reason  string
}

// maxSlotSteps bounds the walk over a schedule inside the catch-up window.
const maxSlotSteps = 100000

// DueSlot returns the latest slot of sched in (last, now], looking back at most catchUp. ok is
// false when no slot is due.
func DueSlot(sched cron.Schedule, last, now time.Time, catchUp time.Duration) (time.Time, bool) {
	from := last
	if floor := now.Add(-catchUp); from.IsZero() || from.Before(floor) {
		from = floor
	}
	var due time.Time
	for i, t := 0, sched.Next(from); i < maxSlotSteps && !t.IsZero() && !t.After(now); i, t = i+1, sched.Next(t) {
		due = t
	}
	return due, !due.IsZero()
}

// Backoff returns the wait before retry number n (n >= 1 consecutive failures).
func Backoff(r config.RetryPolicy, n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := float64(r.Base) * math.Pow(r.Factor, float64(n-1))
	if d > float64(r.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		return r.Max
	}
	return time.Duration(d)
}

// RetryAfterFailure plans what follows a failure: the retry (nil when none) and whether to alert.
// failures counts consecutive failures including this one.
func RetryAfterFailure(db config.Database, run state.Run, class events.FailureClass, failures int, now time.Time) (*state.Retry, bool) {
	alert := failures == db.AlertThreshold || !class.Retryable()
	if !class.Retryable() || failures >= db.Retry.MaxAttempts {
		return nil, alert || failures >= db.Retry.MaxAttempts
	}
	return &state.Retry{At: now.Add(Backoff(db.Retry, failures)), Type: run.Type, Slot: run.Slot, Attempt: run.Attempt + 1}, alert
}

// WindowBounds returns the earliest and latest close of a rotation window opened at now.
func WindowBounds(db config.Database, now time.Time) (minClose, maxClose time.Time) {
	return now.Add(db.Rotation.Settle), now.Add(db.MaxWindow())
}

// CloseWindow says whether an open window closes now: when re-wrap is confirmed and the settle
// time has passed, or at the maximum regardless. confirmed in the result is false when the window
// closed at its maximum without confirmation.
func CloseWindow(w state.RotationWindow, rewrapped bool, now time.Time) (closeNow, confirmed bool) {
	if rewrapped && !now.Before(w.MinCloseAt) {
		return true, true
	}
	if !now.Before(w.MaxCloseAt) {
		return true, rewrapped
	}
	return false, false
}

// Decide chooses the schedule's action for one database at time now: the highest-ranked due
// slot or due retry, as a full when the chain needs one, held back by Hold or the backoff. It
// never changes s.
func Decide(s *state.State, db config.Database, now time.Time) Decision {
	due := dueTypes(s, db, now)
	retryDue := s.NextRetry != nil && !now.Before(s.NextRetry.At)
	if len(due) == 0 && !retryDue {
		if s.NextRetry != nil {
			return Decision{Action: Idle, Reason: fmt.Sprintf("retry of %s at %s", s.NextRetry.Type, s.NextRetry.At.Format(time.RFC3339))}
		}
		return Decision{Action: Idle, Reason: "nothing due"}
	}
	d := Decision{Action: Start, Mode: db.Mode, Covers: map[events.BackupType]time.Time{}, Attempt: 1}
	// Pick the highest-ranked due type; a due retry competes with the scheduled slots.
	best := events.BackupType("")
	for t := range due {
		if best == "" || t.Rank() < best.Rank() {
			best = t
		}
	}
	if retryDue && (best == "" || s.NextRetry.Type.Rank() <= best.Rank()) {
		d.Type, d.Slot, d.Attempt, d.Retry = s.NextRetry.Type, s.NextRetry.Slot, s.NextRetry.Attempt, true
		d.Reason = fmt.Sprintf("retry %d of %s", s.NextRetry.Attempt-1, s.NextRetry.Type)
	} else {
		d.Type, d.Slot = best, due[best]
		d.Reason = fmt.Sprintf("%s slot %s", best, d.Slot.Format(time.RFC3339))
	}
	for t, slot := range due {
		// A table space slot is covered only by a table space run: its chains are its own.
		if t.Rank() >= d.Type.Rank() && (t != events.Tablespace || d.Type == events.Tablespace) {
			d.Covers[t] = slot
		}
	}
	if d.Type != events.Full && (s.NeedFull || s.LastSuccess == nil) {
		d.Reason += fmt.Sprintf(", taken as full (%s)", needFullWhy(s))
		d.Type = events.Full
		for t, slot := range due {
			d.Covers[t] = slot
		}
	}
	// Holds, in order of precedence. A deferred slot stays due and runs when the hold ends.
	if reason, held := Hold(s); held {
		return deferred(d, reason)
	}
	if s.NextRetry != nil && !retryDue {
		return deferred(d, fmt.Sprintf("%s (retry of %s at %s)", ReasonBackoff, s.NextRetry.Type, s.NextRetry.At.UTC().Format(time.RFC3339)))
	}
	return d
}

func deferred(d Decision, reason string) Decision {
	return Decision{Action: Defer, Type: d.Type, Mode: d.Mode, Slot: d.Slot, Reason: reason}
}

// dueTypes returns each type whose schedule has a slot due that has not been taken.
func dueTypes(s *state.State, db config.Database, now time.Time) map[events.BackupType]time.Time {
	due := map[events.BackupType]time.Time{}
	for _, t := range []events.BackupType{events.Full, events.Incremental, events.Delta, events.Tablespace} {
		sched, ok := db.Schedule(t)
		if !ok {
			continue
		}
		if slot, ok := DueSlot(sched, s.Slots[t], now, db.CatchUp); ok {
			due[t] = slot
		}
	}
	return due
}

// RunID names a run deterministically, so a repeated start of the same slot and attempt is
// recognisable.
func RunID(db string, t events.BackupType, slot time.Time, attempt int) string {
	return fmt.Sprintf("%s-%s-%s-a%d", db, t, slot.UTC().Format("20060102T150405Z"), attempt)
}

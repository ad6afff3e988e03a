package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/outbox"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Executor starts backups. Start must be idempotent by RunID: starting a run it already knows is
// a no-op. It returns quickly; the outcome arrives later as backup.completed / backup.failed.
type Executor interface {
	Start(ctx context.Context, run events.BackupStarted) error
}

// Sender publishes keyguard events (backup.started, rotation.settled, alert). Safe to repeat.
type Sender interface {
	Send(ctx context.Context, id string, p events.Payload) error
}

// FleetSource returns the current fleet policy.
type FleetSource interface {
	Fleet(ctx context.Context) (*config.Fleet, error)
}

// RewrapChecker tells whether every registered resource of a key reports the given key version
// (Db2 has re-wrapped). A nil RewrapChecker means "never confirmed": windows close at their maximum.
type RewrapChecker interface {
	Rewrapped(ctx context.Context, keyCRN, version string) (bool, error)
}

// Scheduler handles ticks.
type Scheduler struct {
	Store    state.Store
	Fleet    FleetSource
	Exec     Executor
	ExecName string
	Send     Sender
	Rewrap   RewrapChecker
	Clock    clock.Clock
	Log      *slog.Logger
}

// DBReport is what one tick did for one database.
type DBReport struct {
	Database string
	Action   policy.Action
	Type     events.BackupType
	RunID    string
	Reason   string
	Notes    []string // reconciliation done on this tick (lease expired, window closed)
}

// Handle treats any authenticated, well-formed event that reaches the tick route as a tick.
func (s *Scheduler) Handle(ctx context.Context, e events.Event) (edge.Result, error) {
	if e.Type != events.TypeTick && e.Type != events.TypeKnativePing {
		s.log().Info("tick route got a non-standard type; treating it as a tick", "type", e.Type, "id", e.ID)
	}
	reports, err := s.Tick(ctx)
	var parts []string
	for _, r := range reports {
		parts = append(parts, fmt.Sprintf("%s: %s %s", r.Database, r.Action, r.Reason))
	}
	if err != nil {
		return edge.Result{}, err
	}
	return edge.Result{Outcome: "ticked", Detail: strings.Join(parts, "; ")}, nil
}

// Tick reconciles and decides for every database. Errors for one database do not stop the
// others; they are joined in the returned error.
func (s *Scheduler) Tick(ctx context.Context) ([]DBReport, error) {
	fleet, err := s.Fleet.Fleet(ctx)
	if err != nil {
		return nil, fmt.Errorf("load fleet: %w", err)
	}
	var errs []error
	var out []DBReport
	for _, db := range fleet.Databases {
		r, err := s.tickOne(ctx, db)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", db.Name, err))
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// pendingEvent is an event decided inside the CAS and sent after it.
type pendingEvent struct {
	id string
	p  events.Payload
}

func (s *Scheduler) tickOne(ctx context.Context, db config.Database) (DBReport, error) {
	now := clock.Or(s.Clock).Now()
	rep := DBReport{Database: db.Name}
	rewrapped := false
	if s.Rewrap != nil {
		if st, _, err := s.Store.Get(ctx, db.Name); err == nil && st.Window != nil {
			ok, err := s.Rewrap.Rewrapped(ctx, db.KeyCRN, st.Window.ToVersion)
			if err != nil {
				s.log().Warn("re-wrap check failed; window stays open", "db", db.Name, "err", err)
			}
			rewrapped = ok && err == nil
		}
	}
	var d policy.Decision
	var toSend []pendingEvent
	st, err := state.Update(ctx, s.Store, db.Name, func() *state.State { return state.New(db.Name, db.KeyCRN) },
		func(st *state.State) error {
			rep.Notes, toSend = nil, nil
			changed := false
			if st.Key.CRN != db.KeyCRN {
				st.Key = state.KeyInfo{CRN: db.KeyCRN}
				st.NeedFull, st.NeedFullReason = true, "key changed in the fleet policy"
				changed = true
			}
			// Reconcile: a run past its lease is lost.
			if st.Run != nil && now.After(st.Run.LeaseUntil) {
				run := *st.Run
				policy.ApplyFailure(st, db, run, events.Transient, "no outcome within the lease", now)
				rep.Notes = append(rep.Notes, "lease expired for "+run.ID)
				changed = true
			}
			// Reconcile: a rotation window that may close.
			if w := st.Window; w != nil {
				if closeNow, confirmed := policy.CloseWindow(*w, rewrapped, now); closeNow {
					st.Window = nil
					if w.ToVersion != "" {
						st.Key.Version = w.ToVersion
					}
					st.NeedFull, st.NeedFullReason = true, "first backup under key version "+w.ToVersion
					reason := "re-wrap confirmed by every registration"
					if !confirmed {
						reason = "maximum window reached without re-wrap confirmation"
						st.AddAlert(db.Name+"/window/"+w.ToVersion, events.Alert{Severity: events.Warning, Database: db.Name, KeyCRN: db.KeyCRN,
							Reason: "rewrap-unconfirmed", Message: fmt.Sprintf("rotation window for key version %s closed after %s without confirmation that Db2 re-wrapped its keys", w.ToVersion, now.Sub(w.OpenedAt).Round(time.Minute))})
					}
					toSend = append(toSend, pendingEvent{db.Name + "/settled/" + w.ToVersion, events.RotationSettled{Database: db.Name, KeyCRN: db.KeyCRN,
						KeyVersion: w.ToVersion, OpenedAt: w.OpenedAt, ClosedAt: now, Confirmed: confirmed, Reason: reason}})
					rep.Notes = append(rep.Notes, "rotation window closed: "+reason)
					changed = true
				}
			}
			d = policy.Decide(st, db, now)
			switch d.Action {
			case policy.Start:
				runID := policy.RunID(db.Name, d.Type, d.Slot, d.Attempt)
				st.Run = &state.Run{ID: runID, Type: d.Type, Mode: d.Mode, Slot: d.Slot, Attempt: d.Attempt,
					StartedAt: now, LeaseUntil: now.Add(db.Lease), KeyVersion: st.Key.Version}
				if st.Slots == nil {
					st.Slots = map[events.BackupType]time.Time{}
				}
				for t, slot := range d.Covers {
					if slot.After(st.Slots[t]) {
						st.Slots[t] = slot
					}
				}
				if st.NextRetry != nil && (d.Retry || d.Type.Rank() <= st.NextRetry.Type.Rank()) {
					st.NextRetry = nil
				}
				changed = true
			case policy.Defer:
				changed = true
			}
			if !changed && st.LastDecision != nil && st.LastDecision.Action == string(d.Action) && st.LastDecision.Reason == d.Reason {
				return state.ErrNoChange
			}
			if d.Action != policy.Idle || changed || st.LastDecision == nil || st.LastDecision.Reason != d.Reason {
				st.LastDecision = &state.Decision{At: now, Action: string(d.Action), Type: d.Type, Reason: d.Reason}
			}
			return nil
		})
	if err != nil && !errors.Is(err, state.ErrNoChange) {
		return rep, fmt.Errorf("update state: %w", err)
	}
	rep.Action, rep.Type, rep.Reason = d.Action, d.Type, d.Reason
	var errs []error
	if d.Action == policy.Start && st != nil && st.Run != nil {
		rep.RunID = st.Run.ID
		started := events.BackupStarted{Database: db.Name, RunID: st.Run.ID, Type: st.Run.Type, Mode: st.Run.Mode, Slot: st.Run.Slot,
			StartedAt: st.Run.StartedAt, LeaseUntil: st.Run.LeaseUntil, KeyCRN: db.KeyCRN, KeyVersion: st.Run.KeyVersion, Executor: s.ExecName}
		if err := s.Exec.Start(ctx, started); err != nil {
			errs = append(errs, s.startFailed(ctx, db, *st.Run, err))
		} else {
			toSend = append(toSend, pendingEvent{st.Run.ID + "/started", started})
		}
	}
	s.log().Info("decision", "db", db.Name, "action", d.Action, "type", d.Type, "reason", d.Reason, "run", rep.RunID, "notes", rep.Notes)
	for _, ev := range toSend {
		if err := s.Send.Send(ctx, ev.id, ev.p); err != nil {
			// Informational events: the state already holds the truth; log and go on.
			s.log().Warn("send event", "db", db.Name, "type", ev.p.EventType(), "err", err)
		}
	}
	if _, err := outbox.Flush(ctx, s.Store, s.Send, st); err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

// startFailed records that the executor refused or failed to start the run, so the retry plan
// applies at once instead of after the lease.
func (s *Scheduler) startFailed(ctx context.Context, db config.Database, run state.Run, cause error) error {
	now := clock.Or(s.Clock).Now()
	_, err := state.Update(ctx, s.Store, db.Name, func() *state.State { return state.New(db.Name, db.KeyCRN) },
		func(st *state.State) error {
			if st.Run == nil || st.Run.ID != run.ID {
				return state.ErrNoChange
			}
			policy.ApplyFailure(st, db, run, events.Transient, "executor did not start the run: "+cause.Error(), now)
			return nil
		})
	if err != nil && !errors.Is(err, state.ErrNoChange) {
		return fmt.Errorf("start %s: %v; and recording it: %w", run.ID, cause, err)
	}
	return fmt.Errorf("start %s: %w", run.ID, cause)
}

func (s *Scheduler) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// SortReports orders reports by database name (for stable output).
func SortReports(r []DBReport) {
	sort.Slice(r, func(i, j int) bool { return r[i].Database < r[j].Database })
}

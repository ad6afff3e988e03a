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
	"github.com/keyguard-dev/keyguard/shared/catalog"
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

// Prober is implemented by executors that learn a run's outcome by asking (Db2 on Cloud lists
// its backups; a Code Engine job run has a status). Probe returns nil while the run is still
// going, else a *BackupCompleted or *BackupFailed (or the value types) to publish.
type Prober interface {
	Probe(ctx context.Context, run events.BackupStarted) (events.Payload, error)
}

// Canceler is implemented by executors that can stop a run (a Code Engine job run, a child
// process, the simulated Db2). The scheduler cancels a run whose lease expired before the retry
// plan can start another, so a lost run never backs up beside its retry. Safe to call twice.
type Canceler interface {
	Cancel(ctx context.Context, run events.BackupStarted) error
}

// KeyStatus is what Key Protect says of a root key now.
type KeyStatus struct {
	Version   string
	State     events.KeyState
	RotatedAt time.Time
}

// Registration is a resource registered to a key, with the key version it reports.
type Registration struct {
	ResourceCRN string
	KeyVersion  string
}

// Keys reads root keys from Key Protect. A nil Keys disables polling: rotations then come only as
// key.rotated events and windows close at their maximum.
type Keys interface {
	// Key is one metadata call.
	Key(ctx context.Context, keyCRN string) (KeyStatus, error)
	// Registrations lists the resources registered to the key.
	Registrations(ctx context.Context, keyCRN string) ([]Registration, error)
}

// Scheduler handles ticks.
type Scheduler struct {
	Store state.Store
	Fleet FleetSource
	// Execs maps a fleet executor name (config.ExecSimulated, ...) to its executor.
	Execs map[string]Executor
	Send  Sender
	Keys  Keys
	// Catalog, when set, lets a destroyed key's alert name the backups it made unrestorable.
	Catalog Catalog
	Clock   clock.Clock
	Log     *slog.Logger
}

// Catalog lists a database's cataloged images.
type Catalog interface {
	List(ctx context.Context, db string) ([]catalog.Entry, error)
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
	keys := map[string]*keyPoll{}
	for _, crn := range fleet.KeyCRNs() {
		keys[crn] = s.pollKey(ctx, crn)
	}
	for _, db := range fleet.Databases {
		r, err := s.tickOne(ctx, fleet, db, keys[db.KeyCRN])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", db.Name, err))
		}
		out = append(out, r)
	}
	for _, crn := range fleet.KeyCRNs() {
		note, err := s.managedRotation(ctx, fleet, crn, keys[crn])
		if err != nil {
			errs = append(errs, err)
		}
		if note != "" {
			s.log().Info("managed rotation", "key", crn, "note", note)
		}
	}
	return out, errors.Join(errs...)
}

// pendingEvent is an event decided inside the CAS and sent after it.
type pendingEvent struct {
	id string
	p  events.Payload
}

func (s *Scheduler) tickOne(ctx context.Context, fleet *config.Fleet, db config.Database, kp *keyPoll) (DBReport, error) {
	now := clock.Or(s.Clock).Now()
	rep := DBReport{Database: db.Name}
	rewrapped := false
	var probe events.Payload
	if cur, _, err := s.Store.Get(ctx, db.Name); err == nil {
		if cur.Window != nil && kp != nil {
			rewrapped = s.rewrapped(ctx, fleet, db, kp, cur.Window.ToVersion)
		}
		if cur.Run != nil {
			probe = s.probe(ctx, db, cur)
		}
	}
	var d policy.Decision
	var toSend []pendingEvent
	var destroyed bool
	var expired *state.Run
	st, err := state.Update(ctx, s.Store, db.Name, func() *state.State { return state.New(db.Name, db.KeyCRN) },
		func(st *state.State) error {
			rep.Notes, toSend, destroyed, expired = nil, nil, false, nil
			changed := false
			if st.Key.CRN != db.KeyCRN {
				st.Key = state.KeyInfo{CRN: db.KeyCRN}
				st.NeedFull, st.NeedFullReason = true, "key changed in the fleet policy"
				changed = true
			}
			// Key Protect: state, first sighting, rotation found by polling.
			if kp != nil && kp.err == nil {
				if kp.status.State != "" && kp.status.State != st.Key.State && (st.Key.State != "" || !kp.status.State.Usable()) {
					rep.Notes = append(rep.Notes, policy.ApplyKeyState(st, db, kp.status.State, now))
					destroyed = kp.status.State == events.KeyDestroyed
					changed = true
				}
				if st.Key.State == "" && kp.status.State != "" {
					st.Key.State = kp.status.State
					changed = true
				}
				switch v := kp.status.Version; {
				case v == "" || v == st.Key.Version || (st.Window != nil && st.Window.ToVersion == v):
				case st.Key.Version == "":
					st.Key.Version = v
					st.Key.RotatedAt = kp.status.RotatedAt
					changed = true
				default:
					kr := events.KeyRotated{KeyCRN: db.KeyCRN, OldVersion: st.Key.Version, NewVersion: v, RotatedAt: kp.status.RotatedAt, DetectedBy: "poll"}
					if kr.RotatedAt.IsZero() {
						kr.RotatedAt = now
					}
					rep.Notes = append(rep.Notes, policy.OpenWindow(st, db, kr, now))
					kp.rotated = &kr
					changed = true
				}
			}
			// Reconcile: a run past its lease is lost.
			if st.Run != nil && now.After(st.Run.LeaseUntil) {
				run := *st.Run
				expired = &run
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
	if expired != nil {
		if c, ok := s.Execs[db.ExecutorKey()].(Canceler); ok {
			r := expired
			if err := c.Cancel(ctx, events.BackupStarted{Database: db.Name, RunID: r.ID, Type: r.Type, Mode: r.Mode, Slot: r.Slot, StartedAt: r.StartedAt,
				LeaseUntil: r.LeaseUntil, KeyCRN: db.KeyCRN, KeyVersion: r.KeyVersion, Executor: db.Executor}); err != nil {
				s.log().Warn("cancel a run past its lease", "db", db.Name, "run", r.ID, "err", err)
			}
		}
	}
	if d.Action == policy.Start && st != nil && st.Run != nil {
		rep.RunID = st.Run.ID
		started := events.BackupStarted{Database: db.Name, RunID: st.Run.ID, Type: st.Run.Type, Mode: st.Run.Mode, Slot: st.Run.Slot,
			StartedAt: st.Run.StartedAt, LeaseUntil: st.Run.LeaseUntil, KeyCRN: db.KeyCRN, KeyVersion: st.Run.KeyVersion, Executor: db.Executor}
		exec, ok := s.Execs[db.ExecutorKey()]
		if !ok {
			errs = append(errs, s.startFailed(ctx, db, *st.Run, fmt.Errorf("no executor %q in this deployment", db.ExecutorKey())))
		} else if err := exec.Start(ctx, started); err != nil {
			errs = append(errs, s.startFailed(ctx, db, *st.Run, err))
		} else {
			toSend = append(toSend, pendingEvent{st.Run.ID + "/started", started})
		}
	}
	if probe != nil {
		runID := ""
		switch v := probe.(type) {
		case *events.BackupCompleted:
			runID = v.RunID
		case *events.BackupFailed:
			runID = v.RunID
		case events.BackupCompleted:
			runID = v.RunID
		case events.BackupFailed:
			runID = v.RunID
		}
		toSend = append(toSend, pendingEvent{runID + "/outcome", probe})
	}
	if kp != nil && kp.rotated != nil && !kp.announced {
		kp.announced = true
		toSend = append(toSend, pendingEvent{db.KeyCRN + "/rotated/" + kp.rotated.NewVersion, *kp.rotated})
	}
	s.log().Info("decision", "db", db.Name, "action", d.Action, "type", d.Type, "reason", d.Reason, "run", rep.RunID, "notes", rep.Notes)
	for _, ev := range toSend {
		if err := s.Send.Send(ctx, ev.id, ev.p); err != nil {
			// Informational events: the state already holds the truth; log and go on.
			s.log().Warn("send event", "db", db.Name, "type", ev.p.EventType(), "err", err)
		}
	}
	if destroyed {
		if next, err := s.unrestorable(ctx, db, now); err != nil {
			errs = append(errs, err)
		} else if next != nil {
			st = next
		}
	}
	if _, err := outbox.Flush(ctx, s.Store, s.Send, st); err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

// unrestorable queues a critical alert naming every cataloged image of db protected by its key,
// which a destroyed key has made unrestorable.
func (s *Scheduler) unrestorable(ctx context.Context, db config.Database, now time.Time) (*state.State, error) {
	if s.Catalog == nil {
		return nil, nil
	}
	entries, err := s.Catalog.List(ctx, db.Name)
	if err != nil {
		return nil, fmt.Errorf("list catalog for the unrestorable alert: %w", err)
	}
	var lost []string
	for _, e := range entries {
		if e.KeyCRN == db.KeyCRN && !e.IsDiscarded() { // a discarded image was never restorable
			lost = append(lost, e.Name()+" (key version "+e.KeyVersion+")")
		}
	}
	if len(lost) == 0 {
		return nil, nil
	}
	st, err := state.Update(ctx, s.Store, db.Name, nil, func(st *state.State) error {
		st.AddAlert(fmt.Sprintf("%s/unrestorable/%d", db.Name, now.Unix()), events.Alert{Severity: events.Critical, Database: db.Name, KeyCRN: db.KeyCRN,
			Reason: "unrestorable", Related: lost,
			Message: fmt.Sprintf("the root key of %s was destroyed: %d cataloged backup(s) can no longer be restored unless the key is restored within its recovery period", db.Name, len(lost))})
		return nil
	})
	return st, err
}

// keyPoll is one tick's view of one key.
type keyPoll struct {
	status    KeyStatus
	err       error
	regs      []Registration
	regsErr   error
	regsDone  bool
	rotated   *events.KeyRotated
	announced bool
}

// pollKey makes the tick's one metadata call for a key.
func (s *Scheduler) pollKey(ctx context.Context, crn string) *keyPoll {
	if s.Keys == nil {
		return nil
	}
	st, err := s.Keys.Key(ctx, crn)
	if err != nil {
		s.log().Warn("Key Protect poll failed; rotation detection waits for the next tick", "key", crn, "err", err)
	}
	return &keyPoll{status: st, err: err}
}

// rewrapped reports whether every Db2 resource registered to the key reports version: the
// registrations of the fleet's instances on this key must all be present and current. Resources
// registered to the key that the fleet does not know are logged. Registrations are listed at most
// once per key per tick.
func (s *Scheduler) rewrapped(ctx context.Context, fleet *config.Fleet, db config.Database, kp *keyPoll, version string) bool {
	if !kp.regsDone {
		kp.regsDone = true
		kp.regs, kp.regsErr = s.Keys.Registrations(ctx, db.KeyCRN)
		if kp.regsErr != nil {
			s.log().Warn("listing key registrations failed; window stays open", "key", db.KeyCRN, "err", kp.regsErr)
		}
		known := map[string]bool{}
		for _, d := range fleet.ByKey(db.KeyCRN) {
			known[d.Instance] = true
		}
		for _, r := range kp.regs {
			if !known[r.ResourceCRN] {
				s.log().Warn("resource registered to the key is not in the fleet policy", "key", db.KeyCRN, "resource", r.ResourceCRN, "key_version", r.KeyVersion)
			}
		}
	}
	if kp.regsErr != nil || version == "" {
		return false
	}
	found := false
	for _, r := range kp.regs {
		if r.ResourceCRN != db.Instance {
			continue
		}
		found = true
		if r.KeyVersion != version {
			return false
		}
	}
	return found
}

// probe asks a probing executor about the run in flight.
func (s *Scheduler) probe(ctx context.Context, db config.Database, st *state.State) events.Payload {
	p, ok := s.Execs[db.ExecutorKey()].(Prober)
	if !ok {
		return nil
	}
	r := st.Run
	out, err := p.Probe(ctx, events.BackupStarted{Database: db.Name, RunID: r.ID, Type: r.Type, Mode: r.Mode, Slot: r.Slot, StartedAt: r.StartedAt,
		LeaseUntil: r.LeaseUntil, KeyCRN: db.KeyCRN, KeyVersion: r.KeyVersion, Executor: db.Executor})
	if err != nil {
		s.log().Warn("probe failed", "db", db.Name, "run", r.ID, "err", err)
		return nil
	}
	return out
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

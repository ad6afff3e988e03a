package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/check"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/outbox"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Executor starts backups. Start must be idempotent by RunID: starting a run it already knows is
// a no-op that succeeds, so the scheduler asks again whenever it cannot tell whether a start
// happened. It returns quickly; the outcome arrives later (a run record and an event). An error
// whose kind is permanent (errkind.IsPermanent) closes the run as failed at once; any other
// error is tried again on the next ticks.
type Executor interface {
	Start(ctx context.Context, run events.BackupStarted) error
}

// Prober is implemented by executors that learn a run's outcome by asking (Db2 on Cloud lists
// its backups; a Code Engine job run has a status). Probe returns nil while the run is still
// going, else a BackupCompleted or BackupFailed value. A BackupCompleted without a CatalogKey is
// a backup the service keeps: the scheduler records it in the catalog before applying it.
type Prober interface {
	Probe(ctx context.Context, run events.BackupStarted) (events.Payload, error)
}

// Canceler is implemented by executors that can stop a run (a Code Engine job run, a child
// process, the simulated Db2). The scheduler cancels a run whose lease expired, or whose start
// failed for good, so a lost run never backs up beside its retry. Safe to call twice.
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

// Catalog is the record of backups the scheduler reconciles runs from.
type Catalog interface {
	// GetRun returns a run's recorded outcome, or an error wrapping catalog.ErrNotFound.
	GetRun(ctx context.Context, db, runID string) (catalog.RunRecord, error)
	// Record writes a run's entry (when not nil) and its run record, create-only and idempotent.
	Record(ctx context.Context, e *catalog.Entry, r catalog.RunRecord) error
	// List returns a database's entries (for the alert a destroyed key owes).
	List(ctx context.Context, db string) ([]catalog.Entry, error)
	// GetRestore returns a restore's record (a drill's outcome), or an error wrapping
	// catalog.ErrNotFound.
	GetRestore(ctx context.Context, db, id string) (catalog.RestoreRecord, error)
}

// Scheduler handles ticks. Set every field but Keys (optional), Clock and Log.
type Scheduler struct {
	Store state.Store
	Fleet config.Source
	// Execs maps an executor key (config.Database.ExecutorKey) to its executor.
	Execs   map[string]Executor
	Send    outbox.Sender
	Keys    Keys
	Catalog Catalog
	Clock   clock.Clock
	Log     *slog.Logger
	// Workers bounds the databases decided at once (DefaultWorkers when 0; 1 decides them one
	// after the other in the caller's goroutine, as the simulator does).
	Workers int
	// Budget bounds one delivery's work (DefaultBudget when 0, and never past the context's
	// deadline less a margin): what is not decided by then continues in a tick.shard event.
	// It is measured on Timer, the wall clock when nil (not Clock, which may be simulated).
	Budget time.Duration
	Timer  clock.Clock
	// ShardSize is the most databases one delivery decides: a larger fleet is split into
	// tick.shard events, which Event Notifications delivers to scheduler instances that Code
	// Engine scales out (DefaultShardSize when 0; negative never splits).
	ShardSize int
	// Beats, when set, is where each delivery leaves its heartbeat (check.HeartbeatKey, one
	// small object per shard, written once per delivery whatever the fleet's size), which
	// keyguard check reads to tell that ticks still arrive. objstore.Store implements it.
	Beats Beats

	metricsOnce sync.Once
	metrics     *metrics
}

// Beats stores heartbeats.
type Beats interface {
	Put(ctx context.Context, key string, body []byte, c objstore.Cond) (string, error)
}

// heartbeat leaves the trace of a delivery that decided n databases of shard sh. A failure is
// logged: the next delivery writes it again.
func (s *Scheduler) heartbeat(ctx context.Context, sh events.TickShard, n int) {
	if s.Beats == nil {
		return
	}
	body, err := json.Marshal(check.Heartbeat{Tick: sh.Tick, At: clock.Or(s.Clock).Now(), Shard: sh.Shard, Shards: sh.Shards, Databases: n})
	if err == nil {
		_, err = s.Beats.Put(ctx, check.HeartbeatKey(sh.Shard, sh.Shards), body, objstore.Cond{})
	}
	if err != nil {
		s.log().Warn("heartbeat not written", "shard", sh.Shard, "err", err)
	}
}

// Defaults of the scheduler's fan-out.
const (
	DefaultWorkers   = 32
	DefaultBudget    = 6 * time.Second
	DefaultShardSize = 5000
	// keyWorkers bounds the Key Protect calls of one delivery made at once.
	keyWorkers = 8
	// reserve is kept of the budget for the databases in progress to finish and the
	// continuation to be published.
	reserve = time.Second
)

// DBReport is what one tick did for one database.
type DBReport struct {
	Database string
	Action   policy.Action
	Type     events.BackupType
	RunID    string
	Reason   string
	Notes    []string // reconciliation done on this tick (lease expired, window closed)
}

// Handle treats any authenticated, well-formed event that reaches the tick route as a tick. A
// fleet larger than ShardSize is split into tick.shard events (published through Event
// Notifications back to the scheduler); otherwise every database is decided here, and what the
// budget does not reach continues in a tick.shard event. Failures of single databases are
// logged and answered 200 (the next interval decides them again: a redelivery would redo the
// whole fleet); a fleet that cannot be loaded, or a delivery in which every database failed, is
// answered 5xx.
func (s *Scheduler) Handle(ctx context.Context, e events.Event) (edge.Result, error) {
	if e.Type == events.TypeTickShard {
		p, err := events.DecodeData(e.Type, e.Data)
		if err != nil {
			return edge.Result{}, err
		}
		return s.HandleShard(ctx, *p.(*events.TickShard))
	}
	if e.Type != events.TypeTick && e.Type != events.TypeKnativePing {
		s.log().Info("tick route got a non-standard type; treating it as a tick", "type", e.Type, "id", e.ID)
	}
	fleet, err := s.Fleet.Fleet(ctx)
	if err != nil {
		return edge.Result{}, fmt.Errorf("load fleet: %w", err)
	}
	now := clock.Or(s.Clock).Now()
	if shards := s.shards(len(fleet.Databases)); shards > 1 {
		var errs []error
		for i := range shards {
			sh := events.TickShard{Tick: now, Shard: i, Shards: shards}
			if err := s.Send.Send(ctx, shardID(sh), sh); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return edge.Result{}, fmt.Errorf("publish tick shards: %w", err)
		}
		return edge.Result{Outcome: "split", Detail: fmt.Sprintf("%d database(s) in %d shards", len(fleet.Databases), shards)}, nil
	}
	return s.handleRun(ctx, fleet, events.TickShard{Tick: now, Shard: 0, Shards: 1})
}

// HandleShard decides the databases of one shard, from where a continuation resumes.
func (s *Scheduler) HandleShard(ctx context.Context, sh events.TickShard) (edge.Result, error) {
	fleet, err := s.Fleet.Fleet(ctx)
	if err != nil {
		return edge.Result{}, fmt.Errorf("load fleet: %w", err)
	}
	return s.handleRun(ctx, fleet, sh)
}

func (s *Scheduler) handleRun(ctx context.Context, fleet *config.Fleet, sh events.TickShard) (edge.Result, error) {
	reports, rest, err := s.run(ctx, fleet, sh)
	s.heartbeat(ctx, sh, len(reports))
	counts := map[policy.Action]int{}
	for _, r := range reports {
		counts[r.Action]++
	}
	failed := countErrs(err)
	if err != nil && failed >= len(reports) {
		return edge.Result{}, err
	}
	if err != nil {
		s.log().Warn("tick: some databases failed; the next interval decides them again", "failed", failed, "err", err)
	}
	detail := fmt.Sprintf("shard %d/%d: %d database(s): %d started, %d deferred, %d idle, %d failed",
		sh.Shard, sh.Shards, len(reports), counts[policy.Start], counts[policy.Defer], counts[policy.Idle], failed)
	if rest != nil {
		if err := s.Send.Send(ctx, shardID(*rest), *rest); err != nil {
			return edge.Result{}, fmt.Errorf("publish the continuation after %s: %w", rest.ResumeAfter, err)
		}
		return edge.Result{Outcome: "continued", Detail: detail + "; continues after " + rest.ResumeAfter}, nil
	}
	return edge.Result{Outcome: "ticked", Detail: detail}, nil
}

func shardID(sh events.TickShard) string {
	return fmt.Sprintf("tick-%d/shard-%d-of-%d/%s", sh.Tick.Unix(), sh.Shard, sh.Shards, sh.ResumeAfter)
}

func countErrs(err error) int {
	if err == nil {
		return 0
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}

// shards is how many shards a fleet of n databases is split into.
func (s *Scheduler) shards(n int) int {
	size := s.ShardSize
	if size == 0 {
		size = DefaultShardSize
	}
	if size < 0 || n <= size {
		return 1
	}
	return min((n+size-1)/size, events.MaxShards)
}

// Tick decides every database of the fleet in one call, whatever its size and the budget (for
// tests, the simulator and the local stack's ticker). Errors for one database do not stop the
// others; they are joined in the returned error.
func (s *Scheduler) Tick(ctx context.Context) ([]DBReport, error) {
	fleet, err := s.Fleet.Fleet(ctx)
	if err != nil {
		return nil, fmt.Errorf("load fleet: %w", err)
	}
	sorted := fleet.ShardDatabases(0, 1)
	keys := s.pollKeys(ctx, keysOf(sorted))
	reports, _, err := s.decide(ctx, fleet, sorted, keys, time.Time{})
	s.heartbeat(ctx, events.TickShard{Tick: clock.Or(s.Clock).Now(), Shard: 0, Shards: 1}, len(reports))
	return reports, errors.Join(err, s.managed(ctx, fleet, keysOf(sorted), keys))
}

// run decides the databases of a shard (after ResumeAfter) within the budget, then, when all
// are decided, runs managed rotation for the shard's keys. rest is the continuation when the
// budget ran out first.
func (s *Scheduler) run(ctx context.Context, fleet *config.Fleet, sh events.TickShard) ([]DBReport, *events.TickShard, error) {
	timer := clock.Or(s.Timer)
	deadline := timer.Now().Add(s.budget())
	if d, ok := ctx.Deadline(); ok && s.Timer == nil && d.Add(-reserve).Before(deadline) {
		deadline = d.Add(-reserve)
	}
	dbs := fleet.ShardDatabases(sh.Shard, sh.Shards)
	if sh.ResumeAfter != "" {
		i, _ := slices.BinarySearchFunc(dbs, sh.ResumeAfter, func(d config.Database, name string) int { return strings.Compare(d.Name, name) })
		for i < len(dbs) && dbs[i].Name <= sh.ResumeAfter {
			i++
		}
		dbs = dbs[i:]
	}
	keys := s.pollKeys(ctx, keysOf(dbs))
	reports, done, err := s.decide(ctx, fleet, dbs, keys, deadline)
	if done < len(dbs) {
		if done == 0 { // not one database within the budget: let Event Notifications try again
			return reports, nil, errors.Join(err, fmt.Errorf("shard %d/%d: the budget ran out before the first database (%s)", sh.Shard, sh.Shards, dbs[0].Name))
		}
		rest := sh
		rest.ResumeAfter = dbs[done-1].Name
		return reports, &rest, err
	}
	return reports, nil, errors.Join(err, s.managed(ctx, fleet, keysOf(dbs), keys))
}

func (s *Scheduler) budget() time.Duration {
	if s.Budget > 0 {
		return s.Budget
	}
	return DefaultBudget
}

// keysOf lists the distinct keys of dbs in first-use order.
func keysOf(dbs []config.Database) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range dbs {
		if !seen[d.KeyCRN] {
			seen[d.KeyCRN] = true
			out = append(out, d.KeyCRN)
		}
	}
	return out
}

// decide runs tickOne for dbs with a bounded worker pool, in order, starting no database after
// deadline (zero: no deadline) - reserve. done is the length of the prefix of dbs that was
// decided (every database before it has its report).
func (s *Scheduler) decide(ctx context.Context, fleet *config.Fleet, dbs []config.Database, keys map[string]*keyPoll, deadline time.Time) ([]DBReport, int, error) {
	timer := clock.Or(s.Timer)
	late := func() bool { return !deadline.IsZero() && !timer.Now().Before(deadline.Add(-reserve)) }
	reports := make([]DBReport, len(dbs))
	errs := make([]error, len(dbs))
	workers := s.Workers
	if workers == 0 {
		workers = DefaultWorkers
	}
	started := 0
	if workers <= 1 {
		for i, db := range dbs {
			if late() {
				break
			}
			reports[i], errs[i] = s.tickOne(ctx, fleet, db, keys[db.KeyCRN])
			started = i + 1
		}
	} else {
		next := make(chan int)
		var wg sync.WaitGroup
		for range min(workers, len(dbs)) {
			wg.Go(func() {
				for i := range next {
					reports[i], errs[i] = s.tickOne(ctx, fleet, dbs[i], keys[dbs[i].KeyCRN])
				}
			})
		}
		for i := range dbs {
			if late() || ctx.Err() != nil {
				break
			}
			next <- i
			started = i + 1
		}
		close(next)
		wg.Wait()
	}
	var joined []error
	for i := range started {
		if errs[i] != nil {
			joined = append(joined, fmt.Errorf("%s: %w", dbs[i].Name, errs[i]))
		}
	}
	return reports[:started], started, errors.Join(joined...)
}

// managed runs managed rotation for keys (once their databases are all decided).
func (s *Scheduler) managed(ctx context.Context, fleet *config.Fleet, keys []string, polls map[string]*keyPoll) error {
	var errs []error
	for _, crn := range keys {
		note, err := s.managedRotation(ctx, fleet, crn, polls[crn])
		if err != nil {
			errs = append(errs, err)
		}
		if note != "" {
			s.log().Info("managed rotation", "key", crn, "note", note)
		}
	}
	return errors.Join(errs...)
}

// tickOne observes one database (one state read, plus what its state calls for), decides once
// inside the compare-and-swap, then acts.
func (s *Scheduler) tickOne(ctx context.Context, fleet *config.Fleet, db config.Database, kp *keyPoll) (DBReport, error) {
	now := clock.Or(s.Clock).Now()
	rep := DBReport{Database: db.Name}
	cur, etag, err := s.Store.Get(ctx, db.Name)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return rep, fmt.Errorf("read state: %w", err)
	}
	view := cur
	if view == nil {
		view = state.New(db.Name, db.KeyCRN)
	}
	in := s.observe(ctx, fleet, db, kp, view, now)
	var res policy.TickResult
	st, err := state.UpdateFrom(ctx, s.Store, db.Name, cur, etag, func() *state.State { return state.New(db.Name, db.KeyCRN) },
		func(st *state.State) error {
			res = policy.Tick(st, db, in)
			if !res.Changed {
				return state.ErrNoChange
			}
			return nil
		})
	if err != nil {
		// The decision is lost for this tick; alerts already pending still go out.
		_, ferr := outbox.Flush(ctx, s.Store, s.Send, cur)
		return rep, errors.Join(fmt.Errorf("update state: %w", err), ferr)
	}
	s.figures().observe(db.Name, cur, st, res, now)
	d := res.Decision
	rep.Action, rep.Type, rep.Reason, rep.Notes = d.Action, d.Type, d.Reason, res.Notes
	if res.Start != nil {
		rep.RunID = res.Start.ID
	}
	// Idle ticks are DEBUG even when the state changed (a run closed, the decision went from
	// start to idle): what changed is logged by whoever changed it.
	level := slog.LevelDebug
	if res.Changed && (d.Action != policy.Idle || len(res.Notes) > 0) {
		level = slog.LevelInfo
	}
	s.log().Log(ctx, level, "decision", "database", db.Name, "action", d.Action, "type", d.Type, "reason", d.Reason, "run", rep.RunID, "notes", res.Notes)
	errs := []error{s.act(ctx, db, res.Effects, kp)}
	if _, err := outbox.Flush(ctx, s.Store, s.Send, st); err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

// observe gathers what the tick's decision for db needs, from its state as read: the key poll,
// the registrations while a window is open, the evidence about the run in flight, and the
// catalog when a destroyed key still owes its alert.
func (s *Scheduler) observe(ctx context.Context, fleet *config.Fleet, db config.Database, kp *keyPoll, st *state.State, now time.Time) policy.TickInput {
	in := policy.TickInput{Now: now}
	if kp != nil && kp.err == nil {
		in.Key = &policy.KeyStatus{Version: kp.status.Version, State: kp.status.State, RotatedAt: kp.status.RotatedAt}
	}
	in.KeyUnavailable = kp != nil && kp.err != nil
	if st.Window != nil && kp != nil {
		in.Registrations, in.Listed = s.registrations(ctx, fleet, db, kp)
	}
	if st.Run != nil {
		in.Run = s.evidence(ctx, db, *st.Run)
	}
	if st.Restore != nil {
		in.Restore = &policy.RestoreEvidence{ID: st.Restore.ID}
		switch rec, err := s.Catalog.GetRestore(ctx, db.Name, st.Restore.ID); {
		case err == nil:
			in.Restore.Record = &rec
		case !errors.Is(err, catalog.ErrNotFound):
			s.log().Warn("reading the drill's record failed; the drill is left as it is", "database", db.Name, "restore", st.Restore.ID, "err", err)
			in.Restore.Unknown = true
		}
	}
	destroyedNow := in.Key != nil && in.Key.State == events.KeyDestroyed && st.Key.State != events.KeyDestroyed
	if policy.NeedsUnrestorable(st) || destroyedNow {
		if entries, err := s.Catalog.List(ctx, db.Name); err != nil {
			s.log().Warn("listing the catalog for a destroyed key's alert failed; trying again next tick", "database", db.Name, "err", err)
		} else {
			u := policy.UnrestorableOf(entries, db.KeyCRN)
			in.Unrestorable = &u
		}
	}
	return in
}

// evidence learns what became of run: the executor's probe first (a Db2 on Cloud backup the
// service finished is recorded in the catalog here), then the catalog's run record, which is
// the outcome whoever recorded first, and, once the lease expired or while the start is
// unconfirmed, the run's image in the catalog (imageEvidence). When the catalog cannot be read
// the evidence is nil, and the run's lease is not counted against it.
func (s *Scheduler) evidence(ctx context.Context, db config.Database, run state.Run) *policy.RunEvidence {
	var probed events.Payload
	if p, ok := s.Execs[db.ExecutorKey()].(Prober); ok && run.Started {
		out, err := p.Probe(ctx, run.Event(db.Name))
		if err != nil {
			s.log().Warn("probe failed", "database", db.Name, "run", run.ID, "err", err)
		}
		probed = out
	}
	if probed != nil {
		if err := s.record(ctx, db, probed); err != nil {
			s.log().Warn("recording the probed outcome failed", "database", db.Name, "run", run.ID, "err", err)
		}
	}
	rec, err := s.Catalog.GetRun(ctx, db.Name, run.ID)
	switch {
	case err == nil:
		return &policy.RunEvidence{RunID: run.ID, Outcome: rec.Outcome(), Recorded: true}
	case !errors.Is(err, catalog.ErrNotFound):
		s.log().Warn("reading the run record failed; the run is left as it is", "database", db.Name, "run", run.ID, "err", err)
		return &policy.RunEvidence{RunID: run.ID, Unknown: true}
	}
	if f, ok := probed.(events.BackupFailed); ok {
		return &policy.RunEvidence{RunID: run.ID, Outcome: f} // a job that failed without recording anything
	}
	// Before the lease counts the run as failed, or its unconfirmed start is asked for again or
	// given up, the run's image is looked for in the catalog.
	if now := clock.Or(s.Clock).Now(); now.After(run.LeaseUntil) || !run.Started && !now.Before(run.StartedAt.Add(policy.StartGrace)) {
		if ev := s.imageEvidence(ctx, db, run); ev != nil {
			return ev
		}
	}
	return &policy.RunEvidence{RunID: run.ID}
}

// record writes a probed outcome as the run's record (and, for a backup a service keeps, its
// catalog entry), so that the catalog holds every backup whatever executed it.
func (s *Scheduler) record(ctx context.Context, db config.Database, out events.Payload) error {
	var err error
	switch o := out.(type) {
	case events.BackupCompleted:
		var e *catalog.Entry
		if o.CatalogKey == "" {
			se := catalog.ServiceEntry(o, db.Executor, "")
			e = &se
		}
		err = s.Catalog.Record(ctx, e, catalog.RunRecord{Database: db.Name, RunID: o.RunID, Completed: &o})
	case events.BackupFailed:
		err = s.Catalog.Record(ctx, nil, catalog.RunRecord{Database: db.Name, RunID: o.RunID, Failed: &o})
	}
	if errors.Is(err, catalog.ErrExists) {
		return nil // recorded first by someone else: that record is the outcome
	}
	return err
}

// act performs a decision's effects: cancel, start, publish.
func (s *Scheduler) act(ctx context.Context, db config.Database, eff policy.Effects, kp *keyPoll) error {
	var errs []error
	if eff.Cancel != nil {
		s.cancel(ctx, db, *eff.Cancel)
	}
	if eff.Start != nil {
		if err := s.start(ctx, db, *eff.Start); err != nil {
			errs = append(errs, err)
		}
	}
	if eff.StartRestore != nil {
		if err := s.startRestore(ctx, db, *eff.StartRestore); err != nil {
			errs = append(errs, err)
		}
	}
	for _, o := range eff.Send {
		if kp != nil && o.Payload.EventType() == events.TypeKeyRotated && !kp.announce(o.ID) {
			continue // one announcement per key per delivery
		}
		if err := s.Send.Send(ctx, o.ID, o.Payload); err != nil {
			// Informational events: the state and the catalog already hold the truth.
			s.log().Warn("send event", "database", db.Name, "type", o.Payload.EventType(), "err", err)
		}
	}
	return errors.Join(errs...)
}

// start asks db's executor to start run, then records the answer: started, or failed (tried
// again next tick, or closed as failed and cancelled when the error is permanent or repeats).
func (s *Scheduler) start(ctx context.Context, db config.Database, run state.Run) error {
	exec, ok := s.Execs[db.ExecutorKey()]
	var err error
	if !ok {
		err = errkind.With(errkind.Configuration, fmt.Errorf("no executor %q in this deployment", db.ExecutorKey()))
	} else {
		err = exec.Start(ctx, run.Event(db.Name))
	}
	now := clock.Or(s.Clock).Now()
	var cancel *state.Run
	_, uerr := state.Update(ctx, s.Store, db.Name, nil, func(st *state.State) error {
		var changed bool
		if err == nil {
			changed = policy.Started(st, run.ID)
		} else {
			cancel, changed = policy.StartFailed(st, db, run.ID, err, errkind.IsPermanent(err) || errors.Is(err, events.ErrInvalid), now)
		}
		if !changed {
			return state.ErrNoChange
		}
		return nil
	})
	if err == nil {
		if uerr != nil && !errors.Is(uerr, state.ErrNoChange) {
			// The next tick asks the executor again (a no-op for a started run) and records it.
			s.log().Warn("recording a confirmed start failed", "database", db.Name, "run", run.ID, "err", uerr)
		}
		return s.Send.Send(ctx, run.ID+"/started", run.Event(db.Name))
	}
	if cancel != nil {
		s.cancel(ctx, db, *cancel)
	}
	if uerr != nil && !errors.Is(uerr, state.ErrNoChange) {
		return fmt.Errorf("start %s: %w; and recording it: %w", run.ID, err, uerr)
	}
	return fmt.Errorf("start %s: %w", run.ID, err)
}

// startRestore asks the restore job for a drill (restore.requested, under the drill's id, so a
// repeated send starts one restore), then records that it was asked; until then every tick asks
// again.
func (s *Scheduler) startRestore(ctx context.Context, db config.Database, req events.RestoreRequested) error {
	if err := s.Send.Send(ctx, db.Name+"/restore/"+req.ID, req); err != nil {
		return fmt.Errorf("request drill %s: %w", req.ID, err)
	}
	_, err := state.Update(ctx, s.Store, db.Name, nil, func(st *state.State) error {
		if !policy.RestoreRequested(st, req.ID) {
			return state.ErrNoChange
		}
		return nil
	})
	if err != nil && !errors.Is(err, state.ErrNoChange) {
		s.log().Warn("recording a requested drill failed; the next tick asks again", "database", db.Name, "restore", req.ID, "err", err)
	}
	return nil
}

func (s *Scheduler) cancel(ctx context.Context, db config.Database, run state.Run) {
	c, ok := s.Execs[db.ExecutorKey()].(Canceler)
	if !ok {
		return
	}
	if err := c.Cancel(ctx, run.Event(db.Name)); err != nil {
		s.log().Warn("cancel a lost run", "database", db.Name, "run", run.ID, "err", err)
	}
}

// keyPoll is one delivery's view of one key, shared by the workers deciding its databases.
type keyPoll struct {
	status   KeyStatus
	err      error
	regsOnce sync.Once
	regs     []Registration
	regsErr  error

	mu        sync.Mutex
	announced map[string]bool
}

// announce reports whether id is announced for the first time in this delivery.
func (kp *keyPoll) announce(id string) bool {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if kp.announced[id] {
		return false
	}
	if kp.announced == nil {
		kp.announced = map[string]bool{}
	}
	kp.announced[id] = true
	return true
}

// pollKeys makes the delivery's one metadata call per key, a few at a time (nil map when Key
// Protect is not configured).
func (s *Scheduler) pollKeys(ctx context.Context, crns []string) map[string]*keyPoll {
	if s.Keys == nil {
		return nil
	}
	out := make(map[string]*keyPoll, len(crns))
	polls := make([]*keyPoll, len(crns))
	if s.Workers == 1 {
		for i, crn := range crns {
			polls[i] = s.pollKey(ctx, crn)
		}
	} else {
		sem := make(chan struct{}, keyWorkers)
		var wg sync.WaitGroup
		for i, crn := range crns {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				polls[i] = s.pollKey(ctx, crn)
			})
		}
		wg.Wait()
	}
	for i, crn := range crns {
		out[crn] = polls[i]
	}
	return out
}

// pollKey makes one metadata call for a key.
func (s *Scheduler) pollKey(ctx context.Context, crn string) *keyPoll {
	st, err := s.Keys.Key(ctx, crn)
	if err != nil {
		s.log().Warn("Key Protect poll failed; rotation detection waits for the next tick", "key", crn, "err", err)
	}
	return &keyPoll{status: st, err: err}
}

// registrations returns the key versions that db's instance reports on its key, listing the
// key's registrations at most once per tick; ok is false when they could not be listed.
// Resources registered to the key that the fleet does not know are logged.
func (s *Scheduler) registrations(ctx context.Context, fleet *config.Fleet, db config.Database, kp *keyPoll) ([]string, bool) {
	kp.regsOnce.Do(func() {
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
	})
	if kp.regsErr != nil {
		return nil, false
	}
	var out []string
	for _, r := range kp.regs {
		if r.ResourceCRN == db.Instance {
			out = append(out, r.KeyVersion)
		}
	}
	return out, true
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

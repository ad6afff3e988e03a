package sim

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// The invariants, by name. Each is checked at the step that can break it: a state, catalog or
// lease write or deletion, a backup's start, the end of a clean tick (a tick delivered, not
// crashed, answered 2xx, with no fault injected into it), and at the end of the run.
const (
	// No backup starts while its key's rotation window is open or its key is not active: the
	// invocation that starts a run must not have seen, in the state it read or wrote last, a
	// window or a blocked key.
	InvRotationHold = "rotation-hold"
	// The first backup started after a window closes is a full, and so is every backup started
	// until a full under the new key version is cataloged.
	InvFullAfterWindow = "full-after-window"
	// At most one run in flight per database: no job starts while another job of the database
	// has not ended.
	InvOneRun = "one-run-per-database"
	// Never two backups for one slot: no scheduled run starts for a slot that a successful
	// backup already covers.
	InvSlotOnce = "slot-once"
	// Every catalog chain is restorable: each kept image's parents exist and are not discarded,
	// a chain never spans two key versions, every image records its key version.
	InvChains = "chains-restorable"
	// Retention (and an operator's delete) never removes an image a kept chain builds on, one a
	// running restore uses (once its lease shows in listings and it found its images cataloged),
	// one of the newest restorable chain; retention never removes one inside the point-in-time
	// window (keep_days) or the chain that covers its start, nor a full it must keep (keep_fulls).
	InvRetention = "retention-safe"
	// No outcome is counted twice: a run's success, or its failure, is applied once.
	InvOutcomeOnce = "outcome-once"
	// No outcome is lost for longer than a lease plus a tick: after a clean tick, no run whose
	// outcome was recorded before it began, or whose lease had expired, is still in flight.
	InvOutcomeLost = "outcome-not-lost"
	// Every failed backup is retried or alerted.
	InvRetriedOrAlerted = "failure-retried-or-alerted"
	// Every alert the policy raises is delivered: after a clean tick (Event Notifications
	// accepting again), no alert raised before it is still undelivered, and no alert leaves the
	// state undelivered unless a newer one of its kind replaced it.
	InvAlertDelivered = "alert-delivered"
	// The state object stays under its size budget.
	InvBudget = "state-budget"
	// No state update is lost under concurrent writers: each stored revision follows the one it
	// replaced.
	InvLostUpdate = "no-lost-update"
	// Every database reaches a restorable point within its RPO (the longest gap between its
	// slots, plus a full backup's duration and two ticks and an hour) unless its state documents
	// why: a rotation window, a key not active, a run in flight, failures, a retry, a deferral.
	InvRPO = "rpo"
	// No handler panics.
	InvNoPanic = "no-panic"
)

// Invariants lists every invariant name.
var Invariants = []string{InvRotationHold, InvFullAfterWindow, InvOneRun, InvSlotOnce, InvChains, InvRetention, InvOutcomeOnce,
	InvOutcomeLost, InvRetriedOrAlerted, InvAlertDelivered, InvBudget, InvLostUpdate, InvRPO, InvNoPanic}

// Violation is a broken invariant: which, where and when, and the seed and step that reproduce it.
type Violation struct {
	Invariant string    `json:"invariant"`
	Seed      uint64    `json:"seed"`
	Step      int64     `json:"step"`
	At        time.Time `json:"at"`
	Database  string    `json:"database,omitempty"`
	Detail    string    `json:"detail"`
}

func (v Violation) String() string {
	db := ""
	if v.Database != "" {
		db = " " + v.Database
	}
	return fmt.Sprintf("invariant %s violated (seed %d, step %d, %s%s): %s", v.Invariant, v.Seed, v.Step, v.At.Format(time.RFC3339), db, v.Detail)
}

// rpoWarmup is how long after the start the RPO is neither checked nor measured: the first
// backups of a fresh deployment.
const rpoWarmup = 48 * time.Hour

type oracle struct {
	s      *Sim
	dbs    map[string]*dbOracle
	alerts map[string]*alertRec
}

type dbOracle struct {
	name     string
	pol      config.Database
	tr       *DBTrace
	rpoLimit time.Duration

	entries map[string]catalog.Entry
	// opDeleting holds the images an operator's delete began to delete: a deleter that dies
	// part way leaves its deletion for the next pruner to finish, which then carries out the
	// operator's decision, not one of retention.
	opDeleting map[string]bool
	// using holds, per running restore, the images it uses (from its check to its end).
	using map[string][]string
	// needFull is the key version a window closed for, until a full under it is cataloged.
	needFull string
	runSlot  map[string]time.Time
	slotDone map[time.Time]string
	recorded map[string]time.Time
	succ     map[string]int
	fail     map[string]int
	alerts   []*alertRec

	// For the report and the timeline.
	restorable []time.Time // end of each restorable image, as cataloged
	taken      []time.Time // start of each good image
	attempts   int
	rewrapFail int
	failures   int
	windowFrom time.Time
	windows    []span
	jobs       []*job
}

type alertRec struct {
	id, db, reason string
	sev            events.Severity
	raised, sentAt time.Time
	sent           bool
	coalesced      bool
}

func newOracle(s *Sim) *oracle {
	o := &oracle{s: s, dbs: map[string]*dbOracle{}, alerts: map[string]*alertRec{}}
	for _, d := range s.tr.DBs {
		pol, _ := s.tr.Fleet.Database(d.Name)
		o.dbs[d.Name] = &dbOracle{name: d.Name, pol: pol, tr: d, rpoLimit: rpoLimit(s.tr, pol, d, s.o.Tick),
			entries: map[string]catalog.Entry{}, using: map[string][]string{}, runSlot: map[string]time.Time{},
			slotDone: map[time.Time]string{}, recorded: map[string]time.Time{}, succ: map[string]int{}, fail: map[string]int{}}
	}
	return o
}

// rpoLimit is the database's RPO: the longest gap between two of its slots over a week, plus a
// full backup's longest duration, two ticks and an hour.
func rpoLimit(tr *Trace, pol config.Database, d *DBTrace, tick time.Duration) time.Duration {
	slots := slotTimes(pol, tr.Start, tr.Start.Add(8*24*time.Hour))
	gap := 24 * time.Hour
	for i := 1; i < len(slots); i++ {
		gap = max(gap, slots[i].Sub(slots[i-1]))
	}
	full := time.Duration(float64(d.Size)/(400<<20)*1.2) * time.Second
	return gap + full + 2*tick + time.Hour
}

// slotTimes returns every slot of the database's schedules in [from, to), sorted, each once.
func slotTimes(pol config.Database, from, to time.Time) []time.Time {
	var out []time.Time
	for _, t := range []events.BackupType{events.Full, events.Incremental, events.Delta} {
		sched, ok := pol.Schedule(t)
		if !ok {
			continue
		}
		for x := sched.Next(from.Add(-time.Second)); x.Before(to); x = sched.Next(x) {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return slices.CompactFunc(out, func(a, b time.Time) bool { return a.Equal(b) })
}

func (o *oracle) db(name string) *dbOracle { return o.dbs[name] }

// stateWritten checks a state write: db's state went from old (nil: none) to new.
func (o *oracle) stateWritten(db string, old, new *state.State, size int) {
	d := o.db(db)
	if d == nil {
		return
	}
	now := o.s.now()
	if size > state.BudgetBytes {
		o.s.violate(InvBudget, db, fmt.Sprintf("state of %d bytes written, over the %d-byte budget", size, state.BudgetBytes))
	}
	want := int64(1)
	if old != nil {
		want = old.Revision + 1
	}
	if new.Revision != want {
		o.s.violate(InvLostUpdate, db, fmt.Sprintf("revision %d written over revision %d: its writer did not see the state it replaced", new.Revision, want-1))
	}
	switch {
	case (old == nil || old.Window == nil) && new.Window != nil:
		d.windowFrom = now
	case old != nil && old.Window != nil && new.Window == nil:
		d.windows = append(d.windows, span{d.windowFrom, now})
		d.needFull = new.Key.Version
	}
	if ls := new.LastSuccess; ls != nil && (old == nil || old.LastSuccess == nil || old.LastSuccess.RunID != ls.RunID || !old.LastSuccess.At.Equal(ls.At)) {
		if d.succ[ls.RunID]++; d.succ[ls.RunID] > 1 {
			o.s.violate(InvOutcomeOnce, db, fmt.Sprintf("success of %s applied %d times", ls.RunID, d.succ[ls.RunID]))
		}
	}
	if lf := new.LastFailure; lf != nil && (old == nil || old.LastFailure == nil || old.LastFailure.RunID != lf.RunID || !old.LastFailure.At.Equal(lf.At)) {
		if d.fail[lf.RunID]++; d.fail[lf.RunID] > 1 {
			o.s.violate(InvOutcomeOnce, db, fmt.Sprintf("failure of %s counted %d times", lf.RunID, d.fail[lf.RunID]))
		}
		alerted := slices.ContainsFunc(new.PendingAlerts, func(p state.PendingAlert) bool { return p.Alert.RunID == lf.RunID })
		if new.NextRetry == nil && !alerted {
			o.s.violate(InvRetriedOrAlerted, db, fmt.Sprintf("failure of %s (%s) neither retried nor alerted", lf.RunID, lf.Class))
		}
	}
	o.alertDiff(d, old, new, now)
}

// alertDiff follows the pending alerts from old to new.
func (o *oracle) alertDiff(d *dbOracle, old, new *state.State, now time.Time) {
	var before []state.PendingAlert
	if old != nil {
		before = old.PendingAlerts
	}
	has := func(list []state.PendingAlert, id string) bool {
		return slices.ContainsFunc(list, func(p state.PendingAlert) bool { return p.ID == id })
	}
	var added []state.PendingAlert
	for _, p := range new.PendingAlerts {
		if has(before, p.ID) {
			continue
		}
		added = append(added, p)
		if o.alerts[p.ID] == nil {
			r := &alertRec{id: p.ID, db: d.name, reason: p.Alert.Reason, sev: p.Alert.Severity, raised: now}
			o.alerts[p.ID] = r
			d.alerts = append(d.alerts, r)
		}
	}
	for _, p := range before {
		if has(new.PendingAlerts, p.ID) {
			continue
		}
		r := o.alerts[p.ID]
		if r == nil || r.sent || r.coalesced {
			continue
		}
		if slices.ContainsFunc(added, func(a state.PendingAlert) bool {
			return a.Alert.Reason == p.Alert.Reason && a.Alert.Severity == p.Alert.Severity
		}) {
			r.coalesced = true
			continue
		}
		o.s.violate(InvAlertDelivered, d.name, fmt.Sprintf("alert %s (%s, %s) left the state undelivered", p.ID, p.Alert.Severity, p.Alert.Reason))
	}
}

// alertSent records that Event Notifications accepted alert id.
func (o *oracle) alertSent(id string) {
	r := o.alerts[id]
	if r == nil {
		r = &alertRec{id: id, raised: o.s.now()}
		o.alerts[id] = r
	}
	if !r.sent {
		r.sent, r.sentAt = true, o.s.now()
	}
}

// entryWritten checks a catalog entry as written.
func (o *oracle) entryWritten(db string, e catalog.Entry) {
	d := o.db(db)
	if d == nil {
		return
	}
	d.entries[e.ImageTimestamp] = e
	if e.IsDiscarded() {
		return
	}
	if e.KeyVersion == "" {
		o.s.violate(InvChains, db, fmt.Sprintf("image %s records no key version", e.Name()))
	}
	ok := true
	if _, err := catalog.Chain(d.list(), e.ImageTimestamp); err != nil {
		ok = false
		o.s.violate(InvChains, db, fmt.Sprintf("image %s cataloged with a broken chain: %v", e.Name(), err))
	} else if e.Type != events.Full {
		if p := d.entries[e.ParentTimestamp]; p.KeyVersion != e.KeyVersion {
			ok = false
			o.s.violate(InvChains, db, fmt.Sprintf("image %s (key version %s) builds on %s (key version %s): the chain spans two key versions",
				e.Name(), e.KeyVersion, p.Name(), p.KeyVersion))
		}
	}
	if ok {
		d.restorable = append(d.restorable, e.EndedAt)
	}
	if e.Type == events.Full && d.needFull != "" && e.KeyVersion == d.needFull {
		d.needFull = ""
	}
	if slot, ok := d.runSlot[e.RunID]; ok {
		d.slotDone[slot] = e.RunID
	}
	if t, err := time.Parse(catalog.TimestampLayout, e.ImageTimestamp); err == nil {
		d.taken = append(d.taken, t)
	}
}

func (d *dbOracle) list() []catalog.Entry {
	out := make([]catalog.Entry, 0, len(d.entries))
	for _, e := range d.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, catalog.Compare)
	return out
}

// entryDeleted checks the deletion of db's image ts by the running invocation.
func (o *oracle) entryDeleted(db, ts string) {
	d := o.db(db)
	if d == nil {
		return
	}
	e, ok := d.entries[ts]
	if !ok {
		return
	}
	now := o.s.now()
	list := d.list()
	who := "an operator's delete"
	retention := o.s.cur != nil && strings.HasPrefix(o.s.cur.kind, "completion")
	switch {
	case retention && d.opDeleting[ts]:
		who, retention = "an operator's delete (finished by the next pruner)", false
	case retention:
		who = "retention"
	}
	delete(d.opDeleting, ts)
	bad := func(format string, args ...any) {
		o.s.violate(InvRetention, db, fmt.Sprintf("%s deleted %s: ", who, e.Name())+fmt.Sprintf(format, args...))
	}
	if !e.IsDiscarded() {
		for _, c := range list {
			if !c.IsDiscarded() && c.ParentTimestamp == ts {
				bad("%s builds on it", c.Name())
			}
		}
		for _, id := range sortedKeys(d.using) {
			if slices.Contains(d.using[id], ts) {
				bad("running restore %s uses it", id)
			}
		}
		if plan, err := catalog.PlanRestore(list, time.Time{}, nil); err == nil && inPlan(plan, ts) {
			bad("it is on the newest restorable chain (target %s)", plan.Target)
		}
		if retention {
			cutoff := now.Add(-time.Duration(d.pol.Retention.KeepDays) * 24 * time.Hour)
			if d.pol.Retention.KeepDays > 0 && !e.EndedAt.Before(cutoff) {
				bad("it ended inside the %d-day point-in-time window", d.pol.Retention.KeepDays)
			}
			if plan, err := catalog.PlanRestore(list, cutoff, nil); d.pol.Retention.KeepDays > 0 && err == nil && inPlan(plan, ts) {
				bad("a restore to the start of the point-in-time window needs it (target %s)", plan.Target)
			}
			if e.Type == events.Full && e.Scope == catalog.ScopeDatabase && countFulls(list) <= max(d.pol.Retention.KeepFulls, catalog.MinKeepFulls) {
				bad("only %d full backups were left (keep_fulls %d)", countFulls(list), d.pol.Retention.KeepFulls)
			}
		}
	}
	delete(d.entries, ts)
}

func inPlan(p catalog.RestorePlan, ts string) bool {
	return slices.ContainsFunc(p.Images, func(e catalog.Entry) bool { return e.ImageTimestamp == ts })
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// restoreUses records that restore id of db uses the images of plan (its lease shows in
// listings, a retention pass that missed it is over, and it found them all cataloged).
func (o *oracle) restoreUses(db, id string, plan catalog.RestorePlan) {
	if d := o.db(db); d != nil {
		for _, e := range plan.Images {
			d.using[id] = append(d.using[id], e.ImageTimestamp)
		}
	}
}

// restoreDone records that restore id of db ended.
func (o *oracle) restoreDone(db, id string) {
	if d := o.db(db); d != nil {
		delete(d.using, id)
	}
}

// started checks a run's first start at the executor. view is what the invocation starting it
// last saw of the database's state; active are the database's jobs that have not ended.
func (o *oracle) started(run events.BackupStarted, view *viewedState, active []string) {
	d := o.db(run.Database)
	if d == nil {
		return
	}
	db := run.Database
	if view != nil && view.window {
		o.s.violate(InvRotationHold, db, fmt.Sprintf("run %s started by %q, which saw the rotation window open", run.RunID, o.s.cur.name))
	}
	if view != nil && view.blocked {
		o.s.violate(InvRotationHold, db, fmt.Sprintf("run %s started by %q, which saw the key not active", run.RunID, o.s.cur.name))
	}
	if len(active) > 0 {
		sort.Strings(active)
		o.s.violate(InvOneRun, db, fmt.Sprintf("run %s started while %s had not ended", run.RunID, strings.Join(active, ", ")))
	}
	if d.needFull != "" && run.Type != events.Full {
		o.s.violate(InvFullAfterWindow, db, fmt.Sprintf("run %s is %s, but no full has been taken under key version %s since its window closed", run.RunID, run.Type, d.needFull))
	}
	if !strings.HasSuffix(run.RunID, "-req") {
		if by, ok := d.slotDone[run.Slot]; ok {
			o.s.violate(InvSlotOnce, db, fmt.Sprintf("run %s started for slot %s, which %s already backed up", run.RunID, run.Slot.Format(time.RFC3339), by))
		}
		d.runSlot[run.RunID] = run.Slot
	}
}

// began records a job's backup beginning.
func (o *oracle) began(j *job) {
	d := o.db(j.run.Database)
	d.attempts++
	d.jobs = append(d.jobs, j)
	if j.att.Rewrap {
		d.rewrapFail++
	}
	if j.att.Class != "" || j.att.Hang {
		d.failures++
	}
}

// cleanTick checks, after a clean tick that began at t0, that it did what a tick must.
func (o *oracle) cleanTick(t0 time.Time) {
	now := o.s.now()
	for _, name := range o.s.names {
		d := o.dbs[name]
		st := o.s.cos.stored(name)
		if st == nil {
			continue
		}
		if r := st.Run; r != nil {
			if r.LeaseUntil.Before(t0) {
				o.s.violate(InvOutcomeLost, name, fmt.Sprintf("run %s still in flight after a clean tick at %s, past its lease (%s)", r.ID,
					t0.Format(time.RFC3339), r.LeaseUntil.Format(time.RFC3339)))
			}
			if at, ok := d.recorded[r.ID]; ok && at.Before(t0) {
				o.s.violate(InvOutcomeLost, name, fmt.Sprintf("run %s still in flight after a clean tick at %s; its outcome was recorded at %s", r.ID,
					t0.Format(time.RFC3339), at.Format(time.RFC3339)))
			}
		}
		for _, a := range d.alerts {
			if !a.sent && !a.coalesced && a.raised.Before(t0) {
				o.s.violate(InvAlertDelivered, name, fmt.Sprintf("alert %s (%s, raised %s) still undelivered after a clean tick at %s", a.id, a.reason,
					a.raised.Format(time.RFC3339), t0.Format(time.RFC3339)))
				a.coalesced = true // reported once
			}
		}
		d.alerts = slices.DeleteFunc(d.alerts, func(a *alertRec) bool { return a.sent || a.coalesced })
		o.checkRPO(d, st, t0, now)
	}
}

// checkRPO checks db's restorable point at a clean tick.
func (o *oracle) checkRPO(d *dbOracle, st *state.State, t0, now time.Time) {
	if t0.Sub(o.s.tr.Start) < rpoWarmup {
		return
	}
	last := o.s.tr.Start
	if n := len(d.restorable); n > 0 {
		last = d.restorable[n-1]
	}
	age := t0.Sub(last)
	if age <= d.rpoLimit {
		return
	}
	explained := st.Window != nil || st.Key.Blocked || st.Run != nil || st.NextRetry != nil || st.ConsecutiveFailures > 0 ||
		(st.LastDecision != nil && st.LastDecision.Action == "defer")
	if !explained {
		o.s.violate(InvRPO, d.name, fmt.Sprintf("newest restorable point is %s old at %s (RPO %s), and the state documents no hold (last decision: %s)",
			age.Round(time.Minute), t0.Format(time.RFC3339), d.rpoLimit.Round(time.Minute), lastDecision(st)))
	}
}

func lastDecision(st *state.State) string {
	if st.LastDecision == nil {
		return "none"
	}
	return st.LastDecision.Action + ": " + st.LastDecision.Reason
}

// audit checks every kept chain at the end of the run.
func (o *oracle) audit() {
	for _, name := range o.s.names {
		d := o.dbs[name]
		list := d.list()
		for _, e := range list {
			if e.IsDiscarded() {
				continue
			}
			if _, err := catalog.Chain(list, e.ImageTimestamp); err != nil {
				o.s.violate(InvChains, name, fmt.Sprintf("image %s has a broken chain at the end of the run: %v", e.Name(), err))
			}
		}
	}
}

// operatorDeletes records that an operator's delete of db's image ts begins.
func (o *oracle) operatorDeletes(db, ts string) {
	d := o.db(db)
	if d == nil {
		return
	}
	if d.opDeleting == nil {
		d.opDeleting = map[string]bool{}
	}
	d.opDeleting[ts] = true
}

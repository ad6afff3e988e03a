package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

const fleetYAML = `version: 1
defaults: {executor: db2cli}
databases:
  - name: db1
    instance: x
    key_crn: crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001
    schedules:
      full: "0 2 * * 0"
      incremental: "0 2 * * 1-6"
      delta: "0 14 * * *"
`

func testDB(t *testing.T) config.Database {
	t.Helper()
	f, err := config.Load([]byte(fleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	return f.Databases[0]
}

// Sunday 2026-11-22 is a full day; Monday 2026-11-23 an incremental day.
var (
	sun0205 = time.Date(2026, 11, 22, 2, 5, 0, 0, time.UTC)
	mon0205 = time.Date(2026, 11, 23, 2, 5, 0, 0, time.UTC)
	mon0200 = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	mon1405 = time.Date(2026, 11, 23, 14, 5, 0, 0, time.UTC)
)

func withSuccess(s *state.State) *state.State {
	s.LastSuccess = &state.Outcome{RunID: "r0", Type: events.Full, At: sun0205}
	s.Slots = map[events.BackupType]time.Time{
		events.Full:        time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC),
		events.Incremental: time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC),
		events.Delta:       time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC),
	}
	return s
}

func TestDecide(t *testing.T) {
	db := testDB(t)
	tests := []struct {
		name       string
		state      func() *state.State
		now        time.Time
		wantAction Action
		wantType   events.BackupType
		wantReason string
	}{
		{"new database takes a full first", func() *state.State { return state.New("db1", db.KeyCRN) }, mon0205, Start, events.Full, "no full backup yet"},
		{"incremental slot due", func() *state.State { return withSuccess(state.New("db1", db.KeyCRN)) }, mon0205, Start, events.Incremental, "incremental slot 2026-11-23T02:00:00Z"},
		{"delta slot due", func() *state.State {
			s := withSuccess(state.New("db1", db.KeyCRN))
			s.Slots[events.Incremental] = mon0200
			return s
		}, mon1405, Start, events.Delta, "delta slot"},
		{"slot already taken", func() *state.State {
			s := withSuccess(state.New("db1", db.KeyCRN))
			s.Slots[events.Incremental] = mon0200
			return s
		}, mon0205, Idle, "", "nothing due"},
		{"need full upgrades incremental", func() *state.State {
			s := withSuccess(state.New("db1", db.KeyCRN))
			s.NeedFull, s.NeedFullReason = true, "new key version 2"
			return s
		}, mon0205, Start, events.Full, "taken as full (new key version 2)"},
		{"rotation window defers", func() *state.State {
			s := withSuccess(state.New("db1", db.KeyCRN))
			s.Window = &state.RotationWindow{ToVersion: "2", OpenedAt: mon0200, MaxCloseAt: mon0200.Add(4 * time.Hour)}
			return s
		}, mon0205, Defer, events.Incremental, ReasonRotationWindow},
		{"run in flight defers", func() *state.State {
			s := withSuccess(state.New("db1", db.KeyCRN))
			s.Run = &state.Run{ID: "r1"}
			return s
		}, mon0205, Defer, events.Incremental, ReasonRunInFlight},
		{"blocked key defers before anything", func() *state.State {
			s := withSuccess(state.New("db1", db.KeyCRN))
			s.Key.Blocked, s.Key.State = true, events.KeySuspended
			s.Window = &state.RotationWindow{ToVersion: "2"}
			return s
		}, mon0205, Defer, events.Incremental, "key not active (suspended)"},
		{"backoff defers a due slot", func() *state.State {
			s := withSuccess(state.New("db1", db.KeyCRN))
			s.NextRetry = &state.Retry{At: mon0205.Add(time.Hour), Type: events.Delta, Attempt: 2}
			return s
		}, mon0205, Defer, events.Incremental, ReasonBackoff},
		{"retry due with nothing scheduled", func() *state.State {
			s := withSuccess(state.New("db1", db.KeyCRN))
			s.Slots[events.Incremental] = mon0200
			s.NextRetry = &state.Retry{At: mon0205, Type: events.Incremental, Slot: mon0200, Attempt: 2}
			return s
		}, mon0205, Start, events.Incremental, "retry 1 of incremental"},
		{"retry not yet due", func() *state.State {
			s := withSuccess(state.New("db1", db.KeyCRN))
			s.Slots[events.Incremental] = mon0200
			s.NextRetry = &state.Retry{At: mon0205.Add(time.Minute), Type: events.Incremental, Attempt: 2}
			return s
		}, mon0205, Idle, "", "retry of incremental"},
		{"due full beats a due delta retry", func() *state.State {
			s := withSuccess(state.New("db1", db.KeyCRN))
			s.Slots[events.Full] = time.Date(2026, 11, 15, 2, 0, 0, 0, time.UTC)
			s.NextRetry = &state.Retry{At: sun0205.Add(-time.Hour), Type: events.Delta, Attempt: 2}
			return s
		}, sun0205, Start, events.Full, "full slot"},
		{"only the latest missed slot runs", func() *state.State {
			return withSuccess(state.New("db1", db.KeyCRN))
		}, mon0205.Add(30 * time.Hour), Start, events.Incremental, "incremental slot 2026-11-24T02:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.state()
			before := *s
			d := Decide(s, db, tc.now)
			if d.Action != tc.wantAction || d.Type != tc.wantType || !strings.Contains(d.Reason, tc.wantReason) {
				t.Fatalf("Decide = %s %s %q; want %s %s containing %q", d.Action, d.Type, d.Reason, tc.wantAction, tc.wantType, tc.wantReason)
			}
			if s.Revision != before.Revision || s.Run != before.Run || s.NextRetry != before.NextRetry {
				t.Fatal("Decide changed the state")
			}
		})
	}
}

func TestFullCoversLowerSlots(t *testing.T) {
	db := testDB(t)
	s := withSuccess(state.New("db1", db.KeyCRN))
	s.NeedFull = true
	d := Decide(s, db, mon1405)
	if d.Type != events.Full || d.Covers[events.Incremental] != mon0200 || d.Covers[events.Delta].Hour() != 14 {
		t.Fatalf("decision %+v does not cover the due incremental and delta slots", d)
	}
}

func TestBackoff(t *testing.T) {
	r := config.BuiltinDefaults().Retry
	want := []time.Duration{30 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 2 * time.Hour, 2 * time.Hour}
	for n, w := range want {
		if got := Backoff(r, n); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, w)
		}
	}
	if got := Backoff(r, 10000); got != r.Max {
		t.Errorf("Backoff(huge) = %v, want cap %v", got, r.Max)
	}
}

func TestRetryAfterFailure(t *testing.T) {
	db := testDB(t)
	run := state.Run{ID: "r", Type: events.Delta, Slot: mon0200, Attempt: 1}
	tests := []struct {
		class     events.FailureClass
		failures  int
		wantRetry time.Duration // 0: no retry
		wantAlert bool
	}{
		{events.Transient, 1, 30 * time.Minute, false},
		{events.Transient, 2, time.Hour, true}, // threshold 2
		{events.Rotation, 3, 2 * time.Hour, false},
		{events.Transient, 5, 0, true}, // max attempts
		{events.Configuration, 1, 0, true},
		{events.Permanent, 1, 0, true},
	}
	for _, tc := range tests {
		r, alert := RetryAfterFailure(db, run, tc.class, tc.failures, mon0205)
		got := time.Duration(0)
		if r != nil {
			got = r.At.Sub(mon0205)
			if r.Attempt != 2 || r.Type != events.Delta || !r.Slot.Equal(mon0200) {
				t.Errorf("%s/%d: retry %+v does not continue the run", tc.class, tc.failures, r)
			}
		}
		if got != tc.wantRetry || alert != tc.wantAlert {
			t.Errorf("%s/%d: retry in %v alert %v; want %v %v", tc.class, tc.failures, got, alert, tc.wantRetry, tc.wantAlert)
		}
	}
}

func TestCloseWindow(t *testing.T) {
	w := state.RotationWindow{OpenedAt: mon0200, MinCloseAt: mon0200.Add(15 * time.Minute), MaxCloseAt: mon0200.Add(4 * time.Hour)}
	tests := []struct {
		rewrapped     bool
		at            time.Duration
		close, confir bool
	}{
		{true, 10 * time.Minute, false, false},
		{true, 15 * time.Minute, true, true},
		{false, 3 * time.Hour, false, false},
		{false, 4 * time.Hour, true, false},
		{true, 5 * time.Hour, true, true},
	}
	for _, tc := range tests {
		c, ok := CloseWindow(w, tc.rewrapped, mon0200.Add(tc.at))
		if c != tc.close || ok != tc.confir {
			t.Errorf("rewrapped=%v at +%v: close=%v confirmed=%v", tc.rewrapped, tc.at, c, ok)
		}
	}
}

func TestWindowBoundsGrowWithSize(t *testing.T) {
	db := testDB(t)
	_, max := WindowBounds(db, mon0200)
	if max.Sub(mon0200) != 4*time.Hour {
		t.Errorf("small db max = %v", max.Sub(mon0200))
	}
	db.Size = 2 << 40
	_, max = WindowBounds(db, mon0200)
	if max.Sub(mon0200) != 8*time.Hour {
		t.Errorf("large db max = %v", max.Sub(mon0200))
	}
}

func TestRunIDStable(t *testing.T) {
	if got := RunID("db1", events.Full, mon0200, 2); got != "db1-full-20261123T020000Z-a2" {
		t.Fatalf("RunID = %q", got)
	}
}

func TestDueSlot(t *testing.T) {
	db := testDB(t)
	daily, _ := db.Schedule(events.Delta) // 14:00 every day
	tests := []struct {
		name      string
		last, now time.Time
		catchUp   time.Duration
		want      time.Time
	}{
		{"first slot", time.Time{}, mon1405, 24 * time.Hour, mon1405.Add(-5 * time.Minute)},
		{"taken", mon1405.Add(-5 * time.Minute), mon1405, 24 * time.Hour, time.Time{}},
		{"not yet", time.Time{}, mon1405.Add(-10 * time.Minute), time.Hour, time.Time{}},
		{"beyond catch-up", time.Time{}, mon1405.Add(2 * time.Hour), time.Hour, time.Time{}},
		{"latest of several", mon1405.Add(-72 * time.Hour), mon1405, 96 * time.Hour, mon1405.Add(-5 * time.Minute)},
	}
	for _, tc := range tests {
		got, ok := DueSlot(daily, tc.last, tc.now, tc.catchUp)
		if !got.Equal(tc.want) || ok == tc.want.IsZero() {
			t.Errorf("%s: DueSlot = %v %v, want %v", tc.name, got, ok, tc.want)
		}
	}
}

// A tick that starts a run cancels the run whose lease expired last first, in case the cancel
// decided at its expiry was lost (found by test/sim TestCrashBeforeCancellingAnExpiredRun).
func TestTickCancelsTheLastExpiredRunBeforeStarting(t *testing.T) {
	db := testDB(t)
	st := withSuccess(state.New("db1", db.KeyCRN))
	st.LastExpired = &state.Run{ID: "db1-delta-20261122T140000Z-a1", Type: events.Delta, StartedAt: sun0205.Add(12 * time.Hour), LeaseUntil: sun0205.Add(18 * time.Hour)}
	idle, old := st.Clone(), st.Clone()
	r := Tick(st, db, TickInput{Now: mon0205})
	if r.Start == nil || r.Cancel == nil || r.Cancel.ID != st.LastExpired.ID {
		t.Fatalf("start %+v, cancel %+v: want the start and the cancel of %s", r.Start, r.Cancel, st.LastExpired.ID)
	}
	// Past MaxRunTime the expired run cannot be running any more: nothing cancelled.
	old.LastExpired.StartedAt = mon0205.Add(-MaxRunTime)
	if r := Tick(old, db, TickInput{Now: mon0205}); r.Start == nil || r.Cancel != nil {
		t.Fatalf("expired run older than MaxRunTime: start %+v, cancel %+v", r.Start, r.Cancel)
	}
	// Nothing to start: nothing cancelled.
	idle.Slots[events.Incremental] = mon0200
	if r := Tick(idle, db, TickInput{Now: mon0205}); r.Start != nil || r.Cancel != nil {
		t.Fatalf("idle tick: start %+v, cancel %+v", r.Start, r.Cancel)
	}
}

// No backup starts before a key version is known when Key Protect was asked and did not answer
// (found by test/sim TestKeyProtectDownAtTheFirstTick); without polling, the schedule runs.
func TestTickDefersUntilAKeyVersionIsKnown(t *testing.T) {
	db := testDB(t)
	r := Tick(state.New("db1", db.KeyCRN), db, TickInput{Now: sun0205, KeyUnavailable: true})
	if r.Decision.Action != Defer || !strings.HasPrefix(r.Decision.Reason, ReasonKeyVersionUnknown) || r.Start != nil {
		t.Fatalf("Key Protect down, no version yet: %+v", r.Decision)
	}
	if r := Tick(state.New("db1", db.KeyCRN), db, TickInput{Now: sun0205, Key: &KeyStatus{Version: "v1", State: events.KeyActive}}); r.Start == nil || r.Start.KeyVersion != "v1" {
		t.Fatalf("Key Protect answered: %+v", r.Decision)
	}
	if r := Tick(state.New("db1", db.KeyCRN), db, TickInput{Now: sun0205}); r.Start == nil {
		t.Fatalf("no polling: %+v", r.Decision)
	}
	known := state.New("db1", db.KeyCRN)
	known.Key.Version = "v1"
	if r := Tick(known, db, TickInput{Now: sun0205, KeyUnavailable: true}); r.Start == nil || r.Start.KeyVersion != "v1" {
		t.Fatalf("Key Protect down, version known: %+v", r.Decision)
	}
}

// A rotation failure (Db2 could not reach its keys: still re-wrapping after the window closed at
// its maximum) reopens the hold for the key's version, so that the retry waits for the re-wrap
// instead of failing on the ordinary backoff (found by test/sim TestSlowRewrapAfterTheWindow).
func TestRotationFailureReopensTheWindow(t *testing.T) {
	db := testDB(t)
	run := state.Run{ID: "db1-full-20261122T020000Z-a1", Type: events.Full, Slot: sun0205, Attempt: 1}
	st := withSuccess(state.New("db1", db.KeyCRN))
	st.Key.Version = "v2"
	st.Run = &run
	ApplyFailure(st, db, run, events.Rotation, "SQL1728N", mon0205)
	w := st.Window
	if w == nil || w.ToVersion != "v2" || !w.MinCloseAt.Equal(mon0205.Add(db.Rotation.Settle)) || !w.MaxCloseAt.Equal(mon0205.Add(db.MaxWindow())) {
		t.Fatalf("window after a rotation failure: %+v", w)
	}
	if st.NextRetry == nil {
		t.Fatal("no retry planned")
	}
	if reason, held := Hold(st); !held || !strings.HasPrefix(reason, ReasonRotationWindow) {
		t.Fatalf("Hold = %q, %v: want the rotation window", reason, held)
	}
	// The window closes once the registrations report the version (after the settle time).
	r := Tick(st, db, TickInput{Now: mon0205.Add(time.Hour), Listed: true, Registrations: []string{"v2"}})
	if st.Window != nil || !st.NeedFull || r.Decision.Action == Defer && strings.HasPrefix(r.Decision.Reason, ReasonRotationWindow) {
		t.Fatalf("after re-wrap: window %+v, need full %v, decision %+v", st.Window, st.NeedFull, r.Decision)
	}
	// Other failures open nothing; an open window is left as it is.
	other := withSuccess(state.New("db1", db.KeyCRN))
	other.Run = &run
	ApplyFailure(other, db, run, events.Transient, "SQL2079N", mon0205)
	if other.Window != nil {
		t.Fatalf("window after a transient failure: %+v", other.Window)
	}
	open := withSuccess(state.New("db1", db.KeyCRN))
	open.Window = &state.RotationWindow{ToVersion: "v3", OpenedAt: sun0205, MaxCloseAt: sun0205.Add(4 * time.Hour)}
	ApplyFailure(open, db, run, events.Rotation, "SQL1728N", mon0205)
	if open.Window.ToVersion != "v3" || !open.Window.OpenedAt.Equal(sun0205) {
		t.Fatalf("open window changed: %+v", open.Window)
	}
}

// A run whose start was not confirmed is not asked for again once a rotation window opened: it
// would back up while Db2 re-wraps its keys. It is closed as failed (class rotation) and
// cancelled; its retry waits for the window (found by test/sim, hostile seed 11).
func TestUnconfirmedStartIsNotAskedAgainInAWindow(t *testing.T) {
	db := testDB(t)
	st := withSuccess(state.New("db1", db.KeyCRN))
	st.Key.Version, st.Key.RotatedAt = "v1", sun0205.Add(-24*time.Hour)
	run := NewRun(st, db, events.Incremental, db.Mode, mon0200, 1, mon0205)
	st.Run = &run
	r := Tick(st, db, TickInput{Now: mon0205.Add(15 * time.Minute), Key: &KeyStatus{Version: "v2", State: events.KeyActive, RotatedAt: mon0205.Add(5 * time.Minute)}})
	switch {
	case st.Window == nil:
		t.Fatal("the rotation opened no window")
	case r.Start != nil:
		t.Fatalf("start of %s asked again inside the window", r.Start.ID)
	case r.Cancel == nil || r.Cancel.ID != run.ID:
		t.Fatalf("cancel %+v, want %s", r.Cancel, run.ID)
	case st.Run != nil || st.LastFailure == nil || st.LastFailure.Class != events.Rotation || st.NextRetry == nil:
		t.Fatalf("run %+v, last failure %+v, retry %+v: want the run closed as a rotation failure, with a retry", st.Run, st.LastFailure, st.NextRetry)
	case st.LastExpired == nil || st.LastExpired.ID != run.ID:
		// The cancel may be lost (a crash after the state write) and the run may have begun
		// after all: its late outcome must be applied, not ignored while a retry backs the
		// slot up again (hostile seed 8 of the simulated year, slot-once).
		t.Fatalf("last expired %+v, want %s, so that its late outcome counts", st.LastExpired, run.ID)
	}
	late := events.BackupCompleted{RunID: run.ID, Database: "db1", Type: run.Type, Mode: run.Mode, KeyCRN: db.KeyCRN, KeyVersion: "v1",
		ImageTimestamp: "20261123023000", StartedAt: mon0205.Add(20 * time.Minute), EndedAt: mon0205.Add(30 * time.Minute), Verified: true}
	if note, _ := Completed(st, db, late, mon0205.Add(40*time.Minute)); !strings.Contains(note, "late") {
		t.Errorf("late completion of %s: %q, want it applied as a late outcome", run.ID, note)
	}
	// Without a hold, an unconfirmed start is asked for again (the same run).
	st = withSuccess(state.New("db1", db.KeyCRN))
	st.Key.Version = "v1"
	st.Run = &run
	if r := Tick(st, db, TickInput{Now: mon0205.Add(15 * time.Minute), Key: &KeyStatus{Version: "v1", State: events.KeyActive}}); r.Start == nil || r.Start.ID != run.ID {
		t.Fatalf("start %+v, want %s asked again", r.Start, run.ID)
	}
}

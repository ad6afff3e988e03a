package policy

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The decision tables: each case is a state, what the handler observed, and the step; the
// golden file holds the decision, the effects and what changed in the state, one block a case.
// A change of behaviour shows up as a diff of testdata/*.golden (go test -update rewrites them).

var (
	t0   = time.Date(2026, 11, 23, 2, 5, 0, 0, time.UTC) // Monday, an incremental slot at 02:00
	key1 = "v1"
	key2 = "v2"
)

func base() *state.State {
	s := withSuccess(state.New("db1", ""))
	s.Key.Version, s.Key.State, s.Key.RotatedAt = key1, events.KeyActive, t0.Add(-30*24*time.Hour)
	return s
}

func inFlight(s *state.State, started bool, age time.Duration) *state.State {
	at := t0.Add(-age)
	s.Run = &state.Run{ID: "db1-incremental-20261123T020000Z-a1", Type: events.Incremental, Mode: events.Online, Slot: t0.Add(-5 * time.Minute),
		Attempt: 1, StartedAt: at, LeaseUntil: at.Add(6 * time.Hour), KeyVersion: key1, Started: started}
	s.Slots[events.Incremental] = s.Run.Slot
	s.LastDecision = &state.Decision{At: at, Action: "start", Type: events.Incremental, Reason: "incremental slot 2026-11-23T02:00:00Z"}
	return s
}

func completion(run string) events.BackupCompleted {
	return events.BackupCompleted{Database: "db1", RunID: run, Type: events.Incremental, Mode: events.Online, StartedAt: t0.Add(-time.Hour),
		EndedAt: t0.Add(-30 * time.Minute), ImageTimestamp: "20261123013000", KeyCRN: "k", KeyVersion: key1, Verified: true}
}

func TestTickDecisionTable(t *testing.T) {
	db := testDB(t)
	db.KeyCRN = ""
	tests := []struct {
		name  string
		state func() *state.State
		in    TickInput
	}{
		{"idle: nothing due, the decision is not rewritten", func() *state.State {
			s := base()
			s.Slots[events.Incremental] = t0.Add(-5 * time.Minute)
			s.LastDecision = &state.Decision{At: t0.Add(-time.Hour), Action: "idle", Reason: "nothing due"}
			return s
		}, TickInput{Now: t0}},
		{"start the due incremental", base, TickInput{Now: t0}},
		{"first sighting of the key", func() *state.State { s := base(); s.Key.Version = ""; return s },
			TickInput{Now: t0, Key: &KeyStatus{Version: key1, State: events.KeyActive, RotatedAt: t0.Add(-30 * 24 * time.Hour)}}},
		{"a poll finds a rotation: window opens, key.rotated announced, the slot waits", base,
			TickInput{Now: t0, Key: &KeyStatus{Version: key2, State: events.KeyActive, RotatedAt: t0.Add(-time.Minute)}}},
		{"window closes on confirmed re-wrap after the settle time: next backup full", func() *state.State {
			s := base()
			s.Window = &state.RotationWindow{FromVersion: key1, ToVersion: key2, RotatedAt: t0.Add(-time.Hour), OpenedAt: t0.Add(-time.Hour),
				MinCloseAt: t0.Add(-45 * time.Minute), MaxCloseAt: t0.Add(3 * time.Hour)}
			return s
		}, TickInput{Now: t0, Listed: true, Registrations: []string{key2}}},
		{"window stays while one registration lags", func() *state.State {
			s := base()
			s.Window = &state.RotationWindow{FromVersion: key1, ToVersion: key2, RotatedAt: t0.Add(-time.Hour), OpenedAt: t0.Add(-time.Hour),
				MinCloseAt: t0.Add(-45 * time.Minute), MaxCloseAt: t0.Add(3 * time.Hour)}
			return s
		}, TickInput{Now: t0, Listed: true, Registrations: []string{key2, key1}}},
		{"window closes unconfirmed at its maximum and alerts", func() *state.State {
			s := base()
			s.Window = &state.RotationWindow{FromVersion: key1, ToVersion: key2, RotatedAt: t0.Add(-5 * time.Hour), OpenedAt: t0.Add(-5 * time.Hour),
				MinCloseAt: t0.Add(-4 * time.Hour), MaxCloseAt: t0.Add(-time.Minute)}
			return s
		}, TickInput{Now: t0}},
		{"a version-less window gets its target from the poll", func() *state.State {
			s := base()
			s.Window = &state.RotationWindow{FromVersion: key1, RotatedAt: t0.Add(-10 * time.Minute), OpenedAt: t0.Add(-10 * time.Minute),
				MinCloseAt: t0.Add(5 * time.Minute), MaxCloseAt: t0.Add(4 * time.Hour), DetectedBy: "cloud-logs"}
			return s
		}, TickInput{Now: t0, Key: &KeyStatus{Version: key2, State: events.KeyActive, RotatedAt: t0.Add(-10 * time.Minute)}}},
		{"run in flight: its recorded success is applied and published", func() *state.State { return inFlight(base(), true, time.Hour) },
			TickInput{Now: t0, Run: &RunEvidence{RunID: "db1-incremental-20261123T020000Z-a1", Outcome: completion("db1-incremental-20261123T020000Z-a1"), Recorded: true}}},
		{"run in flight: evidence of another run is ignored", func() *state.State { return inFlight(base(), true, time.Hour) },
			TickInput{Now: t0, Run: &RunEvidence{RunID: "other", Outcome: completion("other"), Recorded: true}}},
		{"run past its lease with no evidence: failure counted, remembered, cancelled", func() *state.State { return inFlight(base(), true, 7*time.Hour) },
			TickInput{Now: t0, Run: &RunEvidence{RunID: "db1-incremental-20261123T020000Z-a1"}}},
		{"run past its lease while the catalog cannot be read: left as it is", func() *state.State { return inFlight(base(), true, 7*time.Hour) },
			TickInput{Now: t0, Run: &RunEvidence{RunID: "db1-incremental-20261123T020000Z-a1", Unknown: true}}},
		{"start never confirmed: asked for again", func() *state.State { return inFlight(base(), false, 10*time.Minute) },
			TickInput{Now: t0, Run: &RunEvidence{RunID: "db1-incremental-20261123T020000Z-a1"}}},
		{"start just taken by another tick: left to it", func() *state.State { return inFlight(base(), false, 10*time.Second) },
			TickInput{Now: t0, Run: &RunEvidence{RunID: "db1-incremental-20261123T020000Z-a1"}}},
		{"key suspended: blocked and alerted", base, TickInput{Now: t0, Key: &KeyStatus{Version: key1, State: events.KeySuspended}}},
		{"key destroyed: the unrestorable alert names the images", func() *state.State {
			s := base()
			s.Key.State, s.Key.Blocked, s.Key.StateAt = events.KeyDestroyed, true, t0.Add(-time.Hour)
			return s
		}, TickInput{Now: t0, Unrestorable: &UnrestorableImages{Count: 12, First: []string{"20261122020000-full (key version v1)"}}}},
		{"key changed in the fleet policy: the old window goes", func() *state.State {
			s := base()
			s.Key.CRN = "old-key"
			s.Window = &state.RotationWindow{ToVersion: "old-2", OpenedAt: t0, MinCloseAt: t0, MaxCloseAt: t0.Add(time.Hour)}
			return s
		}, TickInput{Now: t0}},
		{"backoff holds the due slot", func() *state.State {
			s := base()
			s.NextRetry = &state.Retry{At: t0.Add(20 * time.Minute), Type: events.Delta, Slot: t0.Add(-time.Hour), Attempt: 2}
			return s
		}, TickInput{Now: t0}},
		{"a due retry runs", func() *state.State {
			s := base()
			s.Slots[events.Incremental] = t0.Add(-5 * time.Minute)
			s.NextRetry = &state.Retry{At: t0.Add(-time.Minute), Type: events.Incremental, Slot: t0.Add(-5 * time.Minute), Attempt: 2}
			return s
		}, TickInput{Now: t0}},
	}
	var out bytes.Buffer
	for _, tc := range tests {
		st := tc.state()
		if st.Key.CRN == "" {
			st.Key.CRN = db.KeyCRN
		}
		before := st.Clone()
		r := Tick(st, db, tc.in)
		fmt.Fprintf(&out, "== %s\n", tc.name)
		fmt.Fprintf(&out, "decision: %s %s %q\n", r.Decision.Action, r.Decision.Type, r.Decision.Reason)
		fmt.Fprintf(&out, "write: %v\n", r.Changed)
		if r.Start != nil {
			fmt.Fprintf(&out, "start: %s (key version %s)\n", r.Start.ID, r.Start.KeyVersion)
		}
		if r.Cancel != nil {
			fmt.Fprintf(&out, "cancel: %s\n", r.Cancel.ID)
		}
		for _, o := range r.Send {
			fmt.Fprintf(&out, "send: %s %s\n", o.Payload.EventType(), o.ID)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&out, "note: %s\n", n)
		}
		for _, d := range diff(before, st) {
			fmt.Fprintf(&out, "state: %s\n", d)
		}
		if !r.Changed && len(diff(before, st)) > 0 {
			t.Errorf("%s: the state changed but the step says no write is needed", tc.name)
		}
		out.WriteString("\n")
	}
	golden(t, "tick.golden", out.Bytes())
}

// diff lists the fields of the state that changed, with their new values.
func diff(a, b *state.State) []string {
	fields := map[string][2]string{
		"key":            {fmt.Sprintf("%+v", a.Key), fmt.Sprintf("%+v", b.Key)},
		"window":         {show(a.Window), show(b.Window)},
		"run":            {runID(a.Run), runID(b.Run)},
		"last_expired":   {runID(a.LastExpired), runID(b.LastExpired)},
		"last_success":   {show(a.LastSuccess), show(b.LastSuccess)},
		"last_failure":   {show(a.LastFailure), show(b.LastFailure)},
		"failures":       {fmt.Sprint(a.ConsecutiveFailures), fmt.Sprint(b.ConsecutiveFailures)},
		"next_retry":     {show(a.NextRetry), show(b.NextRetry)},
		"need_full":      {fmt.Sprintf("%v %q", a.NeedFull, a.NeedFullReason), fmt.Sprintf("%v %q", b.NeedFull, b.NeedFullReason)},
		"slots":          {fmt.Sprint(a.Slots), fmt.Sprint(b.Slots)},
		"pending_alerts": {alerts(a), alerts(b)},
		"last_decision":  {show(a.LastDecision), show(b.LastDecision)},
	}
	var out []string
	for k, v := range fields {
		if v[0] != v[1] {
			out = append(out, k+" = "+v[1])
		}
	}
	sort.Strings(out)
	return out
}

func show[T any](p *T) string {
	if p == nil {
		return "none"
	}
	return strings.ReplaceAll(fmt.Sprintf("%+v", *p), " +0000 UTC", "Z")
}

func runID(r *state.Run) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("%s started=%v suspect=%v", r.ID, r.Started, r.Suspect)
}

func alerts(s *state.State) string {
	var out []string
	for _, p := range s.PendingAlerts {
		out = append(out, fmt.Sprintf("[%s %s %s: %s]", p.ID, p.Alert.Severity, p.Alert.Reason, p.Alert.Message))
	}
	return strings.Join(out, " ")
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("decisions differ from %s (go test -update rewrites it after review):\n%s", path, got)
	}
}

func TestEventDecisionTable(t *testing.T) {
	db := testDB(t)
	run := "db1-incremental-20261123T020000Z-a1"
	failure := func(id string, discarded string) events.BackupFailed {
		return events.BackupFailed{Database: "db1", RunID: id, Type: events.Incremental, EndedAt: t0, Class: events.Transient, Code: "SQL2062N",
			Message: "media error", DiscardedImage: discarded}
	}
	rotation := func(v string, at time.Time, by string) events.KeyRotated {
		return events.KeyRotated{KeyCRN: db.KeyCRN, NewVersion: v, RotatedAt: at, DetectedBy: by}
	}
	tests := []struct {
		name  string
		state func() *state.State
		step  func(*state.State) (string, bool)
	}{
		{"completion of the run in flight", func() *state.State { return inFlight(base(), true, time.Hour) },
			func(s *state.State) (string, bool) { return Completed(s, db, completion(run), t0) }},
		{"completion of the run whose lease expired last", func() *state.State {
			s := inFlight(base(), true, time.Hour)
			s.LastExpired, s.Run, s.ConsecutiveFailures = s.Run, nil, 1
			return s
		}, func(s *state.State) (string, bool) { return Completed(s, db, completion(run), t0) }},
		{"completion of an unknown run", func() *state.State { s := base(); s.ConsecutiveFailures = 2; return s },
			func(s *state.State) (string, bool) { return Completed(s, db, completion("someone-else"), t0) }},
		{"completion already applied", func() *state.State {
			s := base()
			s.LastSuccess.RunID = run
			return s
		}, func(s *state.State) (string, bool) { return Completed(s, db, completion(run), t0) }},
		{"unverified completion of a suspect run", func() *state.State { s := inFlight(base(), true, time.Hour); s.Run.Suspect = true; return s },
			func(s *state.State) (string, bool) {
				c := completion(run)
				c.Verified = false
				return Completed(s, db, c, t0)
			}},
		{"failure of the run in flight at the alert threshold", func() *state.State { s := inFlight(base(), true, time.Hour); s.ConsecutiveFailures = 1; return s },
			func(s *state.State) (string, bool) { return Failed(s, db, failure(run, ""), t0) }},
		{"failure that discarded an image", func() *state.State { return inFlight(base(), true, time.Hour) },
			func(s *state.State) (string, bool) { return Failed(s, db, failure(run, "20261123020100"), t0) }},
		{"failure of a run no longer in flight", base, func(s *state.State) (string, bool) { return Failed(s, db, failure(run, ""), t0) }},
		{"rotation to a new version", base, func(s *state.State) (string, bool) { return Rotated(s, db, rotation(key2, t0, "cloud-logs"), t0) }},
		{"rotation to the version held", base, func(s *state.State) (string, bool) { return Rotated(s, db, rotation(key1, t0, "cloud-logs"), t0) }},
		{"stale rotation (older than the recorded one)", base, func(s *state.State) (string, bool) {
			return Rotated(s, db, rotation("v0", t0.Add(-60*24*time.Hour), "cloud-logs"), t0)
		}},
		{"version-less rotation", base, func(s *state.State) (string, bool) { return Rotated(s, db, rotation("", t0, "cloud-logs"), t0) }},
		{"rotation while a run is in flight", func() *state.State { return inFlight(base(), true, time.Hour) },
			func(s *state.State) (string, bool) { return Rotated(s, db, rotation(key2, t0, "poll"), t0) }},
		{"key disabled", base, func(s *state.State) (string, bool) { return KeyState(s, db, events.KeySuspended, t0) }},
		{"key state older than the recorded one", func() *state.State { s := base(); s.Key.StateAt = t0; return s },
			func(s *state.State) (string, bool) { return KeyState(s, db, events.KeySuspended, t0.Add(-time.Hour)) }},
		{"on-demand request", base, func(s *state.State) (string, bool) {
			r, refused := Request(s, db, events.BackupRequested{Database: "db1", Type: events.Delta, RequestedBy: "ops", Reason: "before the upgrade"}, t0)
			if r == nil {
				return refused, false
			}
			return "started " + r.ID + " requested by " + r.RequestedBy + ": " + r.Reason, true
		}},
		{"on-demand request during a window", func() *state.State {
			s := base()
			s.Window = &state.RotationWindow{ToVersion: key2, MaxCloseAt: t0.Add(time.Hour)}
			return s
		}, func(s *state.State) (string, bool) {
			r, refused := Request(s, db, events.BackupRequested{Database: "db1", Type: events.Full, RequestedBy: "ops"}, t0)
			return refused, r != nil
		}},
	}
	var out bytes.Buffer
	for _, tc := range tests {
		st := tc.state()
		if st.Key.CRN == "" {
			st.Key.CRN = db.KeyCRN
		}
		before := st.Clone()
		note, changed := tc.step(st)
		fmt.Fprintf(&out, "== %s\nnote: %s\nwrite: %v\n", tc.name, note, changed)
		for _, d := range diff(before, st) {
			fmt.Fprintf(&out, "state: %s\n", d)
		}
		if !changed && len(diff(before, st)) > 0 {
			t.Errorf("%s: the state changed but the step says no write is needed", tc.name)
		}
		out.WriteString("\n")
	}
	golden(t, "events.golden", out.Bytes())
}

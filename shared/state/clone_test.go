package state

import (
	"reflect"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// full returns a state with every field set, so that Clone's coverage can be checked by
// reflection: a field added to State without a deep copy makes TestCloneIsDeep fail.
func full() *State {
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	run := Run{ID: "r1", Type: events.Full, Mode: events.Online, Slot: t0, Attempt: 1, StartedAt: t0, LeaseUntil: t0.Add(time.Hour),
		KeyVersion: "v1", KeyCRN: "crn", Executor: "db2cli", Suspect: true, Started: true, StartAttempts: 1, StartError: "e", RequestedBy: "ops", Reason: "why"}
	exp := run
	exp.ID = "r0"
	return &State{SchemaVersion: 1, Revision: 3, Database: "db1", WriteID: "w",
		Key:    KeyInfo{CRN: "crn", Version: "v1", State: events.KeyActive, RotatedAt: t0, StateAt: t0, UnrestorableQueued: true},
		Window: &RotationWindow{FromVersion: "v1", ToVersion: "v2", RotatedAt: t0, OpenedAt: t0, MinCloseAt: t0, MaxCloseAt: t0, DetectedBy: "poll"},
		Run:    &run, LastExpired: &exp,
		LastSuccess: &Outcome{RunID: "r", Type: events.Full, At: t0}, LastFailure: &Outcome{RunID: "f", At: t0},
		ConsecutiveFailures: 2, NextRetry: &Retry{At: t0, Type: events.Delta, Slot: t0, Attempt: 2},
		NeedFull: true, NeedFullReason: "x",
		Slots:         map[events.BackupType]time.Time{events.Full: t0},
		Seen:          []string{"a", "b"},
		PendingAlerts: []PendingAlert{{ID: "p", Alert: events.Alert{Severity: events.Critical, Reason: "r", Message: "m", Related: []string{"x"}}, Count: 2}},
		LastDecision:  &Decision{At: t0, Action: "start", Reason: "r"},
		Restore:       &RestoreRun{ID: "d1", Drill: true, Target: "SCR", StartedAt: t0, LeaseUntil: t0},
		DrillSlot:     t0,
		LastDrill:     &DrillOutcome{ID: "d0", At: t0, Success: true, Seconds: 1},
		CheckAlerted:  []string{"backup age"},
		LastRefusal:   &Decision{At: t0, Action: "defer", Reason: "request by ops refused: run in flight (r1)"},
	}
}

func TestCloneIsDeep(t *testing.T) {
	s := full()
	// Every field is set, so a new field that full() does not set is noticed here.
	v := reflect.ValueOf(*s)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("full() leaves State.%s unset: set it, and deep-copy it in Clone", v.Type().Field(i).Name)
		}
	}
	c := s.Clone()
	if !reflect.DeepEqual(c, s) {
		t.Fatalf("clone differs:\n%+v\n%+v", c, s)
	}
	// Change everything reachable from the clone; the original must not move.
	c.Window.ToVersion, c.Run.ID, c.LastExpired.ID, c.LastSuccess.RunID, c.LastFailure.RunID = "z", "z", "z", "z", "z"
	c.NextRetry.Attempt, c.LastDecision.Reason, c.LastRefusal.Reason = 9, "z", "z"
	c.Slots[events.Delta] = time.Time{}
	c.Seen[0] = "z"
	c.PendingAlerts[0].Alert.Related[0] = "z"
	c.PendingAlerts[0].ID = "z"
	if !reflect.DeepEqual(s, full()) {
		t.Fatalf("changing the clone changed the original: %+v", s)
	}
	if (*State)(nil).Clone() != nil {
		t.Fatal("Clone(nil) is not nil")
	}
}

func BenchmarkClone(b *testing.B) {
	s := full()
	for range 60 {
		s.MarkSeen(time.Now().String())
	}
	b.Run("Clone", func(b *testing.B) {
		for b.Loop() {
			_ = s.Clone()
		}
	})
	b.Run("JSONRoundTrip", func(b *testing.B) {
		for b.Loop() {
			if _, err := cloneJSON(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// cloneJSON is the copy through the stored form that Clone replaced: the benchmark's floor.
func cloneJSON(st *State) (*State, error) {
	body, err := Encode(st)
	if err != nil {
		return nil, err
	}
	return Decode(body)
}

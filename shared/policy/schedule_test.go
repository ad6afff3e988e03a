package policy

import (
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

func TestNextSlot(t *testing.T) {
	f, err := config.Load([]byte(`version: 1
databases:
  - name: a
    instance: db2inst1@a
    executor: db2cli
    key_crn: crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001
    schedules: {full: "0 2 * * 0", incremental: "0 2 * * *", delta: "0 14 * * *"}
`))
	if err != nil {
		t.Fatal(err)
	}
	db := f.Databases[0]
	sat := time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC) // a Saturday
	cases := []struct {
		now  time.Time
		typ  events.BackupType
		want time.Time
	}{
		{sat, events.Full, time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)}, // Sunday 02:00: full and incremental, the full names it
		{sat.Add(-2 * time.Hour), events.Delta, time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC)},
		{time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC), events.Delta, time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)}, // strictly after now
		{time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC), events.Delta, time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)},
		{time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC), events.Incremental, time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		typ, at, ok := NextSlot(db, tc.now)
		if !ok || typ != tc.typ || !at.Equal(tc.want) {
			t.Errorf("NextSlot at %s = %s %s %v, want %s %s", tc.now, typ, at, ok, tc.typ, tc.want)
		}
	}
	if _, _, ok := NextSlot(config.Database{}, sat); ok {
		t.Error("a database without schedules has a next slot")
	}
}

func TestRefusedRequest(t *testing.T) {
	st := state.New("a", "crn")
	st.Run = &state.Run{ID: "a-full-x-a1"}
	hold, held := Hold(st)
	if !held {
		t.Fatal("no hold")
	}
	by := "keyguard-cli:alice (request 1f)"
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	req := events.BackupRequested{Database: "a", Type: events.Full, RequestedBy: by}
	if !Refused(st, req, hold, now) || Refused(st, req, hold, now.Add(time.Minute)) {
		t.Fatal("Refused: want a change the first time only")
	}
	if st.LastDecision == nil || st.LastDecision.Reason != Refusal(by, hold) || st.LastRefusal.At != now {
		t.Fatalf("recorded %+v / %+v", st.LastDecision, st.LastRefusal)
	}
	// The next tick replaces the last decision; the refusal stays findable.
	st.LastDecision = &state.Decision{At: now.Add(time.Minute), Action: string(Idle), Reason: "nothing due"}
	if got, ok := RefusedRequest(st, by); !ok || got != hold {
		t.Errorf("RefusedRequest = %q %v, want %q", got, ok, hold)
	}
	for _, other := range []string{"keyguard-cli:alice (request 2a)", "keyguard-cli:alice", ""} {
		if _, ok := RefusedRequest(st, other); ok {
			t.Errorf("the refusal of another request matched %q", other)
		}
	}
	if _, ok := RefusedRequest(state.New("a", "crn"), by); ok {
		t.Error("a state without refusals matched")
	}
}

// TestOutcomeKeepsWhoAskedAndWhy: the run an operator requested keeps its requester and reason
// through its outcome, success or failure.
func TestOutcomeKeepsWhoAskedAndWhy(t *testing.T) {
	db := testDB(t)
	req := events.BackupRequested{Database: "db1", Type: events.Full, RequestedBy: "keyguard-cli:alice (request 1f)", Reason: "before the upgrade"}
	for _, ok := range []bool{true, false} {
		st := withSuccess(state.New("db1", db.KeyCRN))
		run, refused := Request(st, db, req, mon1405)
		if run == nil {
			t.Fatalf("refused: %s", refused)
		}
		var o *state.Outcome
		if ok {
			ApplySuccess(st, *run, "20261123140500", "", mon1405.Add(time.Hour))
			o = st.LastSuccess
		} else {
			ApplyFailure(st, db, *run, events.Transient, "media error", mon1405.Add(time.Hour))
			o = st.LastFailure
		}
		if o.RunID != run.ID || o.RequestedBy != req.RequestedBy || o.Reason != req.Reason {
			t.Errorf("success %v: outcome %+v, want the request's requester and reason", ok, o)
		}
	}
}

package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// TestWorstCaseStateStaysUnderBudget fills every list of a state past its bound and every text
// field past MaxText through Update, as a year of failures with Event Notifications refusing
// every send would, and checks the stored object stays under BudgetBytes.
func TestWorstCaseStateStaysUnderBudget(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	long := strings.Repeat("é", 3000) // 6000 bytes of two-byte runes
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	db := strings.Repeat("d", 63)
	crn := "crn:v1:bluemix:public:kms:us-south:a/" + strings.Repeat("0", 32) + ":" + strings.Repeat("f", 36) + ":key:" + strings.Repeat("e", 36)
	for day := range 365 {
		at := t0.Add(time.Duration(day) * 24 * time.Hour)
		_, err := Update(ctx, store, db, func() *State { return New(db, crn) }, func(st *State) error {
			run := Run{ID: strings.Repeat("r", 120) + fmt.Sprint(day), Type: events.Incremental, Mode: events.Online, Slot: at, Attempt: day,
				StartedAt: at, LeaseUntil: at.Add(time.Hour), KeyVersion: strings.Repeat("v", 36), KeyCRN: crn, Executor: "db2cli",
				StartError: long, Reason: long, RequestedBy: long}
			st.Run, st.LastExpired = &run, &run
			st.LastFailure = &Outcome{RunID: run.ID, Type: run.Type, At: at, Message: long, KeyVersion: run.KeyVersion, Class: events.Transient,
				RequestedBy: long, Reason: long}
			st.LastSuccess = &Outcome{RunID: run.ID, Type: run.Type, At: at, Message: long, Image: "20260101000000", RequestedBy: long, Reason: long}
			st.NeedFull, st.NeedFullReason = true, long
			st.LastDecision = &Decision{At: at, Action: "defer", Reason: long}
			// Drill ids are policy.DrillID's: "drill-" and a UTC slot, 22 bytes; targets are Db2 aliases.
			st.Restore = &RestoreRun{ID: "drill-20260101T000000Z", Drill: true, Target: "ABCDEFGH", StartedAt: at, LeaseUntil: at, Requested: true}
			st.DrillSlot = at
			st.CheckAlerted = slices.Repeat([]string{strings.Repeat("c", 40)}, 100)
			st.LastDrill = &DrillOutcome{ID: "drill-20260101T000000Z", At: at, Seconds: 1e9, Code: long}
			st.LastRefusal = &Decision{At: at, Action: "defer", Reason: long}
			st.Window = &RotationWindow{FromVersion: run.KeyVersion, ToVersion: run.KeyVersion, RotatedAt: at, OpenedAt: at, MinCloseAt: at, MaxCloseAt: at, DetectedBy: "cloud-logs"}
			st.Slots = map[events.BackupType]time.Time{events.Full: at, events.Incremental: at, events.Delta: at}
			for i := range 40 { // 40 events a day, each seen
				st.MarkSeen(fmt.Sprintf("%024x", day*100+i))
			}
			related := make([]string, 1000)
			for i := range related {
				related[i] = long
			}
			for i, reason := range []string{"backup-failures", "key-state", "rewrap-unconfirmed", "unrestorable", "a", "b", "c", "d", "e", "f", "g"} {
				st.AddAlert(fmt.Sprintf("%d/%s/%d", day, reason, i), events.Alert{Severity: events.Severity([]string{"critical", "warning", "info"}[i%3]),
					Database: db, KeyCRN: crn, Reason: reason, Message: long, RunID: run.ID, Failures: day, Related: related})
			}
			return nil
		})
		if err != nil {
			t.Fatalf("day %d: %v", day, err)
		}
	}
	st, _, err := store.Get(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	body, err := Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("worst-case state after a year: %d bytes (budget %d, hard limit %d)", len(body), BudgetBytes, MaxEncodedSize)
	if testing.Verbose() {
		var fields map[string]json.RawMessage
		_ = json.Unmarshal(body, &fields)
		for k, v := range fields {
			t.Logf("  %s: %d bytes", k, len(v))
		}
	}
	if len(body) > BudgetBytes {
		t.Fatalf("state is %d bytes, over its budget of %d", len(body), BudgetBytes)
	}
	if len(st.PendingAlerts) != MaxPendingAlerts || len(st.Seen) != MaxSeen {
		t.Fatalf("bounds not applied: %d alerts, %d seen", len(st.PendingAlerts), len(st.Seen))
	}
	for _, p := range st.PendingAlerts {
		if err := p.Alert.Validate(); err != nil {
			t.Fatalf("a pending alert no longer validates, so it could never be sent: %v", err)
		}
	}
}

func TestAddAlertCoalescesByReasonAndSeverity(t *testing.T) {
	st := New("db1", "crn")
	st.AddAlert("a1", events.Alert{Severity: events.Critical, Reason: "backup-failures", Message: "2 failures"})
	st.AddAlert("a1", events.Alert{Severity: events.Critical, Reason: "backup-failures", Message: "dup"})
	st.AddAlert("k1", events.Alert{Severity: events.Critical, Reason: "key-state", Message: "blocked"})
	st.AddAlert("a2", events.Alert{Severity: events.Critical, Reason: "backup-failures", Message: "4 failures"})
	st.AddAlert("k2", events.Alert{Severity: events.Info, Reason: "key-state", Message: "active again"})
	if len(st.PendingAlerts) != 3 {
		t.Fatalf("pending = %+v", st.PendingAlerts)
	}
	var got []string
	for _, p := range st.PendingAlerts {
		got = append(got, fmt.Sprintf("%s:%d:%s", p.ID, p.Count, p.Alert.Message))
	}
	want := "k1:0:blocked a2:2:4 failures (and 1 earlier alert(s) of this kind not yet delivered) k2:0:active again"
	if strings.Join(got, " ") != want {
		t.Fatalf("pending = %q\nwant      %q", strings.Join(got, " "), want)
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdefghij", 8, "abcde..."},
		{"ééééé", 8, "éé..."},
		{"ab", 1, "a"},
		{"éa", 1, ""},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

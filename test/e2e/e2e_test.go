package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/test/s3server"
	"github.com/keyguard-dev/keyguard/test/simdb2"
	"github.com/keyguard-dev/keyguard/test/stack"
)

const key = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001"

// One database, a full every day at 02:00 and an incremental at 03:00.
const fleetYAML = `version: 1
databases:
  - name: sales
    instance: "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/0123456789abcdef0123456789abcdef:7a1b2c3d-0000-4000-8000-000000000009::"
    executor: simulated
    key_crn: ` + key + `
    size: 200GiB
    schedules: {full: "0 2 * * *", incremental: "0 3 * * *"}
`

func startStack(t *testing.T, fail []simdb2.FailRule) (*stack.Stack, context.Context) {
	return startStackWith(t, fail, nil)
}

func startStackWith(t *testing.T, fail []simdb2.FailRule, rewrap func(config.Database) time.Duration) (*stack.Stack, context.Context) {
	t.Helper()
	bin, err := s3server.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	f, err := stack.LoadFleet([]byte(fleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	st, err := stack.Start(ctx, stack.Options{Versitygw: bin, Fleet: f, Start: time.Date(2026, 11, 24, 1, 55, 0, 0, time.UTC), Fail: fail, Rewrap: rewrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, ctx
}

func mustState(t *testing.T, ctx context.Context, st *stack.Stack) *state.State {
	t.Helper()
	s, err := st.State(ctx, "sales")
	if err != nil {
		t.Fatalf("read state from versitygw: %v", err)
	}
	return s
}

// step advances simulated time and ticks.
func step(t *testing.T, ctx context.Context, st *stack.Stack, d time.Duration) {
	t.Helper()
	if err := st.Advance(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := st.Tick(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLoopTickRotationFailuresAlertRecovery(t *testing.T) {
	st, ctx := startStack(t, []simdb2.FailRule{
		{Database: "sales", Nth: 2, Class: events.Transient, Code: "SQL2062N", Message: "media error"},
		{Database: "sales", Nth: 3, Class: events.Transient, Code: "SQL2062N", Message: "media error"},
	})

	// 02:00 tick -> the first backup of a new database is a full.
	step(t, ctx, st, 5*time.Minute)
	s := mustState(t, ctx, st)
	if s.Run == nil || s.Run.Type != events.Full {
		t.Fatalf("after the first tick run = %+v, want a full in flight", s.Run)
	}
	if got := st.EN.NotificationsOfType(events.TypeBackupStarted); len(got) != 1 {
		t.Fatalf("backup.started notifications = %d", len(got))
	}
	// 02:45: the full completed (40 min) through EN -> completion closed the run.
	step(t, ctx, st, 45*time.Minute)
	s = mustState(t, ctx, st)
	if s.Run != nil || s.LastSuccess == nil || s.LastSuccess.Type != events.Full {
		t.Fatalf("after completion: run %+v last success %+v", s.Run, s.LastSuccess)
	}

	// Key rotated in Key Protect (Db2 never confirms re-wrap in this test) -> the 03:00
	// incremental is deferred with reason "rotation window".
	v2, err := st.RotateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	step(t, ctx, st, 45*time.Minute) // 03:30
	s = mustState(t, ctx, st)
	if s.Window == nil || s.Run != nil || s.LastDecision == nil || s.LastDecision.Action != string(policy.Defer) ||
		!strings.Contains(s.LastDecision.Reason, policy.ReasonRotationWindow) {
		t.Fatalf("during the window: window %+v run %+v decision %+v", s.Window, s.Run, s.LastDecision)
	}
	// Polling found the rotation on the 03:30 tick; with no re-wrap confirmation the window closes
	// at its 4h maximum, 07:30, where a full starts under the new version. It fails (2nd run): a
	// retry is planned, no failure alert yet.
	step(t, ctx, st, 4*time.Hour) // 07:30
	s = mustState(t, ctx, st)
	if s.Window != nil || s.Run == nil || s.Run.Type != events.Full || s.Run.KeyVersion != v2 {
		t.Fatalf("after the window: window %+v run %+v", s.Window, s.Run)
	}
	step(t, ctx, st, 45*time.Minute) // 08:15: failed at 08:10
	s = mustState(t, ctx, st)
	if s.ConsecutiveFailures != 1 || s.NextRetry == nil || len(st.EN.NotificationsOfType(events.TypeAlert)) != 1 {
		// the one alert so far is the unconfirmed re-wrap warning
		t.Fatalf("after one failure: failures %d retry %+v alerts %d", s.ConsecutiveFailures, s.NextRetry, len(st.EN.NotificationsOfType(events.TypeAlert)))
	}
	// The retry (30 min backoff) fails too: threshold 2 -> a critical alert reaches EN.
	step(t, ctx, st, 30*time.Minute) // 08:45: retry starts
	step(t, ctx, st, 45*time.Minute) // 09:30: failed at 09:25
	s = mustState(t, ctx, st)
	if s.ConsecutiveFailures != 2 || s.NextRetry == nil || s.NextRetry.Attempt != 3 {
		t.Fatalf("after two failures: failures %d retry %+v", s.ConsecutiveFailures, s.NextRetry)
	}
	var critical int
	for _, n := range st.EN.NotificationsOfType(events.TypeAlert) {
		p, err := events.DecodeData(n.Type, n.Data)
		if err != nil {
			t.Fatal(err)
		}
		if a := p.(*events.Alert); a.Severity == events.Critical && a.Reason == "backup-failures" && a.Failures == 2 {
			critical++
		}
	}
	if critical != 1 || len(s.PendingAlerts) != 0 {
		t.Fatalf("critical failure alerts = %d, pending %d", critical, len(s.PendingAlerts))
	}
	// The next retry (60 min) succeeds -> failures reset, retry cleared, NeedFull cleared.
	step(t, ctx, st, time.Hour)      // 10:30 retry starts
	step(t, ctx, st, 45*time.Minute) // 11:15 done
	s = mustState(t, ctx, st)
	if s.ConsecutiveFailures != 0 || s.NextRetry != nil || s.NeedFull || s.LastSuccess.Type != events.Full || s.LastSuccess.KeyVersion != v2 {
		t.Fatalf("after recovery: %+v", s)
	}
	if lost := st.EN.Lost(); len(lost) != 0 {
		t.Fatalf("deliveries lost: %+v", lost)
	}
}

func TestLostAndDuplicatedDeliveries(t *testing.T) {
	st, ctx := startStack(t, nil)
	step(t, ctx, st, 5*time.Minute) // full starts at 02:00
	// The completion notification is lost: the next tick finds the outcome the simulated Db2
	// recorded in the catalog and closes the run, long before its lease (6h) would expire.
	st.EN.DropNext(1)
	step(t, ctx, st, 45*time.Minute)
	if n := len(st.EN.Lost()); n != 1 {
		t.Fatalf("%d deliveries lost, want the completion", n)
	}
	step(t, ctx, st, 15*time.Minute)
	s := mustState(t, ctx, st)
	if s.LastSuccess == nil || s.LastSuccess.Type != events.Full || s.ConsecutiveFailures != 0 || s.Run != nil && s.Run.Type == events.Full {
		t.Fatalf("lost completion not reconciled from the catalog: run %+v last success %+v failures %d", s.Run, s.LastSuccess, s.ConsecutiveFailures)
	}
	// Duplicated deliveries of every event for the next hours change nothing twice.
	st.EN.SetRates(0, 1)
	for range 8 {
		step(t, ctx, st, 15*time.Minute)
	}
	st.EN.SetRates(0, 0)
	s = mustState(t, ctx, st)
	if s.ConsecutiveFailures != 0 || s.LastSuccess == nil || s.Run != nil && s.Run.Attempt > 2 {
		t.Fatalf("after duplicates: %+v", s)
	}
	started := map[string]int{}
	for _, n := range st.EN.NotificationsOfType(events.TypeBackupStarted) {
		p, _ := events.DecodeData(n.Type, n.Data)
		started[p.(*events.BackupStarted).RunID]++
	}
	for id, n := range started {
		if n != 1 {
			t.Errorf("run %s started %d times", id, n)
		}
	}
}

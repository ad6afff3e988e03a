package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/test/kpemu"
)

const dbCRN = "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/0123456789abcdef0123456789abcdef:7a1b2c3d-0000-4000-8000-000000000009::"

func TestAdaptiveWindowClosesOnRewrapWellBefore4h(t *testing.T) {
	st, ctx := startStackWith(t, nil, func(config.Database) time.Duration { return 35 * time.Minute })
	step(t, ctx, st, 5*time.Minute)  // 02:00 full starts
	step(t, ctx, st, 45*time.Minute) // 02:45 done
	before := st.KP.Requests()
	step(t, ctx, st, 15*time.Minute) // steady state
	if n := st.KP.Requests() - before; n != 1 {
		t.Fatalf("steady-state tick made %d Key Protect calls for one key, want 1 (metadata)", n)
	}
	// Rotation at 03:00, just after the 03:00 incremental started: the 03:15 tick finds it.
	v2, err := st.RotateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	step(t, ctx, st, 15*time.Minute) // 03:15
	s := mustState(t, ctx, st)
	if s.Window == nil || s.Window.ToVersion != v2 || s.Window.DetectedBy != "poll" {
		t.Fatalf("window %+v", s.Window)
	}
	before = st.KP.Requests()
	step(t, ctx, st, 15*time.Minute) // 03:30: Db2 has not re-wrapped yet
	if n := st.KP.Requests() - before; n != 2 {
		t.Fatalf("tick during the window made %d Key Protect calls for one key, want 2 (metadata + registrations)", n)
	}
	if s = mustState(t, ctx, st); s.Window == nil {
		t.Fatal("window closed before re-wrap")
	}
	// Re-wrap lands at 03:35 (35 min after rotation); the 03:45 tick closes the window, and the
	// next backup will be a full under the new version.
	step(t, ctx, st, 15*time.Minute)
	s = mustState(t, ctx, st)
	if s.Window != nil || !s.NeedFull || s.Key.Version != v2 {
		t.Fatalf("after re-wrap: window %+v needFull %v key %+v", s.Window, s.NeedFull, s.Key)
	}
	settled := st.EN.NotificationsOfType(events.TypeRotationSettled)
	if len(settled) != 1 {
		t.Fatalf("rotation.settled = %d", len(settled))
	}
	p, _ := events.DecodeData(settled[0].Type, settled[0].Data)
	if rs := p.(*events.RotationSettled); !rs.Confirmed || rs.ClosedAt.Sub(rs.OpenedAt) > time.Hour {
		t.Fatalf("settled = %+v, want confirmed well before 4h", rs)
	}
}

func TestRotationFoundByPollingWhenTheAlertIsLostAndOnceWithBothPaths(t *testing.T) {
	st, ctx := startStack(t, nil)
	step(t, ctx, st, 5*time.Minute)
	// The Cloud Logs alert about a rotation is lost by Event Notifications; polling still finds it.
	v2, err := st.RotateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	st.EN.DropNext(1)
	if err := st.PublishCloudLogsRotation(ctx, key, v2, st.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if len(st.EN.Lost()) != 1 {
		t.Fatal("the alert was not lost")
	}
	step(t, ctx, st, 15*time.Minute)
	s := mustState(t, ctx, st)
	if s.Window == nil || s.Window.ToVersion != v2 || s.Window.DetectedBy != "poll" {
		t.Fatalf("window = %+v", s.Window)
	}
	opened := s.Window.OpenedAt
	// A second rotation comes through both paths: the Cloud Logs alert first, then the poll.
	st.Clock.Advance(time.Hour) // Key Protect allows one rotation an hour
	v3, err := st.RotateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PublishCloudLogsRotation(ctx, key, v3, st.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	s = mustState(t, ctx, st)
	if s.Window == nil || s.Window.ToVersion != v3 || s.Window.DetectedBy != "cloud-logs" || !s.Window.OpenedAt.After(opened) {
		t.Fatalf("after the alert: window %+v", s.Window)
	}
	alertWindow := *s.Window
	step(t, ctx, st, 15*time.Minute)
	step(t, ctx, st, 15*time.Minute)
	s = mustState(t, ctx, st)
	if s.Window == nil || !s.Window.OpenedAt.Equal(alertWindow.OpenedAt) || s.Window.ToVersion != v3 {
		t.Fatalf("the poll opened another window: %+v (was %+v)", s.Window, alertWindow)
	}
}

func TestDisabledKeyBlocksAndAlertsOnce(t *testing.T) {
	st, ctx := startStack(t, nil)
	step(t, ctx, st, 5*time.Minute)
	step(t, ctx, st, 45*time.Minute)
	_, id, _ := keyprotect.KeyIDFromCRN(key)
	if err := st.KP.SetState(id, kpemu.StateSuspended); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		step(t, ctx, st, 15*time.Minute) // through the 03:00 incremental slot
	}
	s := mustState(t, ctx, st)
	if !s.Key.Blocked || s.Run != nil || !strings.Contains(s.LastDecision.Reason, policy.ReasonKeyNotActive) {
		t.Fatalf("key %+v run %+v decision %+v", s.Key, s.Run, s.LastDecision)
	}
	var keyAlerts int
	for _, n := range st.EN.NotificationsOfType(events.TypeAlert) {
		p, _ := events.DecodeData(n.Type, n.Data)
		if p.(*events.Alert).Reason == "key-state" {
			keyAlerts++
		}
	}
	if keyAlerts != 1 {
		t.Fatalf("key-state alerts = %d, want 1", keyAlerts)
	}
	// Enabled again: unblocked, and the held incremental runs.
	if err := st.KP.SetState(id, kpemu.StateActive); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, st, 15*time.Minute)
	if s = mustState(t, ctx, st); s.Key.Blocked || s.Run == nil {
		t.Fatalf("after enable: key %+v run %+v", s.Key, s.Run)
	}
}

func TestKeyProtect429sAreRetriedWithinTheTick(t *testing.T) {
	st, ctx := startStack(t, nil)
	step(t, ctx, st, 5*time.Minute)
	v2, err := st.RotateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	st.KP.FailNext(2, 429)
	began := time.Now()
	step(t, ctx, st, 15*time.Minute)
	if d := time.Since(began); d > 8*time.Second {
		t.Fatalf("tick took %s with Key Protect throttling", d)
	}
	if s := mustState(t, ctx, st); s.Window == nil || s.Window.ToVersion != v2 {
		t.Fatalf("rotation missed after 429s: %+v", s.Window)
	}
	// Key Protect failing outright never fails or blocks the tick.
	st.KP.FailNext(50, 503)
	if err := st.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range st.EN.Lost() {
		t.Errorf("delivery lost: %+v", d)
	}
}

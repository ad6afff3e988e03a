package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/test/testkit"
)

var now = time.Date(2026, 11, 24, 1, 30, 0, 0, time.UTC)

func newHandler(t *testing.T) (*Handler, *testkit.Sender) {
	send := &testkit.Sender{}
	return &Handler{Store: state.NewMemoryStore(), Fleet: config.Static{F: testkit.LoadFleet(t)}, Send: send, Clock: clock.NewFake(now)}, send
}

func get(t *testing.T, h *Handler, db string) *state.State {
	t.Helper()
	st, _, err := h.Store.Get(context.Background(), db)
	if err != nil {
		t.Fatalf("state of %s: %v", db, err)
	}
	return st
}

func TestRotationOpensWindowsSizedPerDatabase(t *testing.T) {
	h, _ := newHandler(t)
	e := testkit.Event(t, "r1", events.KeyRotated{KeyCRN: testkit.KeyA, OldVersion: "1", NewVersion: "2", RotatedAt: now, DetectedBy: "poll"})
	res, err := h.Handle(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Detail, "db1: rotation window opened") || !strings.Contains(res.Detail, "db2: rotation window opened") {
		t.Fatalf("detail = %q", res.Detail)
	}
	if w := get(t, h, "db1").Window; w == nil || w.MaxCloseAt.Sub(now) != 4*time.Hour || w.MinCloseAt.Sub(now) != 15*time.Minute || w.ToVersion != "2" {
		t.Fatalf("db1 window = %+v", w)
	}
	if w := get(t, h, "db2").Window; w == nil || w.MaxCloseAt.Sub(now) != 8*time.Hour {
		t.Fatalf("db2 (2TiB) window = %+v", w)
	}
	if _, _, err := h.Store.Get(context.Background(), "db3"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("db3 (other key) was touched: %v", err)
	}
}

func TestBothPathsAndDuplicatesOpenOneWindow(t *testing.T) {
	h, _ := newHandler(t)
	ctx := context.Background()
	poll := testkit.Event(t, "poll-1", events.KeyRotated{KeyCRN: testkit.KeyA, NewVersion: "2", RotatedAt: now, DetectedBy: "poll"})
	for range 2 {
		if _, err := h.Handle(ctx, poll); err != nil {
			t.Fatal(err)
		}
	}
	first := get(t, h, "db1")
	h.Clock.(*clock.Fake).Advance(10 * time.Minute)
	logs := testkit.Event(t, "logs-1", events.KeyRotated{KeyCRN: testkit.KeyA, NewVersion: "2", RotatedAt: now, DetectedBy: "cloud-logs"})
	res, err := h.Handle(ctx, logs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Detail, "already open") {
		t.Fatalf("second path detail = %q", res.Detail)
	}
	if got := get(t, h, "db1").Window; !got.OpenedAt.Equal(first.Window.OpenedAt) || !got.MaxCloseAt.Equal(first.Window.MaxCloseAt) {
		t.Fatalf("window moved: %+v -> %+v", first.Window, got)
	}
}

func TestRotationMarksRunInFlightSuspect(t *testing.T) {
	h, _ := newHandler(t)
	ctx := context.Background()
	_, _ = state.Update(ctx, h.Store, "db1", func() *state.State { return state.New("db1", testkit.KeyA) }, func(st *state.State) error {
		st.Run = &state.Run{ID: "run-1", Type: events.Full}
		return nil
	})
	if _, err := h.Handle(ctx, testkit.Event(t, "r", events.KeyRotated{KeyCRN: testkit.KeyA, NewVersion: "2", RotatedAt: now, DetectedBy: "managed"})); err != nil {
		t.Fatal(err)
	}
	if st := get(t, h, "db1"); st.Run == nil || !st.Run.Suspect {
		t.Fatalf("run = %+v, want suspect", st.Run)
	}
}

func TestKeyStateBlocksAndAlertsOnce(t *testing.T) {
	h, send := newHandler(t)
	ctx := context.Background()
	off := testkit.Event(t, "s1", events.KeyStateChanged{KeyCRN: testkit.KeyB, State: events.KeySuspended, Previous: events.KeyActive, ChangedAt: now})
	for range 2 {
		if _, err := h.Handle(ctx, off); err != nil {
			t.Fatal(err)
		}
	}
	if st := get(t, h, "db3"); !st.Key.Blocked || st.Key.State != events.KeySuspended {
		t.Fatalf("key = %+v", st.Key)
	}
	if a := send.OfType(events.TypeAlert); len(a) != 1 || a[0].Payload.(events.Alert).Severity != events.Critical {
		t.Fatalf("alerts = %+v", a)
	}
	on := testkit.Event(t, "s2", events.KeyStateChanged{KeyCRN: testkit.KeyB, State: events.KeyActive, Previous: events.KeySuspended, ChangedAt: now.Add(time.Hour)})
	if _, err := h.Handle(ctx, on); err != nil {
		t.Fatal(err)
	}
	if st := get(t, h, "db3"); st.Key.Blocked {
		t.Fatal("still blocked after the key is active")
	}
	if a := send.OfType(events.TypeAlert); len(a) != 2 || a[1].Payload.(events.Alert).Severity != events.Info {
		t.Fatalf("alerts = %+v", a)
	}
}

func TestRejectsOtherTypesAndBadData(t *testing.T) {
	h, _ := newHandler(t)
	ctx := context.Background()
	_, err := h.Handle(ctx, testkit.Event(t, "x", events.BackupFailed{Database: "db1", RunID: "r", Type: events.Full, EndedAt: now, Class: events.Transient, Message: "m"}))
	if edge.Status(err) != 422 {
		t.Fatalf("wrong type: %v (status %d)", err, edge.Status(err))
	}
	bad := events.Event{ID: "b", Source: "s", Type: events.TypeKeyRotated, Data: []byte(`{"key_crn":""}`)}
	if _, err := h.Handle(ctx, bad); edge.Status(err) != 400 {
		t.Fatalf("bad data: %v", err)
	}
	if _, _, err := h.Store.Get(ctx, "db1"); !errors.Is(err, state.ErrNotFound) {
		t.Fatal("a rejected event changed state")
	}
	unknown := testkit.Event(t, "u", events.KeyRotated{KeyCRN: testkit.KeyA[:len(testkit.KeyA)-1] + "9", NewVersion: "2", RotatedAt: now, DetectedBy: "poll"})
	if res, err := h.Handle(ctx, unknown); err != nil || res.Outcome != "ignored" {
		t.Fatalf("unknown key: %+v %v", res, err)
	}
}

func TestMasterKeyRotationForcesAFullWithoutAWindow(t *testing.T) {
	h, _ := newHandler(t)
	ctx := context.Background()
	e := testkit.Event(t, "ks-1", events.KeyRotated{KeyCRN: testkit.KeyB, OldVersion: "aaaa", NewVersion: "bbbb", RotatedAt: now, DetectedBy: events.DetectedByKeystore})
	if _, err := h.Handle(ctx, e); err != nil {
		t.Fatal(err)
	}
	st := get(t, h, "db3")
	if st.Window != nil || !st.NeedFull || !strings.Contains(st.NeedFullReason, "master key") || st.Key.Version != "" {
		t.Fatalf("state = window %+v needFull %v (%s) key %+v", st.Window, st.NeedFull, st.NeedFullReason, st.Key)
	}
}

// Problem 7: a rotation to an older version (a late Cloud Logs alert, a redelivery) changes
// nothing: it neither re-opens nor rewinds a window, nor moves the key version back.
func TestStaleRotationsChangeNothing(t *testing.T) {
	h, _ := newHandler(t)
	ctx := context.Background()
	t1, t2, t3 := now.Add(-48*time.Hour), now.Add(-24*time.Hour), now
	_, _ = state.Update(ctx, h.Store, "db1", func() *state.State { return state.New("db1", testkit.KeyA) }, func(st *state.State) error {
		st.Key.Version, st.Key.RotatedAt = "v2", t2
		return nil
	})
	before := get(t, h, "db1")
	old := testkit.Event(t, "late-v1", events.KeyRotated{KeyCRN: testkit.KeyA, NewVersion: "v1", RotatedAt: t1, DetectedBy: "cloud-logs"})
	if _, err := h.Handle(ctx, old); err != nil {
		t.Fatal(err)
	}
	if st := get(t, h, "db1"); st.Revision != before.Revision || st.Window != nil || st.Key.Version != "v2" {
		t.Fatalf("a stale rotation changed the state: window %+v key %+v", st.Window, st.Key)
	}
	// A newer rotation opens the window; the late v2 alert that follows does not rewind it.
	if _, err := h.Handle(ctx, testkit.Event(t, "v3", events.KeyRotated{KeyCRN: testkit.KeyA, NewVersion: "v3", RotatedAt: t3, DetectedBy: "cloud-logs"})); err != nil {
		t.Fatal(err)
	}
	opened := get(t, h, "db1")
	if opened.Window == nil || opened.Window.ToVersion != "v3" {
		t.Fatalf("window = %+v", opened.Window)
	}
	if _, err := h.Handle(ctx, testkit.Event(t, "late-v2", events.KeyRotated{KeyCRN: testkit.KeyA, NewVersion: "v2", RotatedAt: t2, DetectedBy: "cloud-logs"})); err != nil {
		t.Fatal(err)
	}
	if st := get(t, h, "db1"); st.Revision != opened.Revision || st.Window.ToVersion != "v3" || !st.Window.OpenedAt.Equal(opened.Window.OpenedAt) {
		t.Fatalf("a late rotation rewound the window: %+v", st.Window)
	}
}

// Key states arrive out of order: a disable older than the recorded enable changes nothing.
func TestStaleKeyStateChangesNothing(t *testing.T) {
	h, send := newHandler(t)
	ctx := context.Background()
	enabled := testkit.Event(t, "on", events.KeyStateChanged{KeyCRN: testkit.KeyB, State: events.KeyActive, ChangedAt: now})
	disabled := testkit.Event(t, "off", events.KeyStateChanged{KeyCRN: testkit.KeyB, State: events.KeySuspended, ChangedAt: now.Add(-time.Hour)})
	for _, e := range []events.Event{enabled, disabled} {
		if _, err := h.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if st := get(t, h, "db3"); st.Key.Blocked || st.Key.State != events.KeyActive {
		t.Fatalf("an older disable blocked the key: %+v", st.Key)
	}
	if n := len(send.OfType(events.TypeAlert)); n != 0 {
		t.Fatalf("%d alerts for a stale state", n)
	}
}

// slowStore makes each state read take virtual time.
type slowStore struct {
	state.Store
	clk  *clock.Fake
	cost time.Duration
}

func (s slowStore) Get(ctx context.Context, db string) (*state.State, string, error) {
	s.clk.Advance(s.cost)
	return s.Store.Get(ctx, db)
}

// A rotation of a key that protects more databases than one delivery reaches continues where
// its work stands: every database gets its window, each once.
func TestRotationOverManyDatabasesContinues(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\ndefaults: {executor: db2cli}\ndatabases:\n")
	for i := range 30 {
		fmt.Fprintf(&b, "  - name: db%03d\n    instance: i%d\n    key_crn: %s\n    schedules: {full: \"@daily\"}\n", i, i, testkit.KeyA)
	}
	f, err := config.Load([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(now)
	send := &testkit.Sender{}
	h := &Handler{Store: slowStore{Store: state.NewMemoryStore(), clk: clk, cost: 300 * time.Millisecond}, Fleet: config.Static{F: f},
		Send: send, Clock: clk, Timer: clk, Workers: 1, Budget: 3 * time.Second}
	ctx := context.Background()
	res, err := h.Handle(ctx, testkit.Event(t, "rot-1", events.KeyRotated{KeyCRN: testkit.KeyA, NewVersion: "2", RotatedAt: now, DetectedBy: "poll"}))
	if err != nil || res.Outcome != "continued" {
		t.Fatalf("first delivery = %+v, %v; want a continuation", res, err)
	}
	for done := 0; done < len(send.OfType(events.TypeKeyRotated)); done++ {
		c := send.OfType(events.TypeKeyRotated)[done]
		if _, err := h.Handle(ctx, testkit.Event(t, c.ID, c.Payload)); err != nil {
			t.Fatalf("continuation %s: %v", c.ID, err)
		}
	}
	opened := map[string]time.Time{}
	for _, d := range f.Databases {
		st, _, err := h.Store.Get(ctx, d.Name)
		if err != nil || st.Window == nil || st.Window.ToVersion != "2" {
			t.Fatalf("%s: window %+v (%v)", d.Name, st, err)
		}
		opened[d.Name] = st.Window.OpenedAt
		if st.Revision != 1 {
			t.Fatalf("%s written %d times, want once", d.Name, st.Revision)
		}
	}
	if n := len(send.OfType(events.TypeKeyRotated)); n < 2 {
		t.Fatalf("%d continuations", n)
	}
}

// Problem 9: the rotation function sees the key destroyed first: it lists the catalog before
// deciding, and the unrestorable alert is decided in the same compare-and-swap and sent once.
func TestDestroyedKeyAlertFromTheRotationFunction(t *testing.T) {
	h, send := newHandler(t)
	ctx := context.Background()
	cat := catalog.New(objstore.NewMemory())
	h.Catalog = cat
	e := catalogtest.Sample("db3", "20261120020000", events.Full, "")
	e.KeyCRN = testkit.KeyB
	if err := cat.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	ev := testkit.Event(t, "gone", events.KeyStateChanged{KeyCRN: testkit.KeyB, State: events.KeyDestroyed, ChangedAt: now})
	for range 2 {
		if _, err := h.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	var lost []events.Alert
	for _, a := range send.OfType(events.TypeAlert) {
		if al := a.Payload.(events.Alert); al.Reason == "unrestorable" {
			lost = append(lost, al)
		}
	}
	if len(lost) != 1 || len(lost[0].Related) != 1 || !strings.Contains(lost[0].Related[0], "20261120020000-full") {
		t.Fatalf("unrestorable alerts = %+v", lost)
	}
	if st := get(t, h, "db3"); !st.Key.UnrestorableQueued {
		t.Fatalf("the alert is not recorded as queued: %+v", st.Key)
	}
}

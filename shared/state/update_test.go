package state_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// stepClock jumps forward by the length of every wait and records it, so a retry loop runs
// instantly and its schedule can be checked.
type stepClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	go f()
	return noTimer{}
}

type noTimer struct{}

func (noTimer) Stop() bool { return false }

// conflictStore fails every Put with ErrConflict and counts them.
type conflictStore struct {
	state.Store
	puts atomic.Int32
}

func (s *conflictStore) Put(ctx context.Context, db string, st *state.State, etag string) (string, error) {
	s.puts.Add(1)
	return "", fmt.Errorf("put: %w", state.ErrConflict)
}

func incr(st *state.State) error { st.ConsecutiveFailures++; return nil }

func newDB1() *state.State { return state.New("db1", "crn:k") }

func TestUpdateBackoffAndDeadline(t *testing.T) {
	clk := &stepClock{now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := &conflictStore{Store: state.NewMemoryStore()}
	start := clk.Now()
	_, err := state.Update(context.Background(), s, "db1", newDB1, incr,
		state.WithClock(clk), state.WithRandom(func() float64 { return 1 }))
	if !errors.Is(err, state.ErrConflict) {
		t.Fatalf("Update = %v, want ErrConflict", err)
	}
	if !strings.Contains(err.Error(), "gave up after 31 attempts") {
		t.Errorf("error %q: want 31 attempts", err)
	}
	ms := time.Millisecond
	wantFirst := []time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 200 * ms, 200 * ms}
	if fmt.Sprint(clk.waits[:len(wantFirst)]) != fmt.Sprint(wantFirst) {
		t.Errorf("waits %v, want to start %v", clk.waits, wantFirst)
	}
	if last := clk.waits[len(clk.waits)-1]; last != 85*ms {
		t.Errorf("last wait %s, want 85ms (cut to the deadline)", last)
	}
	if got := clk.Now().Sub(start); got != state.DefaultUpdateDeadline {
		t.Errorf("gave up after %s, want %s", got, state.DefaultUpdateDeadline)
	}
	if n := s.puts.Load(); n != 31 || len(clk.waits) != 30 {
		t.Errorf("%d puts and %d waits, want 31 and 30", n, len(clk.waits))
	}
}

func TestUpdateJitter(t *testing.T) {
	cases := []struct {
		r    float64
		want time.Duration // first wait with the default 5 ms start
	}{
		{0, 2500 * time.Microsecond},
		{0.5, 3750 * time.Microsecond},
		{1, 5 * time.Millisecond},
	}
	for _, c := range cases {
		clk := &stepClock{}
		_, err := state.Update(context.Background(), &conflictStore{Store: state.NewMemoryStore()}, "db1", newDB1, incr,
			state.WithClock(clk), state.WithRandom(func() float64 { return c.r }), state.WithDeadline(time.Millisecond*3))
		if !errors.Is(err, state.ErrConflict) {
			t.Fatalf("Update = %v", err)
		}
		if min(c.want, 3*time.Millisecond) != clk.waits[0] {
			t.Errorf("random %v: first wait %s, want %s", c.r, clk.waits[0], min(c.want, 3*time.Millisecond))
		}
	}
	clk := &stepClock{}
	_, err := state.Update(context.Background(), &conflictStore{Store: state.NewMemoryStore()}, "db1", newDB1, incr,
		state.WithClock(clk), state.WithRandom(func() float64 { return 0 }), state.WithBackoff(time.Second, 3*time.Second),
		state.WithDeadline(10*time.Second))
	if !errors.Is(err, state.ErrConflict) {
		t.Fatal(err)
	}
	if got := fmt.Sprint(clk.waits); got != "[500ms 1s 1.5s 1.5s 1.5s 1.5s 1.5s 1s]" {
		t.Errorf("waits %s", got)
	}
}

func TestUpdateDeadlineRealClock(t *testing.T) {
	s := &conflictStore{Store: state.NewMemoryStore()}
	start := time.Now()
	_, err := state.Update(context.Background(), s, "db1", newDB1, incr, state.WithDeadline(60*time.Millisecond))
	if !errors.Is(err, state.ErrConflict) {
		t.Fatalf("Update = %v, want ErrConflict", err)
	}
	if d := time.Since(start); d < 60*time.Millisecond || d > time.Second {
		t.Errorf("gave up after %s, want about 60ms", d)
	}
}

func TestUpdateContextCancelledWhileWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &conflictStore{Store: state.NewMemoryStore()}
	fake := clock.NewFake(time.Unix(0, 0)) // never advanced: the wait ends only by ctx
	go func() {
		for s.puts.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := state.Update(ctx, s, "db1", newDB1, incr, state.WithClock(fake))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update = %v, want context.Canceled", err)
	}
}

// failingStore fails Get or Put with err.
type failingStore struct {
	state.Store
	getErr, putErr error
}

func (s failingStore) Get(ctx context.Context, db string) (*state.State, string, error) {
	if s.getErr != nil {
		return nil, "", s.getErr
	}
	return s.Store.Get(ctx, db)
}

func (s failingStore) Put(ctx context.Context, db string, st *state.State, etag string) (string, error) {
	if s.putErr != nil {
		return "", s.putErr
	}
	return s.Store.Put(ctx, db, st, etag)
}

func TestUpdateStoreErrors(t *testing.T) {
	flaky := objstore.MarkTransient(errors.New("503 SlowDown"))
	cases := []struct {
		name  string
		store state.Store
	}{
		{"get", failingStore{Store: state.NewMemoryStore(), getErr: flaky}},
		{"put", failingStore{Store: state.NewMemoryStore(), putErr: flaky}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := state.Update(context.Background(), c.store, "db1", newDB1, incr)
			if !objstore.IsTransient(err) || !strings.Contains(err.Error(), "db1") {
				t.Fatalf("Update = %v, want the transient store error, naming db1", err)
			}
		})
	}
}

func TestUpdateRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	s := state.NewObjectStore(mem)
	body := fmt.Sprintf(`{"schema_version":%d,"revision":4,"database":"db1","future_field":true}`, state.SchemaVersion+1)
	if _, err := mem.Put(ctx, state.Key("db1"), []byte(body), objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	_, err := state.Update(ctx, s, "db1", newDB1, incr)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Update = %v, want a newer-schema error", err)
	}
	got, _, err := mem.Get(ctx, state.Key("db1"))
	if err != nil || string(got) != body {
		t.Fatalf("stored object changed: %s %v", got, err)
	}
}

func TestUpdateFnSeesPrivateCopy(t *testing.T) {
	ctx := context.Background()
	s := state.NewMemoryStore()
	shared := newDB1()
	shared.MarkSeen("x")
	_, err := state.Update(ctx, s, "db1", func() *state.State { return shared }, func(st *state.State) error {
		st.Seen[0] = "changed"
		st.MarkSeen("y")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(shared.Seen) != 1 || shared.Seen[0] != "x" {
		t.Errorf("fn changed init's state: %v", shared.Seen)
	}
	_, err = state.Update(ctx, s, "db1", nil, func(*state.State) error { return errors.New("nil init is fine when present") })
	if err == nil {
		t.Fatal("fn error lost")
	}
	_, err = state.Update(ctx, state.NewMemoryStore(), "db1", func() *state.State { return nil }, incr)
	if err == nil || !strings.Contains(err.Error(), "init returned nil") {
		t.Errorf("Update with nil init result = %v", err)
	}
	_, err = state.Update(ctx, s, "../etc", newDB1, incr)
	if !errors.Is(err, state.ErrInvalidDatabase) {
		t.Errorf("Update of a bad name = %v, want ErrInvalidDatabase", err)
	}
}

func BenchmarkUpdate(b *testing.B) {
	ctx := context.Background()
	s := state.NewMemoryStore()
	init := func() *state.State {
		st := newDB1()
		for i := range state.MaxSeen {
			st.MarkSeen(fmt.Sprintf("source/event-%04d", i)) // a full idempotency list
		}
		return st
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := state.Update(ctx, s, "db1", init, incr); err != nil {
			b.Fatal(err)
		}
	}
}

// vanishingStore deletes the object just before the first Put: the write finds it gone.
type vanishingStore struct {
	state.Store
	mem  *objstore.Memory
	once sync.Once
}

func (s *vanishingStore) Put(ctx context.Context, db string, st *state.State, etag string) (string, error) {
	s.once.Do(func() { _ = s.mem.Delete(ctx, state.Key(db)) })
	return s.Store.Put(ctx, db, st, etag)
}

func TestUpdateObjectDeletedBeforeWrite(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	inner := state.NewObjectStore(mem)
	if _, err := state.Update(ctx, inner, "db1", newDB1, func(st *state.State) error { st.ConsecutiveFailures = 5; return nil }); err != nil {
		t.Fatal(err)
	}
	calls := 0
	st, err := state.Update(ctx, &vanishingStore{Store: inner, mem: mem}, "db1", newDB1, func(st *state.State) error {
		calls++
		st.ConsecutiveFailures++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || st.Revision != 1 || st.ConsecutiveFailures != 1 {
		t.Fatalf("calls %d, revision %d, failures %d; want 2, 1, 1 (recreated from init)", calls, st.Revision, st.ConsecutiveFailures)
	}
}

// tunedStore supplies Update's options, as a simulation's store does.
type tunedStore struct {
	state.Store
	opts []state.UpdateOption
}

func (s tunedStore) UpdateOptions() []state.UpdateOption { return s.opts }

func TestUpdateTakesTheStoresOptions(t *testing.T) {
	n := 0
	ids := func() string { n++; return fmt.Sprintf("w%d", n) }
	clk := &stepClock{now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := tunedStore{Store: state.NewMemoryStore(), opts: []state.UpdateOption{state.WithWriteIDs(ids), state.WithClock(clk),
		state.WithRandom(func() float64 { return 0 })}}
	for i := 1; i <= 2; i++ {
		got, err := state.Update(context.Background(), s, "db1", newDB1, incr)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("w%d", i); got.WriteID != want {
			t.Errorf("write %d: WriteID %q, want %q from the store's option", i, got.WriteID, want)
		}
	}
	// Options passed to Update apply after the store's.
	got, err := state.Update(context.Background(), s, "db1", newDB1, incr, state.WithWriteIDs(func() string { return "mine" }))
	if err != nil || got.WriteID != "mine" {
		t.Errorf("Update with its own WriteIDs = %v, %v; want WriteID mine", got, err)
	}
	// The store's clock runs the waits after a lost race: half of the 5 ms first wait (random 0).
	c := tunedStore{Store: &conflictStore{Store: state.NewMemoryStore()}, opts: s.opts}
	_, _ = state.Update(context.Background(), c, "db1", newDB1, incr, state.WithDeadline(10*time.Millisecond))
	if len(clk.waits) == 0 || clk.waits[0] != 2500*time.Microsecond {
		t.Errorf("waits on the store's clock %v, want to start with 2.5ms", clk.waits)
	}
}

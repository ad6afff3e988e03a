package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/check"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/test/s3server"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// Scale benchmarks (make bench): a fleet of 10,000 and 50,000 databases ticked through the real
// HTTP path (Event Notifications emulator -> scheduler -> tick.shard events -> scheduler) against
// versitygw, each figure beside its floor measured in the same run: the same number of raw GETs
// of the state objects with the scheduler's parallelism. KEYGUARD_SCALE=10000,50000 chooses the
// sizes (default 10000).

// countingObjects counts the calls of the functions' object store, per state object; beats
// counts the scheduler's heartbeats (one per delivery) apart from the other writes.
type countingObjects struct {
	objstore.Store
	mu    sync.Mutex
	gets  map[string]int
	puts  atomic.Int64
	beats atomic.Int64
	all   atomic.Int64
}

func (c *countingObjects) Get(ctx context.Context, key string) ([]byte, string, error) {
	c.all.Add(1)
	if db, ok := strings.CutPrefix(key, "state/"); ok {
		c.mu.Lock()
		c.gets[strings.TrimSuffix(db, ".json")]++
		c.mu.Unlock()
	}
	return c.Store.Get(ctx, key)
}

func (c *countingObjects) Put(ctx context.Context, key string, body []byte, cond objstore.Cond) (string, error) {
	c.all.Add(1)
	if strings.HasPrefix(key, check.HeartbeatPrefix) {
		c.beats.Add(1)
	} else {
		c.puts.Add(1)
	}
	return c.Store.Put(ctx, key, body, cond)
}

func (c *countingObjects) List(ctx context.Context, prefix string) ([]objstore.Info, error) {
	c.all.Add(1)
	return c.Store.List(ctx, prefix)
}

func (c *countingObjects) reset() {
	c.mu.Lock()
	c.gets = map[string]int{}
	c.mu.Unlock()
	c.puts.Store(0)
	c.beats.Store(0)
	c.all.Store(0)
}

// scaleFleet is n simulated databases, 50 per key, whose daily full at 02:00 is not due when
// the benchmark ticks (catch_up 1h, ticks at 14:00): every tick is idle.
func scaleFleet(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\ndefaults: {executor: simulated, catch_up: 1h}\ndatabases:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: db%06d\n    instance: db2inst1@host%d\n    key_crn: %s\n    schedules: {full: \"0 2 * * *\"}\n",
			i, i, strings.Replace(key, "b001", fmt.Sprintf("%04x", i/50), 1))
	}
	return []byte(b.String())
}

func scaleSizes() []int {
	v := os.Getenv("KEYGUARD_SCALE")
	if v == "" {
		return []int{10000}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func BenchmarkIdleTickHTTP(b *testing.B) {
	for _, n := range scaleSizes() {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchIdleTick(b, n) })
	}
}

func benchIdleTick(b *testing.B, n int) {
	bin, err := s3server.FindBinary()
	if err != nil {
		b.Fatal(err)
	}
	fleet, err := stack.LoadFleet(scaleFleet(n))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	counted := &countingObjects{gets: map[string]int{}}
	st, err := stack.Start(ctx, stack.Options{Versitygw: bin, Fleet: fleet, Start: time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC),
		WrapObjects: func(o objstore.Store) objstore.Store { counted.Store = o; return counted }})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	t0 := time.Now()
	if err := st.Tick(ctx); err != nil { // the first tick creates every state object
		b.Fatal(err)
	}
	b.Logf("%d databases: first tick (creates the states) %s", n, time.Since(t0).Round(time.Millisecond))
	if c := len(counted.gets); c != n {
		b.Fatalf("the first tick decided %d of %d databases (%d tick.shard events, %d deliveries lost: %+v)", c, n,
			len(st.EN.NotificationsOfType(events.TypeTickShard)), len(st.EN.Lost()), st.EN.Lost())
	}
	var tick, floor time.Duration
	var reqs int64
	shards := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := st.Advance(ctx, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
		counted.reset()
		before := len(st.EN.NotificationsOfType(events.TypeTickShard))
		b.StartTimer()
		t0 = time.Now()
		if err := st.Tick(ctx); err != nil {
			b.Fatal(err)
		}
		tick += time.Since(t0)
		b.StopTimer()
		shards = len(st.EN.NotificationsOfType(events.TypeTickShard)) - before
		reqs += counted.all.Load()
		for _, d := range fleet.Databases {
			if counted.gets[d.Name] != 1 {
				b.Fatalf("%s read %d times in one tick, want once", d.Name, counted.gets[d.Name])
			}
		}
		if p := counted.puts.Load(); p != 0 {
			b.Fatalf("%d writes on an idle tick", p)
		}
		if h := counted.beats.Load(); h != int64(max(shards, 1)) {
			b.Fatalf("%d heartbeats on a tick of %d delivery(ies), want one each", h, max(shards, 1))
		}
		// The floor: the same GETs, raw, with the scheduler's parallelism.
		t0 = time.Now()
		rawGets(b, ctx, counted.Store, fleet.Databases)
		floor += time.Since(t0)
		b.StartTimer()
	}
	b.StopTimer()
	per := float64(b.N)
	b.ReportMetric(tick.Seconds()/per, "s/tick")
	b.ReportMetric(floor.Seconds()/per, "s/raw-gets")
	b.ReportMetric(float64(tick)/float64(floor), "tick/floor")
	b.ReportMetric(float64(reqs)/per/float64(n), "cos-requests/db")
	b.Logf("%d databases: idle tick %s through %d tick.shard event(s), floor %d raw GETs %s; ratio %.2f; %.3f COS requests a database",
		n, (tick / time.Duration(b.N)).Round(time.Millisecond), shards, n, (floor / time.Duration(b.N)).Round(time.Millisecond),
		float64(tick)/float64(floor), float64(reqs)/per/float64(n))
}

// rawGets reads the state objects of dbs with 32 workers (the scheduler's default parallelism).
func rawGets(tb testing.TB, ctx context.Context, objs objstore.Store, dbs []config.Database) {
	each(tb, dbs, func(name string) error {
		_, _, err := objs.Get(ctx, state.Key(name))
		return err
	})
}

// each runs f for the name of every database of dbs with 32 workers and fails tb if any fails.
func each(tb testing.TB, dbs []config.Database, f func(name string) error) {
	next := make(chan string)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 32 {
		wg.Go(func() {
			for n := range next {
				if err := f(n); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	for _, d := range dbs {
		next <- d.Name
	}
	close(next)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		tb.Fatalf("%d of %d calls failed", n, len(dbs))
	}
}

// BenchmarkRotationHTTP: one key rotates over a fleet of 10,000 databases (KEYGUARD_SCALE):
// key.rotated through Event Notifications to the rotation function, which opens every window,
// continuing in further deliveries when one does not reach them all; beside its floor, a raw
// conditional rewrite (GET then PUT If-Match) of every state object with the same parallelism.
func BenchmarkRotationHTTP(b *testing.B) {
	for _, n := range scaleSizes() {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchRotation(b, n) })
	}
}

func benchRotation(b *testing.B, n int) {
	bin, err := s3server.FindBinary()
	if err != nil {
		b.Fatal(err)
	}
	var fb strings.Builder
	fb.WriteString("version: 1\ndefaults: {executor: simulated, catch_up: 1h}\ndatabases:\n")
	for i := range n {
		fmt.Fprintf(&fb, "  - name: db%06d\n    instance: db2inst1@host%d\n    key_crn: %s\n    schedules: {full: \"0 2 * * *\"}\n", i, i, key)
	}
	fleet, err := stack.LoadFleet([]byte(fb.String()))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Options{Versitygw: bin, Fleet: fleet, Start: time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Tick(ctx); err != nil { // create the states
		b.Fatal(err)
	}
	var took, floor time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if err := st.Advance(ctx, time.Hour); err != nil {
			b.Fatal(err)
		}
		v := fmt.Sprintf("0c1d2e3f-0000-4000-8000-%012d", i+2)
		b.StartTimer()
		t0 := time.Now()
		if err := st.Publish(ctx, fmt.Sprintf("rot-%d", i), events.KeyRotated{KeyCRN: key, NewVersion: v, RotatedAt: st.Clock.Now(), DetectedBy: "cloud-logs"}); err != nil {
			b.Fatal(err)
		}
		took += time.Since(t0)
		b.StopTimer()
		if lost := st.EN.Lost(); len(lost) > 0 {
			b.Fatalf("%d deliveries lost: %+v", len(lost), lost[0])
		}
		open := 0
		for _, d := range fleet.Databases {
			s, err := st.State(ctx, d.Name)
			if err == nil && s.Window != nil && s.Window.ToVersion == v {
				open++
			}
		}
		if open != n {
			b.Fatalf("%d of %d windows open after the rotation", open, n)
		}
		t0 = time.Now()
		rawRewrites(b, ctx, st.Objects, fleet.Databases)
		floor += time.Since(t0)
		b.StartTimer()
	}
	b.StopTimer()
	conts := len(st.EN.NotificationsOfType(events.TypeKeyRotated)) - b.N
	b.ReportMetric(took.Seconds()/float64(b.N), "s/rotation")
	b.ReportMetric(floor.Seconds()/float64(b.N), "s/raw-rewrites")
	b.ReportMetric(float64(took)/float64(floor), "rotation/floor")
	b.Logf("%d databases on one key: every window open %s after key.rotated was published (%d continuation(s)); floor %d raw rewrites %s; ratio %.2f",
		n, (took / time.Duration(b.N)).Round(time.Millisecond), conts, n, (floor / time.Duration(b.N)).Round(time.Millisecond), float64(took)/float64(floor))
}

// rawRewrites reads and conditionally rewrites the state object of each of dbs with 32 workers.
func rawRewrites(tb testing.TB, ctx context.Context, objs objstore.Store, dbs []config.Database) {
	each(tb, dbs, func(name string) error {
		body, etag, err := objs.Get(ctx, state.Key(name))
		if err == nil {
			_, err = objs.Put(ctx, state.Key(name), body, objstore.Cond{IfMatch: etag})
		}
		return err
	})
}

package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/test/testkit"
)

// bigFleet is n databases over keys databases-per-key keys, a full each day at 02:00.
func bigFleet(t testing.TB, n, perKey int) *config.Fleet {
	t.Helper()
	var b strings.Builder
	b.WriteString("version: 1\ndefaults: {executor: db2cli}\ndatabases:\n")
	for i := range n {
		key := strings.Replace(testkit.KeyA, "b001", fmt.Sprintf("%04x", i/perKey), 1)
		fmt.Fprintf(&b, "  - name: db%05d\n    instance: i%d\n    key_crn: %s\n    schedules: {full: \"0 2 * * *\"}\n", i, i, key)
	}
	f, err := config.Load([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// countingStore counts state reads per database and can make each read take virtual time.
type countingStore struct {
	state.Store
	clk  *clock.Fake
	cost time.Duration
	mu   sync.Mutex
	gets map[string]int
}

func (c *countingStore) Get(ctx context.Context, db string) (*state.State, string, error) {
	c.mu.Lock()
	if c.gets == nil {
		c.gets = map[string]int{}
	}
	c.gets[db]++
	if c.cost > 0 {
		c.clk.Advance(c.cost)
	}
	c.mu.Unlock()
	return c.Store.Get(ctx, db)
}

func shardRig(t *testing.T, f *config.Fleet) (*Scheduler, *countingStore, *testkit.Sender, *fakeKeys) {
	clk := clock.NewFake(day.Add(2*time.Hour + 5*time.Minute))
	store := &countingStore{Store: state.NewMemoryStore(), clk: clk}
	send := &testkit.Sender{}
	keys := &fakeKeys{status: map[string]KeyStatus{}}
	for _, k := range f.KeyCRNs() {
		keys.status[k] = KeyStatus{Version: "1", State: events.KeyActive}
	}
	s := &Scheduler{Store: store, Fleet: config.Static{F: f}, Execs: map[string]Executor{config.ExecDb2CLI: &fakeExec{}}, Send: send,
		Keys: keys, Catalog: catalog.New(objstore.NewMemory()), Clock: clk, Timer: clk, Log: slog.New(slog.DiscardHandler), ShardSize: 40}
	return s, store, send, keys
}

// deliver hands every tick.shard event sent so far (and those they send) to the scheduler, as
// Event Notifications would deliver them to scaled-out instances.
func deliver(t *testing.T, s *Scheduler, send *testkit.Sender) int {
	t.Helper()
	n := 0
	for done := 0; ; {
		shards := send.OfType(events.TypeTickShard)
		if done == len(shards) {
			return n
		}
		for _, sh := range shards[done:] {
			if _, err := s.Handle(context.Background(), testkit.Event(t, sh.ID, sh.Payload)); err != nil {
				t.Fatalf("shard %s: %v", sh.ID, err)
			}
			n++
		}
		done = len(shards)
	}
}

// A fleet larger than one delivery's share is split by key into shards: every database is
// decided exactly once per tick, and every key is polled exactly once.
func TestLargeFleetIsTickedInShards(t *testing.T) {
	f := bigFleet(t, 150, 7)
	s, store, send, keys := shardRig(t, f)
	res, err := s.Handle(context.Background(), events.Event{ID: "tick-1", Source: "timer", Type: events.TypeTick, Data: []byte(`{}`)})
	if err != nil || res.Outcome != "split" {
		t.Fatalf("tick = %+v, %v; want it split", res, err)
	}
	if n := len(send.OfType(events.TypeTickShard)); n != 4 {
		t.Fatalf("%d shard events, want 4 (150 databases, 40 a shard)", n)
	}
	deliver(t, s, send)
	for _, d := range f.Databases {
		// Once to decide, once to record that the executor took the start.
		if store.gets[d.Name] != 2 {
			t.Fatalf("%s read %d times in one tick, want twice", d.Name, store.gets[d.Name])
		}
		if st, _, err := s.Store.Get(context.Background(), d.Name); err != nil || st.Run == nil {
			t.Fatalf("%s not decided: %+v %v", d.Name, st, err)
		}
	}
	if keys.keyCalls != len(f.KeyCRNs()) {
		t.Fatalf("%d Key Protect calls for %d keys", keys.keyCalls, len(f.KeyCRNs()))
	}
}

// A shard that cannot finish within its budget continues where its work stands: the
// continuation decides the rest, and nothing is decided twice.
func TestShardContinuesWhereItsWorkStands(t *testing.T) {
	f := bigFleet(t, 30, 3)
	s, store, send, _ := shardRig(t, f)
	s.Workers, s.ShardSize, s.Budget = 1, -1, 3*time.Second
	store.cost = 200 * time.Millisecond // each read takes 200 ms of the 3 s budget
	res, err := s.Handle(context.Background(), events.Event{ID: "tick-1", Source: "timer", Type: events.TypeTick, Data: []byte(`{}`)})
	if err != nil || res.Outcome != "continued" {
		t.Fatalf("tick = %+v, %v; want a continuation", res, err)
	}
	if n := deliver(t, s, send); n < 2 {
		t.Fatalf("%d continuations, want several", n)
	}
	var names []string
	for _, d := range f.Databases {
		names = append(names, d.Name)
		if store.gets[d.Name] != 2 {
			t.Fatalf("%s read %d times, want twice (decide, record the start): %v", d.Name, store.gets[d.Name], store.gets)
		}
	}
	// A redelivered continuation changes nothing: its databases are decided already.
	last := send.OfType(events.TypeTickShard)
	runs := len(s.Execs[config.ExecDb2CLI].(*fakeExec).started)
	if _, err := s.Handle(context.Background(), testkit.Event(t, last[0].ID, last[0].Payload)); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Execs[config.ExecDb2CLI].(*fakeExec).started); n != runs || runs != len(names) {
		t.Fatalf("%d runs started after a redelivered continuation, %d before, for %d databases", n, runs, len(names))
	}
	if !slices.IsSorted(names) {
		t.Fatal("fixture not sorted")
	}
}

// puttingStore counts state writes.
type puttingStore struct {
	*countingStore
	puts int
}

func (p *puttingStore) Put(ctx context.Context, db string, st *state.State, etag string) (string, error) {
	p.mu.Lock()
	p.puts++
	p.mu.Unlock()
	return p.countingStore.Put(ctx, db, st, etag)
}

// An idle database costs one read and no write per tick.
func TestIdleDatabaseCostsOneRead(t *testing.T) {
	f := bigFleet(t, 50, 10)
	s, store, _, _ := shardRig(t, f)
	s.Clock.(*clock.Fake).Set(day.Add(14 * time.Hour))
	for i := range f.Databases {
		f.Databases[i].CatchUp = time.Hour // 02:00 is more than an hour ago: nothing due
	}
	ps := &puttingStore{countingStore: store}
	s.Store = ps
	if _, err := s.Tick(context.Background()); err != nil { // first sight: each state is created
		t.Fatal(err)
	}
	store.gets, ps.puts = nil, 0
	s.Clock.(*clock.Fake).Advance(5 * time.Minute)
	if _, err := s.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Databases {
		if store.gets[d.Name] != 1 {
			t.Fatalf("%s: %d reads on an idle tick, want 1", d.Name, store.gets[d.Name])
		}
	}
	if ps.puts != 0 {
		t.Fatalf("%d writes on an idle tick, want none", ps.puts)
	}
}

package statetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/state"
)

// Option adjusts Run for a documented deviation of the store under test.
type Option func(*config)

type config struct {
	missingEtagConflict bool
	writers, increments int
	deadline            time.Duration
}

// MissingEtagIsConflict accepts ErrConflict (besides ErrNotFound) for a Put with an ETag on a
// missing state: stores over gofakes3, which answers 412 to If-Match on a missing key.
func MissingEtagIsConflict() Option { return func(c *config) { c.missingEtagConflict = true } }

// Concurrency sets the writers and the increments per writer of the concurrent Update test
// (default 32 × 50) and the Update deadline used there (default 2 minutes: the test checks that
// no update is lost, not how fast contention resolves).
func Concurrency(writers, increments int, deadline time.Duration) Option {
	return func(c *config) { c.writers, c.increments, c.deadline = writers, increments, deadline }
}

// Run runs the state.Store contract, and Update over it, against stores made by newStore. Each
// subtest gets a new, empty store.
func Run(t *testing.T, newStore func(t *testing.T) state.Store, opts ...Option) {
	cfg := config{writers: 32, increments: 50, deadline: 2 * time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()
	const db = "db2prod"
	initial := func() *state.State { return state.New(db, "crn:v1:key") }

	t.Run("GetMissing", func(t *testing.T) {
		s := newStore(t)
		_, _, err := s.Get(ctx, db)
		wantIs(t, err, state.ErrNotFound)
	})

	t.Run("CreateAndGet", func(t *testing.T) {
		s := newStore(t)
		in := state.New(db, "crn:v1:key")
		in.Revision = 1
		in.ConsecutiveFailures = 3
		in.MarkSeen("ev-1")
		etag, err := s.Put(ctx, db, in, "")
		must(t, err)
		if etag == "" {
			t.Fatal("Put returned an empty ETag")
		}
		got, gotTag, err := s.Get(ctx, db)
		must(t, err)
		if gotTag != etag {
			t.Errorf("Get ETag %q, Put returned %q", gotTag, etag)
		}
		if got.Database != db || got.Key.CRN != "crn:v1:key" || got.ConsecutiveFailures != 3 || !got.HasSeen("ev-1") || got.Revision != 1 {
			t.Errorf("Get = %+v, want what was put", got)
		}
	})

	t.Run("CreateTwiceConflicts", func(t *testing.T) {
		s := newStore(t)
		first := initial()
		first.ConsecutiveFailures = 1
		etag, err := s.Put(ctx, db, first, "")
		must(t, err)
		second := initial()
		second.ConsecutiveFailures = 2
		_, err = s.Put(ctx, db, second, "")
		wantIs(t, err, state.ErrConflict)
		got, gotTag, err := s.Get(ctx, db)
		must(t, err)
		if got.ConsecutiveFailures != 1 || gotTag != etag {
			t.Errorf("second create overwrote the first: %+v %s", got, gotTag)
		}
	})

	t.Run("StaleEtagConflicts", func(t *testing.T) {
		s := newStore(t)
		e1, err := s.Put(ctx, db, initial(), "")
		must(t, err)
		v2 := initial()
		v2.Revision = 2
		e2, err := s.Put(ctx, db, v2, e1)
		must(t, err)
		v3 := initial()
		v3.Revision = 3
		_, err = s.Put(ctx, db, v3, e1)
		wantIs(t, err, state.ErrConflict)
		_, err = s.Put(ctx, db, v3, e2)
		must(t, err)
	})

	t.Run("EtagOnMissing", func(t *testing.T) {
		s := newStore(t)
		e1, err := s.Put(ctx, db, initial(), "")
		must(t, err)
		_, err = s.Put(ctx, "other", state.New("other", ""), e1)
		if cfg.missingEtagConflict && errors.Is(err, state.ErrConflict) {
			return
		}
		wantIs(t, err, state.ErrNotFound)
	})

	t.Run("InvalidDatabase", func(t *testing.T) {
		s := newStore(t)
		for _, name := range []string{"", "../x", "a/b", ".hidden", "with space", strings.Repeat("a", 64)} {
			if _, _, err := s.Get(ctx, name); err == nil || errors.Is(err, state.ErrNotFound) {
				t.Errorf("Get(%q) = %v, want an invalid-name error", name, err)
			}
			if _, err := s.Put(ctx, name, state.New(name, ""), ""); err == nil {
				t.Errorf("Put(%q) succeeded", name)
			}
		}
	})

	t.Run("UpdateCreatesAndApplies", func(t *testing.T) {
		s := newStore(t)
		st, err := state.Update(ctx, s, db, initial, func(st *state.State) error {
			st.ConsecutiveFailures++
			return nil
		})
		must(t, err)
		if st.Revision != 1 || st.ConsecutiveFailures != 1 || st.WriteID == "" || st.SchemaVersion != state.SchemaVersion {
			t.Fatalf("first Update = rev %d failures %d write %q schema %d", st.Revision, st.ConsecutiveFailures, st.WriteID, st.SchemaVersion)
		}
		st2, err := state.Update(ctx, s, db, initial, func(st *state.State) error {
			st.ConsecutiveFailures++
			st.MarkSeen("ev-2")
			return nil
		})
		must(t, err)
		if st2.Revision != 2 || st2.ConsecutiveFailures != 2 || st2.WriteID == st.WriteID {
			t.Fatalf("second Update = rev %d failures %d write %q", st2.Revision, st2.ConsecutiveFailures, st2.WriteID)
		}
		got, _, err := s.Get(ctx, db)
		must(t, err)
		if got.Revision != 2 || got.ConsecutiveFailures != 2 || got.WriteID != st2.WriteID || !got.HasSeen("ev-2") {
			t.Fatalf("stored %+v, want what Update returned", got)
		}
	})

	t.Run("UpdateMissingWithoutInit", func(t *testing.T) {
		s := newStore(t)
		_, err := state.Update(ctx, s, db, nil, func(*state.State) error { return nil })
		wantIs(t, err, state.ErrNotFound)
	})

	t.Run("NoChangeWritesNothing", func(t *testing.T) {
		s := newStore(t)
		_, err := state.Update(ctx, s, db, initial, func(st *state.State) error { st.ConsecutiveFailures = 7; return nil })
		must(t, err)
		_, etag, err := s.Get(ctx, db)
		must(t, err)
		got, err := state.Update(ctx, s, db, initial, func(st *state.State) error {
			st.ConsecutiveFailures = 99 // changed, then withdrawn
			return state.ErrNoChange
		})
		must(t, err)
		if got.Revision != 1 || got.ConsecutiveFailures != 7 {
			t.Errorf("ErrNoChange returned rev %d failures %d, want the state as read (1, 7)", got.Revision, got.ConsecutiveFailures)
		}
		after, etag2, err := s.Get(ctx, db)
		must(t, err)
		if etag2 != etag || after.Revision != 1 {
			t.Errorf("ErrNoChange wrote: etag %s -> %s, revision %d", etag, etag2, after.Revision)
		}
		// On a missing state, ErrNoChange creates nothing.
		_, err = state.Update(ctx, s, "fresh", func() *state.State { return state.New("fresh", "") },
			func(*state.State) error { return state.ErrNoChange })
		must(t, err)
		_, _, err = s.Get(ctx, "fresh")
		wantIs(t, err, state.ErrNotFound)
	})

	t.Run("FnErrorWritesNothing", func(t *testing.T) {
		s := newStore(t)
		boom := errors.New("boom")
		_, err := state.Update(ctx, s, db, initial, func(*state.State) error { return boom })
		wantIs(t, err, boom)
		_, _, err = s.Get(ctx, db)
		wantIs(t, err, state.ErrNotFound)
		_, err = state.Update(ctx, s, db, initial, func(*state.State) error { return nil })
		must(t, err)
		_, etag, err := s.Get(ctx, db)
		must(t, err)
		_, err = state.Update(ctx, s, db, initial, func(st *state.State) error { st.ConsecutiveFailures = 5; return boom })
		wantIs(t, err, boom)
		got, etag2, err := s.Get(ctx, db)
		must(t, err)
		if etag2 != etag || got.ConsecutiveFailures != 0 || got.Revision != 1 {
			t.Errorf("failed fn wrote: etag %s -> %s, %+v", etag, etag2, got)
		}
	})

	t.Run("OwnWriteAnswered412", func(t *testing.T) {
		for _, existing := range []bool{false, true} {
			t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
				inner := newStore(t)
				if existing {
					_, err := state.Update(ctx, inner, db, initial, func(*state.State) error { return nil })
					must(t, err)
				}
				s := &lyingStore{Store: inner}
				s.lies.Store(1)
				calls := 0
				st, err := state.Update(ctx, s, db, initial, func(st *state.State) error {
					calls++
					st.ConsecutiveFailures++
					return nil
				})
				must(t, err)
				if calls != 1 {
					t.Errorf("fn ran %d times, want 1 (the write had succeeded)", calls)
				}
				got, _, err := inner.Get(ctx, db)
				must(t, err)
				want := int64(1)
				if existing {
					want = 2
				}
				if got.ConsecutiveFailures != 1 || got.Revision != want || st.WriteID != got.WriteID {
					t.Errorf("stored failures %d rev %d write %s; returned write %s; want 1, %d, same", got.ConsecutiveFailures, got.Revision, got.WriteID, st.WriteID, want)
				}
			})
		}
	})

	t.Run("LostRaceRetriesOnFreshState", func(t *testing.T) {
		inner := newStore(t)
		_, err := state.Update(ctx, inner, db, initial, func(*state.State) error { return nil })
		must(t, err)
		// Before our first Put lands, someone else increments.
		s := &interferingStore{Store: inner}
		s.before = func() {
			_, err := state.Update(ctx, inner, db, initial, func(st *state.State) error { st.ConsecutiveFailures += 10; return nil })
			must(t, err)
		}
		calls := 0
		st, err := state.Update(ctx, s, db, initial, func(st *state.State) error {
			calls++
			st.ConsecutiveFailures++
			return nil
		})
		must(t, err)
		if calls != 2 || st.ConsecutiveFailures != 11 || st.Revision != 3 {
			t.Errorf("calls %d, failures %d, revision %d; want 2, 11, 3", calls, st.ConsecutiveFailures, st.Revision)
		}
	})

	t.Run("ConcurrentIncrements", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		var attempts atomic.Int64
		errs := make(chan error, cfg.writers)
		start := time.Now()
		for range cfg.writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range cfg.increments {
					_, err := state.Update(ctx, s, db, initial, func(st *state.State) error {
						attempts.Add(1)
						st.ConsecutiveFailures++
						return nil
					}, state.WithDeadline(cfg.deadline))
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got, _, err := s.Get(ctx, db)
		must(t, err)
		want := cfg.writers * cfg.increments
		if got.ConsecutiveFailures != want || got.Revision != int64(want) {
			t.Fatalf("after %d×%d increments: counter %d, revision %d; want %d", cfg.writers, cfg.increments, got.ConsecutiveFailures, got.Revision, want)
		}
		t.Logf("%d×%d increments in %s, %d fn calls (%.2f per write)", cfg.writers, cfg.increments,
			time.Since(start).Round(time.Millisecond), attempts.Load(), float64(attempts.Load())/float64(want))
	})
}

// lyingStore answers ErrConflict to the next lies Puts after performing them: an SDK retry of a
// successful PUT answered 412.
type lyingStore struct {
	state.Store
	lies atomic.Int32
}

func (s *lyingStore) Put(ctx context.Context, db string, st *state.State, etag string) (string, error) {
	tag, err := s.Store.Put(ctx, db, st, etag)
	if err == nil && s.lies.Add(-1) >= 0 {
		return "", fmt.Errorf("put state %s: %w (after the write succeeded)", db, state.ErrConflict)
	}
	return tag, err
}

// interferingStore runs before once, just before the first Put.
type interferingStore struct {
	state.Store
	once   sync.Once
	before func()
}

func (s *interferingStore) Put(ctx context.Context, db string, st *state.State, etag string) (string, error) {
	s.once.Do(s.before)
	return s.Store.Put(ctx, db, st, etag)
}

func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

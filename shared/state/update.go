package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
)

// ErrNoChange is returned by an Update function to say the state needs no write; Update then
// returns the state as read, and writes nothing.
var ErrNoChange = errors.New("no change")

// Defaults of Update.
const (
	DefaultUpdateDeadline = 5 * time.Second
	DefaultBackoffMin     = 5 * time.Millisecond
	DefaultBackoffMax     = 200 * time.Millisecond
)

// UpdateOption adjusts one Update call.
type UpdateOption func(*updateConfig)

type updateConfig struct {
	deadline time.Duration
	min, max time.Duration
	clock    clock.Clock
	random   func() float64
	writeID  func() string
	log      *slog.Logger
}

// WithDeadline sets how long Update keeps retrying after lost races (default
// DefaultUpdateDeadline). The context's own deadline still applies.
func WithDeadline(d time.Duration) UpdateOption { return func(c *updateConfig) { c.deadline = d } }

// WithBackoff sets the first and the largest wait between attempts (defaults DefaultBackoffMin,
// DefaultBackoffMax). Waits double from min to max, each jittered to between half and all of it.
func WithBackoff(min, max time.Duration) UpdateOption {
	return func(c *updateConfig) { c.min, c.max = min, max }
}

// WithClock sets the clock that measures the deadline and runs the waits (default clock.Real).
func WithClock(k clock.Clock) UpdateOption { return func(c *updateConfig) { c.clock = k } }

// WithRandom sets the source of jitter: f returns a number in [0, 1) and must be safe for
// concurrent use if the option is shared (default math/rand/v2's Float64).
func WithRandom(f func() float64) UpdateOption { return func(c *updateConfig) { c.random = f } }

// WithWriteIDs sets the source of the WriteID each write carries (default 12 random bytes from
// crypto/rand, in hex). f must return a different id on every call, and be safe for concurrent
// use if the option is shared: a reused id makes Update take someone else's write for its own.
func WithWriteIDs(f func() string) UpdateOption { return func(c *updateConfig) { c.writeID = f } }

// Tuned is implemented by a Store that chooses Update's options for every caller, so that code
// which calls Update without options runs as the store's owner wants: a simulation gives every
// Update its virtual clock, seeded jitter and reproducible write ids. Options passed to Update
// apply after the store's.
type Tuned interface {
	UpdateOptions() []UpdateOption
}

// WithLogger sets where Update reports retries (debug) and recognised own writes (info); default
// slog.Default().
func WithLogger(l *slog.Logger) UpdateOption { return func(c *updateConfig) { c.log = l } }

// Update changes db's state by compare-and-swap and returns the state now stored.
//
// It reads the state (or, when there is none, starts from init() and creates it; with init nil a
// missing state is ErrNotFound), applies fn to a copy, and writes the copy with Revision + 1,
// the current SchemaVersion and a new random WriteID, on the condition that nobody wrote since
// the read. If fn returns ErrNoChange nothing is written and the state as read is returned (when
// there was none, init()'s, unsaved); any
// other error of fn aborts without writing and is returned wrapped.
//
// When the write loses a race (ErrConflict, or ErrNotFound: the object went away), Update waits a
// jittered, growing delay, reads again, and applies fn again to the fresh state; so fn must only
// change its argument and may run several times. If the fresh state carries the WriteID just
// written, the write had in fact succeeded (an SDK retry of a successful PUT answered 412) and
// Update returns it without applying fn again. After the deadline (WithDeadline) Update returns
// an error wrapping ErrConflict. Errors of the store are returned wrapped (objstore.IsTransient
// still sees through them). Update is safe for concurrent use; that is its purpose.
//
// Limitation: if a write of ours succeeded, was answered 412, and another writer then wrote over
// it before the re-read, the WriteID is gone and fn is applied a second time. Functions that
// handle events guard against this with State.MarkSeen / HasSeen.
func Update(ctx context.Context, s Store, db string, init func() *State, fn func(*State) error, opts ...UpdateOption) (*State, error) {
	return update(ctx, s, db, init, fn, nil, "", opts)
}

// UpdateFrom is Update starting from a state the caller has just read with its ETag (cur nil and
// etag "" when there was none), so that a handler that had to look at the state before deciding
// (an idle tick) costs one read, not two. When the write loses a race, Update's loop re-reads as
// usual.
func UpdateFrom(ctx context.Context, s Store, db string, cur *State, etag string, init func() *State, fn func(*State) error, opts ...UpdateOption) (*State, error) {
	if cur == nil {
		if init == nil {
			return nil, fmt.Errorf("update state %s: %w", db, ErrNotFound)
		}
		if cur = init(); cur == nil {
			return nil, fmt.Errorf("update state %s: init returned nil", db)
		}
		etag = ""
	}
	return update(ctx, s, db, init, fn, cur, etag, opts)
}

func update(ctx context.Context, s Store, db string, init func() *State, fn func(*State) error, first *State, firstTag string, opts []UpdateOption) (*State, error) {
	cfg := updateConfig{deadline: DefaultUpdateDeadline, min: DefaultBackoffMin, max: DefaultBackoffMax, random: mrand.Float64, writeID: newWriteID}
	if t, ok := s.(Tuned); ok {
		opts = append(t.UpdateOptions(), opts...)
	}
	for _, o := range opts {
		o(&cfg)
	}
	clk := clock.Or(cfg.clock)
	log := cfg.log
	if log == nil {
		log = slog.Default()
	}
	giveUp := clk.Now().Add(cfg.deadline)
	wait := cfg.min
	lastWrite := "" // WriteID of our last write answered with a conflict

	for attempt := 1; ; attempt++ {
		var cur *State
		var etag string
		var err error
		if first != nil {
			cur, etag, first = first, firstTag, nil
		} else {
			cur, etag, err = s.Get(ctx, db)
		}
		switch {
		case err == nil:
			if lastWrite != "" && cur.WriteID == lastWrite {
				log.InfoContext(ctx, "state write had succeeded although the store answered conflict",
					"database", db, "revision", cur.Revision, "attempt", attempt)
				return cur, nil
			}
		case errors.Is(err, ErrNotFound) && init != nil:
			cur, etag = init(), ""
			if cur == nil {
				return nil, fmt.Errorf("update state %s: init returned nil", db)
			}
		default:
			return nil, fmt.Errorf("update state %s: %w", db, err)
		}
		if cur.SchemaVersion > SchemaVersion {
			return nil, fmt.Errorf("update state %s: stored schema_version %d is newer than this code's %d", db, cur.SchemaVersion, SchemaVersion)
		}

		next := cur.Clone()
		if err := fn(next); errors.Is(err, ErrNoChange) {
			return cur, nil
		} else if err != nil {
			return nil, fmt.Errorf("update state %s: %w", db, err)
		}
		next.bound()
		next.Revision = cur.Revision + 1
		next.SchemaVersion = SchemaVersion
		next.Database = db
		next.WriteID = cfg.writeID()

		_, err = s.Put(ctx, db, next, etag)
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("update state %s: %w", db, err)
		}
		lastWrite = next.WriteID
		log.DebugContext(ctx, "state write lost a race", "database", db, "attempt", attempt, "revision", next.Revision)

		if !clk.Now().Before(giveUp) {
			// One last read: the write may have succeeded behind a 412.
			if got, _, gerr := s.Get(ctx, db); gerr == nil && got.WriteID == lastWrite {
				return got, nil
			}
			return nil, fmt.Errorf("update state %s: gave up after %d attempts in %s: %w", db, attempt, cfg.deadline, ErrConflict)
		}
		d := wait/2 + time.Duration(cfg.random()*float64(wait/2))
		if left := giveUp.Sub(clk.Now()); d > left {
			d = left
		}
		if err := clock.Sleep(ctx, clk, d); err != nil {
			return nil, fmt.Errorf("update state %s: after %d attempts: %w", db, attempt, err)
		}
		wait = min(wait*2, cfg.max)
	}
}

func newWriteID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// states is the state store the handlers use: state.ObjectStore over the simulated COS for
// writes (the real encoding and conditional writes), and reads that return the decoded form of
// the object read (decoded once, when it was written: what state.Decode of the same bytes
// returns, without decoding it again on every tick). It is state.Tuned: every state.Update runs
// on the virtual clock, with the run's seeded jitter and write ids.
type states struct {
	s    *Sim
	objs *state.ObjectStore
	ids  uint64
	opts []state.UpdateOption
}

var (
	_ state.Store = (*states)(nil)
	_ state.Tuned = (*states)(nil)
)

func newStates(s *Sim) *states {
	w := &states{s: s, objs: state.NewObjectStore(s.cos)}
	w.opts = []state.UpdateOption{
		state.WithClock(sleeper{s}),
		state.WithRandom(func() float64 { return s.rng.Float64() }),
		state.WithWriteIDs(func() string { w.ids++; return fmt.Sprintf("sim%016x", w.ids) }),
		state.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}
	return w
}

// UpdateOptions are the options of every state.Update on this store.
func (w *states) UpdateOptions() []state.UpdateOption { return w.opts }

// Get reads db's state, as state.ObjectStore.Get does.
func (w *states) Get(ctx context.Context, db string) (*state.State, string, error) {
	if err := state.ValidateDatabase(db); err != nil {
		return nil, "", fmt.Errorf("get state: %w", err)
	}
	st, etag, err := w.s.cos.getState(ctx, state.Key(db))
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return nil, "", fmt.Errorf("get state %s: %w", db, state.ErrNotFound)
	case err != nil:
		return nil, "", fmt.Errorf("get state %s: %w", db, err)
	}
	w.s.setView(db, &viewedState{window: st.Window != nil, blocked: st.Key.Blocked})
	return st.Clone(), etag, nil
}

// Put writes db's state by compare-and-swap (state.ObjectStore.Put).
func (w *states) Put(ctx context.Context, db string, st *state.State, etag string) (string, error) {
	return w.objs.Put(ctx, db, st, etag)
}

// sleeper is the clock of state.Update: the time is the virtual time, and a wait is a step of
// the running invocation (the events due meanwhile run), after which the callback runs at once.
type sleeper struct{ s *Sim }

func (c sleeper) Now() time.Time { return c.s.now() }

func (c sleeper) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.s.pause(d)
	f()
	return stopped{}
}

type stopped struct{}

func (stopped) Stop() bool { return false }

package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/outbox"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Catalog lists a database's backups: a destroyed key's alert names those it made unrestorable.
type Catalog interface {
	List(ctx context.Context, db string) ([]catalog.Entry, error)
}

// Handler handles key events.
type Handler struct {
	Store   state.Store
	Fleet   config.Source
	Send    outbox.Sender
	Catalog Catalog
	Clock   clock.Clock
	Log     *slog.Logger
	// Workers bounds the databases updated at once (DefaultWorkers when 0; 1 updates them one
	// after the other in the caller's goroutine).
	Workers int
	// Budget bounds one delivery's work (DefaultBudget when 0, and never past the context's
	// deadline less a margin); a key's remaining databases continue in a published continuation.
	// It is measured on Timer, the wall clock when nil (not Clock, which may be simulated).
	Budget time.Duration
	Timer  clock.Clock
}

// Defaults of the fan-out over a key's databases.
const (
	DefaultWorkers = 32
	DefaultBudget  = 6 * time.Second
	reserve        = time.Second
)

func (h *Handler) budget() time.Duration {
	if h.Budget > 0 {
		return h.Budget
	}
	return DefaultBudget
}

// Handle dispatches by type. Other types are rejected (422).
func (h *Handler) Handle(ctx context.Context, e events.Event) (edge.Result, error) {
	switch {
	case e.Type == events.TypeKeyRotated:
		p, err := events.DecodeData(e.Type, e.Data)
		if err != nil {
			return edge.Result{}, err
		}
		return h.rotated(ctx, e, *p.(*events.KeyRotated))
	case events.IsCloudLogsAlert(e.Type):
		kr, ok, err := events.ParseCloudLogsRotation(e)
		if err != nil {
			return edge.Result{}, err
		}
		if !ok {
			return edge.Result{Outcome: "ignored", Detail: "Cloud Logs alert is not about a key rotation"}, nil
		}
		return h.rotated(ctx, e, kr)
	case e.Type == events.TypeKeyStateChanged:
		p, err := events.DecodeData(e.Type, e.Data)
		if err != nil {
			return edge.Result{}, err
		}
		return h.stateChanged(ctx, e, *p.(*events.KeyStateChanged))
	}
	return edge.Result{}, edge.Reject("rotation takes %s, %s and Cloud Logs alerts, not %q", events.TypeKeyRotated, events.TypeKeyStateChanged, e.Type)
}

// forKey runs apply on the state of every database protected by keyCRN, in name order after
// resumeAfter, a few at a time, within the delivery's budget; then flushes alerts. observe, when
// not nil, gathers what apply needs for a database before its compare-and-swap (apply must not
// do I/O: it may run again on a lost race). apply returns what it did and whether it changed
// the state. When the budget runs out first, next(last)
// is published as the continuation (the same event, resuming after the last database applied),
// and the delivery is answered 200: a redelivery never redoes the whole key.
func (h *Handler) forKey(ctx context.Context, e events.Event, keyCRN, resumeAfter string, next func(last string) events.Payload,
	observe func(ctx context.Context, db config.Database) *policy.UnrestorableImages,
	apply func(st *state.State, db config.Database, now time.Time, obs *policy.UnrestorableImages) (string, bool)) (edge.Result, error) {
	fleet, err := h.Fleet.Fleet(ctx)
	if err != nil {
		return edge.Result{}, fmt.Errorf("load fleet: %w", err)
	}
	dbs := fleet.ByKey(keyCRN)
	if len(dbs) == 0 {
		return edge.Result{Outcome: "ignored", Detail: "no database in the fleet uses key " + keyCRN}, nil
	}
	slices.SortFunc(dbs, func(a, b config.Database) int { return strings.Compare(a.Name, b.Name) })
	dbs = slices.DeleteFunc(dbs, func(d config.Database) bool { return resumeAfter != "" && d.Name <= resumeAfter })
	now := clock.Or(h.Clock).Now()
	timer := clock.Or(h.Timer)
	deadline := timer.Now().Add(h.budget())
	if d, ok := ctx.Deadline(); ok && h.Timer == nil && d.Add(-reserve).Before(deadline) {
		deadline = d.Add(-reserve)
	}
	digest := e.Digest()
	notes := make([]string, len(dbs))
	errs := make([]error, len(dbs))
	one := func(i int) {
		db := dbs[i]
		var note string
		var obs *policy.UnrestorableImages
		if observe != nil {
			obs = observe(ctx, db)
		}
		st, err := state.Update(ctx, h.Store, db.Name, func() *state.State { return state.New(db.Name, db.KeyCRN) },
			func(st *state.State) error {
				if st.HasSeen(digest) {
					note = "duplicate"
					return state.ErrNoChange
				}
				var changed bool
				if note, changed = apply(st, db, now, obs); !changed {
					return state.ErrNoChange
				}
				st.MarkSeen(digest)
				return nil
			})
		if err != nil && !errors.Is(err, state.ErrNoChange) {
			errs[i] = fmt.Errorf("%s: %w", db.Name, err)
			return
		}
		if _, err := outbox.Flush(ctx, h.Store, h.Send, st); err != nil {
			errs[i] = err
		}
		notes[i] = db.Name + ": " + note
		h.log().Info("key event applied", "database", db.Name, "type", e.Type, "note", note)
	}
	started := 0
	workers := h.Workers
	if workers == 0 {
		workers = DefaultWorkers
	}
	late := func() bool { return !timer.Now().Before(deadline.Add(-reserve)) || ctx.Err() != nil }
	if workers <= 1 {
		for i := range dbs {
			if late() {
				break
			}
			one(i)
			started = i + 1
		}
	} else {
		work := make(chan int)
		var wg sync.WaitGroup
		for range min(workers, len(dbs)) {
			wg.Go(func() {
				for i := range work {
					one(i)
				}
			})
		}
		for i := range dbs {
			if late() {
				break
			}
			work <- i
			started = i + 1
		}
		close(work)
		wg.Wait()
	}
	if err := errors.Join(errs[:started]...); err != nil {
		return edge.Result{}, err
	}
	detail := strings.Join(notes[:started], "; ")
	if started < len(dbs) {
		if started == 0 {
			return edge.Result{}, fmt.Errorf("key %s: the budget ran out before the first database (%s)", keyCRN, dbs[0].Name)
		}
		last := dbs[started-1].Name
		if err := h.Send.Send(ctx, e.ID+"/after/"+last, next(last)); err != nil {
			return edge.Result{}, fmt.Errorf("publish the continuation after %s: %w", last, err)
		}
		return edge.Result{Outcome: "continued", Detail: fmt.Sprintf("%d database(s) applied, continues after %s", started, last)}, nil
	}
	return edge.Result{Outcome: "applied", Detail: detail}, nil
}

func (h *Handler) rotated(ctx context.Context, e events.Event, p events.KeyRotated) (edge.Result, error) {
	next := func(last string) events.Payload { c := p; c.ResumeAfter = last; return c }
	return h.forKey(ctx, e, p.KeyCRN, p.ResumeAfter, next, nil, func(st *state.State, db config.Database, now time.Time, _ *policy.UnrestorableImages) (string, bool) {
		return policy.Rotated(st, db, p, now)
	})
}

// stateChanged applies a key state. A destroyed key also owes the alert naming the backups it
// made unrestorable: each database's catalog is listed first, and the alert is decided inside
// the same compare-and-swap (if the listing fails, the next scheduler tick lists and decides it).
func (h *Handler) stateChanged(ctx context.Context, e events.Event, p events.KeyStateChanged) (edge.Result, error) {
	next := func(last string) events.Payload { c := p; c.ResumeAfter = last; return c }
	var observe func(context.Context, config.Database) *policy.UnrestorableImages
	if p.State == events.KeyDestroyed && h.Catalog != nil {
		observe = func(ctx context.Context, db config.Database) *policy.UnrestorableImages {
			entries, err := h.Catalog.List(ctx, db.Name)
			if err != nil {
				h.log().Warn("listing the catalog for a destroyed key's alert failed; the scheduler tries again", "database", db.Name, "err", err)
				return nil
			}
			u := policy.UnrestorableOf(entries, p.KeyCRN)
			return &u
		}
	}
	return h.forKey(ctx, e, p.KeyCRN, p.ResumeAfter, next, observe, func(st *state.State, db config.Database, _ time.Time, lost *policy.UnrestorableImages) (string, bool) {
		note, changed := policy.KeyState(st, db, p.State, p.ChangedAt)
		if lost == nil {
			return note, changed
		}
		if more, ok := policy.Unrestorable(st, db, *lost); ok {
			note, changed = note+"; "+more, true
		}
		return note, changed
	})
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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

// forKey runs apply on the state of every database protected by keyCRN, then flushes alerts.
// apply returns what it did and whether it changed the state.
func (h *Handler) forKey(ctx context.Context, e events.Event, keyCRN string, apply func(st *state.State, db config.Database, now time.Time) (string, bool)) (edge.Result, error) {
	fleet, err := h.Fleet.Fleet(ctx)
	if err != nil {
		return edge.Result{}, fmt.Errorf("load fleet: %w", err)
	}
	dbs := fleet.ByKey(keyCRN)
	if len(dbs) == 0 {
		return edge.Result{Outcome: "ignored", Detail: "no database in the fleet uses key " + keyCRN}, nil
	}
	now := clock.Or(h.Clock).Now()
	digest := e.Digest()
	var notes []string
	var errs []error
	for _, db := range dbs {
		var note string
		st, err := state.Update(ctx, h.Store, db.Name, func() *state.State { return state.New(db.Name, db.KeyCRN) },
			func(st *state.State) error {
				if st.HasSeen(digest) {
					note = "duplicate"
					return state.ErrNoChange
				}
				var changed bool
				if note, changed = apply(st, db, now); !changed {
					return state.ErrNoChange
				}
				st.MarkSeen(digest)
				return nil
			})
		if err != nil && !errors.Is(err, state.ErrNoChange) {
			errs = append(errs, fmt.Errorf("%s: %w", db.Name, err))
			continue
		}
		if _, err := outbox.Flush(ctx, h.Store, h.Send, st); err != nil {
			errs = append(errs, err)
		}
		notes = append(notes, db.Name+": "+note)
		h.log().Info("key event applied", "database", db.Name, "type", e.Type, "note", note)
	}
	if err := errors.Join(errs...); err != nil {
		return edge.Result{}, err
	}
	return edge.Result{Outcome: "applied", Detail: strings.Join(notes, "; ")}, nil
}

func (h *Handler) rotated(ctx context.Context, e events.Event, p events.KeyRotated) (edge.Result, error) {
	return h.forKey(ctx, e, p.KeyCRN, func(st *state.State, db config.Database, now time.Time) (string, bool) {
		return policy.Rotated(st, db, p, now)
	})
}

// stateChanged applies a key state. A destroyed key also owes the alert naming the backups it
// made unrestorable: the catalog is listed first, and the alert is decided inside the same
// compare-and-swap (if the listing fails, the next scheduler tick lists and decides it).
func (h *Handler) stateChanged(ctx context.Context, e events.Event, p events.KeyStateChanged) (edge.Result, error) {
	lost := map[string]*policy.UnrestorableImages{}
	if p.State == events.KeyDestroyed && h.Catalog != nil {
		fleet, err := h.Fleet.Fleet(ctx)
		if err != nil {
			return edge.Result{}, fmt.Errorf("load fleet: %w", err)
		}
		for _, db := range fleet.ByKey(p.KeyCRN) {
			entries, err := h.Catalog.List(ctx, db.Name)
			if err != nil {
				h.log().Warn("listing the catalog for a destroyed key's alert failed; the scheduler tries again", "database", db.Name, "err", err)
				continue
			}
			u := policy.UnrestorableOf(entries, p.KeyCRN)
			lost[db.Name] = &u
		}
	}
	return h.forKey(ctx, e, p.KeyCRN, func(st *state.State, db config.Database, now time.Time) (string, bool) {
		note, changed := policy.KeyState(st, db, p.State, p.ChangedAt)
		if u := lost[db.Name]; u != nil {
			if more, ok := policy.Unrestorable(st, db, *u); ok {
				note, changed = note+"; "+more, true
			}
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

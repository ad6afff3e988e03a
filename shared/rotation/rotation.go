package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/outbox"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// FleetSource returns the current fleet policy.
type FleetSource interface {
	Fleet(ctx context.Context) (*config.Fleet, error)
}

// Handler handles key events.
type Handler struct {
	Store state.Store
	Fleet FleetSource
	Send  outbox.Sender
	Clock clock.Clock
	Log   *slog.Logger
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
func (h *Handler) forKey(ctx context.Context, e events.Event, keyCRN string, apply func(st *state.State, db config.Database, now time.Time) (string, error)) (edge.Result, error) {
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
				st.MarkSeen(digest)
				var err error
				note, err = apply(st, db, now)
				return err
			})
		if err != nil && !errors.Is(err, state.ErrNoChange) {
			errs = append(errs, fmt.Errorf("%s: %w", db.Name, err))
			continue
		}
		if _, err := outbox.Flush(ctx, h.Store, h.Send, st); err != nil {
			errs = append(errs, err)
		}
		notes = append(notes, db.Name+": "+note)
		h.log().Info("key event applied", "db", db.Name, "type", e.Type, "note", note)
	}
	if err := errors.Join(errs...); err != nil {
		return edge.Result{}, err
	}
	return edge.Result{Outcome: "applied", Detail: strings.Join(notes, "; ")}, nil
}

func (h *Handler) rotated(ctx context.Context, e events.Event, p events.KeyRotated) (edge.Result, error) {
	return h.forKey(ctx, e, p.KeyCRN, func(st *state.State, db config.Database, now time.Time) (string, error) {
		return policy.OpenWindow(st, db, p, now), nil
	})
}

func (h *Handler) stateChanged(ctx context.Context, e events.Event, p events.KeyStateChanged) (edge.Result, error) {
	return h.forKey(ctx, e, p.KeyCRN, func(st *state.State, db config.Database, now time.Time) (string, error) {
		return policy.ApplyKeyState(st, db, p.State, p.ChangedAt), nil
	})
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

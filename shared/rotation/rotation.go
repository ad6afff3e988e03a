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
		return OpenWindow(st, db, p, now), nil
	})
}

// OpenWindow applies a key rotation to one database's state and says what it did. A rotation to a
// version already held or already settled changes nothing but the rotation time, so the poll, the
// Cloud Logs alert and a redelivery of either open one window between them.
func OpenWindow(st *state.State, db config.Database, p events.KeyRotated, now time.Time) string {
	if p.RotatedAt.After(st.Key.RotatedAt) {
		defer func() { st.Key.RotatedAt = p.RotatedAt }()
	}
	switch {
	case p.NewVersion != "" && st.Window != nil && st.Window.ToVersion == p.NewVersion:
		return "window already open for version " + p.NewVersion
	case p.NewVersion != "" && st.Window == nil && st.Key.Version == p.NewVersion:
		return "version " + p.NewVersion + " already settled"
	case p.NewVersion == "" && st.Window != nil:
		return "window already open"
	case p.NewVersion == "" && !st.Key.RotatedAt.IsZero() && !p.RotatedAt.After(st.Key.RotatedAt.Add(time.Minute)):
		return "rotation at " + p.RotatedAt.Format(time.RFC3339) + " already handled"
	}
	minClose, maxClose := policy.WindowBounds(db, now)
	from := st.Key.Version
	if p.OldVersion != "" {
		from = p.OldVersion
	}
	verb := "opened"
	if st.Window != nil {
		verb = "extended"
		from = st.Window.FromVersion
	}
	st.Window = &state.RotationWindow{FromVersion: from, ToVersion: p.NewVersion, OpenedAt: now, MinCloseAt: minClose, MaxCloseAt: maxClose, DetectedBy: p.DetectedBy}
	note := fmt.Sprintf("rotation window %s for version %s (settle until %s, at most until %s)", verb, p.NewVersion, minClose.Format(time.RFC3339), maxClose.Format(time.RFC3339))
	if st.Run != nil && !st.Run.Suspect {
		st.Run.Suspect = true
		note += "; run " + st.Run.ID + " marked suspect"
	}
	return note
}

func (h *Handler) stateChanged(ctx context.Context, e events.Event, p events.KeyStateChanged) (edge.Result, error) {
	return h.forKey(ctx, e, p.KeyCRN, func(st *state.State, db config.Database, now time.Time) (string, error) {
		if st.Key.State == p.State {
			return "key already " + string(p.State), nil
		}
		was := st.Key.Blocked
		st.Key.State = p.State
		st.Key.Blocked = !p.State.Usable()
		id := fmt.Sprintf("%s/key-state/%s/%d", db.Name, p.State, p.ChangedAt.Unix())
		switch {
		case st.Key.Blocked && !was:
			st.AddAlert(id, events.Alert{Severity: events.Critical, Database: db.Name, KeyCRN: p.KeyCRN, Reason: "key-state",
				Message: fmt.Sprintf("root key of %s is %s: backups of %s are blocked until the key is active again", db.Name, p.State, db.Name)})
			return "blocked: key " + string(p.State), nil
		case !st.Key.Blocked && was:
			st.AddAlert(id, events.Alert{Severity: events.Info, Database: db.Name, KeyCRN: p.KeyCRN, Reason: "key-state",
				Message: fmt.Sprintf("root key of %s is active again: backups resume", db.Name)})
			return "unblocked", nil
		}
		return "key state " + string(p.State), nil
	})
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

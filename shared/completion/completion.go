package completion

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// FleetSource returns the current fleet policy.
type FleetSource interface {
	Fleet(ctx context.Context) (*config.Fleet, error)
}

// Catalog is the backup catalog retention prunes. Nil disables retention.
type Catalog interface {
	ListReport(ctx context.Context, db string) (catalog.Listing, error)
	Delete(ctx context.Context, db, timestamp string) error
}

// Handler handles backup outcomes.
type Handler struct {
	Store   state.Store
	Fleet   FleetSource
	Send    outbox.Sender
	Catalog Catalog
	Clock   clock.Clock
	Log     *slog.Logger
}

// Handle dispatches by type. Other types are rejected (422).
func (h *Handler) Handle(ctx context.Context, e events.Event) (edge.Result, error) {
	if e.Type != events.TypeBackupCompleted && e.Type != events.TypeBackupFailed {
		return edge.Result{}, edge.Reject("completion takes %s and %s, not %q", events.TypeBackupCompleted, events.TypeBackupFailed, e.Type)
	}
	p, err := events.DecodeData(e.Type, e.Data)
	if err != nil {
		return edge.Result{}, err
	}
	var dbName string
	switch v := p.(type) {
	case *events.BackupCompleted:
		dbName = v.Database
	case *events.BackupFailed:
		dbName = v.Database
	}
	db, err := config.Lookup(ctx, h.Fleet, dbName)
	if err != nil {
		return edge.Result{}, err
	}
	now := clock.Or(h.Clock).Now()
	digest := e.Digest()
	var note string
	st, err := state.Update(ctx, h.Store, db.Name, func() *state.State { return state.New(db.Name, db.KeyCRN) },
		func(st *state.State) error {
			if st.HasSeen(digest) {
				note = "duplicate"
				return state.ErrNoChange
			}
			st.MarkSeen(digest)
			switch v := p.(type) {
			case *events.BackupCompleted:
				note = Completed(st, db, *v, now)
			case *events.BackupFailed:
				note = Failed(st, db, *v, now)
			}
			return nil
		})
	if err != nil && !errors.Is(err, state.ErrNoChange) {
		return edge.Result{}, fmt.Errorf("update state of %s: %w", db.Name, err)
	}
	h.log().Info("outcome applied", "db", db.Name, "type", e.Type, "note", note)
	if _, err := outbox.Flush(ctx, h.Store, h.Send, st); err != nil {
		return edge.Result{}, err
	}
	if _, ok := p.(*events.BackupCompleted); ok && note != "duplicate" {
		if pruned, err := h.prune(ctx, db, now); err != nil {
			// Retention runs again after the next success; a failure here loses nothing.
			h.log().Warn("retention", "db", db.Name, "err", err)
		} else if pruned > 0 {
			note += fmt.Sprintf("; retention pruned %d image(s)", pruned)
		}
	}
	return edge.Result{Outcome: "applied", Detail: db.Name + ": " + note}, nil
}

// Completed applies a backup.completed to the state and says what it did.
func Completed(st *state.State, db config.Database, p events.BackupCompleted, now time.Time) string {
	run := state.Run{ID: p.RunID, Type: p.Type, Mode: p.Mode, KeyVersion: p.KeyVersion}
	inFlight := st.Run != nil && st.Run.ID == p.RunID
	if inFlight {
		run = *st.Run
		if run.Suspect && !p.Verified {
			policy.ApplyFailure(st, db, run, events.Rotation, "a key rotation began during the run and the image was not verified", now)
			return "suspect run " + p.RunID + " not verified: counted as failed"
		}
	} else if st.LastSuccess != nil && !p.EndedAt.After(st.LastSuccess.At) {
		return "late completion of " + p.RunID + ": a newer success is recorded"
	}
	version := p.KeyVersion
	if version == "" {
		version = run.KeyVersion
	}
	policy.ApplySuccess(st, run, p.ImageTimestamp, version, p.EndedAt)
	if !inFlight {
		return "late completion of " + p.RunID + " recorded"
	}
	return "closed " + p.RunID + " (success)"
}

// Failed applies a backup.failed to the state and says what it did.
func Failed(st *state.State, db config.Database, p events.BackupFailed, now time.Time) string {
	if st.Run == nil || st.Run.ID != p.RunID {
		return "failure of " + p.RunID + " ignored: run not in flight (already counted or superseded)"
	}
	msg := p.Message
	if p.Code != "" {
		msg = p.Code + " " + msg
	}
	policy.ApplyFailure(st, db, *st.Run, p.Class, msg, now)
	if st.NextRetry != nil {
		return fmt.Sprintf("closed %s (failed, %d in a row, retry at %s)", p.RunID, st.ConsecutiveFailures, st.NextRetry.At.Format("2006-01-02T15:04Z"))
	}
	return fmt.Sprintf("closed %s (failed, %d in a row, no retry)", p.RunID, st.ConsecutiveFailures)
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// prune applies the database's retention to its catalog: it deletes, oldest first, the images no
// kept restore chain needs, never below keep_fulls full chains (catalog.Listing.Retain decides;
// nothing while an object of the catalog is unreadable).
func (h *Handler) prune(ctx context.Context, db config.Database, now time.Time) (int, error) {
	if h.Catalog == nil {
		return 0, nil
	}
	l, err := h.Catalog.ListReport(ctx, db.Name)
	if err != nil {
		return 0, fmt.Errorf("list catalog: %w", err)
	}
	for _, s := range l.Skipped {
		h.log().Warn("retention paused: catalog object unreadable", "db", db.Name, "key", s.Key, "reason", s.Reason)
	}
	_, drop := l.Retain(catalog.RetentionPolicy{KeepFulls: db.Retention.KeepFulls, KeepDays: db.Retention.KeepDays}, now, nil)
	for i, e := range drop {
		if err := h.Catalog.Delete(ctx, db.Name, e.ImageTimestamp); err != nil {
			return i, fmt.Errorf("delete %s: %w", e.Name(), err)
		}
		h.log().Info("retention deleted image", "db", db.Name, "image", e.Name(), "type", e.Type)
	}
	return len(drop), nil
}

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

// Catalog is the record of backups: the evidence an outcome is checked against, and what
// retention prunes.
type Catalog interface {
	// GetRun returns a run's recorded outcome, or an error wrapping catalog.ErrNotFound.
	GetRun(ctx context.Context, db, runID string) (catalog.RunRecord, error)
	// Record writes a run's entry (when not nil) and record, create-only and idempotent.
	Record(ctx context.Context, e *catalog.Entry, r catalog.RunRecord) error
	// Prune applies a retention policy at now (catalog.Catalog.Prune): it deletes what
	// retention drops, never what a running restore leases, nothing while an object of the
	// catalog is unreadable, and old run records once a day.
	Prune(ctx context.Context, db string, policy catalog.RetentionPolicy, now time.Time) (catalog.Pruned, error)
}

// Handler handles backup outcomes.
type Handler struct {
	Store   state.Store
	Fleet   config.Source
	Send    outbox.Sender
	Catalog Catalog
	Clock   clock.Clock
	Log     *slog.Logger
}

// Handle applies a backup.completed or backup.failed. The outcome applied is the run's record in
// the catalog, which the runner (or the scheduler, for a backup Db2 on Cloud keeps) writes
// before publishing: a success without a record is refused (422) and changes nothing; a failure
// without one is recorded first. Only the run in flight, or the run whose lease expired last,
// can be closed (policy.Completed, policy.Failed). Other types are rejected (422).
func (h *Handler) Handle(ctx context.Context, e events.Event) (edge.Result, error) {
	if e.Type != events.TypeBackupCompleted && e.Type != events.TypeBackupFailed {
		return edge.Result{}, edge.Reject("completion takes %s and %s, not %q", events.TypeBackupCompleted, events.TypeBackupFailed, e.Type)
	}
	p, err := events.DecodeData(e.Type, e.Data)
	if err != nil {
		return edge.Result{}, err
	}
	var dbName, runID string
	switch v := p.(type) {
	case *events.BackupCompleted:
		dbName, runID = v.Database, v.RunID
	case *events.BackupFailed:
		dbName, runID = v.Database, v.RunID
	}
	db, err := config.Lookup(ctx, h.Fleet, dbName)
	if err != nil {
		return edge.Result{}, err
	}
	outcome, err := h.evidence(ctx, db, runID, p)
	if err != nil {
		return edge.Result{}, err
	}
	now := clock.Or(h.Clock).Now()
	digest := e.Digest()
	var note string
	var success bool
	st, err := state.Update(ctx, h.Store, db.Name, func() *state.State { return state.New(db.Name, db.KeyCRN) },
		func(st *state.State) error {
			if st.HasSeen(digest) {
				note = "duplicate delivery"
				return state.ErrNoChange
			}
			var changed bool
			switch v := outcome.(type) {
			case events.BackupCompleted:
				note, changed = policy.Completed(st, db, v, now)
				success = true
			case events.BackupFailed:
				note, changed = policy.Failed(st, db, v, now)
			}
			if !changed {
				return state.ErrNoChange
			}
			st.MarkSeen(digest)
			return nil
		})
	if err != nil && !errors.Is(err, state.ErrNoChange) {
		return edge.Result{}, fmt.Errorf("update state of %s: %w", db.Name, err)
	}
	h.log().Info("outcome applied", "database", db.Name, "type", e.Type, "note", note)
	if _, err := outbox.Flush(ctx, h.Store, h.Send, st); err != nil {
		return edge.Result{}, err
	}
	if success {
		if pruned, err := h.prune(ctx, db, now); err != nil {
			// Retention runs again after the next success; a failure here loses nothing.
			h.log().Warn("retention", "database", db.Name, "err", err)
		} else if pruned > 0 {
			note += fmt.Sprintf("; retention pruned %d image(s)", pruned)
		}
	}
	return edge.Result{Outcome: "applied", Detail: db.Name + ": " + note}, nil
}

// evidence returns the outcome to apply: the run's record when there is one (the first outcome
// recorded for a run stands, whatever the event says). A failure without a record is recorded
// now; a success without one is refused, except for a backup a service keeps (no catalog key),
// which is recorded from the event.
func (h *Handler) evidence(ctx context.Context, db config.Database, runID string, p events.Payload) (events.Payload, error) {
	rec, err := h.Catalog.GetRun(ctx, db.Name, runID)
	if err == nil {
		return rec.Outcome(), nil
	}
	if !errors.Is(err, catalog.ErrNotFound) {
		return nil, fmt.Errorf("look up run %s in the catalog: %w", runID, err)
	}
	var entry *catalog.Entry
	rec = catalog.RunRecord{Database: db.Name, RunID: runID}
	switch v := p.(type) {
	case *events.BackupCompleted:
		if v.CatalogKey != "" || v.Location == "" {
			return nil, edge.Reject("backup.completed of %s has no record in the catalog (%s): a success is accepted only with the catalog record its producer writes first",
				runID, catalog.RunKey(db.Name, runID))
		}
		e := catalog.ServiceEntry(*v, db.Executor, "")
		entry, rec.Completed = &e, v
	case *events.BackupFailed:
		rec.Failed = v
	}
	if err := h.Catalog.Record(ctx, entry, rec); err != nil && !errors.Is(err, catalog.ErrExists) {
		if errors.Is(err, catalog.ErrInvalid) {
			return nil, edge.Reject("%v", err)
		}
		return nil, fmt.Errorf("record run %s: %w", runID, err)
	}
	if rec, err := h.Catalog.GetRun(ctx, db.Name, runID); err == nil {
		return rec.Outcome(), nil
	}
	return rec.Outcome(), nil
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// prune applies the database's retention to its catalog: it deletes, newest first, the images no
// kept restore chain needs, never below keep_fulls full chains, never one a running restore has
// leased, nothing while an object of the catalog is unreadable (catalog.Catalog.Prune decides,
// through the catalog's index: most successes read its head alone).
func (h *Handler) prune(ctx context.Context, db config.Database, now time.Time) (int, error) {
	if h.Catalog == nil {
		return 0, nil
	}
	p, err := h.Catalog.Prune(ctx, db.Name, catalog.RetentionPolicy{KeepFulls: db.Retention.KeepFulls, KeepDays: db.Retention.KeepDays}, now)
	for _, s := range p.Skipped {
		h.log().Warn("retention paused: catalog object unreadable", "database", db.Name, "key", s.Key, "reason", s.Reason)
	}
	for _, e := range p.Dropped {
		h.log().Info("retention deleted image", "database", db.Name, "image", e.Name(), "type", e.Type)
	}
	if err != nil {
		return len(p.Dropped), fmt.Errorf("retention: %w", err)
	}
	h.log().Debug("retention", "database", db.Name, "kept", p.Kept, "dropped", len(p.Dropped), "from_head_alone", p.Quick, "run_records_deleted", p.RunRecords)
	return len(p.Dropped), nil
}

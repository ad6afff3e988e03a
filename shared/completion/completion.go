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
	// ListReport lists the entries and names the objects it could not read.
	ListReport(ctx context.Context, db string) (catalog.Listing, error)
	Delete(ctx context.Context, db, timestamp string) error
	// PruneRuns deletes the run records written before cutoff, except those of the runs in keep.
	PruneRuns(ctx context.Context, db string, keep map[string]bool, cutoff time.Time) (int, error)
	// InUse returns the timestamps of the images running restores hold leases on.
	InUse(ctx context.Context, db string, now time.Time) (map[string]bool, error)
}

// runRecordAge is how long run records outlive their runs: reconciliation needs them for a few
// leases at most.
const runRecordAge = 30 * 24 * time.Hour

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
// leased (catalog.Listing.Retain decides, with InUse; nothing while an object of the catalog is
// unreadable), and the run records of the entries it deleted.
func (h *Handler) prune(ctx context.Context, db config.Database, now time.Time) (int, error) {
	if h.Catalog == nil {
		return 0, nil
	}
	l, err := h.Catalog.ListReport(ctx, db.Name)
	if err != nil {
		return 0, fmt.Errorf("list catalog: %w", err)
	}
	for _, s := range l.Skipped {
		h.log().Warn("retention paused: catalog object unreadable", "database", db.Name, "key", s.Key, "reason", s.Reason)
	}
	// Images running restores use (their leases) are kept with their chains. A catalog that
	// cannot tell which are in use is not pruned.
	inUse, err := h.Catalog.InUse(ctx, db.Name, now)
	if err != nil {
		return 0, fmt.Errorf("read restore leases: %w", err)
	}
	keep, drop := l.Retain(catalog.RetentionPolicy{KeepFulls: db.Retention.KeepFulls, KeepDays: db.Retention.KeepDays}, now, inUse)
	for i, e := range drop {
		if err := h.Catalog.Delete(ctx, db.Name, e.ImageTimestamp); err != nil {
			return i, fmt.Errorf("delete %s: %w", e.Name(), err)
		}
		h.log().Info("retention deleted image", "database", db.Name, "image", e.Name(), "type", e.Type)
	}
	if len(l.Skipped) > 0 {
		return len(drop), nil // run records of unreadable entries are unknown: keep them all
	}
	runs := make(map[string]bool, len(keep))
	for _, e := range keep {
		runs[e.RunID] = true
	}
	if _, err := h.Catalog.PruneRuns(ctx, db.Name, runs, now.Add(-runRecordAge)); err != nil {
		return len(drop), err
	}
	return len(drop), nil
}

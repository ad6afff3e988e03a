package scheduler

import (
	"context"
	"errors"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// imageEvidence looks for run's image among db's catalog entries: asked when the run has no
// record and its lease expired, before the run is counted as failed, or while its start is
// unconfirmed, before it is asked for again or given up, it finds the image of a producer that
// died after cataloging it and before writing the run record. It writes the record
// the entry implies (catalog.RecordOf; a kept image is preferred to a discarded one) and returns
// it as the run's outcome; nil when the catalog holds no image of the run; Unknown evidence when
// the catalog cannot be listed or the record written (the run is then left as it is).
func (s *Scheduler) imageEvidence(ctx context.Context, db config.Database, run state.Run) *policy.RunEvidence {
	entries, err := s.Catalog.List(ctx, db.Name)
	if err != nil {
		s.log().Warn("listing the catalog for the image of an expired run failed; the run is left as it is", "database", db.Name, "run", run.ID, "err", err)
		return &policy.RunEvidence{RunID: run.ID, Unknown: true}
	}
	var found *catalog.Entry
	for i := len(entries) - 1; i >= 0; i-- {
		if e := entries[i]; e.RunID == run.ID && (found == nil || found.IsDiscarded() && !e.IsDiscarded()) {
			found = &entries[i]
		}
	}
	if found == nil {
		return nil
	}
	rec := catalog.RecordOf(*found)
	if err := s.Catalog.Record(ctx, nil, rec); err != nil && !errors.Is(err, catalog.ErrExists) {
		s.log().Warn("recording the outcome of an expired run from its image failed; the run is left as it is", "database", db.Name, "run", run.ID, "err", err)
		return &policy.RunEvidence{RunID: run.ID, Unknown: true}
	}
	if got, err := s.Catalog.GetRun(ctx, db.Name, run.ID); err == nil {
		rec = got // recorded first by someone else: that record is the outcome
	}
	s.log().Info("outcome of an expired run found in its catalog entry", "database", db.Name, "run", run.ID, "image", found.Name())
	return &policy.RunEvidence{RunID: run.ID, Outcome: rec.Outcome(), Recorded: true}
}

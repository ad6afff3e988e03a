package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// RunRecordAge is how long run records outlive their runs: reconciliation needs them for a few
// leases at most.
const RunRecordAge = 30 * 24 * time.Hour

// runsPruneEvery is how often Prune lists the run records to delete the old ones.
const runsPruneEvery = 24 * time.Hour

// dueHorizons are the instants after a retention pass at which Prune checks whether time alone
// would make retention drop something; the last that drops nothing is the mark's Due.
var dueHorizons = []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour}

// Pruned is what Prune did.
type Pruned struct {
	// Kept is how many entries retention keeps.
	Kept int
	// Dropped are the summaries of the entries deleted, newest first.
	Dropped []Entry
	// Skipped are the catalog's objects that could not be read: while there are any, nothing
	// is deleted (see Listing.Retain).
	Skipped []Skipped
	// Quick is true when the index head alone showed that nothing is to be dropped.
	Quick bool
	// RunRecords is how many run records were deleted.
	RunRecords int
}

// Prune applies policy to db's catalog at now: it deletes, newest first, the entries retention
// drops (Listing.Retain over Summaries, with the images running restores lease, InUse), with
// their files, through DeleteMany; nothing while an object of the catalog is unreadable. Once a
// day it also deletes the run records older than RunRecordAge but those of kept entries
// (PruneRuns).
//
// Retention is incremental: a pass that leaves nothing more to drop records a mark on the
// index head (the policy, the newest entry, the head's base and deletion count, the images in
// use, and Due: the first instant at which time alone could make retention drop something).
// The next Prune reads the head alone, and deletes nothing without reading the rest, when the
// policy is the same, Due has not come, no entry was deleted since, every image then in use is
// still in use, nothing is pending, unreadable or being deleted, and every summary added since
// is newer than the mark's newest entry, neither discarded nor a database full (which would
// move the oldest full kept), and ended within KeepDays. Retain only drops more when fulls are
// added, images are deleted or released, or time passes a kept image's window (see the
// proof in prune_test.go's TestQuickPruneIsSafe): so such a Prune costs one GET of the head and
// the listing of the leases instead of reading every summary.
//
// Deletions stopped half way by a crash are finished first. Safe concurrently with Put, Delete
// and other Prunes.
func (c *Catalog) Prune(ctx context.Context, db string, policy RetentionPolicy, now time.Time) (Pruned, error) {
	if err := state.ValidateDatabase(db); err != nil {
		return Pruned{}, fmt.Errorf("prune catalog: %w: %w", ErrInvalid, err)
	}
	inUse, err := c.InUse(ctx, db, now)
	if err != nil {
		return Pruned{}, fmt.Errorf("prune catalog of %s: %w", db, err)
	}
	s, err := c.readHead(ctx, db)
	if err != nil {
		return Pruned{}, fmt.Errorf("prune catalog of %s: %w", db, err)
	}
	if s.h != nil {
		if kept, ok := quiet(s.h, policy, now, inUse); ok && !runsDue(s.h, now) {
			return Pruned{Kept: kept, Quick: true}, nil
		}
		if err := c.finishDeletions(ctx, s.h, inUse); err != nil {
			return Pruned{}, fmt.Errorf("prune catalog of %s: finish a deletion: %w", db, err)
		}
	}
	v, err := c.view(ctx, db)
	if err != nil {
		return Pruned{}, fmt.Errorf("prune catalog of %s: %w", db, err)
	}
	l := v.listing()
	res := Pruned{Skipped: l.Skipped, Kept: len(l.Entries)}
	// Listing.Retain, keeping the work that the mark for the next Prune reuses: r is the
	// retention of what is kept (nil when nothing may be dropped: an unreadable object, or
	// entries Retain cannot order).
	var drop []Entry
	var r *retention
	if len(l.Skipped) == 0 {
		if r, err = newRetention(l.Entries); err != nil {
			r = nil
		} else if kept := r.kept(policy, now, inUse); slices.Contains(kept, false) {
			var keep []Entry
			keep, drop = r.split(kept)
			res.Kept = len(keep)
			if r, err = newRetention(keep); err != nil {
				r = nil
			}
		}
	}
	// Whether the head is still exactly what this pass saw, plus its own deletions.
	clean, expect := v.exact, v.gen
	if len(drop) > 0 {
		// A restore may have leased images since the leases were read: read them again just
		// before deleting, and delete nothing this pass if one now holds an image to drop (its
		// lease holds its whole chain; the next pass decides with it).
		again, err := c.InUse(ctx, db, now)
		if err != nil {
			return res, fmt.Errorf("prune catalog of %s: read restore leases: %w", db, err)
		}
		if slices.ContainsFunc(drop, func(e Entry) bool { return again[e.ImageTimestamp] }) {
			res.Kept = len(l.Entries)
			return res, nil
		}
		names := make([]string, len(drop))
		for i, e := range drop {
			names[i] = e.Name()
		}
		_, gens, err := c.deleteNames(ctx, db, names)
		for _, g := range gens {
			clean = clean && g == expect+1
			expect = g
		}
		if err != nil {
			return res, fmt.Errorf("prune catalog of %s: %w", db, err)
		}
		res.Dropped = drop
	}
	var runsErr error
	pruneRuns := runsDue(v.h, now) && len(l.Skipped) == 0
	if pruneRuns {
		runs := make(map[string]bool, res.Kept)
		for _, e := range l.Entries {
			runs[e.RunID] = true
		}
		for _, e := range drop {
			delete(runs, e.RunID)
		}
		res.RunRecords, runsErr = c.PruneRuns(ctx, db, runs, now.Add(-RunRecordAge))
	}
	// Bases left behind by compactions whose writer could not delete them (the runner and the
	// scheduler may write, only retention deletes), best effort.
	c.dropOrphans(ctx, db, baseKeyOf(v.h), "")
	var m *retained
	if clean && r != nil {
		m = retentionMark(r, policy, now, inUse)
	}
	if m != nil || pruneRuns {
		// Best effort: without the mark, the next Prune reads everything again.
		_, _ = c.update(ctx, db, func(h *head) (bool, error) {
			changed := false
			if pruneRuns && h.RunsPruned.Before(now) {
				h.RunsPruned, changed = now, true
			}
			if m != nil && h.Generation == expect && len(h.Pending)+len(h.Deleting)+len(h.Skipped) == 0 && h.Building.IsZero() {
				mark := *m
				mark.Rows, mark.Base, mark.Deletions, mark.fresh = len(h.Rows), baseKeyOf(h), h.Deletions, true
				h.Retained, changed = &mark, true
			}
			return changed, nil
		})
	}
	return res, runsErr
}

func runsDue(h *head, now time.Time) bool { return now.Sub(h.RunsPruned) >= runsPruneEvery }

// retentionMark is the mark of a retention pass at now whose kept entries r orders, or nil
// when retention would drop some of them again (a history whose chains break other than by
// missing or discarded images) or too many images are in use to record.
func retentionMark(r *retention, policy RetentionPolicy, now time.Time, inUse map[string]bool) *retained {
	if slices.Contains(r.kept(policy, now, inUse), false) {
		return nil
	}
	n := len(r.h.sorted)
	m := &retained{KeepFulls: policy.KeepFulls, KeepDays: policy.KeepDays, At: now.UTC(), Count: n}
	if n > 0 {
		last := r.h.sorted[n-1]
		m.Through, m.ThroughStarted = last.Name(), last.StartedAt.UTC()
	}
	for ts, use := range inUse {
		if use && ValidTimestamp(ts) {
			m.InUse = append(m.InUse, ts)
		}
	}
	if len(m.InUse) > maxInUse {
		return nil
	}
	slices.Sort(m.InUse)
	if policy.KeepDays > 0 {
		// Retention drops more as time passes, never less (the window only shrinks, the chain
		// covering its start only gets newer): the last horizon that drops nothing bounds it.
		m.Due = m.At
		for _, d := range dueHorizons {
			if slices.Contains(r.kept(policy, now.Add(d), inUse), false) {
				break
			}
			m.Due = m.At.Add(d)
		}
	}
	return m
}

// quiet reports whether retention under policy at now, with inUse, drops nothing from the
// catalog h stands for, judged from h alone (its retention mark and its rows), and how many
// entries it keeps. See Prune.
func quiet(h *head, policy RetentionPolicy, now time.Time, inUse map[string]bool) (int, bool) {
	m := h.Retained
	switch {
	case m == nil, m.KeepFulls != policy.KeepFulls, m.KeepDays != policy.KeepDays:
		return 0, false
	case now.Before(m.At), policy.KeepDays > 0 && (m.Due.IsZero() || !now.Before(m.Due)):
		return 0, false
	case !h.Building.IsZero(), len(h.Pending)+len(h.Deleting)+len(h.Skipped) > 0:
		return 0, false
	case baseKeyOf(h) != m.Base, h.Deletions != m.Deletions, len(h.Rows) < m.Rows:
		return 0, false
	}
	for _, ts := range m.InUse {
		if !inUse[ts] {
			return 0, false
		}
	}
	ts, _, _ := parseName(m.Through)
	through := &Entry{ImageTimestamp: ts, StartedAt: m.ThroughStarted}
	cutoff := now.Add(-time.Duration(policy.KeepDays) * 24 * time.Hour)
	added := 0
	for i := range h.Rows {
		r := &h.Rows[i]
		if m.Through != "" && compareRefs(r, through) <= 0 {
			continue
		}
		added++
		// A new full of any line (the database or some table spaces) may let that line's oldest
		// chain go.
		if r.IsDiscarded() || r.Type == events.Full {
			return 0, false
		}
		if policy.KeepDays > 0 && !r.EndedAt.After(cutoff) {
			return 0, false
		}
	}
	// Rows only grow between compactions and deletions: every row added since the mark must be
	// one of those newer than its newest entry.
	if len(h.Rows)-m.Rows != added {
		return 0, false
	}
	return m.Count + added, true
}

// PlanRestore is the PlanRestore function over db's summaries (Summaries), with the whole
// entries of the chain it chooses read afterwards (Get, one GET each), so that the plan names
// the files to restore: the catalog's way to plan without reading every entry. A chain entry
// that is gone or differs from its summary is an error (the index is then rebuilt by Reindex).
func (c *Catalog) PlanRestore(ctx context.Context, db string, pointInTime time.Time, keyAvailable func(keyCRN, version string) bool) (RestorePlan, error) {
	l, err := c.Summaries(ctx, db)
	if err != nil {
		return RestorePlan{}, err
	}
	plan, err := PlanRestore(l.Entries, pointInTime, keyAvailable)
	if err != nil {
		return RestorePlan{}, err
	}
	if plan.Images, err = c.whole(ctx, db, plan.Images); err != nil {
		return RestorePlan{}, fmt.Errorf("plan restore of %s: %w", db, err)
	}
	return plan, nil
}

// Chain is the Chain function over db's summaries, returning the whole entries of the chain.
func (c *Catalog) Chain(ctx context.Context, db, target string) ([]Entry, error) {
	l, err := c.Summaries(ctx, db)
	if err != nil {
		return nil, err
	}
	chain, err := Chain(l.Entries, target)
	if err != nil {
		return nil, err
	}
	return c.whole(ctx, db, chain)
}

// whole reads the entries of summaries and checks each against its summary.
func (c *Catalog) whole(ctx context.Context, db string, summaries []Entry) ([]Entry, error) {
	keys := make([]string, len(summaries))
	for i, e := range summaries {
		keys[i] = e.Key()
	}
	found, err := c.fetchKeys(ctx, db, keys)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(found))
	for i, f := range found {
		switch {
		case errors.Is(f.err, ErrInvalid):
			return nil, f.err
		case f.err != nil:
			return nil, fmt.Errorf("%w: %s is in the index and not in the catalog (deleted meanwhile?)", ErrNotFound, keys[i])
		case !sameSummary(f.entry, summaries[i]):
			return nil, fmt.Errorf("%w: %s differs from its summary in the index", ErrIndex, keys[i])
		}
		out[i] = f.entry
	}
	return out, nil
}

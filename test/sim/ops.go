package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// restoreLeaseTerm is the term of a restore's lease (restore.DefaultLeaseTerm); it is renewed
// every third of it while the restore runs.
const restoreLeaseTerm = 30 * time.Minute

// operator plays what people do: ask for a backup now (keyguard backup create: a
// backup.requested through Event Notifications), restore (the restore job's plan and lease on
// the images it uses, held while it runs: its Db2 side is not simulated), and delete one backup
// (keyguard backup delete, with the checks that command makes).
type operator struct {
	s    *Sim
	cat  *catalog.Catalog
	send sender
	n    int
}

func (o *operator) act(a OpAction) {
	switch a.Kind {
	case "request":
		o.request(a)
	case "restore":
		o.restore(a)
	case "delete":
		o.delete(a)
	}
}

func (o *operator) request(a OpAction) {
	o.n++
	id := fmt.Sprintf("req-%s-%d-%d", a.DB, o.s.now().Unix(), o.n)
	o.s.invoke("operator", "backup create "+a.DB, func(ctx context.Context) error {
		return o.send.Send(ctx, id, events.BackupRequested{Database: a.DB, Type: a.Type, RequestedBy: "operator", Reason: "simulated on-demand backup"})
	})
}

// restore plans a restore (to the latest point or to the oldest one) and holds its images for
// a.For as shared/restore does: it leases them (catalog.PutLease, renewed every third of the
// term), waits until the lease shows in a listing of the leases (at most two minutes) and a
// minute more, checks the images are still cataloged (a retention pass that had not seen the
// lease may have dropped one: the restore then fails), and from then on uses them until it ends
// and releases the lease. A crash ends it; its lease then expires.
func (o *operator) restore(a OpAction) {
	s := o.s
	o.n++
	id := fmt.Sprintf("%016x", mix(uint64(o.n)^s.o.Seed))
	var lease catalog.Lease
	var etag string
	var plan catalog.RestorePlan
	out := s.invoke("restore", "restore "+a.DB, func(ctx context.Context) error {
		entries, err := o.cat.List(ctx, a.DB)
		if err != nil {
			return err
		}
		// Half the restores go to the latest point, half to the oldest one the catalog holds (an
		// audit of an old backup, whose images retention would otherwise drop).
		var pit time.Time
		if a.Oldest {
			for _, e := range entries {
				if _, err := catalog.Chain(entries, e.ImageTimestamp); err == nil && e.Scope == catalog.ScopeDatabase {
					pit = e.EndedAt
					break
				}
			}
		}
		if plan, err = catalog.PlanRestore(entries, pit, nil); err != nil {
			return err
		}
		lease = catalog.RestoreLease(plan, id, s.now(), restoreLeaseTerm)
		etag, err = catalog.PutLease(ctx, s.cos, lease, "")
		return err
	})
	if out.err != nil || out.crashed {
		return
	}
	s.m.restores++
	end := s.now().Add(a.For)
	done := false
	finish := func() {
		if done {
			return
		}
		done = true
		s.or.restoreDone(a.DB, id)
		s.invoke("restore", "restore "+a.DB+" end", func(ctx context.Context) error {
			return catalog.DeleteLease(ctx, s.cos, a.DB, id)
		})
	}
	// Settle: the lease shows in a listing, a minute passes, the images are still cataloged.
	shownBy := s.now().Add(2 * time.Minute)
	var settle func()
	settle = func() {
		if done {
			return
		}
		shown := false
		r := s.invoke("restore", "restore "+a.DB+" settle", func(ctx context.Context) error {
			inUse, err := catalog.InUse(ctx, s.cos, a.DB, s.now())
			shown = err == nil && !slices.ContainsFunc(plan.Images, func(e catalog.Entry) bool { return !inUse[e.ImageTimestamp] })
			return nil
		})
		switch {
		case r.crashed:
			done = true
			return
		case !shown && s.now().Before(shownBy):
			s.after(2*time.Second, "restore settle "+a.DB, settle)
			return
		}
		s.after(time.Minute, "restore check "+a.DB, func() {
			if done {
				return
			}
			ok := false
			r := s.invoke("restore", "restore "+a.DB+" check", func(ctx context.Context) error {
				entries, err := o.cat.List(ctx, a.DB)
				if err != nil {
					return err
				}
				ok = !slices.ContainsFunc(plan.Images, func(p catalog.Entry) bool {
					return !slices.ContainsFunc(entries, func(e catalog.Entry) bool { return e.ImageTimestamp == p.ImageTimestamp && !e.IsDiscarded() })
				})
				return nil
			})
			switch {
			case r.crashed:
				done = true
			case ok:
				s.or.restoreUses(a.DB, id, plan)
			default:
				s.m.restoresFailed++
				finish() // an image is gone, or the catalog could not be read: the restore fails
			}
		})
	}
	s.after(2*time.Second, "restore settle "+a.DB, settle)
	var renew func()
	renew = func() {
		if done {
			return
		}
		if !s.now().Before(end) {
			finish()
			return
		}
		next := s.now().Add(restoreLeaseTerm / 3)
		if next.After(end) {
			next = end
		}
		r := s.invoke("restore", "restore "+a.DB+" renew", func(ctx context.Context) error {
			l := lease
			l.Renewed = s.now()
			l.Until = l.Renewed.Add(restoreLeaseTerm)
			tag, err := catalog.PutLease(ctx, s.cos, l, etag)
			if errors.Is(err, objstore.ErrNotFound) {
				tag, err = catalog.PutLease(ctx, s.cos, l, "")
			}
			if err == nil {
				lease, etag = l, tag
			}
			return nil // a failed renewal is tried again at the next period
		})
		if r.crashed {
			done = true // the restore died: its lease ends by itself
			s.or.restoreDone(a.DB, id)
			return
		}
		s.at(next, "restore renew "+a.DB, renew)
	}
	s.after(restoreLeaseTerm/3, "restore renew "+a.DB, renew)
}

// delete deletes the oldest backup of a.DB if `keyguard backup delete` (without -force) would:
// no other backup builds on it, it is not on the newest chain while a run is in flight, no
// restore leases it, and enough fulls remain.
func (o *operator) delete(a OpAction) {
	s := o.s
	out := s.invoke("operator", "backup delete "+a.DB, func(ctx context.Context) error {
		pol, _ := s.tr.Fleet.Database(a.DB)
		l, err := o.cat.ListReport(ctx, a.DB)
		if err != nil {
			return err
		}
		if len(l.Skipped) > 0 || len(l.Entries) == 0 {
			return errRefused
		}
		list := l.Entries
		e := list[0]
		if deps := catalog.Dependents(list, e.ImageTimestamp); len(deps) > 0 {
			return errRefused
		}
		st, _, err := s.states.Get(ctx, a.DB)
		if err != nil {
			return err
		}
		if st.Run != nil && catalog.OnNewestChain(list, e.ImageTimestamp) {
			return errRefused
		}
		inUse, err := o.cat.InUse(ctx, a.DB, s.now())
		if err != nil {
			return err
		}
		if inUse[e.ImageTimestamp] {
			return errRefused
		}
		if e.Scope == catalog.ScopeDatabase && e.Type == events.Full && !e.IsDiscarded() {
			left := countFulls(list) - 1
			if left < 1 || left < max(pol.Retention.KeepFulls, catalog.MinKeepFulls) {
				return errRefused
			}
		}
		return o.cat.Delete(ctx, a.DB, e.ImageTimestamp)
	})
	if out.err == nil && !out.crashed {
		s.m.deletes++
	}
}

var errRefused = errors.New("refused")

func countFulls(list []catalog.Entry) int {
	n := 0
	for _, e := range list {
		if e.Scope == catalog.ScopeDatabase && e.Type == events.Full && !e.IsDiscarded() {
			n++
		}
	}
	return n
}
